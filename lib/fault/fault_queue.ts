// FaultQueue: an iommufd fault object (IOMMU_FAULT_QUEUE_ALLOC). The native pump reads whole
// batches into a FaultBatch; a synchronous batch handler (setBatchHandler) sees each first, and
// what it leaves goes on to the async iterator as FaultGroups. Answers made while a batch is
// handled (in the handler, or in the microtasks the iterator's consumers run before the pump's
// callback returns) go out in one write(2): in those microtasks once no group waits for the
// consumer, else by the pump right after its callback; answers made later go back in one write
// per turn of the event loop. serve() and serveInWorker() (serve.ts) drive the same pump from a
// blocking loop instead.
import { AnswerBuffer, answerRest, Flights } from './answers.js';
import { binding, CONTROL, type NativeEventPump } from '../core/binding.js';
import { checkOptions, invalidArgType, optionalSignal } from '../core/args.js';
import { closedError, ErrorCodes, IommufdError, responseError } from '../core/errors.js';
import { EventStream, startReading } from '../core/event_stream.js';
import { FaultBatch } from './fault_batch.js';
import { FaultGroup } from './fault_group.js';
import { destroyObject, type IommufdContext } from '../core/context.js';
import { checkQueueOptions, type CheckedOptions, type QueueOptions } from '../core/queue_options.js';
import { serveHere, serveInWorker, type FaultServer, type ServeInWorkerOptions, type ServeOptions, type ServeResult, type ServeTarget } from './serve.js';

export type FaultQueueOptions = QueueOptions;

/** @internal Validates FaultQueueOptions before anything is allocated for the queue. */
export function checkFaultQueueOptions(options: unknown): CheckedOptions {
  const call = 'Iommufd.allocFaultQueue';
  return checkQueueOptions(call, checkOptions<FaultQueueOptions>(call, options, true));
}

export interface FaultQueueStats {
  /** Groups read from the kernel. Every one is counted once in answered, refused, stale or pending. */
  delivered: number;
  /** Responses the kernel accepted (including close()'s INVALID answers). */
  answered: number;
  /** Responses the kernel refused (EINVAL: it had answered the group itself, on detach/replace). */
  refused: number;
  /** Groups the kernel answered itself before we did, seen when it gave their cookie to a newer group. */
  stale: number;
  /** Groups read but not yet answered. */
  pending: number;
  /** Groups waiting for the consumer. */
  backlog: number;
  /** Whether reading is paused by backpressure. */
  paused: boolean;
}

export interface CloseResult {
  /** Unanswered groups (read, or still queued in the kernel) that close() answered INVALID. */
  answeredInvalid: number;
}

/** A synchronous handler of each batch the pump reads; see FaultQueue.setBatchHandler. */
export type BatchHandler = (batch: FaultBatch) => void;

const ignore = () => {};
// Schedules the answers' microtask. Node's queueMicrotask() wraps each callback in an AsyncResource
// and a bound function: ~2x a then() on the host, and under TCG respond() took 45 µs with it, 32
// without (median of 8 processes, docs/benchmarks.md).
const RESOLVED = Promise.resolve();

/** The signal of groups()/batches() options, checked at the call (not at the first next()). */
function iterationSignal(call: string, options: unknown): AbortSignal | undefined {
  return optionalSignal(call, 'options.signal', checkOptions<{ signal?: unknown }>(call, options, true).signal);
}

// A queue dropped without close() is closed when it is garbage-collected, with a warning, as Node
// does for a FileHandle, and as close() would: its groups are answered INVALID, its fault fd
// closed and its fault object destroyed (unless a HWPT still holds it). A queue that a consumer
// waits on is not garbage (see EventStream.hold).
interface Abandoned { id: number; pump: NativeEventPump; pending: Map<number, number>; iommufd: IommufdContext; holders: { count: number } }
const abandoned = new FinalizationRegistry<Abandoned>((q) => {
  let answered = 'its unanswered fault groups could not be answered';
  try {
    answered = `${answerRest(q.pump, q.pending).accepted} unanswered fault groups were answered INVALID`;
  } catch {
    // The fd is closed whatever happened (answerRest's finally); the warning says the rest.
  }
  let object: string;
  try {
    object = q.holders.count === 0 && destroyObject(q.iommufd, q.id) ? 'its fault object destroyed' : 'its fault object kept while a HWPT holds it';
  } catch (e) {
    object = `its fault object could not be destroyed (${(e as Error).message})`;
  }
  process.emitWarning(`FaultQueue ${q.id} was garbage-collected without close(): ${answered}, its fault fd closed and ${object}`,
    { type: 'Warning', code: 'IOMMUFD_UNCLOSED' });
});

export class FaultQueue implements AsyncIterable<FaultGroup> {
  /** The fault object's id, to pass as HWPT_ALLOC's fault_id. */
  readonly id: number;
  /** The iommufd the fault object lives in. */
  readonly iommufd: IommufdContext;
  #pump: NativeEventPump;
  #fd: number;
  #bufferRecords: number | undefined;
  #answers: AnswerBuffer;
  #batch: FaultBatch;
  #handler: BatchHandler | undefined;
  #stream: EventStream<FaultGroup>;
  // Unanswered groups kept past their batch: cookie -> generation of the group that holds it now.
  #pending = new Map<number, number>();
  #generation = 0;
  // respond()'s promises waiting for the write of their answer.
  #flights = new Flights();
  #flushScheduled = false;
  #serving: 'here' | FaultServer | undefined;
  // The batch a serve() loop on this thread is handling, if any.
  #serveBatch: FaultBatch | undefined;
  #closing: Promise<CloseResult> | undefined;
  // The fault object: its fd open, closed with a HWPT still holding the object, or destroyed.
  #object: 'open' | 'held' | 'gone' = 'open';
  // HWPTs allocated with this queue and not destroyed through their Hwpt: while one is, the kernel
  // holds the fault object (IOMMU_DESTROY would be EBUSY), so its last destroy() frees it instead.
  readonly #holders = { count: 0 };
  // Answers written by JS itself (close's INVALID ones); the pump counts the rest.
  #stats = { answered: 0, refused: 0, stale: 0 };
  // The pump holds these weakly: the queue owns them.
  #onBatchCallback = (view: Uint8Array, n: number) => this.#onBatch(view, n);
  #onErrorCallback = (e: Error) => this.#stream.fail(e);
  #onWrittenCallback = (failed: Int32Array | undefined) => this.#settle(failed);
  #onAbort = () => void this.close();
  #signal: AbortSignal | undefined;

  /**
   * @internal Use Iommufd.allocFaultQueue(), which checks the options (checkFaultQueueOptions)
   * before it allocates. Takes ownership of faultFd, also when it throws.
   */
  constructor(iommufd: IommufdContext, id: number, faultFd: number, checked: CheckedOptions) {
    const pump = new binding.EventPump(faultFd, checked.bufferRecords);
    try {
      this.id = id;
      this.iommufd = iommufd;
      this.#pump = pump;
      this.#fd = faultFd;
      this.#bufferRecords = checked.bufferRecords;
      this.#answers = new AnswerBuffer(pump);
      this.#batch = new FaultBatch(this.#answers, {
        keep: (bytes, offset, count) => this.#keep(bytes, offset, count),
        flush: () => this.#flush(),
      });
      this.#stream = new EventStream(this, pump, this.#answers.slots, checked.high, checked.low);
      pump.setCallbacks(this.#onBatchCallback, this.#onErrorCallback, this.#onWrittenCallback);
      abandoned.register(this, { id, pump, pending: this.#pending, iommufd, holders: this.#holders }, this);
      this.#signal = checked.signal;
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

  get stats(): FaultQueueStats {
    const a = this.#answers;
    return {
      delivered: a.count(CONTROL.delivered),
      answered: a.count(CONTROL.answered) + this.#stats.answered,
      refused: a.count(CONTROL.refused) + this.#stats.refused,
      stale: this.#stats.stale,
      pending: this.#pending.size,
      backlog: this.#stream.backlog,
      paused: this.#stream.paused,
    };
  }

  /**
   * Sets (or, with null, removes) a synchronous handler that sees every batch the pump reads, on
   * this thread's event loop, before the async iterator does: the fast path. It answers groups
   * by index (batch.answer(g)); the pump writes those answers in one write(2) as soon as it
   * returns. Groups it neither answers nor keep()s go on to the async iterator as FaultGroups.
   * If it throws, the batch's unanswered groups are answered INVALID and the error becomes an
   * uncaught exception, as an event listener's would. While set, it keeps the process alive (as
   * a 'data' listener does a socket), unless unref().
   */
  setBatchHandler(handler: BatchHandler | null): this {
    if (handler === null) {
      if (this.closed) return this; // removing a handler from a closed queue: nothing to do
    } else {
      if (typeof handler !== 'function') throw invalidArgType('FaultQueue.setBatchHandler', 'handler', 'a function or null', handler);
      if (this.closed) throw closedError('FaultQueue.setBatchHandler', 'the fault queue');
    }
    this.#handler = handler ?? undefined;
    this.#stream.inUse = this.#handler !== undefined; // as a 'data' listener keeps a socket
    return this;
  }

  /**
   * Serves the queue from a blocking loop on this thread until the handler calls
   * batch.stopServing() (or the queue is closed from the handler): poll(2), read(2), one
   * synchronous call of `handler` per batch, one write(2) of its answers, with no event-loop turn
   * in between. Groups it leaves unanswered are answered INVALID. The event loop of this thread
   * does not run meanwhile: for a process or thread that does nothing else (see serveInWorker).
   * A throwing handler ends the loop with its error (its batch answered INVALID) unless
   * `onError` is given, which then gets the error while the loop goes on.
   */
  serve(handler: BatchHandler, options: ServeOptions = {}): ServeResult {
    return serveHere(this.#serveTarget('FaultQueue.serve'), handler, options);
  }

  /**
   * Serves the queue from a serve loop on a worker thread of its own, so that the answers do not
   * wait for this thread's event loop. `handlerModule` (a path or file URL) default-exports (or
   * exports as `options.exportName`) the synchronous BatchHandler; `options.workerData` reaches
   * it as its second argument. Resolves once the worker serves. The queue's own pump pauses
   * meanwhile; FaultServer.stop() (or close()) gives the queue back.
   */
  async serveInWorker(handlerModule: string | URL, options: ServeInWorkerOptions = {}): Promise<FaultServer> {
    return serveInWorker(this.#serveTarget('FaultQueue.serveInWorker'), handlerModule, options);
  }

  /** @internal Lends the queue to a serve loop of another concern (the demand pager): as serve()'s. */
  _serveTarget(op: string): ServeTarget {
    return this.#serveTarget(op);
  }

  #serveTarget(op: string): ServeTarget {
    if (this.closed) throw closedError(op, 'the fault queue');
    if (this.#serving) throw new IommufdError(`${op}: the queue is being served already`, ErrorCodes.SERVING);
    return {
      fd: this.#fd,
      bufferRecords: this.#bufferRecords,
      pump: this.#pump,
      answers: this.#answers,
      pending: this.#pending,
      markStale: (batch) => this.#markStale(batch),
      flush: () => this.#flush(),
      settle: (failed) => this.#settle(failed),
      begin: (how, batch) => {
        this.#serving = how;
        this.#serveBatch = batch;
        this.#pump.stop();
        this.#stream.serving = true; // a served queue is in use even if nothing refers to it
      },
      end: () => {
        this.#serving = undefined;
        this.#serveBatch = undefined;
        this.#stream.serving = false;
        this.#pump.setCallbacks(this.#onBatchCallback, this.#onErrorCallback, this.#onWrittenCallback);
        if (!this.closed && !this.#stream.paused) this.#pump.start();
      },
    };
  }

  /**
   * Lets a consumer waiting on this queue keep the process alive (the default), like a socket's
   * pending read. A queue nobody waits on never keeps the process alive.
   */
  ref(): this {
    this.#stream.ref(true);
    return this;
  }

  /** The process may exit while a consumer waits on this queue, as with socket.unref(). */
  unref(): this {
    this.#stream.ref(false);
    return this;
  }


  #onBatch(view: Uint8Array, byteLength: number): void {
    const batch = this.#batch;
    batch._begin(view, byteLength);
    this.#markStale(batch);
    const handler = this.#handler;
    if (handler) {
      try {
        handler(batch);
      } catch (e) {
        batch.answerAll('invalid');
        batch._end();
        throw e;
      }
    }
    if (batch._unanswered > 0) {
      for (let g = 0, n = batch.groupCount; g < n; g++) if (!batch.answered(g)) this.#stream.push(batch.keep(g));
    }
    batch._end();
    this.#stream.delivered();
  }

  // A kept group whose cookie comes again: the kernel answered it itself (detach/replace) and
  // gave the cookie to this newer group. The old FaultGroup's answer is refused as stale.
  #markStale(batch: FaultBatch): void {
    if (this.#pending.size === 0) return; // nothing kept: the usual case, no lookup per group
    for (let g = 0, n = batch.groupCount; g < n; g++) {
      const cookie = batch.cookie(batch.first(g));
      if (this.#pending.delete(cookie)) this.#stats.stale++;
    }
  }

  #keep(bytes: DataView, offset: number, count: number): FaultGroup {
    const group = new FaultGroup(this, bytes, offset, count, ++this.#generation);
    this.#pending.set(group.cookie, this.#generation);
    return group;
  }

  /** The next fault group; resolves done when the queue is closed. */
  next(): Promise<IteratorResult<FaultGroup>> {
    return this.#stream.next();
  }

  /**
   * Iterates fault groups. Aborting `signal` ends this iteration with the signal's reason and
   * leaves the queue open; leaving a for-await loop early also leaves it open.
   */
  groups(options?: { signal?: AbortSignal }): AsyncIterableIterator<FaultGroup> {
    return this.#stream.items(iterationSignal('FaultQueue.groups', options));
  }

  /**
   * Iterates batches: every group read so far, as one array (never empty), so a busy handler pays
   * one await per batch instead of one per group. Same abort and early-exit rules as groups().
   */
  batches(options?: { signal?: AbortSignal }): AsyncIterableIterator<FaultGroup[]> {
    return this.#stream.batches(iterationSignal('FaultQueue.batches', options));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<FaultGroup> {
    return this.groups();
  }

  /** @internal Called by FaultGroup.respond and answer. */
  _respond(cookie: number, generation: number, code: number, op: string, wantPromise: boolean): Promise<void> | undefined {
    if (this.closed) throw closedError(op, 'its fault queue');
    if (this.#pending.get(cookie) !== generation) {
      const error = new IommufdError(
        `${op}: fault group ${cookie} is stale: the kernel answered it INVALID (detach/replace) and reused its cookie`,
        ErrorCodes.FAULT_STALE);
      if (!wantPromise) throw error;
      const stale = Promise.reject(error);
      stale.catch(ignore);
      return stale;
    }
    this.#pending.delete(cookie);
    const index = this.#answers.add(cookie, code);
    const promise = wantPromise ? this.#flights.add(index) : undefined;
    if (promise) this.#answers.slots[CONTROL.notify] = 1;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      RESOLVED.then(this.#flushSoon);
    }
    return promise;
  }

  // After the microtask that answered: with no group left waiting for the consumer (one fault, or
  // the last of a batch), the answers go out now, in this microtask checkpoint, and respond()'s
  // promises settle in it: no event-loop turn, and no second call from the pump after its
  // callback. While groups wait, the consumer is still working through a batch: its answers go
  // in one write, the pump's when its callback returns, or a later turn's for answers made after.
  #flushSoon = (): void => {
    if (this.#stream.backlog === 0) this.#flush();
    else setImmediate(this.#flushLater);
  };

  #flushLater = (): void => this.#flush();

  #flush(): void {
    this.#flushScheduled = false;
    const n = this.#answers.waiting;
    if (n === 0) return;
    let failed: Int32Array | undefined;
    try {
      failed = this.#pump.writeAnswers();
    } catch (e) {
      this.#answers.slots[CONTROL.answers] = 0;
      this.#flights.failAll(e as Error);
      this.#stats.refused += n;
      return;
    }
    this.#settle(failed);
  }

  // The outcome of one write of the answer buffer, for the respond() promises waiting on it.
  #settle(failed: Int32Array | undefined): void {
    this.#flights.settle(failed, (index, errno) => responseError(errno, this.#answers.cookie(index)));
  }

  /**
   * Closes the queue: flushes responses made so far, reads what the kernel still has queued,
   * answers every unanswered group INVALID, then closes the fault fd and destroys the fault object
   * (while a HWPT holds it, the kernel keeps it: Hwpt.destroy() of the last one frees it). A
   * consumer waiting in next() gets done. Safe to call twice. Faults raised after this stay queued
   * in the kernel until the HWPT is detached or destroyed, when the kernel answers them INVALID
   * itself.
   */
  close(): Promise<CloseResult> {
    if (this.#closing) return this.#closing;
    this.#stream.closing();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    abandoned.unregister(this);
    this.iommufd._forget(this);
    // A worker serving the queue reads its fd: it stops (and hands its last answers over) first.
    const server = this.#serving;
    if (server && server !== 'here') {
      this.#closing = server.stop().then(() => this.#closeNow(), () => this.#closeNow());
      return this.#closing;
    }
    let done!: (r: CloseResult) => void;
    this.#closing = new Promise((resolve) => { done = resolve; });
    done(this.#closeNow());
    return this.#closing;
  }

  #closeNow(): CloseResult {
    let answeredInvalid = 0;
    try {
      // Closed from a handler: the groups of its batch not answered yet are answered INVALID.
      for (const batch of [this.#batch, this.#serveBatch]) if (batch?._live) batch.answerAll('invalid');
      this.#flush();
    } finally {
      const rest = answerRest(this.#pump, this.#pending);
      this.#stats.stale += rest.stale;
      this.#stats.answered += rest.accepted;
      this.#stats.refused += rest.refused;
      answeredInvalid = rest.accepted;
      this.#stream.end();
      this.#object = this.#holders.count === 0 && destroyObject(this.iommufd, this.id) ? 'gone' : 'held';
    }
    return { answeredInvalid };
  }

  /** @internal A HWPT that held the fault object was destroyed: free it once the queue is closed. */
  _release(): void {
    this.#holders.count--;
    if (this.#object === 'held' && this.#holders.count === 0 && destroyObject(this.iommufd, this.id)) this.#object = 'gone';
  }

  /** @internal A HWPT was allocated with this queue: the kernel holds the fault object for it. */
  _hold(): void {
    this.#holders.count++;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close().then(() => undefined);
  }
}
