// The demand pager on the real path: the PRI test device's DMA over a 64 MiB window of guest RAM
// that a 1 MiB budget serves (64x), random pages, reads and writes, 8 jobs in flight. Every byte is
// checked both ways (the device's copy of what the pager mapped, and guest RAM after the device
// wrote it); the pinned memory as the kernel accounts it (VmPin: mm->pinned_vm, which iommufd
// raises for every page it pins into a domain, iopt_pages_update_pinned) is sampled throughout and
// never exceeds the budget plus one group; evictions are counted; the device saw one response per
// request and no stale one, the kernel refused no answer.
import { describe, expect, it } from 'vitest';
import { allocPages, DemandPager } from '../../../lib/index.js';
import { PRI_TESTDEV_SLOTS } from '../../../lib/testing.js';
import { pagerSettled } from '../pager_settled.js';
import { vmPin } from '../proc.js';
import { attached, cleanup, PAGE, pagingFaultSupported, useVfioPci } from './helpers.js';

useVfioPci();

const IOVA = 0x1_0000_0000n;
const SLOT_BYTES = 16 * 1024; // each slot's share of the device's 256 KiB: jobs of up to 4 pages


function rng(seed: number) {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function fillPattern(bytes: Uint8Array, seed: number): void {
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < bytes.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x;
    bytes[i + 1] = x >>> 8;
    bytes[i + 2] = x >>> 16;
    bytes[i + 3] = x >>> 24;
  }
}

interface Job { slot: number; page: number; pages: number; write: boolean; group: boolean; expect: Uint8Array }

describe.runIf(pagingFaultSupported())('DemandPager on real page requests', () => {
  it('64 MiB window, 1 MiB budget: random pages read and written by the device, every byte checked both ways, VmPin <= budget + one group', async () => {
    const r = attached();
    const length = 64 << 20;
    const budget = 1 << 20;
    const memory = allocPages(length);
    const ram = new Uint8Array(memory);
    const base = vmPin();
    const pager = await DemandPager.start({ ioas: r.ioas, faultQueue: r.queue, memory, iova: IOVA, budget: BigInt(budget) });
    cleanup.push(() => pager.close());
    const faultErrors: unknown[] = [];
    pager.on('faultError', (e) => faultErrors.push(e));
    r.pri.timeoutMs = 30_000;
    const before = r.pri.counters();
    const random = rng(2026);
    const windowPages = length / PAGE;
    let peak = 0;
    let seed = 1;
    const totals = { jobs: 0, pages: 0, readBytes: 0, writtenBytes: 0, requests: 0, responses: 0, maxGroup: 0 };
    const t0 = performance.now();
    for (let round = 0; round < 150; round++) {
      const jobs: Job[] = [];
      const taken = new Set<number>();
      for (let slot = 0; slot < PRI_TESTDEV_SLOTS; slot++) {
        const pages = [1, 1, 1, 2, 3, 4][Math.floor(random() * 6)];
        let page: number;
        do page = Math.floor(random() * (windowPages - pages));
        while ([...Array(pages).keys()].some((k) => taken.has(page + k)));
        for (let k = 0; k < pages; k++) taken.add(page + k);
        const write = random() < 0.5;
        const expect = new Uint8Array(pages * PAGE);
        fillPattern(expect, seed++);
        if (write) r.pri.writeMemory(slot * SLOT_BYTES, expect);
        else ram.set(expect, page * PAGE); // guest RAM the device will read: written while unmapped or mapped
        jobs.push({ slot, page, pages, write, group: pages > 1 && random() < 0.5, expect });
      }
      for (const j of jobs) {
        r.pri.start(j.slot, { iova: IOVA + BigInt(j.page * PAGE), offset: j.slot * SLOT_BYTES, length: j.pages * PAGE, write: j.write, group: j.group });
      }
      // Wait for all, sampling what the kernel has pinned meanwhile (bounded: a lost fault fails here).
      const deadline = Date.now() + 60_000;
      const left = new Set(jobs.map((j) => j.slot));
      while (left.size > 0) {
        peak = Math.max(peak, vmPin() - base);
        for (const s of left) if (r.pri.status(s) === 'done' || r.pri.status(s) === 'error') left.delete(s);
        if (Date.now() > deadline) throw new Error(`round ${round}: slots ${[...left]} not finished within 60 s: ${JSON.stringify(pager.stats)}`);
        await new Promise(setImmediate);
      }
      for (const j of jobs) {
        const res = r.pri.result(j.slot);
        expect(res, `round ${round} slot ${j.slot} (${j.pages} pages at ${j.page}, ${j.write ? 'write' : 'read'})`).toMatchObject({ status: 'done', error: 0, done: j.pages * PAGE });
        if (j.write) {
          expect(Buffer.compare(ram.subarray(j.page * PAGE, (j.page + j.pages) * PAGE), j.expect), `guest RAM after the device wrote it, round ${round} slot ${j.slot}`).toBe(0);
          totals.writtenBytes += j.pages * PAGE;
        } else {
          expect(Buffer.compare(r.pri.readMemory(j.slot * SLOT_BYTES, j.pages * PAGE), j.expect), `the device's copy of guest RAM, round ${round} slot ${j.slot}`).toBe(0);
          totals.readBytes += j.pages * PAGE;
        }
        totals.jobs++;
        totals.pages += j.pages;
        totals.requests += res.pageRequests;
        totals.responses += res.responses;
        if (j.group) totals.maxGroup = Math.max(totals.maxGroup, j.pages);
      }
    }
    const ms = performance.now() - t0;
    await pagerSettled(pager, totals.responses);
    const s = pager.stats;
    const after = r.pri.counters();
    // One response per request group, none stale, none refused: no fault lost or answered twice.
    expect(after.pageRequests - before.pageRequests).toBe(totals.requests);
    expect(after.responses - before.responses).toBe(totals.responses);
    expect(after).toMatchObject({ outstanding: 0, stale: before.stale });
    expect(s).toMatchObject({ invalid: 0, refused: 0, mapErrors: 0, pending: 0, outside: 0 });
    expect(s.answered).toBe(totals.responses);
    expect(s.success).toBe(totals.responses);
    expect(s.pages).toBe(totals.requests);
    // The budget: at most one group (the PRI allocation bounds it: 4 pages) above it, as the kernel counts pins.
    expect(peak).toBeLessThanOrEqual(budget + 4 * PAGE);
    expect(s.peakMappedBytes).toBeLessThanOrEqual(budget + 4 * PAGE);
    expect(s.evictedPages).toBeGreaterThan(500);
    // Most groups never entered JS: the worker's native step mapped and answered them.
    expect(s.servedNatively).toBeGreaterThan(totals.responses / 2);
    expect(s.evictedPages).toBe(s.mappedPages - s.mappedBytes / PAGE);
    expect(vmPin() - base).toBe(s.mappedBytes);
    expect(faultErrors).toEqual([]);
    const closed = await pager.close();
    expect(closed.answeredInvalid).toBe(0);
    expect(vmPin()).toBe(base);
    console.log(`real path: ${totals.jobs} jobs, ${totals.pages} pages over a 64 MiB window (budget 1 MiB) in ${(ms / 1000).toFixed(1)} s; ` +
      `${totals.requests} page requests in ${totals.responses} groups; bytes checked: ${totals.readBytes / 1024} KiB read by the device, ${totals.writtenBytes / 1024} KiB written; ` +
      `VmPin peak ${peak / 1024} KiB (budget ${budget / 1024} KiB); ${s.evictedPages} pages evicted in ${s.evictions} unmaps; ` +
      `${s.servedNatively} of ${s.success} groups served natively; latency read->answer p50 ${s.latency.p50} us, p99 ${s.latency.p99} us`);
  });

  it('a policy hook fills pages on first touch (as from a file); the device reads what it filled; a refused range ends the job INVALID', async () => {
    const r = attached();
    const memory = allocPages(1 << 20);
    let fills = 0;
    const pager = await DemandPager.start({
      ioas: r.ioas, faultQueue: r.queue, memory, iova: IOVA, budget: BigInt(8 * PAGE), faultAround: 1,
      policy: async (req) => {
        fills++;
        await new Promise((ok) => setTimeout(ok, 1));
        if (req.offset >= 128 * PAGE) return 'refuse';
        fillPattern(req.bytes, 1000 + req.offset / PAGE);
        return 'map';
      },
    });
    cleanup.push(() => pager.close());
    for (let page = 0; page < 32; page += 4) {
      const job = await r.pri.run(0, { iova: IOVA + BigInt(page * PAGE), offset: 0, length: 4 * PAGE, group: page % 8 === 0 });
      expect(job).toMatchObject({ status: 'done', done: 4 * PAGE });
      const got = r.pri.readMemory(0, 4 * PAGE);
      for (let k = 0; k < 4; k++) {
        const want = new Uint8Array(PAGE);
        fillPattern(want, 1000 + page + k);
        expect(Buffer.compare(got.subarray(k * PAGE, (k + 1) * PAGE), want), `page ${page + k}`).toBe(0);
      }
    }
    expect(fills).toBe(32);
    const refused = await r.pri.run(1, { iova: IOVA + 130n * BigInt(PAGE), offset: 0, length: 64 });
    expect(refused).toMatchObject({ status: 'error', error: 1 });
    expect(pager.stats).toMatchObject({ policyRefused: 1, refused: 0, mapErrors: 0 });
    expect(pager.stats.peakMappedBytes).toBeLessThanOrEqual(8 * PAGE + 4 * PAGE);
  });
});
