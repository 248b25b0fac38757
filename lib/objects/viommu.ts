// Viommu and Vdevice: the virtual IOMMU a VMM presents to its guest (IOMMU_VIOMMU_ALLOC, over a
// nesting parent HWPT) and the devices it presents with their virtual ids (IOMMU_VDEVICE_ALLOC).
// A vIOMMU reports events for its vDEVICEs through its vEVENTQs (veventq.ts).
import { binding } from '../core/binding.js';
import { checkBytes, checkId, checkInstance, checkOptions, checkSameIommufd, checkU32, checkU64, iommufdFd } from '../core/args.js';
import { closedError, IommufdError } from '../core/errors.js';
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
  /** Driver data (the type's struct), if it takes any: an ArrayBuffer, a SharedArrayBuffer or any
   *  view of one; the kernel copies it during the call. */
  data?: ArrayBuffer | SharedArrayBuffer | ArrayBufferView;
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

  /** @internal The iommufd's fd, for a call on an object that must still exist. */
  protected _fd(call: string): number {
    if (this.#destroyed) throw closedError(call, `${this.constructor.name} ${this.id} (destroyed)`);
    return iommufdFd(call, this.iommufd);
  }

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
    const call = 'Iommufd.allocViommu';
    checkOptions(call, o, false);
    const devId = checkId(call, 'options.deviceId', o.deviceId);
    const parent = checkInstance(call, 'options.parent', o.parent, Hwpt, 'a Hwpt', (h) => h.destroyed || h.iommufd.closed);
    checkSameIommufd(call, 'options.parent', parent, iommufd, 'a Hwpt of this Iommufd (its id names another object here)');
    const type = checkU32(call, 'options.type', o.type);
    const data = o.data === undefined ? undefined : checkBytes(call, 'options.data', o.data);
    try {
      return new Viommu(iommufd, binding.viommuAlloc(iommufdFd(call, iommufd), { devId, hwptId: parent.id, type, data }), type, parent);
    } catch (e) {
      requires(e, 'a vIOMMU needs Linux 6.13+ (its event queues 6.15+)');
    }
  }

  /** IOMMU_VDEVICE_ALLOC: presents `deviceId` on this vIOMMU as `virtId`. */
  allocVdevice(o: VdeviceAllocOptions): Vdevice {
    const call = 'Viommu.allocVdevice';
    checkOptions(call, o, false);
    const deviceId = checkId(call, 'options.deviceId', o.deviceId);
    const virtId = checkU64(call, 'options.virtId', o.virtId);
    try {
      return new Vdevice(this, binding.vdeviceAlloc(this._fd(call), this.id, deviceId, virtId), deviceId, virtId);
    } catch (e) {
      requires(e, 'a vDEVICE needs Linux 6.13+');
    }
  }

  /**
   * IOMMU_VEVENTQ_ALLOC: a queue of this vIOMMU's events of one type (one queue per type). The
   * options are checked first; if the queue cannot be set up, the vEVENTQ is destroyed again.
   */
  allocVeventQueue(options: VeventQueueOptions): VeventQueue {
    const checked = checkVeventQueueOptions(options);
    let ids: { id: number; fd: number };
    const fd = this._fd('Viommu.allocVeventQueue');
    try {
      ids = binding.veventqAlloc(fd, this.id, checked.type, checked.depth);
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
