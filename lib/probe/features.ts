// Collector: the uAPI features of the running kernel, found by issuing each ioctl. iommufd answers
// ENOTTY for a command it does not know and E2BIG for non-zero bytes past the struct it knows.
import { binding } from '../core/binding.js';
import { HWPT_ALLOC_NEST_PARENT, HWPT_FAULT_ID_VALID } from '../objects/hwpt.js';
import { Iommufd } from '../objects/iommufd.js';
import { HWPT_DATA_SELFTEST, MockDevice, selftestHwptData, VIOMMU_TYPE_SELFTEST } from '../testing/mock_device.js';
import type { Vevent } from '../vevent/veventq.js';
import type { Features, Finding, TestDeviceFinding, Tri } from './types.js';
import { ioctlKnown } from './ioctl.js';
import { codeOf, errnoName, finding } from './util.js';

const { IOMMU_FAULT_QUEUE_ALLOC, IOMMU_TEST_CMD, IOMMU_VEVENTQ_ALLOC } = binding.ioctls;
const { IOMMU_VEVENTQ_TYPE_SELFTEST } = binding.probeConstants;

export function pagingFaultRefusal(e: unknown, what: string): Finding {
  const code = codeOf(e);
  return code === 'ENOTSUP'
    ? finding('no', `IOMMU_HWPT_ALLOC refused a fault queue on a paging HWPT for ${what} (EOPNOTSUPP): this kernel takes fault queues only on nested HWPTs (paging HWPTs take them from Linux 6.13)`, code)
    : finding('unknown', `IOMMU_HWPT_ALLOC of a paging HWPT with a fault queue for ${what} failed with ${code}`, code);
}

export function unprobed(status: Tri, detail: string): Features {
  return {
    faultQueue: finding(status, detail), pagingHwptFault: finding(status, detail), veventq: finding(status, detail),
    pasidAttach: finding(status, detail),
    testDevice: { ...finding(status, detail), attach: status, attachDetail: detail, vevent: status, veventDetail: detail },
  };
}

// One selftest vEVENT end to end through the library's VeventQueue: vIOMMU over a nesting parent,
// vDEVICE, the device on a nested HWPT of the vIOMMU, TRIGGER_VEVENT. The iommufd's close (the
// caller's) takes everything down again.
async function veventRoundTrip(iommufd: Iommufd, ioasId: number): Promise<[Tri, string]> {
  const step = { name: 'MOCK_DOMAIN' };
  try {
    const dev = MockDevice.create(iommufd, ioasId);
    step.name = 'the vIOMMU setup';
    const parent = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioasId, flags: HWPT_ALLOC_NEST_PARENT });
    const viommu = iommufd.allocViommu({ deviceId: dev.deviceId, parent, type: VIOMMU_TYPE_SELFTEST });
    const queue = viommu.allocVeventQueue({ type: binding.vevent.types.selftest, depth: 1 });
    viommu.allocVdevice({ deviceId: dev.deviceId, virtId: 0x99n });
    dev.replace(iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: viommu.id, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData() }).id);
    step.name = 'TRIGGER_VEVENT';
    dev.triggerVevent();
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([queue.next(), new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), 2000); })]);
    clearTimeout(timer);
    const e = r?.done === false ? r.value : undefined;
    if (e?.kind !== 'event') return ['no', 'a triggered vEVENT did not arrive within 2 s'];
    return ['yes', `a test-device vEVENT arrived through a VeventQueue: sequence ${e.sequence}, virt_id 0x${((e as Vevent).decoded as { virtId: number }).virtId.toString(16)}`];
  } catch (e) {
    return ['no', `${step.name} failed with ${codeOf(e)}`];
  }
}

export async function probeFeatures(devicePath: string): Promise<Features & { mockPagingFault: Finding | null }> {
  const iommufd = Iommufd.open(devicePath);
  try {
    const fd = iommufd.fd;
    // Fault queues: allocate one for real, then destroy it.
    let faultQueue: Finding;
    const fqKnown = ioctlKnown(fd, IOMMU_FAULT_QUEUE_ALLOC);
    if (fqKnown.known === 'no') faultQueue = finding('no', 'IOMMU_FAULT_QUEUE_ALLOC is unknown to this kernel (ENOTTY)', 'ENOTTY');
    else {
      try {
        const q = binding.faultQueueAlloc(fd);
        binding.close(q.fd);
        binding.destroy(fd, q.id);
        faultQueue = finding('yes', `IOMMU_FAULT_QUEUE_ALLOC created fault object ${q.id} (destroyed again)`);
      } catch (e) {
        faultQueue = finding('unknown', `IOMMU_FAULT_QUEUE_ALLOC failed with ${codeOf(e)}`, codeOf(e));
      }
    }

    // vEVENTQ: ask for one on a vIOMMU that does not exist. A kernel with the ioctl looks the id
    // up (ENOENT) or checks the arguments first (EINVAL/EOPNOTSUPP); one without it says ENOTTY.
    let veventq: Finding;
    {
      const arg = new Uint8Array(32);
      const v = new DataView(arg.buffer);
      v.setUint32(0, 32, true); // size
      v.setUint32(8, 0xfffffffe, true); // viommu_id: never allocated
      v.setUint32(12, IOMMU_VEVENTQ_TYPE_SELFTEST, true); // type: any but DEFAULT
      v.setUint32(16, 1, true); // veventq_depth
      const rc = binding.probeIoctl(fd, IOMMU_VEVENTQ_ALLOC, arg);
      const code = rc < 0 ? errnoName(rc) : 'OK';
      if (rc >= 0) {
        // Cannot happen with an id that was never handed out; clean up all the same.
        binding.close(v.getUint32(24, true));
        binding.destroy(fd, v.getUint32(20, true));
        veventq = finding('yes', 'IOMMU_VEVENTQ_ALLOC succeeded');
      } else if (code === 'ENOTTY') veventq = finding('no', 'IOMMU_VEVENTQ_ALLOC is unknown to this kernel (ENOTTY)', code);
      else if (code === 'ENOENT' || code === 'EINVAL' || code === 'ENOTSUP') veventq = finding('yes', `IOMMU_VEVENTQ_ALLOC on a vIOMMU that does not exist answered ${code}: the ioctl is known`, code);
      else veventq = finding('unknown', `IOMMU_VEVENTQ_ALLOC on a vIOMMU that does not exist answered ${code}`, code);
    }

    // The kernel's test device: IOMMU_TEST_CMD known? Then does a mock device attach, and does a
    // paging HWPT with a fault queue take it?
    let testDevice: TestDeviceFinding;
    let mockPagingFault: Finding | null = null;
    const tKnown = ioctlKnown(fd, IOMMU_TEST_CMD);
    if (tKnown.known === 'no') {
      testDevice = {
        ...finding('no', 'IOMMU_TEST_CMD is unknown to this kernel (ENOTTY): built without CONFIG_IOMMUFD_TEST', 'ENOTTY'),
        attach: 'no', attachDetail: 'no test device', vevent: 'no', veventDetail: 'no test device',
      };
    } else if (tKnown.known === 'unknown') {
      testDevice = {
        ...finding('unknown', `IOMMU_TEST_CMD with an oversized argument answered ${tKnown.errno}`, tKnown.errno),
        attach: 'unknown', attachDetail: 'not tried', vevent: 'unknown', veventDetail: 'not tried',
      };
    } else {
      const ioas = iommufd.allocIoas();
      let mock: MockDevice | undefined;
      let attach: Tri;
      let attachDetail: string;
      try {
        mock = MockDevice.create(iommufd, ioas.id);
        attach = 'yes';
        attachDetail = `a mock device attached to an IOAS (iommufd device ${mock.deviceId})`;
      } catch (e) {
        attach = 'no';
        attachDetail = `test device present but cannot attach: IOMMU_TEST_OP_MOCK_DOMAIN failed with ${codeOf(e)}${codeOf(e) === 'EINVAL' ? ' (older kernels refuse it while an IOMMU driver such as intel-iommu is active)' : ''}`;
      }
      const [vevent, veventDetail]: [Tri, string] = veventq.status !== 'yes' ? ['no', 'no vEVENTQ in this kernel']
        : mock ? await veventRoundTrip(iommufd, ioas.id) : ['unknown', 'the mock device does not attach'];
      testDevice = { ...finding('yes', 'IOMMU_TEST_CMD is known (E2BIG for an oversized argument): CONFIG_IOMMUFD_TEST', 'E2BIG'), attach, attachDetail, vevent, veventDetail };
      if (mock) {
        const q = binding.faultQueueAlloc(fd);
        try {
          const hwpt = binding.hwptAlloc(fd, { devId: mock.deviceId, ptId: ioas.id, flags: HWPT_FAULT_ID_VALID, faultId: q.id });
          binding.destroy(fd, hwpt);
          mockPagingFault = finding('yes', 'IOMMU_HWPT_ALLOC of a paging HWPT with a fault queue succeeded for the kernel test device');
        } catch (e) {
          mockPagingFault = pagingFaultRefusal(e, 'the kernel test device');
        } finally {
          binding.close(q.fd);
          mock.destroy();
        }
      }
    }
    return {
      faultQueue, veventq, testDevice, mockPagingFault,
      pagingHwptFault: mockPagingFault ?? finding('unknown', 'no device to probe with'),
      pasidAttach: finding('unknown', 'no device to probe with: needs a device bound to vfio-pci'),
    };
  } finally {
    await iommufd.close();
  }
}
