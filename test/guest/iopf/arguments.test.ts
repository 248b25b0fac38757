// The argument checks of PriTestDevice, walked from test/api/spec.ts against the rig's PRI test
// device (--qemu iopf) on vfio-pci, attached to an IOAS with the page its jobs read mapped: bad
// arguments refused before any register access, a closed VFIO device with ERR_IOMMUFD_CLOSED,
// and valid calls that the device carries out (a job reads its 64 bytes and finishes).
import { afterAll, describe, expect, it } from 'vitest';
import { allocPages, Iommufd, VfioDevice } from '../../../lib/index.js';
import { PriTestDevice } from '../../../lib/testing.js';
import { expectNoFailures, type Harness, lazyWorld, walk, type Walked } from '../../api/cases.js';
import { JOB, type ReceiverKind, spec, type World } from '../../api/spec.js';
import { ADDRESS, useVfioPci } from './helpers.js';

useVfioPci();

// One bound open of the device's cdev at a time (the kernel's rule): a world closes the others'.
const devices = new Set<VfioDevice>();
const iommufds = new Map<World, Iommufd[]>();
function openDevice(): VfioDevice {
  for (const d of devices) d.close();
  devices.clear();
  const dev = VfioDevice.openPci(ADDRESS);
  devices.add(dev);
  return dev;
}

function iopfWorld(): World {
  const mine: Iommufd[] = [];
  const open = () => {
    const fd = Iommufd.open();
    mine.push(fd);
    return fd;
  };
  const w = lazyWorld({
    iommufd: () => open(),
    ioas: (w) => {
      const ioas = w.iommufd.allocIoas();
      ioas.map(allocPages(4096), { iova: JOB.iova });
      return ioas;
    },
    vfio: (w) => {
      const dev = openDevice();
      dev.bind(w.iommufd);
      dev.attach(w.ioas);
      return dev;
    },
    pri: (w) => new PriTestDevice(w.vfio),
    closedArg: () => {
      const dev = VfioDevice.openPci(ADDRESS);
      dev.close();
      return { VfioDevice: dev };
    },
  });
  iommufds.set(w, mine);
  return w;
}

async function dispose(w: World): Promise<void> {
  for (const d of devices) d.close();
  devices.clear();
  for (const fd of iommufds.get(w) ?? []) await fd.close();
  iommufds.delete(w);
}

const harness: Harness = {
  world: iopfWorld,
  async closed(kind: ReceiverKind, args: (w: World) => unknown[]) {
    if (kind !== 'pri') throw new Error(`no closed ${kind} in the iopf runner`);
    const w = iopfWorld();
    const pri = w.pri;
    const made = args(w);
    pri.device.close();
    await dispose(w);
    return [{ receiver: pri, args: made }];
  },
  done: dispose,
};

const walked: Walked[] = [];
describe('every argument check of PriTestDevice, against the device', () => {
  for (const s of spec.filter((x) => x.runner === 'pri' && !x.internal)) {
    it(s.call, async () => {
      const r = await walk(s, harness);
      walked.push(r);
      expectNoFailures(s.call, r.failures);
    });
  }
});

afterAll(() => {
  console.log(`iopf: ${walked.length} calls walked, ${walked.reduce((n, r) => n + r.cases, 0)} cases, ${walked.reduce((n, r) => n + r.runs, 0)} runs`);
  expect(walked.length).toBeGreaterThan(0);
});
