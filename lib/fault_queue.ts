// FaultQueue: an iommufd fault object (IOMMU_FAULT_QUEUE_ALLOC) as an async iterable of fault
// groups, each answerable once. The native pump reads whole batches; responses made in one turn of
// the event loop go back to the kernel in one write(2), and those made while a batch was handled
// go back before the next batch is handed over.
import { binding, type NativeFaultPump } from './binding.js';
import { closedError, ErrorCodes, IommufdError, responseError } from './errors.js';
import {
  decodeFaultGroups, encodeResponse, FAULT_RESPONSE_SIZE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS,
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

/** One I/O page fault group: one PRI page request group of one device, answered as a whole. */
export class FaultGroup {
  readonly faults: readonly FaultRecord[];
  #queue: FaultQueue;
  #answered = false;

  /** @internal */
  constructor(queue: FaultQueue, faults: FaultRecord[]) {
    this.#queue = queue;
    this.faults = faults;
  }

  get cookie(): number { return this.faults[0].cookie; }
  get deviceId(): number { return this.faults[0].deviceId; }
  get pasid(): number | undefined { return this.faults[0].pasid; }
  get groupId(): number { return this.faults[0].groupId; }
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
    const value = code === 'success' ? PAGE_RESP_SUCCESS : code === 'invalid' ? PAGE_RESP_INVALID : -1;
    if (value < 0) throw new TypeError(`respond: code must be 'success' or 'invalid', got ${String(code)}`);
    if (this.#answered) {
      throw new IommufdError(`respond: fault group ${this.cookie} was already answered`, ErrorCodes.ALREADY_ANSWERED);
    }
    const p = this.#queue._respond(this, value);
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
  #waiters: { resolve: (r: IteratorResult<FaultGroup>) => void; reject: (e: unknown) => void }[] = [];
  #pending = new Map<number, FaultGroup>();
  #responses = new Uint8Array(FAULT_RESPONSE_SIZE * 256);
  #responseView = new DataView(this.#responses.buffer);
  #flights: Flight[] = [];
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
    for (const records of decodeFaultGroups(view, byteLength)) {
      const group = new FaultGroup(this, records);
      this.#pending.set(group.cookie, group);
      this.#stats.delivered++;
      const waiter = this.#waiters.shift();
      if (waiter) waiter.resolve({ value: group, done: false });
      else this.#backlog.push(group);
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

  #take(): FaultGroup | undefined {
    if (this.#backlogHead >= this.#backlog.length) return undefined;
    const group = this.#backlog[this.#backlogHead++];
    if (this.#backlogHead > 1024 && this.#backlogHead * 2 > this.#backlog.length) {
      this.#backlog = this.#backlog.slice(this.#backlogHead);
      this.#backlogHead = 0;
    }
    if (this.#paused && !this.closed && this.#backlog.length - this.#backlogHead <= this.#low) {
      this.#paused = false;
      this.#pump.start();
    }
    return group;
  }

  /** The next fault group; resolves done when the queue is closed. */
  next(): Promise<IteratorResult<FaultGroup>> {
    const group = this.#take();
    if (group) return Promise.resolve({ value: group, done: false });
    if (this.#error) return Promise.reject(this.#error);
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Iterates fault groups. Aborting `signal` ends this iteration with the signal's reason and
   * leaves the queue open; leaving a for-await loop early also leaves it open.
   */
  groups({ signal }: { signal?: AbortSignal } = {}): AsyncIterableIterator<FaultGroup> {
    const queue = this;
    let done = false;
    return {
      [Symbol.asyncIterator]() { return this; },
      next(): Promise<IteratorResult<FaultGroup>> {
        if (done) return Promise.resolve({ value: undefined, done: true });
        if (!signal) return queue.next();
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
          const waiter = {
            resolve: (r: IteratorResult<FaultGroup>) => { signal.removeEventListener('abort', onAbort); resolve(r); },
            reject: (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e); },
          };
          const group = queue.#take();
          if (group) return resolve({ value: group, done: false });
          if (queue.#error) return reject(queue.#error);
          if (queue.closed) return resolve({ value: undefined, done: true });
          signal.addEventListener('abort', onAbort, { once: true });
          queue.#waiters.push(waiter);
        });
      },
      return(): Promise<IteratorResult<FaultGroup>> {
        done = true;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<FaultGroup> {
    return this.groups();
  }

  /** @internal Called by FaultGroup.respond. */
  _respond(group: FaultGroup, code: number): Promise<void> {
    if (this.closed) throw closedError('fault queue', 'respond');
    if (this.#pending.get(group.cookie) !== group) {
      const stale = Promise.reject(new IommufdError(
        `respond: fault group ${group.cookie} is stale: the kernel answered it INVALID (detach/replace) and reused its cookie`,
        ErrorCodes.FAULT_STALE));
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
    const flight: Flight = { resolve: ignore, reject: ignore, promise: undefined as unknown as Promise<void> };
    flight.promise = new Promise<void>((resolve, reject) => {
      flight.resolve = resolve;
      flight.reject = reject;
    });
    this.#flights.push(flight);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
    return flight.promise;
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
      for (const f of flights) refuse(f, e as Error);
      this.#stats.refused += flights.length;
      return;
    }
    if (!failed) {
      // The usual case: the kernel took every answer.
      for (const f of flights) f.resolve();
      this.#stats.answered += flights.length;
      return;
    }
    const refused = new Map<number, number>();
    for (let k = 0; k < failed.length; k += 2) refused.set(failed[k], failed[k + 1]);
    for (let k = 0; k < flights.length; k++) {
      const errno = refused.get(k);
      if (errno === undefined) {
        flights[k].resolve();
      } else {
        refuse(flights[k], responseError(errno, this.#responseView.getUint32(k * FAULT_RESPONSE_SIZE, true)));
      }
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
