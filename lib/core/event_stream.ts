// The consumer side every queue shares (FaultQueue's fault groups, VeventQueue's events): a backlog
// of what the pump delivered, consumers waiting for it (next(), iterators with an AbortSignal),
// backpressure (the pump stops above `high` waiting items and starts again at `low`; the kernel
// holds the rest meanwhile), and what keeps a waited-on queue alive.
import { CONTROL } from './binding.js';

/** The pump, as the stream drives it. */
export interface StreamPump {
  start(): void;
  stop(): void;
  ref(on: boolean): void;
}

// A consumer waiting for the next item (next(), an iterator of items) or all of them (batches).
interface Waiter<T> {
  take: () => T | T[] | undefined;
  resolve: (r: IteratorResult<never>) => void;
  reject: (e: unknown) => void;
}

/** A new queue's last step: it closes at once if `signal` is aborted already, else reads. */
export function startReading(pump: StreamPump, signal: AbortSignal | undefined, close: () => void): void {
  if (signal?.aborted) return close();
  signal?.addEventListener('abort', close, { once: true });
  pump.start();
}

// Queues that a consumer waits on (a pending next()): like a socket with a pending read, such a
// queue stays alive even when nothing else refers to it.
const waitedOn = new Set<object>();

// The owner tells the stream its state (closing, serving, in use) rather than the stream asking:
// this is the path of every fault, kept monomorphic.
export class EventStream<T> {
  readonly #owner: object;
  readonly #pump: StreamPump;
  // The pump's control block: while the pump's callback runs, ref() is left there for it.
  readonly #slots: Int32Array;
  readonly #high: number;
  readonly #low: number;
  #backlog: T[] = [];
  #head = 0;
  #waiters: Waiter<T>[] = [];
  #paused = false;
  #held = false;
  #ref = true;
  #error: Error | undefined;
  #ended = false;
  #closed = false;
  #serving = false;
  #inUse = false;

  /** `owner`: the queue, kept alive while a consumer waits on it; `slots`: the pump's control block. */
  constructor(owner: object, pump: StreamPump, slots: Int32Array, high: number, low: number) {
    this.#owner = owner;
    this.#pump = pump;
    this.#slots = slots;
    this.#high = high;
    this.#low = low;
  }

  /** Items waiting for a consumer. */
  get backlog(): number { return this.#backlog.length - this.#head; }
  /** Whether reading is paused by backpressure. */
  get paused(): boolean { return this.#paused; }
  get error(): Error | undefined { return this.#error; }
  get waiting(): boolean { return this.#waiters.length > 0; }

  /** The queue is closing: the pump is not started again. */
  closing(): void {
    this.#closed = true;
    this.hold();
  }

  /** A serve loop has the pump: backpressure leaves it alone. It keeps the queue in use. */
  set serving(on: boolean) {
    this.#serving = on;
    this.hold();
  }

  /** Whether something besides a waiting consumer uses the queue (a batch handler). */
  set inUse(on: boolean) {
    this.#inUse = on;
    this.hold();
  }

  /** Queues an item the pump delivered; call delivered() after the batch's last one. */
  push(item: T): void {
    this.#backlog.push(item);
  }

  /** After a batch: hands items to waiting consumers, then stops the pump if too many wait. */
  delivered(): void {
    if (this.#waiters.length > 0) {
      this.#handOut();
      this.hold();
    }
    if (!this.#paused && this.backlog >= this.#high && !this.#closed && !this.#serving) {
      this.#paused = true;
      this.#pump.stop();
    }
  }

  #handOut(): void {
    while (this.#waiters.length > 0 && this.#head < this.#backlog.length) {
      const w = this.#waiters.shift()!;
      w.resolve({ value: w.take() as never, done: false });
    }
  }

  /** Ends every consumer with `error` once it has taken the items queued before it. */
  fail(error: Error): void {
    this.#error = error;
    this.#handOut();
    for (const w of this.#waiters.splice(0)) w.reject(error);
    this.hold();
  }

  /** The queue closed: items not taken are dropped, and waiting consumers get done. */
  end(): void {
    this.#ended = true;
    this.#closed = true;
    this.#backlog = [];
    this.#head = 0;
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
    this.hold();
  }

  /** Lets a consumer waiting on this queue keep the process alive (the default). */
  ref(on: boolean): void {
    this.#ref = on;
    if (!this.#closed) this.#setRef(on && this.#held);
  }

  // A consumer handed an item in the pump's callback usually waits again before it returns: the
  // pump then applies only the last of the two (no addon call each).
  #setRef(on: boolean): void {
    const slots = this.#slots;
    if (slots[CONTROL.deferRef] === 1) slots[CONTROL.ref] = on ? 1 : 0;
    else this.#pump.ref(on);
  }

  // Called whenever the waiters or the owner's inUse change: a waited-on queue is kept from GC
  // and (if ref'd) keeps the event loop alive; an idle one does neither.
  hold(): void {
    const held = (this.#waiters.length > 0 || this.#inUse || this.#serving) && !this.#closed;
    if (held === this.#held) return;
    this.#held = held;
    if (held) waitedOn.add(this.#owner);
    else waitedOn.delete(this.#owner);
    if (this.#ref && !this.#closed) this.#setRef(held);
  }

  #take = (): T | undefined => {
    if (this.#head >= this.#backlog.length) return undefined;
    const item = this.#backlog[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#backlog.length) {
      this.#backlog = this.#backlog.slice(this.#head);
      this.#head = 0;
    }
    this.#resumeIfLow();
    return item;
  };

  #takeAll = (): T[] | undefined => {
    if (this.#head >= this.#backlog.length) return undefined;
    const items = this.#head === 0 ? this.#backlog : this.#backlog.slice(this.#head);
    this.#backlog = [];
    this.#head = 0;
    this.#resumeIfLow();
    return items;
  };

  #resumeIfLow(): void {
    if (this.#paused && !this.#closed && this.backlog <= this.#low) {
      this.#paused = false;
      if (!this.#serving) this.#pump.start();
    }
  }

  /** The next item; resolves done when the queue is closed. */
  next(): Promise<IteratorResult<T>> {
    return this.#next(this.#take);
  }

  #next<V extends T | T[]>(take: () => V | undefined): Promise<IteratorResult<V>> {
    const value = take();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#wait({ take, resolve, reject }));
  }

  #wait(waiter: Waiter<T>): void {
    this.#waiters.push(waiter);
    this.hold();
  }

  /** Iterates items; aborting `signal` ends this iteration with its reason and leaves the queue open. */
  items(signal: AbortSignal | undefined): AsyncIterableIterator<T> {
    return this.#iterate(this.#take, signal);
  }

  /** Iterates every item waiting, as one array (never empty), one await per batch. */
  batches(signal: AbortSignal | undefined): AsyncIterableIterator<T[]> {
    return this.#iterate(this.#takeAll, signal);
  }

  #iterate<V extends T | T[]>(take: () => V | undefined, signal: AbortSignal | undefined): AsyncIterableIterator<V> {
    const stream = this;
    let done = false;
    return {
      [Symbol.asyncIterator]() { return this; },
      next(): Promise<IteratorResult<V>> {
        if (done) return Promise.resolve({ value: undefined, done: true });
        if (!signal) return stream.#next(take);
        if (signal.aborted) {
          done = true;
          return Promise.reject(signal.reason);
        }
        return new Promise((resolve, reject) => {
          const onAbort = () => {
            done = true;
            stream.#waiters = stream.#waiters.filter((w) => w !== waiter);
            stream.hold();
            reject(signal.reason);
          };
          const waiter: Waiter<T> = {
            take,
            resolve: (r) => { signal.removeEventListener('abort', onAbort); resolve(r); },
            reject: (e) => { signal.removeEventListener('abort', onAbort); reject(e); },
          };
          const value = take();
          if (value !== undefined) return resolve({ value, done: false });
          if (stream.#error) return reject(stream.#error);
          if (stream.#ended) return resolve({ value: undefined, done: true });
          signal.addEventListener('abort', onAbort, { once: true });
          stream.#wait(waiter);
        });
      },
      return(): Promise<IteratorResult<V>> {
        done = true;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
