// Hwpt: a hardware page table (IOMMU_HWPT_ALLOC), paging on an IOAS or nested on a parent HWPT.
import { binding } from '../core/binding.js';
import { checkBytes, checkId, checkInstance, checkOptions, checkSameIommufd, iommufdFd, optionalInteger } from '../core/args.js';
import { IommufdError } from '../core/errors.js';
import { FaultQueue } from '../fault/fault_queue.js';
import type { IommufdContext } from '../core/context.js';

export const HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const HWPT_FAULT_ID_VALID = 1 << 2;
export const HWPT_ALLOC_PASID = 1 << 3;

/** enum iommu_hwpt_data_type */
export const HWPT_DATA_NONE = 0;
export const HWPT_DATA_VTD_S1 = 1;

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
  /** Driver data type for nested HWPTs (HWPT_DATA_*). */
  dataType?: number;
  /** Driver data for nested HWPTs (for VT-d: struct iommu_hwpt_vtd_s1): an ArrayBuffer, a
   *  SharedArrayBuffer or any view of one; the kernel copies it during the call. */
  data?: ArrayBuffer | SharedArrayBuffer | ArrayBufferView;
}

export class Hwpt {
  readonly iommufd: IommufdContext;
  readonly id: number;
  readonly faultQueue: FaultQueue | undefined;
  #destroyed = false;

  private constructor(iommufd: IommufdContext, id: number, faultQueue: FaultQueue | undefined) {
    this.iommufd = iommufd;
    this.id = id;
    this.faultQueue = faultQueue;
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
    const dataType = optionalInteger(call, 'options.dataType', o.dataType, 0, 2 ** 32 - 1);
    const data = o.data === undefined ? undefined : checkBytes(call, 'options.data', o.data);
    try {
      const id = binding.hwptAlloc(iommufdFd(call, iommufd), { devId, ptId, flags, faultId: o.faultQueue?.id, dataType, data });
      return new Hwpt(iommufd, id, o.faultQueue);
    } catch (e) {
      const err = e as IommufdError;
      if (err.code === 'ENOTSUP' && o.faultQueue && !o.dataType) {
        throw new IommufdError(`${err.message}: a paging HWPT takes a fault queue from Linux 6.13; before, only a nested one does`,
          err.code, err.errno, err.syscall);
      }
      throw e;
    }
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
