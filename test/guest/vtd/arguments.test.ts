// Every argument check of the VFIO device and PCI calls, walked from test/api/spec.ts against a
// real device: QEMU's edu on vfio-pci behind the emulated intel-iommu (found and bound as in
// vfio.test.ts). Bad arguments are refused before the device or sysfs sees anything, a closed
// device with ERR_IOMMUFD_CLOSED, and a valid call still works (or, where edu lacks the feature,
// PASID and reset, reaches the kernel, whose refusal is its word).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindVfioPci, findPciDevices, Iommufd, unbindVfioPci, VfioDevice } from '../../../lib/index.js';
import { expectNoFailures, type Harness, lazyWorld, walk, type Walked } from '../../api/cases.js';
import { type CallSpec, type ReceiverKind, spec, type World } from '../../api/spec.js';

const EDU = findPciDevices(0x1234, 0x11e8)[0];
let initialDriver: string | undefined;
beforeAll(() => {
  expect(EDU).toMatch(/^0000:/);
  initialDriver = bindVfioPci(EDU);
});
afterAll(() => {
  if (initialDriver !== 'vfio-pci') expect(unbindVfioPci(EDU)).toBe(initialDriver);
});

// The kernel lets one open of a device's cdev be bound at a time: a world closes the devices of
// the others before it opens its own.
const devices = new Set<VfioDevice>();
const iommufds = new Map<World, Iommufd[]>();
function openEdu(): VfioDevice {
  for (const d of devices) d.close();
  devices.clear();
  const dev = VfioDevice.openPci(EDU);
  devices.add(dev);
  return dev;
}

function vtdWorld(): World {
  const mine: Iommufd[] = [];
  const open = () => {
    const fd = Iommufd.open();
    mine.push(fd);
    return fd;
  };
  const w = lazyWorld({
    pci: () => EDU,
    iommufd: () => open(),
    ioas: (w) => w.iommufd.allocIoas(),
    vfio: (w) => {
      const dev = openEdu();
      dev.bind(w.iommufd);
      return dev;
    },
    vfioUnbound: () => openEdu(),
    foreign: () => ({ Ioas: open().allocIoas() }),
    closedArg: (w) => {
      const ioas = w.iommufd.allocIoas();
      ioas.destroy();
      const hwpt = w.iommufd.allocHwpt({ deviceId: w.vfio.deviceId, parentId: w.ioas.id });
      hwpt.destroy();
      const closed = open();
      void closed.close();
      return { Ioas: ioas, Hwpt: hwpt, Iommufd: closed };
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
  world: vtdWorld,
  async closed(kind: ReceiverKind, args: (w: World) => unknown[]) {
    if (kind !== 'vfio' && kind !== 'vfioUnbound') throw new Error(`no closed ${kind} in the vtd runner`);
    const w = vtdWorld();
    const dev = kind === 'vfio' ? w.vfio : w.vfioUnbound;
    const made = args(w);
    dev.close();
    await dispose(w);
    return [{ receiver: dev, args: made }];
  },
  done: dispose,
};

const walked: Walked[] = [];
describe('every argument check of the VFIO device and PCI calls (edu on vfio-pci)', () => {
  for (const s of spec.filter((x: CallSpec) => x.runner === 'vtd' && !x.internal)) {
    it(s.call, async () => {
      const r = await walk(s, harness);
      walked.push(r);
      expectNoFailures(s.call, r.failures);
    });
  }
});

afterAll(() => {
  console.log(`vtd: ${walked.length} calls walked, ${walked.reduce((n, r) => n + r.cases, 0)} cases, ${walked.reduce((n, r) => n + r.runs, 0)} runs`);
});
