// The kernel's iommufd test device (CONFIG_IOMMUFD_TEST, IOMMU_TEST_CMD): a mock device that can be
// attached to IOASes and HWPTs and made to raise I/O page faults and vEVENTs on demand.
import { checkId, checkInstance, checkInteger, checkOptions, checkU32, iommufdFd, optionalInteger, optionalU64 } from '../core/args.js';
import { binding } from '../core/binding.js';
import { closedError } from '../core/errors.js';
import { Hwpt } from '../objects/hwpt.js';
import { Iommufd } from '../objects/iommufd.js';

/** The test device's vIOMMU type (IOMMU_VIOMMU_TYPE_SELFTEST) and vEVENTQ type. */
export const VIOMMU_TYPE_SELFTEST: number = binding.viommuTypes.selftest;

/** HWPT_ALLOC data type of the mock driver's nested domains, and its default data. */
export const HWPT_DATA_SELFTEST: number = binding.hwptDataTypes.selftest;
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
/** Entries in a mock nested HWPT's IOTLB: ids 0 to MOCK_IOTLB_NUM - 1. */
export const MOCK_IOTLB_NUM: number = binding.selftest.iotlbNum;

/**
 * IOMMU_TEST_OP_MD_CHECK_IOTLB: whether entry `iotlbId` of the mock nested HWPT's IOTLB holds
 * `value`. Each entry holds the HWPT data's iotlb (selftestHwptData) from allocation until an
 * invalidation (Hwpt.invalidate) names it, which sets it to 0.
 */
export function checkMockIotlb(hwpt: Hwpt, iotlbId: number, value: number): boolean {
  const call = 'checkMockIotlb';
  checkInstance(call, 'hwpt', hwpt, Hwpt, 'a Hwpt', (h) => h.destroyed || h.iommufd.closed);
  checkInteger(call, 'iotlbId', iotlbId, 0, MOCK_IOTLB_NUM - 1);
  checkU32(call, 'value', value);
  return binding.selftest.mockCheckIotlb(iommufdFd(call, hwpt.iommufd), hwpt.id, iotlbId, value);
}

/** struct iommu_hwpt_selftest {u32 iotlb}: driver data for a nested mock HWPT. */
export function selftestHwptData(iotlb = IOMMU_TEST_IOTLB_DEFAULT): Uint8Array {
  checkU32('selftestHwptData', 'iotlb', iotlb);
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
  #destroyed = false;

  private constructor(iommufd: Iommufd, ids: { stdevId: number; hwptId: number; idevId: number }) {
    this.iommufd = iommufd;
    this.stdevId = ids.stdevId;
    this.hwptId = ids.hwptId;
    this.deviceId = ids.idevId;
  }

  /** Binds a mock device to `iommufd` and attaches it to the IOAS or HWPT `ptId`. */
  static create(iommufd: Iommufd, ptId: number): MockDevice {
    const call = 'MockDevice.create';
    checkInstance(call, 'iommufd', iommufd, Iommufd, 'an Iommufd', (i) => i.closed);
    checkId(call, 'ptId', ptId);
    return new MockDevice(iommufd, binding.selftest.mockDomain(iommufd.fd, ptId));
  }

  /** Whether destroy() destroyed it (closing the iommufd destroys it too). */
  get destroyed(): boolean { return this.#destroyed; }

  #fd(call: string): number {
    if (this.#destroyed) throw closedError(call, `mock device ${this.stdevId} (destroyed)`);
    return iommufdFd(call, this.iommufd);
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: attach to another IOAS or HWPT. */
  replace(ptId: number): void {
    const call = 'MockDevice.replace';
    checkId(call, 'ptId', ptId);
    binding.selftest.mockDomainReplace(this.#fd(call), this.stdevId, ptId);
  }

  /** IOMMU_TEST_OP_TRIGGER_IOPF, `count` times with group ids counting up: single-record groups. */
  triggerIopf(fault?: TriggerIopf, count = 1): void {
    const call = 'MockDevice.triggerIopf';
    const f = checkOptions<TriggerIopf>(call, fault, true, 'fault');
    const pasid = optionalInteger(call, 'fault.pasid', f.pasid, 0, 2 ** 32 - 1) ?? 0;
    const grpid = optionalInteger(call, 'fault.groupId', f.groupId, 0, 2 ** 32 - 1) ?? 0;
    const perm = optionalInteger(call, 'fault.perm', f.perm, 0, 2 ** 32 - 1) ?? 1;
    const addr = optionalU64(call, 'fault.addr', f.addr) ?? 0n;
    checkU32(call, 'count', count);
    binding.selftest.triggerIopf(this.#fd(call), { devId: this.deviceId, pasid, grpid, perm, addr }, count);
  }

  /**
   * IOMMU_TEST_OP_TRIGGER_VEVENT, `count` times: the device's vIOMMU reports a selftest vEVENT
   * carrying its vDEVICE's virt_id (low 32 bits). The device must be attached to a nested HWPT of
   * that vIOMMU, attached after its vDEVICE was made (the mock takes the virt_id at attach).
   * EOPNOTSUPP without a selftest vEVENTQ on the vIOMMU.
   */
  triggerVevent(count = 1): void {
    const call = 'MockDevice.triggerVevent';
    checkU32(call, 'count', count);
    binding.selftest.triggerVevent(this.#fd(call), this.deviceId, count);
  }

  /** Destroys the selftest device object (unbinding the device). A no-op once destroyed, or once
   *  the iommufd is closed (which destroyed it). */
  destroy(): void {
    if (this.#destroyed || this.iommufd.closed) return;
    this.iommufd.destroy(this.stdevId);
    this.#destroyed = true;
  }
}
