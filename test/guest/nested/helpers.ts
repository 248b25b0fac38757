// Nested translation on the real path (--qemu nested: QEMU's intel-iommu with x-nesting): the PRI
// test device attached to a nested HWPT whose stage 1 this process owns (a VtdStage1Table in its
// memory, mapped into the IOAS) over a NEST_PARENT HWPT (stage 2, the IOAS), faults on that
// nested HWPT's queue. Addresses: the device uses X (stage-1 input); stage 1 maps X to Y (an IOAS
// address, never X); the IOAS maps Y to this process's buffer.
import { expect } from 'vitest';
import { type FaultGroup, HWPT_ALLOC_NEST_PARENT, HWPT_ALLOC_PASID } from '../../../lib/index.js';
import { PriTestDevice, VtdStage1Table } from '../../../lib/testing.js';
import { kernelVersion } from '../rig.js';
import { bound } from '../iopf/helpers.js';

export { bound, cleanup, PAGE, pattern, useVfioPci } from '../iopf/helpers.js';
export { vmPin } from '../proc.js';

export const X = 0x4000_0000n;
export const Y = 0x2_0000_0000n;
export const TABLES = 0x8000_0000n;

const [major] = kernelVersion();
/** 7.x attaches a nested HWPT at a PASID (HWPT_ALLOC_PASID); 6.12's nested HWPTs take no flags. */
export const k7 = major >= 7;

/** The device on a nested HWPT (with a fault queue) over a NEST_PARENT HWPT of an empty IOAS. */
export function nested() {
  const { iommufd, dev, deviceId, ioas, queue } = bound();
  const parent = iommufd.allocHwpt({ deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
  const table = new VtdStage1Table(ioas, { iova: TABLES });
  const hwpt = iommufd.allocHwpt({
    deviceId, parentId: parent.id, faultQueue: queue, flags: k7 ? HWPT_ALLOC_PASID : 0, stage1: { type: 'vtd-s1', pgtblAddr: table.root },
  });
  // 6.12 turns on the device's page requests before it attaches a fault-capable domain, which
  // needs ATS on: a device fresh from vfio-pci (blocked) has it off, the parent turns it on.
  if (!k7) dev.attach(parent);
  dev.attach(hwpt);
  const pri = new PriTestDevice(dev);
  return { iommufd, dev, deviceId, ioas, queue, parent, table, hwpt, pri };
}

/** The ATS capability's enable bit as the kernel left it (config 0x100 + 6, bit 15). */
export function atsEnabled(dev: { readConfig(offset: number, width: 2): number }): boolean {
  return (dev.readConfig(0x106, 2) & 0x8000) !== 0;
}

/** The next group, or a failure after `ms` (a lost fault must fail the test, not hang it). */
export async function nextGroup(queue: { next(): Promise<IteratorResult<FaultGroup>> }, ms = 20_000): Promise<FaultGroup> {
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
