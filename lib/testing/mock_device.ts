// The kernel's iommufd test device (CONFIG_IOMMUFD_TEST, IOMMU_TEST_CMD): a mock device that can be
// attached to IOASes and HWPTs and made to raise I/O page faults and vEVENTs on demand.
import { binding } from '../core/binding.js';
import type { Iommufd } from '../objects/iommufd.js';

/** The test device's vIOMMU type (IOMMU_VIOMMU_TYPE_SELFTEST) and vEVENTQ type. */
export const VIOMMU_TYPE_SELFTEST: number = binding.viommuTypes.selftest;

/** HWPT_ALLOC data type of the mock driver's nested domains, and its default data. */
export const HWPT_DATA_SELFTEST = 0xdead;
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;

/** struct iommu_hwpt_selftest {u32 iotlb}: driver data for a nested mock HWPT. */
export function selftestHwptData(iotlb = IOMMU_TEST_IOTLB_DEFAULT): Uint8Array {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, iotlb, true);
  return data;
}

export interface TriggerIopf {
  pasid?: number;
  groupId?: number;
  perm?: number;
  addr?: bigint;
}

/** A mock device (IOMMU_TEST_OP_MOCK_DOMAIN), bound to an iommufd and attached to `ptId`. */
export class MockDevice {
  readonly iommufd: Iommufd;
  /** The selftest device object; destroying it unbinds the device. */
  readonly stdevId: number;
  /** The HWPT the kernel made for it on attach (when attached to an IOAS). */
  readonly hwptId: number;
  /** The iommufd device id: what fault records carry as deviceId and HWPT_ALLOC takes as dev_id. */
  readonly deviceId: number;

  private constructor(iommufd: Iommufd, ids: { stdevId: number; hwptId: number; idevId: number }) {
    this.iommufd = iommufd;
    this.stdevId = ids.stdevId;
    this.hwptId = ids.hwptId;
    this.deviceId = ids.idevId;
  }

  static create(iommufd: Iommufd, ptId: number): MockDevice {
    return new MockDevice(iommufd, binding.selftest.mockDomain(iommufd.fd, ptId));
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: attach to another IOAS or HWPT. */
  replace(ptId: number): void {
    binding.selftest.mockDomainReplace(this.iommufd.fd, this.stdevId, ptId);
  }

  /** IOMMU_TEST_OP_TRIGGER_IOPF, `count` times with group ids counting up: single-record groups. */
  triggerIopf({ pasid = 0, groupId = 0, perm = 1, addr = 0n }: TriggerIopf = {}, count = 1): void {
    binding.selftest.triggerIopf(this.iommufd.fd, { devId: this.deviceId, pasid, grpid: groupId, perm, addr }, count);
  }

  /**
   * IOMMU_TEST_OP_TRIGGER_VEVENT, `count` times: the device's vIOMMU reports a selftest vEVENT
   * carrying its vDEVICE's virt_id (low 32 bits). The device must be attached to a nested HWPT of
   * that vIOMMU, attached after its vDEVICE was made (the mock takes the virt_id at attach).
   * EOPNOTSUPP without a selftest vEVENTQ on the vIOMMU.
   */
  triggerVevent(count = 1): void {
    binding.selftest.triggerVevent(this.iommufd.fd, this.deviceId, count);
  }

  destroy(): void {
    this.iommufd.destroy(this.stdevId);
  }
}
