// Hwpt: a hardware page table (IOMMU_HWPT_ALLOC), paging on an IOAS or nested on a parent HWPT.
import { binding } from '../core/binding.js';
import { checkBytes, checkId, checkInstance, checkOptions, checkSameIommufd, invalidArgValue, iommufdFd, optionalInteger } from '../core/args.js';
import { closedError, IommufdError } from '../core/errors.js';
import { FaultQueue } from '../fault/fault_queue.js';
import type { IommufdContext } from '../core/context.js';
import { checkStage1, HWPT_DATA_NONE, HWPT_DATA_VTD_S1, type Invalidation, invalidate, type VtdStage1 } from './invalidate.js';

export const HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const HWPT_FAULT_ID_VALID = 1 << 2;
export const HWPT_ALLOC_PASID = 1 << 3;

export interface HwptAllocOptions {
  /** The device the HWPT is made for (its iommufd dev_id). */
  deviceId: number;
  /** The IOAS (paging HWPT) or parent HWPT (nested) it connects to. */
  parentId: number;
  /** HWPT_ALLOC_* flags. */
  flags?: number;
  /** Deliver this HWPT's I/O page faults to the queue (IOMMU_HWPT_FAULT_ID_VALID). A paging HWPT
   *  takes one from Linux 6.13; 6.11 and 6.12 accept it only on nested HWPTs. */
  faultQueue?: FaultQueue;
  /** A nested HWPT whose stage 1 user space owns: its tables' data, typed (instead of dataType
   *  and data). */
  stage1?: VtdStage1;
  /** Driver data type for nested HWPTs (HWPT_DATA_*). */
  dataType?: number;
  /** Driver data for nested HWPTs (for VT-d: struct iommu_hwpt_vtd_s1): an ArrayBuffer, a
   *  SharedArrayBuffer or any view of one; the kernel copies it during the call. */
  data?: ArrayBuffer | SharedArrayBuffer | ArrayBufferView;
}

const HW_INFO_TYPE_INTEL_VTD = 1;

// Whether the device's IOMMU is a VT-d with nesting (ECAP.NEST: bit 26 of struct
// iommu_hw_info_vtd's ecap_reg, at byte 16), for a refusal's message; undefined when it is not a
// VT-d or its info cannot be read.
function vtdNesting(iommufd: IommufdContext, deviceId: number): boolean | undefined {
  try {
    const info = iommufd.getHwInfo(deviceId);
    if (info.type !== HW_INFO_TYPE_INTEL_VTD || info.data.length < 24) return undefined;
    return ((new DataView(info.data.buffer, info.data.byteOffset, info.data.byteLength).getBigUint64(16, true) >> 26n) & 1n) === 1n;
  } catch {
    return undefined;
  }
}

const NESTING = 'an IOMMU with nesting (VT-d ECAP.NEST, with first- and second-stage support)';
const hasNesting = (nest: boolean | undefined) =>
  nest === undefined ? '' : `; this device's IOMMU ${nest ? 'has it (ECAP.NEST=1)' : 'has none (ECAP.NEST=0)'}`;

export class Hwpt {
  readonly iommufd: IommufdContext;
  readonly id: number;
  readonly faultQueue: FaultQueue | undefined;
  /** The driver data type it was allocated with: HWPT_DATA_NONE for a paging HWPT. */
  readonly dataType: number;
  /** The VT-d stage-1 data it was allocated with (`options.stage1`, defaults filled in). */
  readonly stage1: Readonly<Required<VtdStage1>> | undefined;
  #destroyed = false;

  private constructor(iommufd: IommufdContext, id: number, faultQueue: FaultQueue | undefined, dataType: number, stage1?: Required<VtdStage1>) {
    this.iommufd = iommufd;
    this.id = id;
    this.faultQueue = faultQueue;
    this.dataType = dataType;
    this.stage1 = stage1 && Object.freeze(stage1);
  }

  /** @internal Use Iommufd.allocHwpt(). */
  static alloc(iommufd: IommufdContext, o: HwptAllocOptions): Hwpt {
    const call = 'Iommufd.allocHwpt';
    checkOptions(call, o, false);
    const devId = checkId(call, 'options.deviceId', o.deviceId);
    const ptId = checkId(call, 'options.parentId', o.parentId);
    const flags = optionalInteger(call, 'options.flags', o.flags, 0, 2 ** 32 - 1) ?? 0;
    if (o.faultQueue !== undefined) {
      // A fault queue is the FaultQueue object: a bare id would make a HWPT whose faults nobody reads.
      checkInstance(call, 'options.faultQueue', o.faultQueue, FaultQueue, 'a FaultQueue', (q) => q.closed);
      checkSameIommufd(call, 'options.faultQueue', o.faultQueue, iommufd, 'a FaultQueue of this Iommufd (its fault id names another object here)');
    }
    let dataType = optionalInteger(call, 'options.dataType', o.dataType, 0, 2 ** 32 - 1);
    const data = o.data === undefined ? undefined : checkBytes(call, 'options.data', o.data);
    const vtdS1 = o.stage1 === undefined ? undefined : checkStage1(call, o.stage1);
    if (vtdS1 && (dataType !== undefined || data !== undefined)) {
      throw invalidArgValue(call, 'options.stage1', 'given without options.dataType and options.data (it sets both)', o.stage1);
    }
    if (vtdS1) dataType = HWPT_DATA_VTD_S1;
    try {
      const id = binding.hwptAlloc(iommufdFd(call, iommufd), { devId, ptId, flags, faultId: o.faultQueue?.id, dataType, data, vtdS1 });
      o.faultQueue?._hold();
      return new Hwpt(iommufd, id, o.faultQueue, dataType ?? HWPT_DATA_NONE, vtdS1 && { type: 'vtd-s1', ...vtdS1 } as Required<VtdStage1>);
    } catch (e) {
      const err = e as IommufdError;
      if (err.code === 'ENOTSUP' && o.faultQueue && !dataType) {
        throw new IommufdError(`${err.message}: a paging HWPT takes a fault queue from Linux 6.13; before, only a nested one does`,
          err.code, err.errno, err.syscall);
      }
      if (vtdS1 && (err.code === 'ENOTSUP' || err.code === 'EINVAL')) {
        throw new IommufdError(`${err.message}: a VT-d stage-1 HWPT needs ${NESTING} and a parent HWPT allocated with ` +
          `HWPT_ALLOC_NEST_PARENT on it${hasNesting(vtdNesting(iommufd, devId))}` +
          `${flags & ~HWPT_ALLOC_PASID ? '; a nested HWPT takes no flag but HWPT_ALLOC_PASID (Linux 6.12: none at all)' : ''}`,
        err.code, err.errno, err.syscall);
      }
      if (err.code === 'ENOTSUP' && flags & HWPT_ALLOC_NEST_PARENT && vtdNesting(iommufd, devId) === false) {
        throw new IommufdError(`${err.message}: HWPT_ALLOC_NEST_PARENT needs ${NESTING}${hasNesting(false)}`, err.code, err.errno, err.syscall);
      }
      throw e;
    }
  }

  /**
   * IOMMU_HWPT_INVALIDATE: drops what the IOMMU caches of this nested HWPT's stage 1 (IOTLB and
   * device TLBs), after its owner changed the tables, all entries in one ioctl. Entries are
   * VtdS1Invalidation for a VT-d stage-1 HWPT, SelftestInvalidation for the test device's.
   * Returns how many the kernel processed (all). The kernel stops at the first entry it refuses:
   * the IommufdError names that entry and why, and carries `done`, the count before it.
   */
  invalidate(entries: readonly Invalidation[]): number {
    const call = 'Hwpt.invalidate';
    if (this.#destroyed) throw closedError(call, `HWPT ${this.id}`);
    return invalidate(call, iommufdFd(call, this.iommufd), this.id, this.dataType, entries);
  }

  /** Whether destroy() destroyed it (closing the iommufd destroys it too). */
  get destroyed(): boolean { return this.#destroyed; }

  /** IOMMU_DESTROY. EBUSY while a device is attached. A closed fault queue's fault object that
   *  only this HWPT still held is destroyed with it. A no-op once destroyed, or once the iommufd is
   *  closed (which destroyed it): the id may name a newer object by then. */
  destroy(): void {
    if (this.#destroyed || this.iommufd.closed) return;
    this.iommufd.destroy(this.id);
    this.#destroyed = true;
    this.faultQueue?._release();
  }
}
