// Hwpt: a hardware page table (IOMMU_HWPT_ALLOC), paging on an IOAS or nested on a parent HWPT.
import { binding } from '../core/binding.js';
import { closedError, IommufdError, invalidArgType } from '../core/errors.js';
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
  /** Driver data for nested HWPTs (for VT-d: struct iommu_hwpt_vtd_s1). */
  data?: Uint8Array;
}

export class Hwpt {
  readonly iommufd: IommufdContext;
  readonly id: number;
  readonly faultQueue: FaultQueue | undefined;

  private constructor(iommufd: IommufdContext, id: number, faultQueue: FaultQueue | undefined) {
    this.iommufd = iommufd;
    this.id = id;
    this.faultQueue = faultQueue;
  }

  /** @internal Use Iommufd.allocHwpt(). */
  static alloc(iommufd: IommufdContext, o: HwptAllocOptions): Hwpt {
    const op = 'allocHwpt';
    if (typeof o !== 'object' || o === null) throw invalidArgType(op, 'options', 'an object', o);
    if (o.faultQueue !== undefined) {
      // A fault queue is the FaultQueue object: a bare id would make a HWPT whose faults nobody reads.
      if (!(o.faultQueue instanceof FaultQueue)) throw invalidArgType(op, 'options.faultQueue', 'a FaultQueue', o.faultQueue);
      if (o.faultQueue.closed) throw closedError('fault queue', op);
      if (o.faultQueue.iommufd !== iommufd) {
        throw invalidArgType(op, 'options.faultQueue', 'a FaultQueue of this Iommufd (its fault id means another object here)', o.faultQueue);
      }
    }
    try {
      const id = binding.hwptAlloc(iommufd.fd, {
        devId: o.deviceId,
        ptId: o.parentId,
        flags: o.flags ?? 0,
        faultId: o.faultQueue?.id,
        dataType: o.dataType,
        data: o.data,
      });
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

  /** IOMMU_DESTROY. EBUSY while a device is attached. A closed fault queue's fault object that
   *  only this HWPT still held is destroyed with it. */
  destroy(): void {
    this.iommufd.destroy(this.id);
    this.faultQueue?._release();
  }
}
