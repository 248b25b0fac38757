// The fault path end to end against the real kernel: the kernel's iommufd test device raises I/O
// page faults (IOMMU_TEST_OP_TRIGGER_IOPF) on a HWPT whose fault queue this library reads and answers.
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ErrorCodes, type FaultGroup, Iommufd, IommufdError, PGFAULT_FLAGS_LAST_PAGE, PGFAULT_FLAGS_PASID_VALID, PGFAULT_PERM_READ, PGFAULT_PERM_WRITE,
} from '../../../lib/index.js';
import { MockDevice } from '../../../lib/testing.js';
import { pagingFaultSupported } from '../rig.js';
import { closeAll, faultHwpt, fdCount, kinds, open, settle, setup, take } from './helpers.js';

afterEach(closeAll);

/**
 * Two groups read, then a replace (the kernel auto-answers both INVALID and forgets their cookies)
 * onto a new fault HWPT, and one new group: the kernel hands out the lowest free cookie at once,
 * so the new group gets one of the old numbers.
 */
async function staleAfterReplace() {
  const { iommufd, ioas, dev, queue } = setup(kinds[0]);
  dev.triggerIopf({ groupId: 1 }, 2);
  const old = await take(queue, 2);
  dev.replace(ioas.id);
  dev.replace(faultHwpt(iommufd, ioas.id, dev, queue, kinds[0]).id);
  dev.triggerIopf({ groupId: 3 });
  const [fresh] = await take(queue, 1);
  const reused = old.find((g) => g.cookie === fresh.cookie)!;
  const notReused = old.find((g) => g !== reused)!;
  expect(reused).toBeDefined();
  return { dev, queue, fresh, reused, notReused };
}

describe.each(kinds)('fault round trip on a %s HWPT', (kind) => {
  it('delivers a fault with every field the test device set, and takes the answer', async () => {
    const { dev, queue } = setup(kind);
    // A PASID fault reaches a RID-attached HWPT only through a nested domain (user PASID table).
    const pasid = kind === 'nested' ? 0x42 : 0;
    dev.triggerIopf({ pasid, groupId: 0x1f, perm: PGFAULT_PERM_READ | PGFAULT_PERM_WRITE, addr: 0xdead_b000n });
    const [group] = await take(queue, 1);
    expect(group.faults).toHaveLength(1);
    expect(group.faults[0]).toEqual({
      flags: PGFAULT_FLAGS_LAST_PAGE | (pasid ? PGFAULT_FLAGS_PASID_VALID : 0),
      deviceId: dev.deviceId,
      pasid: pasid || undefined,
      groupId: 0x1f,
      perm: PGFAULT_PERM_READ | PGFAULT_PERM_WRITE,
      addr: 0xdead_b000n,
      length: 0,
      cookie: group.cookie,
    });
    await expect(group.respond('success')).resolves.toBeUndefined();
    expect(queue.stats).toMatchObject({ delivered: 1, answered: 1, refused: 0, pending: 0 });
  });

  if (kind === 'paging') {
    it('a PASID fault with no PASID attachment is answered by the kernel, never delivered', async () => {
      const { dev, queue } = setup(kind);
      dev.triggerIopf({ pasid: 0x42, groupId: 1 });
      dev.triggerIopf({ groupId: 2 });
      const [group] = await take(queue, 1);
      expect(group.groupId).toBe(2);
      await group.respond();
      await settle();
      expect(queue.stats).toMatchObject({ delivered: 1, backlog: 0 });
    });
  }

  it('reports no PASID when the fault carries none', async () => {
    const { dev, queue } = setup(kind);
    dev.triggerIopf({ addr: 0x1000n });
    const [group] = await take(queue, 1);
    expect(group.pasid).toBeUndefined();
    expect(group.faults[0].flags).toBe(PGFAULT_FLAGS_LAST_PAGE);
    await group.respond('invalid');
  });

  it('drains and answers 10,000 faults: none lost, none answered twice', async () => {
    const { dev, queue } = setup(kind);
    const N = 10_000;
    dev.triggerIopf({ groupId: 0, addr: 0x10000n }, N);
    const seen = new Set<number>();
    // Cookies whose answer has not reached the kernel yet. Answers go back batch by batch, and the
    // kernel hands an answered group's cookie out again at once: never while it is pending.
    const unanswered = new Set<number>();
    let clash = 0;
    const answers: Promise<void>[] = [];
    for await (const group of queue) {
      seen.add(group.groupId);
      const { cookie } = group;
      if (unanswered.has(cookie)) clash++;
      unanswered.add(cookie);
      answers.push(group.respond().then(() => { unanswered.delete(cookie); }));
      if (seen.size === N) break;
    }
    await Promise.all(answers);
    expect(seen.size).toBe(N);
    expect(clash).toBe(0);
    expect(unanswered.size).toBe(0);
    // grpid counts up from 0 per trigger (the test device passes the whole u32 through).
    expect(Math.max(...seen)).toBe(N - 1);
    await settle();
    expect(queue.stats).toMatchObject({ delivered: N, answered: N, refused: 0, pending: 0, backlog: 0 });
  });
});

describe('answers', () => {
  it('a second answer is a typed error and the queue stays usable', async () => {
    const { dev, queue } = setup(kinds[0]);
    dev.triggerIopf({ groupId: 1 });
    const [group] = await take(queue, 1);
    await group.respond();
    expect(() => group.respond()).toThrow(expect.objectContaining({ name: 'IommufdError', code: ErrorCodes.ALREADY_ANSWERED }));
    expect(() => group.respond('bogus' as 'success')).toThrow(TypeError);
    dev.triggerIopf({ groupId: 2 });
    const [next] = await take(queue, 1);
    await expect(next.respond()).resolves.toBeUndefined();
  });

  it('answers for groups the kernel auto-answered: EINVAL from the kernel, or stale when the cookie was reused', async () => {
    const { dev, queue, fresh, reused, notReused } = await staleAfterReplace();
    // The library refuses that stale answer itself rather than answer the newer group by mistake.
    await expect(reused.respond()).rejects.toMatchObject({ name: 'IommufdError', code: ErrorCodes.FAULT_STALE });
    // The other old cookie goes to the kernel, in one write(2) with the good answer: the kernel
    // stops at it with EINVAL, and the pump skips it and writes the rest.
    const bad = notReused.respond('invalid');
    const good = fresh.respond();
    const err = await bad.catch((e) => e);
    expect(err).toBeInstanceOf(IommufdError);
    expect(err).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'write' });
    await expect(good).resolves.toBeUndefined();
    expect(queue.stats).toMatchObject({ answered: 1, refused: 1, pending: 0 });
    // And the queue goes on working.
    dev.triggerIopf({ groupId: 9 });
    const [next] = await take(queue, 1);
    await expect(next.respond()).resolves.toBeUndefined();
  });
});

describe('batches and promise-less answers', () => {
  it('batches(): every group read in one wakeup as one array, each once; answer() needs no promise', async () => {
    const { dev, queue } = setup(kinds[0]);
    const N = 1000;
    dev.triggerIopf({ groupId: 0 }, N);
    await settle();
    const seen = new Set<number>();
    const sizes: number[] = [];
    for await (const batch of queue.batches()) {
      sizes.push(batch.length);
      for (const g of batch) {
        seen.add(g.groupId);
        expect(g.answer()).toBeUndefined();
      }
      if (seen.size === N) break;
    }
    // All N were queued before the first read: one wakeup, one buffer (1024 records), one batch.
    expect(sizes).toEqual([N]);
    await settle();
    expect(queue.stats).toMatchObject({ delivered: N, answered: N, refused: 0, pending: 0, backlog: 0 });
  });

  it('answer(): a stale group throws at once; a kernel refusal is counted in stats.refused', async () => {
    const { queue, fresh, reused, notReused } = await staleAfterReplace();
    expect(() => reused.answer()).toThrow(expect.objectContaining({ code: ErrorCodes.FAULT_STALE }));
    notReused.answer('invalid');
    fresh.answer();
    expect(() => fresh.answer()).toThrow(expect.objectContaining({ code: ErrorCodes.ALREADY_ANSWERED }));
    await settle();
    expect(queue.stats).toMatchObject({ answered: 1, refused: 1, pending: 0 });
  });
});

describe('kernel auto-response', () => {
  it('replace with pending faults: the kernel answers INVALID, our answers then fail, the queue empties', async () => {
    // One small read buffer and a low high-water mark keep most faults queued in the kernel.
    const { ioas, dev, queue } = setup(kinds[0], { bufferRecords: 4, highWaterMark: 4, lowWaterMark: 0 });
    dev.triggerIopf({ groupId: 0 }, 20);
    await settle();
    const taken = await take(queue, 2);
    // 4 read (2 taken, 2 in the backlog), reading paused, 16 still queued in the kernel.
    expect(queue.stats).toMatchObject({ delivered: 4, backlog: 2, paused: true });
    dev.replace(ioas.id);
    const delivered = [...taken, ...(await take(queue, 2))];
    const results = await Promise.allSettled(delivered.map((g) => g.respond()));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'EINVAL' });
    // The backlog is empty, so reading resumed; the 16 that were queued were answered by the kernel.
    await settle();
    expect(queue.stats).toMatchObject({ delivered: 4, paused: false, backlog: 0, pending: 0, refused: 4 });
  });

  it('destroy: the fault object is EBUSY while its fd is open or a HWPT holds it; close() destroys it once neither does', async () => {
    const { iommufd, ioas, dev, queue, hwpt } = setup(kinds[0]);
    dev.triggerIopf({ groupId: 3 });
    await take(queue, 1);
    expect(() => iommufd.destroy(queue.id)).toThrow(expect.objectContaining({ code: 'EBUSY', syscall: 'IOMMU_DESTROY' }));
    dev.replace(ioas.id);
    hwpt.destroy();
    expect(() => iommufd.destroy(queue.id)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    // The pending group was auto-answered by the replace, so close has nothing left to answer;
    // with its fd closed and no HWPT holding it, close() destroyed the fault object itself.
    expect(await queue.close()).toEqual({ answeredInvalid: 0 });
    expect(() => iommufd.destroy(queue.id)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describe('flow control', () => {
  it('abort ends an iteration with the reason and leaves the queue open', async () => {
    const { dev, queue } = setup(kinds[0]);
    dev.triggerIopf({ groupId: 0 }, 5);
    const ac = new AbortController();
    const got: FaultGroup[] = [];
    const loop = (async () => {
      for await (const g of queue.groups({ signal: ac.signal })) {
        got.push(g);
        await g.respond();
        if (got.length === 3) setTimeout(() => ac.abort(), 0);
      }
    })();
    await expect(loop).rejects.toMatchObject({ name: 'AbortError' });
    expect(got.length).toBeGreaterThanOrEqual(3);
    // The rest are still there for the next consumer.
    const rest = await take(queue, 5 - got.length);
    await Promise.all(rest.map((g) => g.respond()));
    expect(queue.closed).toBe(false);
    // An abort while waiting for a fault that never comes.
    const idle = new AbortController();
    const waiting = queue.groups({ signal: idle.signal }).next();
    idle.abort(new Error('stop waiting'));
    await expect(waiting).rejects.toThrow('stop waiting');
  });

  it('a queue signal closes the queue', async () => {
    const ac = new AbortController();
    const { dev, queue } = setup(kinds[0], { signal: ac.signal });
    dev.triggerIopf({ groupId: 0 }, 2);
    await take(queue, 1);
    ac.abort();
    await settle();
    expect(queue.closed).toBe(true);
    expect((await queue.next()).done).toBe(true);
  });

  it('backpressure: reading stops at the high-water mark and resumes below the low one', async () => {
    const { dev, queue } = setup(kinds[0], { bufferRecords: 8, highWaterMark: 8, lowWaterMark: 2 });
    dev.triggerIopf({ groupId: 0 }, 100);
    await settle();
    expect(queue.stats).toMatchObject({ delivered: 8, backlog: 8, paused: true });
    await Promise.all((await take(queue, 5)).map((g) => g.respond()));
    await settle();
    expect(queue.stats).toMatchObject({ delivered: 8, paused: true });
    await Promise.all((await take(queue, 1)).map((g) => g.respond()));
    await settle();
    expect(queue.stats.delivered).toBe(16);
    const rest = await take(queue, 100 - 6);
    await Promise.all(rest.map((g) => g.respond()));
    await settle();
    expect(queue.stats).toMatchObject({ delivered: 100, answered: 100, pending: 0 });
  });
});

describe('close', () => {
  it('answers INVALID everything read or still queued, and is safe twice', async () => {
    const { dev, queue } = setup(kinds[0], { bufferRecords: 4, highWaterMark: 4 });
    dev.triggerIopf({ groupId: 0 }, 10);
    const [a, b, c] = await take(queue, 3);
    await a.respond();
    // b and c are taken but unanswered; 1 waits in the backlog; 6 are still in the kernel.
    const first = queue.close();
    expect(queue.close()).toBe(first);
    expect(await first).toEqual({ answeredInvalid: 9 });
    expect(() => b.respond()).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
    expect(c.answered).toBe(false);
    expect((await queue.next()).done).toBe(true);
    await queue[Symbol.asyncDispose]();
  });

  it('leaves no fd open: the fault fd and the iommufd are closed, also when a queue was never iterated', async () => {
    const fds = fdCount;
    const before = fds();
    const { iommufd, dev, queue } = setup(kinds[0]);
    iommufd.allocFaultQueue(); // never used
    expect(fds()).toBe(before + 3);
    dev.triggerIopf({ groupId: 0 }, 2);
    await take(queue, 1);
    await iommufd.close();
    open.splice(open.indexOf(iommufd), 1);
    expect(fds()).toBe(before);
  });

  it('closing the iommufd closes its queues first', async () => {
    const { iommufd, dev, queue } = setup(kinds[0]);
    dev.triggerIopf({ groupId: 0 }, 3);
    await take(queue, 1);
    await iommufd.close();
    expect(queue.closed).toBe(true);
    expect(queue.stats.answered).toBe(3);
    await iommufd.close();
    expect(() => iommufd.fd).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
  });
});

describe('HWPT fault capability by kernel version', () => {
  it(pagingFaultSupported() ? 'a paging HWPT takes a fault queue (6.13+)' : 'a paging HWPT refuses a fault queue before 6.13', () => {
    const iommufd = Iommufd.open();
    open.push(iommufd);
    const ioas = iommufd.allocIoas();
    const dev = MockDevice.create(iommufd, ioas.id);
    const queue = iommufd.allocFaultQueue();
    const alloc = () => iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, faultQueue: queue });
    if (pagingFaultSupported()) expect(alloc().id).toBeGreaterThan(0);
    else expect(alloc).toThrow(expect.objectContaining({ code: 'ENOTSUP', syscall: 'IOMMU_HWPT_ALLOC', message: expect.stringMatching(/from Linux 6\.13/) }));
  });
});

describe('worker threads', () => {
  it('runs a full round trip inside a worker (per-environment native state)', async () => {
    // Node 20 workers cannot load TypeScript: use the build (scripts/test-guest.mjs runs tsc first).
    const url = new URL('../../../dist/esm/index.js', import.meta.url).href;
    const testing = new URL('../../../dist/esm/testing.js', import.meta.url).href;
    const code = `
      const { parentPort } = require('node:worker_threads');
      (async () => {
        const { Iommufd } = await import(${JSON.stringify(url)});
        const { MockDevice } = await import(${JSON.stringify(testing)});
        const fd = Iommufd.open();
        const ioas = fd.allocIoas();
        const dev = MockDevice.create(fd, ioas.id);
        const q = fd.allocFaultQueue();
        const parent = fd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, flags: 1 });
        const hwpt = fd.allocHwpt({ deviceId: dev.deviceId, parentId: parent.id, faultQueue: q, dataType: 0xdead, data: new Uint8Array([0xef, 0xbe, 0xad, 0x0b]) });
        dev.replace(hwpt.id);
        dev.triggerIopf({ groupId: 9, addr: 0x5000n });
        const { value } = await q.next();
        await value.respond();
        parentPort.postMessage({ groupId: value.groupId, addr: value.faults[0].addr.toString() });
        await fd.close();
      })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));`;
    const worker = new Worker(code, { eval: true });
    const msg = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
    await worker.terminate();
    expect(msg).toEqual({ groupId: 9, addr: String(0x5000n) });
  });
});
