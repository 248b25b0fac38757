// VeventQueue: a vIOMMU event queue (IOMMU_VEVENTQ_ALLOC), the read-only second channel next to
// the fault queue. The same pump reads whole batches of vEVENTs into a VeventBatch; a synchronous
// batch handler (setBatchHandler) sees each, or else the async iterator gets them as Vevent
// objects, with the events the kernel dropped reported where they were dropped.
import { binding, CONTROL, type NativeEventPump } from '../core/binding.js';
import { checkInteger, checkOneOf, checkOptions, invalidArgType, optionalInteger, optionalSignal, outOfRange } from '../core/args.js';
import { CopyPool } from '../core/copy_pool.js';
import { closedError, ErrorCodes, IommufdError } from '../core/errors.js';
import { EventStream, startReading } from '../core/event_stream.js';
import { destroyObject, type IommufdContext } from '../core/context.js';
import { checkQueueOptions, type CheckedOptions, type QueueOptions } from '../core/queue_options.js';
import { decodeVevent, veventDataSize, type DecodedVevent } from './vevent.js';
import { VeventBatch } from './vevent_batch.js';

/** The most events a vEVENTQ may hold (the kernel's VEVENTQ_MAX_DEPTH; EINVAL above). */
export const VEVENTQ_MAX_DEPTH: number = binding.vevent.maxDepth;

export interface VeventQueueOptions extends QueueOptions {
  /** The vEVENTQ type (VEVENTQ_TYPE_*): one queue per type per vIOMMU. */
  type: number;
  /** Events the kernel holds unread before it drops them (1..VEVENTQ_MAX_DEPTH, default 1024). */
  depth?: number;
  /**
   * What the iterator does when events were lost (the queue overflowed): 'mark' (the default)
   * yields a VeventLoss in their place and goes on; 'throw' ends the iteration with an
   * ERR_IOMMUFD_VEVENTS_LOST error after the events before the loss, as fs.promises.watch's
   * overflow option does.
   */
  overflow?: 'mark' | 'throw';
  // highWaterMark etc. as for a fault queue: while reading is paused the kernel holds `depth`
  // more events and drops the rest, reported as a loss.
}

/** One vIOMMU event. Its bytes are a copy of its read's, in a pool shared with other events (as Node's Buffer pool): `data.buffer` holds more than this event. */
export class Vevent {
  readonly kind = 'event' as const;
  /** The vEVENTQ type: what `data` is. */
  readonly type: number;
  readonly sequence: number;
  #bytes: DataView;
  #offset: number;
  #size: number;

  /** @internal `size` data bytes at `offset` of `bytes`, which the event may keep. */
  constructor(type: number, sequence: number, bytes: DataView, offset: number, size: number) {
    this.type = type;
    this.sequence = sequence;
    this.#bytes = bytes;
    this.#offset = offset;
    this.#size = size;
  }

  /** The type's data bytes (struct iommu_vevent_arm_smmuv3, ...). */
  get data(): Uint8Array {
    return new Uint8Array(this.#bytes.buffer, this.#bytes.byteOffset + this.#offset, this.#size);
  }

  /** The data decoded where the type's layout is known (selftest, SMMUv3, Tegra241 CMDQV), else undefined. */
  get decoded(): DecodedVevent | undefined {
    return decodeVevent(this.type, this.#bytes, this.#offset);
  }
}

/** Events the kernel dropped, in the stream where they were dropped. */
export interface VeventLoss {
  readonly kind: 'lost';
  /** How many events were lost. */
  readonly count: number;
  /** The sequence numbers of the first and last lost event (first > last across the wrap). */
  readonly first: number;
  readonly last: number;
  /** 'header': the kernel's LOST_EVENTS header said so; 'gap': only the sequence numbers did. */
  readonly reported: 'header' | 'gap';
}

export interface VeventQueueStats {
  /** Events read from the kernel (LOST_EVENTS headers not counted). */
  delivered: number;
  /** Events the kernel dropped because the queue was full, by the sequence numbers. */
  lost: number;
  /** LOST_EVENTS headers read. */
  overflows: number;
  /** Losses seen only as a gap in the sequence numbers. */
  gaps: number;
  /** Events waiting for the consumer. */
  backlog: number;
  /** Whether reading is paused by backpressure. */
  paused: boolean;
}

/** A synchronous handler of each batch of vEVENTs; see VeventQueue.setBatchHandler. */
export type VeventBatchHandler = (batch: VeventBatch) => void;

const SPAN = 2 ** 31;

// A queue dropped without close() is closed when garbage-collected, with a warning, as close()
// would: its fd is closed and its vEVENTQ object destroyed, so the vIOMMU takes a new queue of the
// type.
const abandoned = new FinalizationRegistry<{ id: number; pump: NativeEventPump; iommufd: IommufdContext }>((q) => {
  q.pump.close();
  let object = 'its vEVENTQ destroyed';
  try {
    destroyObject(q.iommufd, q.id);
  } catch (e) {
    object = `its vEVENTQ could not be destroyed (${(e as Error).message})`;
  }
  process.emitWarning(`VeventQueue ${q.id} was garbage-collected without close(): its fd was closed and ${object}`,
    { type: 'Warning', code: 'IOMMUFD_UNCLOSED' });
});

export class VeventQueue implements AsyncIterable<Vevent | VeventLoss> {
  /** The vEVENTQ object's id. */
  readonly id: number;
  readonly iommufd: IommufdContext;
  /** The vIOMMU id it belongs to. */
  readonly viommuId: number;
  readonly type: number;
  readonly depth: number;
  #pump: NativeEventPump;
  #counters: Float64Array;
  #batch: VeventBatch;
  #stream: EventStream<Vevent | VeventLoss>;
  #handler: VeventBatchHandler | undefined;
  #throwOnLoss: boolean;
  #stats = { lost: 0, overflows: 0, gaps: 0 };
  // The iterator's events outlive the pump's buffer: their copies.
  #pool = new CopyPool();
  #closing: Promise<void> | undefined;
  #onBatchCallback = (view: Uint8Array, n: number) => this.#onBatch(view, n);
  #onErrorCallback = (e: Error) => this.#stream.fail(e);
  #onAbort = () => void this.close();
  #signal: AbortSignal | undefined;

  /** @internal Use Viommu.allocVeventQueue(), which checks the options first. Takes ownership of fd. */
  constructor(iommufd: IommufdContext, viommuId: number, id: number, fd: number, o: CheckedVeventQueueOptions) {
    const pump = new binding.EventPump(fd, o.bufferRecords, false, o.dataSize);
    try {
      this.id = id;
      this.iommufd = iommufd;
      this.viommuId = viommuId;
      this.type = o.type;
      this.depth = o.depth;
      this.#pump = pump;
      const control = new ArrayBuffer(CONTROL.bytes);
      this.#counters = new Float64Array(control);
      const slots = new Int32Array(control);
      pump.setAnswers(new Uint8Array(8), slots); // no answers: the control block counts
      this.#batch = new VeventBatch(o.type, o.dataSize);
      this.#throwOnLoss = o.overflow === 'throw';
      this.#stream = new EventStream(this, pump, slots, o.high, o.low);
      pump.setCallbacks(this.#onBatchCallback, this.#onErrorCallback);
      abandoned.register(this, { id, pump, iommufd }, this);
      this.#signal = o.signal;
      startReading(pump, this.#signal, this.#onAbort);
    } catch (e) {
      // (uv_poll_init tests the fd with epoll_ctl, which can fail: ENOMEM.) The fd goes before
      // Iommufd._adopt destroys the object (the kernel refuses while it is open), and no
      // finalizer may destroy that id later, when it may name a newer object.
      abandoned.unregister(this);
      pump.close();
      throw e;
    }
  }

  get closed(): boolean { return this.#closing !== undefined; }

  get stats(): VeventQueueStats {
    return {
      delivered: this.#counters[CONTROL.delivered],
      ...this.#stats,
      backlog: this.#stream.backlog,
      paused: this.#stream.paused,
    };
  }

  /**
   * Sets (or, with null, removes) a synchronous handler that gets every batch the pump reads, on
   * this thread's event loop: the fast path, with no object per event. While it is set the
   * iterator gets nothing, and the handler sees losses itself (batch.lost(i)). A throw becomes an
   * uncaught exception, as an event listener's would. While set, it keeps the process alive
   * unless unref().
   */
  setBatchHandler(handler: VeventBatchHandler | null): this {
    if (handler === null) {
      if (this.closed) return this; // removing a handler from a closed queue: nothing to do
    } else {
      if (typeof handler !== 'function') throw invalidArgType('VeventQueue.setBatchHandler', 'handler', 'a function or null', handler);
      if (this.closed) throw closedError('VeventQueue.setBatchHandler', 'the vEVENT queue');
    }
    this.#handler = handler ?? undefined;
    this.#stream.inUse = this.#handler !== undefined;
    return this;
  }

  #onBatch(view: Uint8Array, byteLength: number): void {
    const batch = this.#batch;
    batch._begin(view, byteLength);
    this.#stats.lost += batch._lost;
    this.#stats.overflows += batch._overflows;
    this.#stats.gaps += batch._gaps;
    try {
      if (this.#handler) this.#handler(batch);
      else this.#queue(batch);
    } finally {
      batch._end();
    }
    this.#stream.delivered();
  }

  // The iterator's objects: a Vevent per event, a VeventLoss where events were lost ('mark'), or
  // the end of the iteration there ('throw').
  #queue(batch: VeventBatch): void {
    const stream = this.#stream;
    if (stream.error) return; // ended by an earlier loss: nothing more is delivered
    // One copy per read, not per event: the events outlive the pump's buffer.
    const view = batch.view;
    const at = this.#pool.copy(view.buffer, view.byteOffset, batch._byteLength);
    const copy = this.#pool.view;
    const size = batch._dataSize;
    for (let i = 0, n = batch.length; i < n; i++) {
      const lost = batch.lost(i);
      const header = batch.isLostHeader(i);
      const sequence = batch.sequence(i);
      if (lost > 0) {
        const last = header ? sequence : (sequence - 1 + SPAN) % SPAN;
        const loss: VeventLoss = { kind: 'lost', count: lost, first: (last - lost + 1 + SPAN) % SPAN, last, reported: header ? 'header' : 'gap' };
        if (this.#throwOnLoss) {
          this.#pump.stop();
          stream.fail(Object.assign(new IommufdError(
            `vEVENTQ ${this.id}: ${lost} events lost (sequence ${loss.first} to ${loss.last}): the queue's depth of ${this.depth} overflowed`,
            ErrorCodes.VEVENTS_LOST), { lost: loss }));
          return;
        }
        stream.push(loss);
      }
      if (header) continue;
      stream.push(new Vevent(this.type, sequence, copy, at + batch.dataOffset(i), size));
    }
  }

  /** Lets a consumer waiting on this queue keep the process alive (the default). */
  ref(): this {
    this.#stream.ref(true);
    return this;
  }

  /** The process may exit while a consumer waits on this queue. */
  unref(): this {
    this.#stream.ref(false);
    return this;
  }

  /** The next event or loss; resolves done when the queue is closed. */
  next(): Promise<IteratorResult<Vevent | VeventLoss>> {
    return this.#stream.next();
  }

  /** Iterates events (and losses, see the overflow option). Aborting `signal` ends this iteration
   *  with its reason and leaves the queue open. */
  events(options?: { signal?: AbortSignal }): AsyncIterableIterator<Vevent | VeventLoss> {
    return this.#stream.items(iterationSignal('VeventQueue.events', options));
  }

  /** Iterates every event waiting, as one array (never empty): one await per batch. */
  batches(options?: { signal?: AbortSignal }): AsyncIterableIterator<(Vevent | VeventLoss)[]> {
    return this.#stream.batches(iterationSignal('VeventQueue.batches', options));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Vevent | VeventLoss> {
    return this.events();
  }

  /**
   * Closes the fd, then destroys the vEVENTQ object (the kernel refuses that while the fd is
   * open), so the vIOMMU can take a new queue of this type or be destroyed. Events not yet read
   * are dropped. A consumer waiting in next() gets done. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = Promise.resolve();
    this.#stream.closing();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    abandoned.unregister(this);
    this.iommufd._forget(this);
    try {
      this.#pump.close();
      destroyObject(this.iommufd, this.id);
    } finally {
      this.#stream.end();
    }
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** @internal */
export interface CheckedVeventQueueOptions extends CheckedOptions {
  type: number;
  dataSize: number;
  depth: number;
  overflow: 'mark' | 'throw';
}

/** @internal Validates VeventQueueOptions before anything is allocated. */
export function checkVeventQueueOptions(options: unknown): CheckedVeventQueueOptions {
  const call = 'Viommu.allocVeventQueue';
  const o = checkOptions<VeventQueueOptions>(call, options, false);
  const type = checkInteger(call, 'options.type', o.type, 1, 2 ** 32 - 1);
  if (binding.vevent.dataSize[type] === undefined) throw outOfRange(call, 'options.type', 'a VEVENTQ_TYPE_* this library knows the record layout of', type);
  const dataSize = veventDataSize(type);
  const depth = optionalInteger(call, 'options.depth', o.depth, 1, VEVENTQ_MAX_DEPTH) ?? 1024;
  const overflow = o.overflow === undefined ? 'mark' : checkOneOf(call, 'options.overflow', o.overflow, ['mark', 'throw'] as const);
  return { ...checkQueueOptions(call, o), type, dataSize, depth, overflow };
}

/** The signal of events()/batches() options, checked at the call (not at the first next()). */
function iterationSignal(call: string, options: unknown): AbortSignal | undefined {
  return optionalSignal(call, 'options.signal', checkOptions<{ signal?: unknown }>(call, options, true).signal);
}
