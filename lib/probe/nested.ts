// Collector: the nested path for one device on vfio-pci, built the way a VMM builds it, and
// whether the device can send page requests on it (its ATS enable bit, read back through VFIO).
import { binding } from '../core/binding.js';
import { PCI_EXT_CAP_ID_ATS, pciExtendedCapabilities } from '../device/pci.js';
import { VFIO_PCI_CONFIG_REGION_INDEX, type VfioDevice } from '../device/vfio_device.js';
import { HWPT_DATA_VTD_S1 } from '../objects/invalidate.js';
import { allocPages } from '../objects/ioas.js';
import { HWPT_ALLOC_NEST_PARENT } from '../objects/hwpt.js';
import type { Iommufd } from '../objects/iommufd.js';
import type { NestedFinding, NestedStep, Tri } from './types.js';
import { codeOf } from './util.js';

/** Where the empty stage-1 table goes in the probe's IOAS: 1 GiB, clear of x86's reserved MSI window. */
const STAGE1_ROOT = 0x4000_0000n;
const ATS_CTRL = 6;
const ATS_CTRL_ENABLE = 0x8000;

/** The ATS capability's offset in the device's config space as VFIO shows it; null without one. */
export function atsOffset(dev: VfioDevice): number | null {
  const size = Number(dev.regionInfo(VFIO_PCI_CONFIG_REGION_INDEX).size);
  if (size <= 256) return null;
  return pciExtendedCapabilities(dev.read(VFIO_PCI_CONFIG_REGION_INDEX, 0, Math.min(size, 4096))).find((c) => c.id === PCI_EXT_CAP_ID_ATS)?.offset ?? null;
}

const result = (status: Tri, detail: string, step: NestedStep | null, errno: string | null = null, atsEnabled: boolean | null = null): NestedFinding =>
  ({ status, detail, errno, step, atsEnabled });

/** A refusal: EOPNOTSUPP and ENODEV are the kernel saying no; anything else is not understood. */
function refused(step: NestedStep, what: string, e: unknown): NestedFinding {
  const code = codeOf(e);
  const definite = code === 'ENOTSUP' || code === 'ENODEV';
  return result(definite ? 'no' : 'unknown', `${what} failed with ${code}`, step, code);
}

/**
 * Builds the nested path for `dev` (bound to `iommufd`) as a VMM would: an IOAS mapping one zeroed
 * page (an empty VT-d stage-1 table: every address not present), a NEST_PARENT HWPT on it, a
 * fault queue, a nested HWPT with VT-d stage-1 data (the zeroed page, 4-level) and the queue;
 * attaches the device to the parent and then to the nested HWPT (Linux 6.12 enables I/O page
 * faults before the nested attach, which needs ATS on, and the parent's attach turns it on); reads
 * the device's ATS enable bit while it is on the nested HWPT; then detaches and destroys it all.
 * yes only when the attach succeeded and ATS is enabled: a device with ATS off can send neither
 * translation nor page requests, so no fault could ever arrive.
 */
export function probeNested(iommufd: Iommufd, dev: VfioDevice, cdev: string): NestedFinding {
  const fd = iommufd.fd;
  const deviceId = dev.deviceId;
  const ioas = iommufd.allocIoas();
  const undo: (() => void)[] = [() => ioas.destroy()];
  try {
    ioas.map(allocPages(4096), { iova: STAGE1_ROOT });
    let queue: { id: number; fd: number };
    try {
      queue = binding.faultQueueAlloc(fd);
    } catch (e) {
      return refused('fault-queue', 'IOMMU_FAULT_QUEUE_ALLOC', e);
    }
    undo.push(() => binding.close(queue.fd));
    let parent: number;
    try {
      parent = binding.hwptAlloc(fd, { devId: deviceId, ptId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
    } catch (e) {
      return refused('nest-parent', `IOMMU_HWPT_ALLOC of a NEST_PARENT HWPT for ${cdev}`, e);
    }
    undo.push(() => binding.destroy(fd, parent));
    let nested: number;
    try {
      nested = binding.hwptAlloc(fd, {
        devId: deviceId, ptId: parent, faultId: queue.id, dataType: HWPT_DATA_VTD_S1,
        vtdS1: { pgtblAddr: STAGE1_ROOT, addrWidth: 48, sre: false, eafe: false, wpe: false },
      });
    } catch (e) {
      return refused('nested-hwpt', `IOMMU_HWPT_ALLOC of a nested HWPT (VT-d stage 1, 4-level) with a fault queue over the NEST_PARENT for ${cdev}`, e);
    }
    undo.push(() => binding.destroy(fd, nested));
    try {
      binding.vfioAttachPt(dev.fd, parent);
    } catch (e) {
      return refused('attach', `attaching ${cdev} to the NEST_PARENT HWPT (before the nested one)`, e);
    }
    undo.push(() => binding.vfioDetachPt(dev.fd));
    try {
      binding.vfioAttachPt(dev.fd, nested);
    } catch (e) {
      return refused('attach', `attaching ${cdev} to the fault-capable nested HWPT (after the NEST_PARENT)`, e);
    }
    let at: number | null;
    let ctrl: number;
    try {
      at = atsOffset(dev);
      ctrl = at === null ? 0 : dev.readConfig(at + ATS_CTRL, 2);
    } catch (e) {
      return result('unknown', `the kernel attached ${cdev} to a fault-capable nested HWPT; reading its ATS capability through VFIO failed with ${codeOf(e)}`, 'ats', codeOf(e));
    }
    if (at === null) {
      return result('no', `the kernel attached ${cdev} to a fault-capable nested HWPT, but the device has no ATS capability, so it cannot send page requests`, 'ats');
    }
    const where = `ATS control at 0x${(at + ATS_CTRL).toString(16)} reads 0x${ctrl.toString(16).padStart(4, '0')}`;
    if ((ctrl & ATS_CTRL_ENABLE) === 0) {
      return result('no', `the kernel attached the nested HWPT but left ATS disabled on the device (${where}; Linux 6.12: ` +
        'intel_nested_attach_dev blocks translation first, drivers/iommu/intel/nested.c:30 -> iommu.c:3434, which disables ATS, ' +
        'and only a paging or identity attach enables it again), so the device cannot send page requests', 'ats', null, false);
    }
    return result('yes', `the kernel attached ${cdev} to a fault-capable nested HWPT (VT-d stage 1 over a NEST_PARENT HWPT) with ATS enabled (${where}): its page requests reach the nested HWPT's fault queue`, null, null, true);
  } finally {
    // Newest first: detach, the nested HWPT, the parent, the queue, the IOAS. What fails here the
    // iommufd's close (the caller's) takes down.
    for (const f of undo.reverse()) {
      try {
        f();
      } catch {
        // already gone with the iommufd, or held: the close takes it
      }
    }
  }
}
