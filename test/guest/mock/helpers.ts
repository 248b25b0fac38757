// What the mock-device guest tests share: a fault-enabled HWPT for the kernel's test device, a
// full setup, and the small waits. One helper per step, as in the kernel's selftests.
import { readdirSync } from 'node:fs';
import { type FaultGroup, type FaultQueue, type FaultQueueOptions, HWPT_ALLOC_NEST_PARENT, type Hwpt, Iommufd } from '../../../lib/index.js';
import { HWPT_DATA_SELFTEST, MockDevice, selftestHwptData } from '../../../lib/testing.js';
import { pagingFaultSupported } from '../rig.js';

/** Iommufds a test opened; closeAll() (an afterEach) closes them. */
export const open: Iommufd[] = [];
export async function closeAll(): Promise<void> {
  for (const fd of open.splice(0)) await fd.close();
}

export type Kind = 'paging' | 'nested';
/** Paging HWPTs take a fault queue from 6.13; nested ones on every kernel the rig boots. */
export const kinds: Kind[] = pagingFaultSupported() ? ['paging', 'nested'] : ['nested'];

/** A fault-enabled HWPT for the mock device: paging on the IOAS, or nested on a NEST_PARENT one. */
export function faultHwpt(iommufd: Iommufd, ioasId: number, dev: MockDevice, queue: FaultQueue, kind: Kind): Hwpt {
  if (kind === 'paging') return iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioasId, faultQueue: queue });
  const parent = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioasId, flags: HWPT_ALLOC_NEST_PARENT });
  return iommufd.allocHwpt({
    deviceId: dev.deviceId, parentId: parent.id, faultQueue: queue, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData(),
  });
}

/** An IOAS, a mock device on it, a fault queue and a fault-enabled HWPT the device is moved to. */
export function setup(kind: Kind, options?: FaultQueueOptions) {
  const iommufd = Iommufd.open();
  open.push(iommufd);
  const ioas = iommufd.allocIoas();
  const dev = MockDevice.create(iommufd, ioas.id);
  const queue = iommufd.allocFaultQueue(options);
  const hwpt = faultHwpt(iommufd, ioas.id, dev, queue, kind);
  dev.replace(hwpt.id);
  return { iommufd, ioas, dev, queue, hwpt };
}

export async function take(queue: FaultQueue, n: number): Promise<FaultGroup[]> {
  const out: FaultGroup[] = [];
  for (let i = 0; i < n; i++) {
    const r = await queue.next();
    if (r.done) throw new Error(`queue ended after ${i} of ${n} groups`);
    out.push(r.value);
  }
  return out;
}

/** Lets the event loop turn a few times so the pump can run and responses flush. */
export const settle = () => new Promise((r) => setTimeout(r, 50));

/** Open fds of this process. */
export const fdCount = () => readdirSync('/proc/self/fd').length;
