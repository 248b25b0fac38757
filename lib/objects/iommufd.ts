// Iommufd: an open /dev/iommu, the context every other object lives in.
import { binding } from '../core/binding.js';
import { checkId, checkString } from '../core/args.js';
import { closedError } from '../core/errors.js';
import type { ClosableQueue, HwInfo, IommufdContext } from '../core/context.js';
import { checkFaultQueueOptions, FaultQueue, type FaultQueueOptions } from '../fault/fault_queue.js';
import { Hwpt, type HwptAllocOptions } from './hwpt.js';
import { Ioas } from './ioas.js';
import { Viommu, type ViommuAllocOptions } from './viommu.js';

// An Iommufd dropped without close() is closed when garbage-collected, with a warning, as Node
// does for a FileHandle; the kernel then destroys its objects and answers their pending faults.
const abandoned = new FinalizationRegistry<number>((fd) => {
  process.emitWarning(`Iommufd (fd ${fd}) was garbage-collected without close(): its fd was closed`,
    { type: 'Warning', code: 'IOMMUFD_UNCLOSED' });
  binding.close(fd);
});

export class Iommufd implements IommufdContext {
  #fd: number;
  // Weakly: an abandoned queue is closed by GC (see fault_queue.ts), not kept alive by its iommufd.
  #queues = new Set<WeakRef<ClosableQueue>>();

  private constructor(fd: number) {
    this.#fd = fd;
    abandoned.register(this, fd, this);
  }

  /** Opens /dev/iommu (or `path`). */
  static open(path = '/dev/iommu'): Iommufd {
    return new Iommufd(binding.open(checkString('Iommufd.open', 'path', path)));
  }

  /** The file descriptor; throws once closed. */
  get fd(): number {
    return this.#fdFor('Iommufd.fd');
  }

  get closed(): boolean { return this.#fd < 0; }

  #fdFor(call: string): number {
    if (this.#fd < 0) throw closedError(call, 'the iommufd');
    return this.#fd;
  }

  allocIoas(): Ioas {
    return new Ioas(this, binding.ioasAlloc(this.#fdFor('Iommufd.allocIoas')));
  }

  allocHwpt(options: HwptAllocOptions): Hwpt {
    return Hwpt.alloc(this, options);
  }

  /**
   * IOMMU_FAULT_QUEUE_ALLOC: a fault object whose faults arrive through the returned queue. The
   * options are checked first; if the queue cannot be set up, the fault object is destroyed again.
   */
  allocFaultQueue(options?: FaultQueueOptions): FaultQueue {
    const checked = checkFaultQueueOptions(options);
    const { id, fd } = binding.faultQueueAlloc(this.#fdFor('Iommufd.allocFaultQueue'));
    return this._adopt(() => new FaultQueue(this, id, fd, checked), id);
  }

  /**
   * IOMMU_VIOMMU_ALLOC: a vIOMMU over a nesting parent HWPT, for its vDEVICEs and vEVENTQs
   * (Linux 6.13+; vEVENTQs 6.15+).
   */
  allocViommu(options: ViommuAllocOptions): Viommu {
    return Viommu.alloc(this, options);
  }

  /** @internal Makes a queue over the object `id` just allocated (destroyed again if that throws),
   *  to be closed with this iommufd. */
  _adopt<Q extends ClosableQueue>(make: () => Q, id: number): Q {
    let queue: Q;
    try {
      queue = make();
    } catch (e) {
      binding.destroy(this.#fd, id);
      throw e;
    }
    this._forget(undefined);
    this.#queues.add(new WeakRef(queue));
    return queue;
  }

  /** @internal A queue of this iommufd was closed; references to collected queues go too. */
  _forget(queue: ClosableQueue | undefined): void {
    for (const ref of this.#queues) {
      const q = ref.deref();
      if (q === undefined || q === queue) this.#queues.delete(ref);
    }
  }

  /** IOMMU_DESTROY of any object id. */
  destroy(id: number): void {
    const call = 'Iommufd.destroy';
    checkId(call, 'id', id);
    binding.destroy(this.#fdFor(call), id);
  }

  /** IOMMU_GET_HW_INFO for a device bound to this iommufd (its device id). */
  getHwInfo(deviceId: number): HwInfo {
    const call = 'Iommufd.getHwInfo';
    checkId(call, 'deviceId', deviceId);
    return binding.getHwInfo(this.#fdFor(call), deviceId);
  }

  /**
   * Closes every fault queue (answering their unanswered groups INVALID) and vEVENTQ opened here, then the
   * iommufd itself: the kernel destroys all its objects and answers their pending faults INVALID.
   * Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.#fd < 0) return;
    for (const ref of [...this.#queues]) await ref.deref()?.close();
    const fd = this.#fd;
    this.#fd = -1;
    abandoned.unregister(this);
    binding.close(fd);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
