// Kernel fault injection over the library's calls on the mock device (the list below; the VFIO
// calls are iopf/fail_nth.test.ts's), the way the kernel's iommufd_fail_nth selftest does it:
// fail the Nth slab or page allocation of the calling
// thread (/proc/thread-self/fail-nth, with failslab and fail_page_alloc told not to spare
// GFP_KERNEL or highmem allocations) for N = 1, 2, ... until the call succeeds. Each sweep runs in
// a child (test/guest/fixtures/fail-nth.mjs, node --expose-gc) so that a crash is its result; every
// failure there must be a typed error naming the ioctl, leave no fd and no object, and let the
// iommufd close. The kernel must not WARN or BUG meanwhile (/dev/kmsg).
import { describe, expect, it } from 'vitest';
import { listCases, report, sweep, useFailNth } from '../fail_nth.js';
import { kernelVersion } from '../rig.js';

const [major, minor] = kernelVersion();
const atLeast = (a: number, b: number) => major > a || (major === a && minor >= b);
// Hugetlb pages for the huge-page map sweeps (each iteration maps a fresh 2 MiB page).
const { warnings } = useFailNth(64);

// What each call needs from the kernel: vIOMMUs from 6.13, vEVENTQs from 6.15.
const calls: [string, boolean][] = [
  ['Iommufd.open', true],
  ['Iommufd.allocIoas', true],
  ['Ioas.map', true],
  ['Ioas.map (automatic IOVA)', true],
  ['Ioas.map (hugetlb)', true],
  ['Ioas.map (thp)', true],
  ['Ioas.unmap', true],
  ['Ioas.iovaRanges', true],
  ['Iommufd.allocHwpt (NEST_PARENT)', true],
  ['Iommufd.allocHwpt (nested, faultQueue)', true],
  ['Iommufd.allocFaultQueue', true],
  ['MockDevice.create', true],
  ['MockDevice.replace', true],
  ['Hwpt.invalidate', true],
  ['FaultQueue.close (fault fd read, INVALID answers written)', true],
  ['Iommufd.allocViommu', atLeast(6, 13)],
  ['Viommu.allocVdevice', atLeast(6, 13)],
  ['Viommu.allocVeventQueue', atLeast(6, 15)],
  ['Iommufd.allocHwpt (paging)', true],
  ['Hwpt.destroy', true],
  ['Ioas.destroy', true],
  ['Iommufd.getHwInfo', true],
  ['IoasMapper.map', true],
  ['IoasMapper.unmap', true],
  ['FaultQueue pump read (fault fd read, first group)', true],
  ['FaultQueue pump read (fault fd read, a group pending)', true],
  ['FaultGroup.respond (fault fd write)', true],
  ['FaultBatch.answer + flush (fault fd read and write in the batch handler)', true],
  ['VeventQueue pump read (vEVENTQ fd read)', atLeast(6, 15)],
];

describe('fail-nth over the library calls on the mock device', () => {
  it('the fixture sweeps exactly these calls', async () => {
    expect(await listCases('fail-nth.mjs')).toEqual(calls.map(([name]) => name));
  });

  it.each(calls)('%s: every injected allocation failure a typed error, nothing left, until it succeeds', async (name, present) => {
    const s = await sweep('fail-nth.mjs', name);
    // Present where the kernel version says so, and absent (ENOTTY) where it does not: never a skip.
    expect(s.present, `${name} on ${major}.${minor}`).toBe(present);
    if (!present) return;
    expect(s.failures).toEqual([]);
    console.log(report(s));
    expect(warnings(), 'no kernel WARN or BUG during the sweep').toEqual([]);
  }, 300_000);
});
