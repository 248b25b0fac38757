// Real page requests: the PRI test device's DMA engine finds a page missing, sends a PCIe page
// request through the emulated intel-iommu's page request queue, the guest kernel's PRQ handler
// hands it to iommufd, this library delivers it, and the page group response goes back through
// the invalidation queue to the device, which retries. Nothing here is mocked: every fault is the
// device's, every answer is what the device saw (its registers say so).
import { describe, expect, it } from 'vitest';
import {
  HWPT_ALLOC_PASID, IommufdError, PGFAULT_FLAGS_LAST_PAGE, PGFAULT_FLAGS_PASID_VALID, PGFAULT_PERM_READ,
  PGFAULT_PERM_WRITE, type FaultGroup,
} from '../../../lib/index.js';
import { PRI_TESTDEV_SLOTS, PriTestdevError } from '../../../lib/testing.js';
import { attached, bound, cleanup, PAGE, pagingFaultSupported, pattern, useVfioPci } from './helpers.js';

useVfioPci();

const IOVA = 0x4000_0000n;

/** The next group, or a failure after `ms` (a lost fault must fail the test, not hang it). */
async function nextGroup(queue: { next(): Promise<IteratorResult<FaultGroup>> }, ms = 20_000): Promise<FaultGroup> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no fault group within ${ms} ms`)), ms); });
  try {
    const r = await Promise.race([queue.next(), timeout]);
    expect(r.done).toBe(false);
    return r.value as FaultGroup;
  } finally {
    clearTimeout(timer);
  }
}

describe.runIf(!pagingFaultSupported())('before 6.13 (6.12): the stop is in iommufd', () => {
  it('a fault queue on a paging HWPT is refused with EOPNOTSUPP, for this PRI-capable device too', () => {
    const { iommufd, dev, deviceId, ioas, queue } = bound();
    let err: unknown;
    try {
      iommufd.allocHwpt({ deviceId, parentId: ioas.id, faultQueue: queue });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IommufdError);
    // EOPNOTSUPP (95, which Node names ENOTSUP) from iommufd_hwpt_paging_alloc's flag check.
    expect(err).toMatchObject({ code: 'ENOTSUP', errno: -95, syscall: 'IOMMU_HWPT_ALLOC', message: expect.stringMatching(/from Linux 6\.13/) });
    // The same device without a fault queue attaches: the refusal is the fault queue's.
    const hwpt = iommufd.allocHwpt({ deviceId, parentId: ioas.id });
    expect(dev.attach(hwpt)).toBe(hwpt.id);
  });
});

describe.runIf(pagingFaultSupported())('page requests from a PCIe device, end to end', () => {
  it('stage b: a fault-capable HWPT attaches to the device by RID', () => {
    const r = attached();
    expect(r.hwpt.id).toBeGreaterThan(0);
    // PRI is on now: the kernel allocated the device its outstanding requests.
    expect(r.pri.counters().priAlloc).toBeGreaterThan(0);
  });

  it('stage c: a DMA read of an unmapped IOVA delivers one fault group (device id, PASID 0, page, READ, last page); INVALID fails the job', async () => {
    const r = attached();
    r.pri.start(0, { iova: IOVA + 0x10n, offset: 0, length: 64 });
    const group = await nextGroup(r.queue);
    expect(group.deviceId).toBe(r.deviceId);
    expect(group.faults).toHaveLength(1);
    // RID-attached: the device sends PASID 0 (RID_PASID), and the kernel reports it as such.
    expect(group.faults[0]).toMatchObject({
      deviceId: r.deviceId, pasid: 0, addr: IOVA, perm: PGFAULT_PERM_READ, flags: PGFAULT_FLAGS_PASID_VALID | PGFAULT_FLAGS_LAST_PAGE,
    });
    await group.respond('invalid');
    const res = await r.pri.wait(0);
    expect(res).toMatchObject({ status: 'error', error: PriTestdevError.INVALID, done: 0, pageRequests: 1, responses: 1, responseCode: 1, faultAddress: IOVA });
    expect(r.queue.stats).toMatchObject({ delivered: 1, answered: 1 });
  });

  it('stage d: demand paging, device reads: the handler maps the page and answers SUCCESS; the bytes arrive', async () => {
    const r = attached();
    const backing = pattern(1, 1);
    r.pri.writeMemory(0, new Uint8Array(PAGE));
    r.pri.start(1, { iova: IOVA, offset: 0, length: PAGE });
    const group = await nextGroup(r.queue);
    expect(group.faults[0]).toMatchObject({ addr: IOVA, perm: PGFAULT_PERM_READ });
    r.ioas.map(backing, { iova: group.faults[0].addr });
    await group.respond('success');
    const res = await r.pri.wait(1);
    expect(res).toMatchObject({ status: 'done', error: 0, done: PAGE, pageRequests: 1, responses: 1, responseCode: 0 });
    expect(Buffer.compare(r.pri.readMemory(0, PAGE), backing)).toBe(0);
    // Completion is flagged for the slot (and signalled by MSI); acknowledging clears it.
    expect(r.pri.finished & 0b10).toBe(0b10);
    r.pri.acknowledge(0b10);
    expect(r.pri.finished & 0b10).toBe(0);
  });

  it('stage d: demand paging, device writes: a WRITE fault; the device memory lands in the mapped page', async () => {
    const r = attached();
    const source = pattern(1, 2);
    const backing = pattern(1, 3).fill(0);
    r.pri.writeMemory(PAGE, source);
    r.pri.start(2, { iova: IOVA + 0x5000n, offset: PAGE, length: PAGE, write: true });
    const group = await nextGroup(r.queue);
    expect(group.faults[0]).toMatchObject({ addr: IOVA + 0x5000n, perm: PGFAULT_PERM_WRITE });
    r.ioas.map(backing, { iova: IOVA + 0x5000n });
    await group.respond();
    const res = await r.pri.wait(2);
    expect(res).toMatchObject({ status: 'done', done: PAGE, pageRequests: 1, responses: 1 });
    expect(Buffer.compare(backing, source)).toBe(0);
  });

  it('stage d: SUCCESS without fixing the page (mapped read-only for a write) ends the job: the device retried once', async () => {
    const r = attached();
    const backing = pattern(1, 4);
    r.pri.start(3, { iova: IOVA, offset: 0, length: 128, write: true });
    const group = await nextGroup(r.queue);
    r.ioas.map(backing, { iova: IOVA, writable: false });
    await group.respond('success');
    const res = await r.pri.wait(3);
    expect(res).toMatchObject({ status: 'error', error: PriTestdevError.STILL_MISSING, pageRequests: 1, responses: 1, responseCode: 0, done: 0 });
  });

  it('stage d: close() with a request pending answers it INVALID, and the device sees that response', async () => {
    const r = attached();
    r.pri.start(4, { iova: IOVA, offset: 0, length: 64 });
    const group = await nextGroup(r.queue);
    expect(group.answered).toBe(false);
    const closed = await r.queue.close();
    expect(closed).toMatchObject({ answeredInvalid: 1 });
    const res = await r.pri.wait(4);
    expect(res).toMatchObject({ status: 'error', error: PriTestdevError.INVALID, responses: 1, responseCode: 1 });
  });

  it('stage d: close() answers INVALID what was delivered; what the device sends after close() waits in the kernel until the device is detached', async () => {
    const r = attached();
    r.pri.timeoutMs = 30_000;
    for (let s = 0; s < PRI_TESTDEV_SLOTS; s++) r.pri.start(s, { iova: IOVA + BigInt(s * PAGE), offset: s * PAGE, length: 64 });
    // The device holds 4 request credits: 4 groups reach the queue, 4 jobs wait for a credit.
    const seen = [await nextGroup(r.queue), await nextGroup(r.queue), await nextGroup(r.queue), await nextGroup(r.queue)];
    const first = new Set(seen.map((g) => Number(g.faults[0].addr - IOVA) / PAGE));
    expect(first.size).toBe(4);
    expect(await r.queue.close()).toMatchObject({ answeredInvalid: 4 });
    for (const s of first) expect(await r.pri.wait(s)).toMatchObject({ status: 'error', error: PriTestdevError.INVALID, responses: 1 });
    // The other 4 now send their requests. The fault fd is closed, and closing it answers nothing
    // in the kernel (the HWPT keeps the fault object): they wait, unanswered.
    const rest = [...Array(PRI_TESTDEV_SLOTS).keys()].filter((s) => !first.has(s));
    const deadline = Date.now() + 10_000;
    while (rest.some((s) => r.pri.result(s).pageRequests === 0) && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 10));
    await new Promise((ok) => setTimeout(ok, 300));
    for (const s of rest) expect(r.pri.result(s)).toMatchObject({ status: 'waiting', pageRequests: 1, responses: 0 });
    // Detaching the device answers them INVALID (iommufd_auto_response_faults).
    r.dev.detach();
    for (const s of rest) expect(await r.pri.wait(s)).toMatchObject({ status: 'error', error: PriTestdevError.INVALID, responses: 1 });
    expect(r.pri.counters().outstanding).toBe(0);
  });

  it('stage d: detaching the device with a request pending: the kernel answers it INVALID (drain + auto-response), the device sees it, a late respond() is refused', async () => {
    const r = attached();
    r.pri.start(0, { iova: IOVA, offset: 0, length: 64 });
    const group = await nextGroup(r.queue);
    r.dev.detach();
    const res = await r.pri.wait(0);
    expect(res).toMatchObject({ status: 'error', error: PriTestdevError.INVALID, responses: 1, responseCode: 1 });
    await expect(group.respond('success')).rejects.toMatchObject({ code: 'EINVAL' });
    expect(r.pri.counters().outstanding).toBe(0);
  });

  it('stage d: an unanswered request times out in the device (its bound), and the late answer is still accepted by the kernel', async () => {
    const r = attached();
    r.pri.timeoutMs = 300;
    r.pri.start(5, { iova: IOVA, offset: 0, length: 64 });
    const group = await nextGroup(r.queue);
    const res = await r.pri.wait(5);
    expect(res).toMatchObject({ status: 'error', error: PriTestdevError.TIMEOUT, pageRequests: 1, responses: 0 });
    const stale = r.pri.counters().stale;
    await group.respond('invalid');
    // The device no longer waits for that group: the response counts as stale there.
    await new Promise((ok) => setTimeout(ok, 50));
    expect(r.pri.counters().stale).toBe(stale + 1);
  });

  it('stage e: 8 jobs of 4 pages each, in flight at once, one page per request: every page faulted once, PRI allocation respected, all bytes arrive', async () => {
    const r = attached();
    const pagesPerJob = 4;
    const backing = pattern(PRI_TESTDEV_SLOTS * pagesPerJob, 5);
    const base = IOVA + 0x100_0000n;
    const faulted = new Set<bigint>();
    r.pri.resetMaxOutstanding();
    const handler = (async () => {
      while (faulted.size < PRI_TESTDEV_SLOTS * pagesPerJob) {
        const group = await nextGroup(r.queue);
        for (const f of group.faults) {
          expect(faulted.has(f.addr), `page ${f.addr.toString(16)} faulted twice`).toBe(false);
          faulted.add(f.addr);
          const i = Number(f.addr - base) / PAGE;
          r.ioas.map(backing.subarray(i * PAGE, (i + 1) * PAGE), { iova: f.addr });
        }
        group.answer('success');
      }
    })();
    for (let s = 0; s < PRI_TESTDEV_SLOTS; s++) {
      r.pri.start(s, { iova: base + BigInt(s * pagesPerJob * PAGE), offset: s * pagesPerJob * PAGE, length: pagesPerJob * PAGE });
    }
    const results = await Promise.all(Array.from({ length: PRI_TESTDEV_SLOTS }, (_, s) => r.pri.wait(s, { timeoutMs: 60_000 })));
    await handler;
    for (const res of results) expect(res).toMatchObject({ status: 'done', done: pagesPerJob * PAGE, pageRequests: pagesPerJob, responses: pagesPerJob });
    expect(Buffer.compare(r.pri.readMemory(0, backing.length), backing)).toBe(0);
    const c = r.pri.counters();
    expect(c.outstanding).toBe(0);
    expect(c.maxOutstanding).toBeLessThanOrEqual(c.priAlloc);
    expect(c.maxOutstanding).toBeGreaterThan(1);
    expect(r.queue.stats).toMatchObject({ delivered: PRI_TESTDEV_SLOTS * pagesPerJob, pending: 0 });
  });

  it('stage e: group requests: one page request group per job, its pages in order with the last flagged, answered once', async () => {
    const r = attached();
    const pages = 3;
    const jobs = 2; // 2 x 3 requests > the device's 4 credits: the second group waits for one
    const backing = pattern(jobs * pages, 6);
    const base = IOVA + 0x200_0000n;
    const seen: FaultGroup[] = [];
    const handler = (async () => {
      while (seen.length < jobs) {
        const group = await nextGroup(r.queue);
        seen.push(group);
        for (const f of group.faults) {
          const i = Number(f.addr - base) / PAGE;
          r.ioas.map(backing.subarray(i * PAGE, (i + 1) * PAGE), { iova: f.addr });
        }
        group.answer('success');
      }
    })();
    for (let s = 0; s < jobs; s++) {
      r.pri.start(s, { iova: base + BigInt(s * pages * PAGE), offset: s * pages * PAGE, length: pages * PAGE, write: false, group: true });
    }
    const results = await Promise.all(Array.from({ length: jobs }, (_, s) => r.pri.wait(s)));
    await handler;
    for (const g of seen) {
      expect(g.faults).toHaveLength(pages);
      const first = g.faults[0].addr;
      expect(g.faults.map((f) => f.addr)).toEqual([0, 1, 2].map((k) => first + BigInt(k * PAGE)));
      expect(g.faults.map((f) => f.flags & PGFAULT_FLAGS_LAST_PAGE)).toEqual([0, 0, PGFAULT_FLAGS_LAST_PAGE]);
      expect(new Set(g.faults.map((f) => f.groupId)).size).toBe(1);
    }
    for (const res of results) expect(res).toMatchObject({ status: 'done', done: pages * PAGE, pageRequests: pages, responses: 1 });
    expect(Buffer.compare(r.pri.readMemory(0, backing.length), backing)).toBe(0);
  });

  it('stage e: the batch view on real page requests: 8 jobs over all 256 KiB of device memory, half in groups, 3 rounds; every page once, bytes both ways', async () => {
    const r = attached();
    const pagesPerJob = 8;
    const total = PRI_TESTDEV_SLOTS * pagesPerJob;
    const staleBefore = r.pri.counters().stale; // the device's counters survive its resets
    for (let round = 0; round < 3; round++) {
      const write = round === 1; // rounds 0 and 2 read guest memory, round 1 writes it
      const ram = pattern(total, 10 + round);
      const source = pattern(total, 20 + round);
      if (write) {
        r.pri.writeMemory(0, source);
        ram.fill(0);
      }
      const base = IOVA + 0x400_0000n + BigInt(round) * 0x100_0000n;
      const seen = new Set<bigint>();
      let records = 0;
      r.queue.setBatchHandler((batch) => {
        for (let g = 0; g < batch.groupCount; g++) {
          for (let k = batch.first(g); k < batch.first(g) + batch.size(g); k++) {
            const addr = batch.addressBigInt(k);
            if (seen.has(addr)) throw new Error(`page 0x${addr.toString(16)} faulted twice`);
            seen.add(addr);
            records++;
            const i = Number(addr - base) / PAGE;
            r.ioas.map(ram.subarray(i * PAGE, (i + 1) * PAGE), { iova: addr });
          }
          batch.answer(g, 'success');
        }
      });
      r.pri.resetMaxOutstanding();
      for (let s = 0; s < PRI_TESTDEV_SLOTS; s++) {
        r.pri.start(s, { iova: base + BigInt(s * pagesPerJob * PAGE), offset: s * pagesPerJob * PAGE, length: pagesPerJob * PAGE, write, group: s % 2 === 1 });
      }
      const results = await Promise.all(Array.from({ length: PRI_TESTDEV_SLOTS }, (_, s) => r.pri.wait(s, { timeoutMs: 60_000 })));
      r.queue.setBatchHandler(null);
      for (const res of results) expect(res).toMatchObject({ status: 'done', error: 0, done: pagesPerJob * PAGE, pageRequests: pagesPerJob });
      // One-page groups answer once per page; grouped jobs once per group of up to 4 (the allocation).
      for (let s = 1; s < PRI_TESTDEV_SLOTS; s += 2) expect(results[s].responses).toBeLessThan(pagesPerJob);
      expect(records).toBe(total);
      expect(seen.size).toBe(total);
      if (write) expect(Buffer.compare(ram, source)).toBe(0);
      else expect(Buffer.compare(r.pri.readMemory(0, total * PAGE), ram)).toBe(0);
      const c = r.pri.counters();
      expect(c).toMatchObject({ outstanding: 0, stale: staleBefore, queueFull: 0 });
      expect(c.maxOutstanding).toBe(c.priAlloc);
    }
    expect(r.queue.stats).toMatchObject({ pending: 0, refused: 0 });
  });

  it('a PASID-attached fault-capable HWPT gets the requests tagged with that PASID; the RID keeps its own', async () => {
    const r = attached();
    // A PASID attach needs the RID on a PASID-capable HWPT too: replace it with one (fault-capable).
    const rid = r.iommufd.allocHwpt({ deviceId: r.deviceId, parentId: r.ioas.id, faultQueue: r.queue, flags: HWPT_ALLOC_PASID });
    r.dev.replace(rid);
    const ioas5 = r.iommufd.allocIoas();
    const hwpt = r.iommufd.allocHwpt({ deviceId: r.deviceId, parentId: ioas5.id, faultQueue: r.queue, flags: HWPT_ALLOC_PASID });
    r.dev.attachPasid(5, hwpt);
    cleanup.push(() => r.dev.detachPasid(5));
    r.pri.start(6, { iova: IOVA, offset: 0, length: 64, pasid: 5 });
    const group = await nextGroup(r.queue);
    expect(group.faults[0]).toMatchObject({ pasid: 5, addr: IOVA, flags: PGFAULT_FLAGS_PASID_VALID | PGFAULT_FLAGS_LAST_PAGE });
    // Demand paging in PASID 5's own IOAS: the bytes come from there, not from the RID's.
    const backing = pattern(1, 7);
    ioas5.map(backing, { iova: IOVA });
    await group.respond('success');
    expect(await r.pri.wait(6)).toMatchObject({ status: 'done', done: 64, pageRequests: 1, responses: 1 });
    expect(Buffer.compare(r.pri.readMemory(0, 64), backing.subarray(0, 64))).toBe(0);
    // The RID (PASID 0 on the wire) still faults into its own IOAS, through the same queue.
    r.pri.start(7, { iova: IOVA, offset: 0, length: 64 });
    const ridGroup = await nextGroup(r.queue);
    expect(ridGroup.faults[0]).toMatchObject({ pasid: 0, addr: IOVA });
    await ridGroup.respond('invalid');
    expect(await r.pri.wait(7)).toMatchObject({ status: 'error', error: PriTestdevError.INVALID });
  });
});
