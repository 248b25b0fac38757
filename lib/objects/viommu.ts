// Viommu and Vdevice: the virtual IOMMU a VMM presents to its guest (IOMMU_VIOMMU_ALLOC, over a
// nesting parent HWPT) and the devices it presents with their virtual ids (IOMMU_VDEVICE_ALLOC).
// A vIOMMU reports events for its vDEVICEs through its vEVENTQs (veventq.ts).
import { binding } from '../core/binding.js';
import { closedError, invalidArgType, IommufdError } from '../core/errors.js';
import { Hwpt } from './hwpt.js';
import type { IommufdContext } from '../core/context.js';
import { checkVeventQueueOptions, VeventQueue, type VeventQueueOptions } from '../vevent/veventq.js';

/** enum iommu_viommu_type (the test device's own type is in iommufd/testing). */
export const VIOMMU_TYPE_ARM_SMMUV3: number = binding.viommuTypes.armSmmuv3;
export const VIOMMU_TYPE_TEGRA241_CMDQV: number = binding.viommuTypes.tegra241Cmdqv;

export interface ViommuAllocOptions {
  /** The device whose IOMMU it virtualises (its iommufd dev_id). */
  deviceId: number;
  /** The parent: a paging HWPT allocated with HWPT_ALLOC_NEST_PARENT. */
  parent: Hwpt;
  /** VIOMMU_TYPE_*. */
  type: number;
  /** Driver data (the type's struct), if it takes any. */
  data?: Uint8Array;
}

export interface VdeviceAllocOptions {
  /** The device (its iommufd dev_id); one vDEVICE per device. */
  deviceId: number;
  /** Its id in the guest's view of this vIOMMU (a vSID, vRID, ...): unique per vIOMMU. */
  virtId: bigint;
}

// ENOTTY from these ioctls means the kernel predates them.
function requires(e: unknown, needs: string): never {
  const err = e as IommufdError;
  if (err instanceof IommufdError && err.code === 'ENOTTY') {
    throw new IommufdError(`${err.message}: ${needs}; this kernel does not have the ioctl`, err.code, err.errno, err.syscall);
  }
  throw e;
}

/** Destroying an object twice is a no-op; the first IOMMU_DESTROY's refusal (EBUSY) is thrown. */
abstract class Destroyable {
  readonly iommufd: IommufdContext;
  readonly id: number;
  #destroyed = false;

  protected constructor(iommufd: IommufdContext, id: number) {
    this.iommufd = iommufd;
    this.id = id;
  }

  get destroyed(): boolean { return this.#destroyed; }

  /** IOMMU_DESTROY. EBUSY while something still refers to it. */
  destroy(): void {
    if (this.#destroyed || this.iommufd.closed) return;
    this.iommufd.destroy(this.id);
    this.#destroyed = true;
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

export class Viommu extends Destroyable {
  readonly type: number;
  readonly parent: Hwpt;

  private constructor(iommufd: IommufdContext, id: number, type: number, parent: Hwpt) {
    super(iommufd, id);
    this.type = type;
    this.parent = parent;
  }

  /** @internal Use Iommufd.allocViommu(). */
  static alloc(iommufd: IommufdContext, o: ViommuAllocOptions): Viommu {
    const op = 'allocViommu';
    if (typeof o !== 'object' || o === null) throw invalidArgType(op, 'options', 'an object', o);
    if (!(o.parent instanceof Hwpt) || o.parent.iommufd !== iommufd) throw invalidArgType(op, 'options.parent', 'a Hwpt of this Iommufd', o.parent);
    try {
      return new Viommu(iommufd, binding.viommuAlloc(iommufd.fd, { devId: o.deviceId, hwptId: o.parent.id, type: o.type, data: o.data }), o.type, o.parent);
    } catch (e) {
      requires(e, 'a vIOMMU needs Linux 6.13+ (its event queues 6.15+)');
    }
  }

  /** IOMMU_VDEVICE_ALLOC: presents `deviceId` on this vIOMMU as `virtId`. */
  allocVdevice(o: VdeviceAllocOptions): Vdevice {
    const op = 'allocVdevice';
    if (this.destroyed) throw closedError('vIOMMU', op);
    if (typeof o !== 'object' || o === null) throw invalidArgType(op, 'options', 'an object', o);
    if (typeof o.virtId !== 'bigint') throw invalidArgType(op, 'options.virtId', 'a bigint', o.virtId);
    try {
      return new Vdevice(this, binding.vdeviceAlloc(this.iommufd.fd, this.id, o.deviceId, o.virtId), o.deviceId, o.virtId);
    } catch (e) {
      requires(e, 'a vDEVICE needs Linux 6.13+');
    }
  }

  /**
   * IOMMU_VEVENTQ_ALLOC: a queue of this vIOMMU's events of one type (one queue per type). The
   * options are checked first; if the queue cannot be set up, the vEVENTQ is destroyed again.
   */
  allocVeventQueue(options: VeventQueueOptions): VeventQueue {
    if (this.destroyed) throw closedError('vIOMMU', 'allocVeventQueue');
    const checked = checkVeventQueueOptions(options);
    let ids: { id: number; fd: number };
    try {
      ids = binding.veventqAlloc(this.iommufd.fd, this.id, checked.type, checked.depth);
    } catch (e) {
      requires(e, 'a vEVENTQ needs Linux 6.15+');
    }
    return this.iommufd._adopt(() => new VeventQueue(this.iommufd, this.id, ids.id, ids.fd, checked), ids.id);
  }
}

export class Vdevice extends Destroyable {
  readonly viommu: Viommu;
  readonly deviceId: number;
  readonly virtId: bigint;

  /** @internal Use Viommu.allocVdevice(). */
  constructor(viommu: Viommu, id: number, deviceId: number, virtId: bigint) {
    super(viommu.iommufd, id);
    this.viommu = viommu;
    this.deviceId = deviceId;
    this.virtId = virtId;
  }
}
