// The rig's PRI test device (iommufd-pri-testdev, booted with --qemu iopf) bound to vfio-pci,
// opened, bound to an iommufd and attached to a fault-capable HWPT: the real page request path,
// device -> VT-d page request queue -> kernel -> FaultQueue -> page group response -> device.
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import {
  allocPages, bindVfioPci, findPciDevices, Iommufd, unbindVfioPci, VfioDevice, type FaultQueue, type Hwpt, type Ioas,
} from '../../../lib/index.js';
import { PRI_TESTDEV_DEVICE_ID, PRI_TESTDEV_VENDOR_ID, PriTestDevice } from '../../../lib/testing.js';
import { pagingFaultSupported, rig } from '../rig.js';

export const PAGE = 4096;
export const ADDRESS = findPciDevices(PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID)[0];
export { pagingFaultSupported };

/** Binds the device to vfio-pci for the file and gives it back to its old driver after. */
export function useVfioPci(): void {
  let initial: string | undefined;
  beforeAll(() => {
    expect(['iopf', 'nested'], 'runs in a rig booted with --qemu iopf or nested').toContain(rig.qemu);
    expect(ADDRESS, 'the PRI test device (1234:11e9) is on the bus').toMatch(/^0000:/);
    initial = bindVfioPci(ADDRESS);
  });
  afterAll(() => {
    if (initial !== 'vfio-pci') expect(unbindVfioPci(ADDRESS)).toBe(initial);
  });
}

export const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  // Devices before their iommufd: the order the kernel unbinds in.
  for (const f of cleanup.splice(0).reverse()) await f();
});

export interface Rig {
  iommufd: Iommufd;
  dev: VfioDevice;
  pri: PriTestDevice;
  deviceId: number;
  ioas: Ioas;
  queue: FaultQueue;
  hwpt: Hwpt;
}

/** An iommufd, the device bound to it (not attached), an empty IOAS and a fault queue. */
export function bound(): Omit<Rig, 'pri' | 'hwpt'> {
  const iommufd = Iommufd.open();
  cleanup.push(() => iommufd.close());
  const dev = VfioDevice.openPci(ADDRESS);
  cleanup.push(() => dev.close());
  const deviceId = dev.bind(iommufd);
  const ioas = iommufd.allocIoas();
  const queue = iommufd.allocFaultQueue();
  cleanup.push(() => queue.close());
  return { iommufd, dev, deviceId, ioas, queue };
}

/** bound(), and the device attached (by RID) to a fault-capable HWPT over the empty IOAS. */
export function attached(): Rig {
  const { iommufd, dev, deviceId, ioas, queue } = bound();
  const hwpt = iommufd.allocHwpt({ deviceId, parentId: ioas.id, faultQueue: queue });
  dev.attach(hwpt);
  const pri = new PriTestDevice(dev);
  return { iommufd, dev, pri, deviceId, ioas, queue, hwpt };
}

/** A page-aligned buffer of `pages` pages filled with a pattern that differs per seed. */
export function pattern(pages: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(allocPages(pages * PAGE));
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + seed * 17 + (i >> 12)) & 0xff;
  return bytes;
}
