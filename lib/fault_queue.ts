// FaultQueue: an iommufd fault object (IOMMU_FAULT_QUEUE_ALLOC) as an async iterable of fault
// groups, each answerable once. The native pump reads whole batches; responses made in one turn of
// the event loop go back to the kernel in one write(2), and those made while a batch was handled
// go back before the next batch is handed over.
import { binding, type NativeFaultPump } from './binding.js';
import { closedError, ErrorCodes, IommufdError, responseError } from './errors.js';
import { encodeResponse, FAULT_RESPONSE_SIZE, forEachFaultGroup, PAGE_RESP_INVALID } from './fault.js';
import { FaultGroup } from './fault_group.js';
import type { CheckedOptions } from './fault_queue_options.js';
import type { Iommufd } from './iommufd.js';

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

// A consumer waiting for the next group (next(), groups()) or batch (batches()).
interface Waiter {
  take: () => FaultGroup | FaultGroup[] | undefined;
  resolve: (r: IteratorResult<never>) => void;
  reject: (e: unknown) => void;
}

interface Flight {
  resolve: () => void;
  reject: (e: Error) => void;
  promise: Promise<void>;
}

const ignore = () => {};

/**
 * Rejects an answer's promise, first giving it a handler so that an ignored promise never becomes
 * an unhandled rejection. Done here, on the rare failure, rather than with a .catch() per answer:
 * that was a second promise and a closure for every fault.
 */
function refuse(flight: Flight, error: Error): void {
  flight.promise.catch(ignore);
  flight.reject(error);
}

/**
 * Answers INVALID every group in `pending` and every group the kernel still has queued, then closes
 * the pump: the end of every queue, closed or abandoned. `pending` maps cookie to generation.
 */
function answerRest(pump: NativeFaultPump, pending: Map<number, number>): { read: number; stale: number; accepted: number; refused: number } {
  let read = 0;
  let stale = 0;
  try {
    pump.stop();
    pump.setCallbacks(collect, ignore);
    pump.read();
    const n = pending.size;
    if (n === 0) return { read, stale, accepted: 0, refused: 0 };
    const bytes = new Uint8Array(n * FAULT_RESPONSE_SIZE);
    const view = new DataView(bytes.buffer);
    let k = 0;
    for (const cookie of pending.keys()) encodeResponse(view, k++ * FAULT_RESPONSE_SIZE, cookie, PAGE_RESP_INVALID);
    pending.clear();
    const failed = pump.write(bytes);
    const refused = failed ? failed.length / 2 : 0;
    return { read, stale, accepted: n - refused, refused };
  } finally {
    pump.close();
  }
  function collect(batch: Uint8Array, byteLength: number) {
    const view = new DataView(batch.buffer, batch.byteOffset, byteLength);
    forEachFaultGroup(view, byteLength, (offset) => {
      read++;
      const cookie = view.getUint32(offset + 36, true);
      if (pending.has(cookie)) stale++;
      pending.set(cookie, 0);
    });
  }
}

// A queue dropped without close() is closed when it is garbage-collected, with a warning, as Node
// does for a FileHandle: its groups are answered INVALID and its fault fd closed. A queue that a
// consumer waits on is not garbage (see FaultQueue.#hold).
const abandoned = new FinalizationRegistry<{ id: number; pump: NativeFaultPump; pending: Map<number, number> }>((q) => {
  let answered = 'its unanswered fault groups could not be answered';
  try {
    answered = `${answerRest(q.pump, q.pending).accepted} unanswered fault groups were answered INVALID`;
  } catch {
    // The fd is closed whatever happened (answerRest's finally); the warning says the rest.
  }
  process.emitWarning(`FaultQueue ${q.id} was garbage-collected without close(): ${answered} and its fault fd closed`,
    { type: 'Warning', code: 'IOMMUFD_UNCLOSED' });
});

// Queues that a consumer waits on (a pending next()): like a socket with a pending read, such a
// queue stays alive even when nothing else refers to it.
const waitedOn = new Set<FaultQueue>();

export class FaultQueue implements AsyncIterable<FaultGroup> {
  /** The fault object's id, to pass as HWPT_ALLOC's fault_id. */
  readonly id: number;
  /** The iommufd the fault object lives in. */
  readonly iommufd: Iommufd;
  #pump: NativeFaultPump;
  #backlog: FaultGroup[] = [];
  #backlogHead = 0;
  #waiters: Waiter[] = [];
  // Unanswered groups: cookie -> generation of the group that holds it now.
  #pending = new Map<number, number>();
  #generation = 0;
  #responses = new Uint8Array(FAULT_RESPONSE_SIZE * 256);
  #responseView = new DataView(this.#responses.buffer);
  // One per answer in #responses; undefined for answer(), which has no promise to settle.
  #flights: (Flight | undefined)[] = [];
  #flushScheduled = false;
  #high: number;
  #low: number;
  #paused = false;
  #held = false;
  #ref = true;
  #error: Error | undefined;
  #closing: Promise<CloseResult> | undefined;
  #stats = { delivered: 0, answered: 0, refused: 0, stale: 0 };
  // The pump holds these weakly: the queue owns them.
  #onBatchCallback = (view: Uint8Array, n: number) => this.#onBatch(view, n);
  #onErrorCallback = (e: Error) => this.#fail(e);
  #onAbort = () => void this.close();
  #signal: AbortSignal | undefined;

  /**
   * @internal Use Iommufd.allocFaultQueue(), which checks the options (checkFaultQueueOptions)
   * before it allocates. Takes ownership of faultFd, also when it throws.
   */
  constructor(iommufd: Iommufd, id: number, faultFd: number, checked: CheckedOptions) {
    const pump = new binding.FaultPump(faultFd, checked.bufferRecords);
    this.id = id;
    this.iommufd = iommufd;
    this.#pump = pump;
    this.#high = checked.high;
    this.#low = checked.low;
    pump.setCallbacks(this.#onBatchCallback, this.#onErrorCallback);
    abandoned.register(this, { id, pump, pending: this.#pending }, this);
    this.#signal = checked.signal;
    if (this.#signal?.aborted) {
      void this.close();
      return;
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    pump.start();
  }

  get closed(): boolean { return this.#closing !== undefined; }

  get stats(): FaultQueueStats {
    return { ...this.#stats, pending: this.#pending.size, backlog: this.#backlog.length - this.#backlogHead, paused: this.#paused };
  }

  /**
   * Lets a consumer waiting on this queue keep the process alive (the default), like a socket's
   * pending read. A queue nobody waits on never keeps the process alive.
   */
  ref(): this {
    this.#ref = true;
    this.#pump.ref(this.#held);
    return this;
  }

  /** The process may exit while a consumer waits on this queue, as with socket.unref(). */
  unref(): this {
    this.#ref = false;
    if (!this.closed) this.#pump.ref(false);
    return this;
  }

  // Called whenever #waiters changes: a waited-on queue is kept from GC and (if ref'd) keeps the
  // event loop alive; an idle one does neither.
  #hold(): void {
    const held = this.#waiters.length > 0 && !this.closed;
    if (held === this.#held) return;
    this.#held = held;
    if (held) waitedOn.add(this);
    else waitedOn.delete(this);
    if (this.#ref && !this.closed) this.#pump.ref(held);
  }

  #onBatch(view: Uint8Array, byteLength: number): void {
    // A long drain reads batch after batch within one poll callback, before setImmediate can run:
    // write the answers made while the previous batch was handled now, so answers (and their
    // promises) do not pile up until the end of the drain (GC cost, and the kernel waits longer).
    if (this.#flights.length > 0) this.#flush();
    // The pump reuses its buffer: the groups keep a copy of this batch's bytes.
    const bytes = new DataView(view.buffer.slice(view.byteOffset, view.byteOffset + byteLength));
    forEachFaultGroup(bytes, byteLength, (offset, count) => {
      const group = new FaultGroup(this, bytes, offset, count, ++this.#generation);
      // Still pending under this cookie: the kernel answered that group itself and reused it.
      if (this.#pending.has(group.cookie)) this.#stats.stale++;
      this.#pending.set(group.cookie, this.#generation);
      this.#stats.delivered++;
      this.#backlog.push(group);
    });
    if (this.#waiters.length > 0) {
      while (this.#waiters.length > 0 && this.#backlogHead < this.#backlog.length) {
        const w = this.#waiters.shift()!;
        w.resolve({ value: w.take() as never, done: false });
      }
      this.#hold();
    }
    if (!this.#paused && this.#backlog.length - this.#backlogHead >= this.#high && !this.closed) {
      this.#paused = true;
      this.#pump.stop();
    }
  }

  #fail(error: Error): void {
    this.#error = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
    this.#hold();
  }

  #take = (): FaultGroup | undefined => {
    if (this.#backlogHead >= this.#backlog.length) return undefined;
    const group = this.#backlog[this.#backlogHead++];
    if (this.#backlogHead > 1024 && this.#backlogHead * 2 > this.#backlog.length) {
      this.#backlog = this.#backlog.slice(this.#backlogHead);
      this.#backlogHead = 0;
    }
    this.#resumeIfLow();
    return group;
  };

  #takeAll = (): FaultGroup[] | undefined => {
    if (this.#backlogHead >= this.#backlog.length) return undefined;
    const groups = this.#backlogHead === 0 ? this.#backlog : this.#backlog.slice(this.#backlogHead);
    this.#backlog = [];
    this.#backlogHead = 0;
    this.#resumeIfLow();
    return groups;
  };

  #resumeIfLow(): void {
    if (this.#paused && !this.closed && this.#backlog.length - this.#backlogHead <= this.#low) {
      this.#paused = false;
      this.#pump.start();
    }
  }

  /** The next fault group; resolves done when the queue is closed. */
  next(): Promise<IteratorResult<FaultGroup>> {
    return this.#next(this.#take);
  }

  #next<T extends FaultGroup | FaultGroup[]>(take: () => T | undefined): Promise<IteratorResult<T>> {
    const value = take();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.#error) return Promise.reject(this.#error);
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#wait({ take, resolve, reject }));
  }

  #wait(waiter: Waiter): void {
    this.#waiters.push(waiter);
    this.#hold();
  }

  /**
   * Iterates fault groups. Aborting `signal` ends this iteration with the signal's reason and
   * leaves the queue open; leaving a for-await loop early also leaves it open.
   */
  groups({ signal }: { signal?: AbortSignal } = {}): AsyncIterableIterator<FaultGroup> {
    return this.#iterate(this.#take, signal);
  }

  /**
   * Iterates batches: every group read so far, as one array (never empty), so a busy handler pays
   * one await per batch instead of one per group. Same abort and early-exit rules as groups().
   */
  batches({ signal }: { signal?: AbortSignal } = {}): AsyncIterableIterator<FaultGroup[]> {
    return this.#iterate(this.#takeAll, signal);
  }

  #iterate<T extends FaultGroup | FaultGroup[]>(take: () => T | undefined, signal: AbortSignal | undefined): AsyncIterableIterator<T> {
    const queue = this;
    let done = false;
    return {
      [Symbol.asyncIterator]() { return this; },
      next(): Promise<IteratorResult<T>> {
        if (done) return Promise.resolve({ value: undefined, done: true });
        if (!signal) return queue.#next(take);
        if (signal.aborted) {
          done = true;
          return Promise.reject(signal.reason);
        }
        return new Promise((resolve, reject) => {
          const onAbort = () => {
            done = true;
            queue.#waiters = queue.#waiters.filter((w) => w !== waiter);
            queue.#hold();
            reject(signal.reason);
          };
          const waiter: Waiter = {
            take,
            resolve: (r) => { signal.removeEventListener('abort', onAbort); resolve(r); },
            reject: (e) => { signal.removeEventListener('abort', onAbort); reject(e); },
          };
          const value = take();
          if (value !== undefined) return resolve({ value, done: false });
          if (queue.#error) return reject(queue.#error);
          if (queue.closed) return resolve({ value: undefined, done: true });
          signal.addEventListener('abort', onAbort, { once: true });
          queue.#wait(waiter);
        });
      },
      return(): Promise<IteratorResult<T>> {
        done = true;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<FaultGroup> {
    return this.groups();
  }

  /** @internal Called by FaultGroup.respond and answer. */
  _respond(cookie: number, generation: number, code: number, op: string, promise: boolean): Promise<void> | undefined {
    if (this.closed) throw closedError('fault queue', op);
    if (this.#pending.get(cookie) !== generation) {
      const error = new IommufdError(
        `${op}: fault group ${cookie} is stale: the kernel answered it INVALID (detach/replace) and reused its cookie`,
        ErrorCodes.FAULT_STALE);
      if (!promise) throw error;
      const stale = Promise.reject(error);
      stale.catch(ignore);
      return stale;
    }
    this.#pending.delete(cookie);
    const i = this.#flights.length;
    if ((i + 1) * FAULT_RESPONSE_SIZE > this.#responses.byteLength) {
      const bigger = new Uint8Array(this.#responses.byteLength * 2);
      bigger.set(this.#responses);
      this.#responses = bigger;
      this.#responseView = new DataView(bigger.buffer);
    }
    encodeResponse(this.#responseView, i * FAULT_RESPONSE_SIZE, cookie, code);
    let flight: Flight | undefined;
    if (promise) {
      flight = { resolve: ignore, reject: ignore, promise: undefined as unknown as Promise<void> };
      const f = flight;
      f.promise = new Promise<void>((resolve, reject) => {
        f.resolve = resolve;
        f.reject = reject;
      });
    }
    this.#flights.push(flight);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
    return flight?.promise;
  }

  #flush(): void {
    this.#flushScheduled = false;
    const flights = this.#flights;
    if (flights.length === 0) return;
    this.#flights = [];
    const bytes = this.#responses.subarray(0, flights.length * FAULT_RESPONSE_SIZE);
    let failed: Int32Array | undefined;
    try {
      failed = this.#pump.write(bytes);
    } catch (e) {
      for (const f of flights) if (f) refuse(f, e as Error);
      this.#stats.refused += flights.length;
      return;
    }
    if (!failed) {
      // The usual case: the kernel took every answer.
      for (const f of flights) f?.resolve();
      this.#stats.answered += flights.length;
      return;
    }
    const refused = new Map<number, number>();
    for (let k = 0; k < failed.length; k += 2) refused.set(failed[k], failed[k + 1]);
    for (let k = 0; k < flights.length; k++) {
      const errno = refused.get(k);
      const f = flights[k];
      if (!f) continue;
      if (errno === undefined) f.resolve();
      else refuse(f, responseError(errno, this.#responseView.getUint32(k * FAULT_RESPONSE_SIZE, true)));
    }
    this.#stats.answered += flights.length - refused.size;
    this.#stats.refused += refused.size;
  }

  /**
   * Closes the queue: flushes responses made so far, reads what the kernel still has queued,
   * answers every unanswered group INVALID, then closes the fault fd. A consumer waiting in next()
   * gets done. Safe to call twice. Faults raised after this stay queued in the kernel until the
   * HWPT is detached or destroyed, when the kernel answers them INVALID itself.
   */
  close(): Promise<CloseResult> {
    if (this.#closing) return this.#closing;
    let result: CloseResult = { answeredInvalid: 0 };
    let done!: (r: CloseResult) => void;
    this.#closing = new Promise((resolve) => { done = resolve; });
    this.#signal?.removeEventListener('abort', this.#onAbort);
    abandoned.unregister(this);
    this.iommufd._forget(this);
    try {
      this.#flush();
    } finally {
      const rest = answerRest(this.#pump, this.#pending);
      this.#stats.delivered += rest.read;
      this.#stats.stale += rest.stale;
      this.#stats.answered += rest.accepted;
      this.#stats.refused += rest.refused;
      result = { answeredInvalid: rest.accepted };
      this.#backlog = [];
      this.#backlogHead = 0;
      for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
      this.#hold();
      done(result);
    }
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close().then(() => undefined);
  }
}
