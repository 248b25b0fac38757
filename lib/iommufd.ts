// Iommufd: an open /dev/iommu, the context every other object lives in.
import { binding } from './binding.js';
import { closedError } from './errors.js';
import { FaultQueue, type FaultQueueOptions } from './fault_queue.js';
import { Hwpt, type HwptAllocOptions } from './hwpt.js';
import { Ioas } from './ioas.js';

export interface HwInfo {
  /** IOMMU_HW_INFO_TYPE_*: 1 = Intel VT-d, 2 = ARM SMMUv3, 0xfeedbeef = the kernel's test device. */
  type: number;
  /** IOMMU_HW_CAP_* bits. */
  capabilities: bigint;
  /** PASID width; 0 means no PASID support. */
  maxPasidLog2: number;
  /** The IOMMU driver's own info (struct iommu_hw_info_vtd for VT-d). */
  data: Uint8Array;
}

export class Iommufd {
  #fd: number;
  #queues = new Set<FaultQueue>();

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Opens /dev/iommu (or `path`). */
  static open(path = '/dev/iommu'): Iommufd {
    return new Iommufd(binding.open(path));
  }

  /** The file descriptor; throws once closed. */
  get fd(): number {
    if (this.#fd < 0) throw closedError('iommufd', 'fd');
    return this.#fd;
  }

  get closed(): boolean { return this.#fd < 0; }

  allocIoas(): Ioas {
    return new Ioas(this, binding.ioasAlloc(this.fd));
  }

  allocHwpt(options: HwptAllocOptions): Hwpt {
    return Hwpt.alloc(this, options);
  }

  /** IOMMU_FAULT_QUEUE_ALLOC: a fault object whose faults arrive through the returned queue. */
  allocFaultQueue(options?: FaultQueueOptions): FaultQueue {
    const { id, fd } = binding.faultQueueAlloc(this.fd);
    const queue = new FaultQueue(id, fd, options);
    this.#queues.add(queue);
    return queue;
  }

  /** IOMMU_DESTROY of any object id. */
  destroy(id: number): void {
    binding.destroy(this.fd, id);
  }

  /** IOMMU_GET_HW_INFO for a device bound to this iommufd. */
  getHwInfo(devId: number): HwInfo {
    return binding.getHwInfo(this.fd, devId);
  }

  /**
   * Closes every fault queue opened here (answering their unanswered groups INVALID), then the
   * iommufd itself: the kernel destroys all its objects and answers their pending faults INVALID.
   * Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.#fd < 0) return;
    for (const q of this.#queues) await q.close();
    this.#queues.clear();
    const fd = this.#fd;
    this.#fd = -1;
    binding.close(fd);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
