// Huge-page guest RAM on the real path: the PRI test device's DMA over a 32 MiB window of hugetlb
// (pages reserved here, /proc/sys/vm/nr_hugepages, and given back) or THP memory, faulted on demand
// through page requests a DemandPager answers; then the same memory mapped whole with an automatic
// IOVA (2 MiB aligned, as io_pagetable.c aligns it under CONFIG_TRANSPARENT_HUGEPAGE) and read and
// written by the device without a fault; unmapped. Every byte checked both ways.
import { describe, expect, it } from 'vitest';
import { allocPages, DemandPager } from '../../../lib/index.js';
import { PRI_TESTDEV_SLOTS } from '../../../lib/testing.js';
import { useHugePages } from '../hugepages.js';
import { meminfo, vmPin } from '../proc.js';
import { attached, cleanup, PAGE, pagingFaultSupported, useVfioPci } from './helpers.js';

useVfioPci();

const MiB = 1 << 20;
const IOVA = 0x1_0000_0000n;
const SLOT_BYTES = 16 * 1024;


useHugePages(64);

function fill(bytes: Uint8Array, seed: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + seed * 17 + (i >> 12)) & 0xff;
}

/** One job per slot, each at its own page of a different huge page; reads and writes alternate. */
async function round(r: ReturnType<typeof attached>, ram: Uint8Array, base: bigint, seed: number) {
  const jobs = [];
  for (let slot = 0; slot < PRI_TESTDEV_SLOTS; slot++) {
    const page = slot * (2 * MiB / PAGE) + ((seed * 7 + slot * 3) % 500);
    const write = (slot + seed) % 2 === 0;
    const expected = new Uint8Array(2 * PAGE);
    fill(expected, seed * 16 + slot);
    if (write) r.pri.writeMemory(slot * SLOT_BYTES, expected);
    else ram.set(expected, page * PAGE);
    jobs.push({ slot, page, write, expected });
    r.pri.start(slot, { iova: base + BigInt(page * PAGE), offset: slot * SLOT_BYTES, length: 2 * PAGE, write, group: true });
  }
  for (const j of jobs) {
    const res = await r.pri.wait(j.slot, { timeoutMs: 60_000 });
    expect(res, `slot ${j.slot} (page ${j.page}, ${j.write ? 'write' : 'read'})`).toMatchObject({ status: 'done', error: 0, done: 2 * PAGE });
    const got = j.write ? ram.subarray(j.page * PAGE, (j.page + 2) * PAGE) : r.pri.readMemory(j.slot * SLOT_BYTES, 2 * PAGE);
    expect(Buffer.compare(got, j.expected), `slot ${j.slot}: ${j.write ? 'guest RAM the device wrote' : "the device's copy"}`).toBe(0);
  }
  return jobs.length;
}

describe.runIf(pagingFaultSupported())('huge-page guest RAM on real page requests', () => {
  for (const kind of ['hugetlb', 'thp'] as const) {
    it(`${kind}: 32 MiB window, faulted on demand by the device through the pager, every byte checked; then mapped whole at an automatic 2 MiB-aligned IOVA, no faults; unmapped`, async () => {
      const length = 32 * MiB;
      const memory = allocPages(length, { hugePages: kind });
      const ram = new Uint8Array(memory);
      const r = attached();
      r.pri.timeoutMs = 30_000;
      const pin0 = vmPin();
      const pager = await DemandPager.start({ ioas: r.ioas, faultQueue: r.queue, memory, iova: IOVA, budget: BigInt(4 * MiB) });
      cleanup.push(() => pager.close());
      const before = r.pri.counters();
      let jobs = 0;
      for (let seed = 1; seed <= 3; seed++) jobs += await round(r, ram, IOVA, seed);
      const after = r.pri.counters();
      expect(after.pageRequests - before.pageRequests, 'every job faulted (pages not mapped before)').toBeGreaterThanOrEqual(PRI_TESTDEV_SLOTS);
      expect(pager.stats).toMatchObject({ invalid: 0, refused: 0, mapErrors: 0, pending: 0, outside: 0 });
      expect(vmPin() - pin0).toBe(pager.stats.mappedBytes);
      expect((await pager.close()).answeredInvalid).toBe(0);
      expect(vmPin()).toBe(pin0);
      console.log(`${kind}: ${jobs} jobs over 32 MiB, ${after.pageRequests - before.pageRequests} page requests, ${pager.stats.mappedPages} pages mapped`);

      // Mapped whole: the kernel picks a 2 MiB-aligned IOVA (address and length allow more; HPAGE_SIZE caps it).
      const iova = r.ioas.map(memory);
      expect(iova % BigInt(2 * MiB), `automatic IOVA 0x${iova.toString(16)}`).toBe(0n);
      expect(vmPin() - pin0).toBe(length);
      if (kind === 'hugetlb') expect(meminfo('HugePages_Free')).toBeLessThanOrEqual(64 - 16);
      const requests = r.pri.counters().pageRequests;
      jobs += await round(r, ram, iova, 9);
      expect(r.pri.counters().pageRequests, 'mapped whole: no page request').toBe(requests);
      expect(r.ioas.unmap(iova)).toBe(BigInt(length));
      expect(vmPin()).toBe(pin0);
    });
  }
});
