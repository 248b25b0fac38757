// FaultQueue: an iommufd fault object (IOMMU_FAULT_QUEUE_ALLOC) as an async iterable of fault
// groups, each answerable once. The native pump reads whole batches; responses made in one turn of
// the event loop go back to the kernel in one write(2), and those made while a batch was handled
// go back before the next batch is handed over.
import { binding, type NativeFaultPump } from './binding.js';
import { closedError, ErrorCodes, IommufdError, responseError } from './errors.js';
import {
  decodeFaultRecord, encodeResponse, FAULT_RECORD_SIZE, FAULT_RESPONSE_SIZE, forEachFaultGroup, PAGE_RESP_INVALID,
  PAGE_RESP_SUCCESS, PGFAULT_FLAGS_PASID_VALID,
  type FaultRecord, type ResponseCode,
} from './fault.js';

export interface FaultQueueOptions {
  /** Stop reading from the kernel while this many groups wait for the consumer (default 4096). */
  highWaterMark?: number;
  /** Resume reading once the backlog is down to this many (default highWaterMark / 2). */
  lowWaterMark?: number;
  /** Initial read buffer, in records (default 1024); it grows when a group does not fit. */
  bufferRecords?: number;
  /** Aborting closes the queue, as close() does. */
  signal?: AbortSignal;
}

export interface FaultQueueStats {
  /** Groups read from the kernel. */
  delivered: number;
  /** Responses the kernel accepted (including close()'s INVALID answers). */
  answered: number;
  /** Responses the kernel refused (EINVAL: no such pending cookie). */
  refused: number;
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
 * One I/O page fault group: one PRI page request group of one device, answered as a whole.
 * Its fields are read from the records' bytes when asked for: a handler pays for the records
 * (and their BigInt addresses) only if it looks at them.
 */
export class FaultGroup {
  /** The kernel's handle for the group, which the answer names. */
  readonly cookie: number;
  #queue: FaultQueue;
  #view: DataView;
  #offset: number;
  #count: number;
  #faults: FaultRecord[] | undefined;
  #answered = false;

  /** @internal `count` records at `offset` of `view`, which the group may keep. */
  constructor(queue: FaultQueue, view: DataView, offset: number, count: number) {
    this.#queue = queue;
    this.#view = view;
    this.#offset = offset;
    this.#count = count;
    this.cookie = view.getUint32(offset + 36, true);
  }

  /** The group's records, in the order the device sent them. */
  get faults(): readonly FaultRecord[] {
    if (!this.#faults) {
      this.#faults = [];
      for (let i = 0; i < this.#count; i++) this.#faults.push(decodeFaultRecord(this.#view, this.#offset + i * FAULT_RECORD_SIZE));
    }
    return this.#faults;
  }

  get deviceId(): number { return this.#view.getUint32(this.#offset + 4, true); }
  get pasid(): number | undefined {
    return this.#view.getUint32(this.#offset, true) & PGFAULT_FLAGS_PASID_VALID ? this.#view.getUint32(this.#offset + 8, true) : undefined;
  }
  get groupId(): number { return this.#view.getUint32(this.#offset + 12, true); }
  get answered(): boolean { return this.#answered; }

  /**
   * Answers the group (default 'success'). Throws ERR_IOMMUFD_ALREADY_ANSWERED on a second answer
   * and ERR_IOMMUFD_CLOSED after close. The promise settles when the response reached the kernel:
   * it rejects (EINVAL) when the kernel no longer had the group, e.g. it auto-answered INVALID on
   * detach or replace, and with ERR_IOMMUFD_FAULT_STALE, without writing, when the kernel has
   * since given the group's cookie to a newer group (cookies are reused at once), so that a late
   * answer can never answer someone else's fault. An ignored promise never becomes an unhandled
   * rejection.
   */
  respond(code: ResponseCode = 'success'): Promise<void> {
    return this.#answer('respond', code, true)!;
  }

  /**
   * Answers the group like respond(), without a promise: for handlers that answer many groups
   * and do not wait on each. A stale group throws ERR_IOMMUFD_FAULT_STALE here; a refusal by the
   * kernel (EINVAL) shows only in the queue's stats.refused.
   */
  answer(code: ResponseCode = 'success'): void {
    this.#answer('answer', code, false);
  }

  #answer(op: string, code: ResponseCode, promise: boolean): Promise<void> | undefined {
    const value = code === 'success' ? PAGE_RESP_SUCCESS : code === 'invalid' ? PAGE_RESP_INVALID : -1;
    if (value < 0) throw new TypeError(`${op}: code must be 'success' or 'invalid', got ${String(code)}`);
    if (this.#answered) {
      throw new IommufdError(`${op}: fault group ${this.cookie} was already answered`, ErrorCodes.ALREADY_ANSWERED);
    }
    const p = this.#queue._respond(this, value, op, promise);
    this.#answered = true;
    return p;
  }
}

export class FaultQueue implements AsyncIterable<FaultGroup> {
  /** The fault object's id, to pass as HWPT_ALLOC's fault_id. */
  readonly id: number;
  #pump: NativeFaultPump;
  #backlog: FaultGroup[] = [];
  #backlogHead = 0;
  #waiters: Waiter[] = [];
  #pending = new Map<number, FaultGroup>();
  #responses = new Uint8Array(FAULT_RESPONSE_SIZE * 256);
  #responseView = new DataView(this.#responses.buffer);
  // One per answer in #responses; undefined for answer(), which has no promise to settle.
  #flights: (Flight | undefined)[] = [];
  #flushScheduled = false;
  #high: number;
  #low: number;
  #paused = false;
  #error: Error | undefined;
  #closing: Promise<CloseResult> | undefined;
  #stats = { delivered: 0, answered: 0, refused: 0 };
  #onAbort = () => void this.close();
  #signal: AbortSignal | undefined;

  /** @internal Use Iommufd.allocFaultQueue(). Takes ownership of faultFd. */
  constructor(id: number, faultFd: number, options: FaultQueueOptions = {}) {
    this.id = id;
    this.#high = Math.max(1, options.highWaterMark ?? 4096);
    this.#low = Math.min(this.#high - 1, Math.max(0, options.lowWaterMark ?? Math.floor(this.#high / 2)));
    this.#pump = new binding.FaultPump(faultFd, (view, n) => this.#onBatch(view, n), (e) => this.#fail(e), options.bufferRecords);
    this.#signal = options.signal;
    if (this.#signal?.aborted) {
      void this.close();
      return;
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#pump.start();
  }

  get closed(): boolean { return this.#closing !== undefined; }

  get stats(): FaultQueueStats {
    return { ...this.#stats, pending: this.#pending.size, backlog: this.#backlog.length - this.#backlogHead, paused: this.#paused };
  }

  #onBatch(view: Uint8Array, byteLength: number): void {
    // A long drain reads batch after batch within one poll callback, before setImmediate can run:
    // write the answers made while the previous batch was handled now, so answers (and their
    // promises) do not pile up until the end of the drain (GC cost, and the kernel waits longer).
    if (this.#flights.length > 0) this.#flush();
    // The pump reuses its buffer: the groups keep a copy of this batch's bytes.
    const bytes = new DataView(view.buffer.slice(view.byteOffset, view.byteOffset + byteLength));
    forEachFaultGroup(bytes, byteLength, (offset, count) => {
      const group = new FaultGroup(this, bytes, offset, count);
      this.#pending.set(group.cookie, group);
      this.#stats.delivered++;
      this.#backlog.push(group);
    });
    while (this.#waiters.length > 0 && this.#backlogHead < this.#backlog.length) {
      const w = this.#waiters.shift()!;
      w.resolve({ value: w.take() as never, done: false });
    }
    if (!this.#paused && this.#backlog.length - this.#backlogHead >= this.#high && !this.closed) {
      this.#paused = true;
      this.#pump.stop();
    }
  }

  #fail(error: Error): void {
    this.#error = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
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
    return new Promise((resolve, reject) => this.#waiters.push({ take, resolve, reject }));
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
          queue.#waiters.push(waiter);
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
  _respond(group: FaultGroup, code: number, op: string, promise: boolean): Promise<void> | undefined {
    if (this.closed) throw closedError('fault queue', op);
    if (this.#pending.get(group.cookie) !== group) {
      const error = new IommufdError(
        `${op}: fault group ${group.cookie} is stale: the kernel answered it INVALID (detach/replace) and reused its cookie`,
        ErrorCodes.FAULT_STALE);
      if (!promise) throw error;
      const stale = Promise.reject(error);
      stale.catch(ignore);
      return stale;
    }
    this.#pending.delete(group.cookie);
    const i = this.#flights.length;
    if ((i + 1) * FAULT_RESPONSE_SIZE > this.#responses.byteLength) {
      const bigger = new Uint8Array(this.#responses.byteLength * 2);
      bigger.set(this.#responses);
      this.#responses = bigger;
      this.#responseView = new DataView(bigger.buffer);
    }
    encodeResponse(this.#responseView, i * FAULT_RESPONSE_SIZE, group.cookie, code);
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
   * answers every unanswered group INVALID, then closes the fault fd. Safe to call twice.
   * Faults raised after this stay queued in the kernel until the HWPT is detached or destroyed,
   * when the kernel answers them INVALID itself.
   */
  close(): Promise<CloseResult> {
    if (this.#closing) return this.#closing;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    let result: CloseResult = { answeredInvalid: 0 };
    try {
      this.#pump.stop();
      this.#flush();
      this.#pump.read();
      const unanswered = [...this.#pending.values()];
      this.#pending.clear();
      if (unanswered.length > 0) {
        const bytes = new Uint8Array(unanswered.length * FAULT_RESPONSE_SIZE);
        const view = new DataView(bytes.buffer);
        unanswered.forEach((g, k) => encodeResponse(view, k * FAULT_RESPONSE_SIZE, g.cookie, PAGE_RESP_INVALID));
        const failed = this.#pump.write(bytes);
        const accepted = unanswered.length - (failed ? failed.length / 2 : 0);
        this.#stats.answered += accepted;
        result = { answeredInvalid: accepted };
      }
    } finally {
      this.#pump.close();
      this.#closing = Promise.resolve(result);
      this.#backlog = [];
      this.#backlogHead = 0;
      for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
    }
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close().then(() => undefined);
  }
}
