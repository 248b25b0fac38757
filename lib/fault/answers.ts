// Answering: the answer buffer a pump writes from (responses encoded by JS: a FaultBatch's
// answers, a FaultGroup's) and the control block JS and the native pump share (layout:
// binding.pumpControl); respond()'s promises; and the INVALID answers that end a queue.
import { CONTROL, type NativeEventPump } from '../core/binding.js';
import { encodeResponse, FAULT_RESPONSE_SIZE, forEachFaultGroup, PAGE_RESP_INVALID, PGFAULT_COOKIE } from './fault.js';

export class AnswerBuffer {
  bytes: Uint8Array;
  // The responses as u32 words in the CPU's byte order, as the kernel reads struct
  // iommu_hwpt_page_response. Indexing them (and the records' words, FaultBatch) instead of
  // DataView calls took a handler's answer from ~20 to ~7 ns on the host (docs/benchmarks.md).
  words: Uint32Array;
  readonly slots: Int32Array;
  readonly counters: Float64Array;
  readonly #pump: NativeEventPump;

  /** `control`: a SharedArrayBuffer when another thread reads the counters. */
  constructor(pump: NativeEventPump, control: ArrayBuffer | SharedArrayBuffer = new ArrayBuffer(CONTROL.bytes), records = 1024) {
    this.#pump = pump;
    this.slots = new Int32Array(control);
    this.counters = new Float64Array(control, 0, CONTROL.bytes / 8);
    this.bytes = new Uint8Array(records * FAULT_RESPONSE_SIZE);
    this.words = new Uint32Array(this.bytes.buffer);
    pump.setAnswers(this.bytes, this.slots);
  }

  /** Responses encoded and not yet written. */
  get waiting(): number { return this.slots[CONTROL.answers]; }

  /** Encodes {cookie, code} as the next response; returns its index in this write. */
  add(cookie: number, code: number): number {
    const n = this.slots[CONTROL.answers];
    const words = 2 * n + 2 > this.words.length ? this.#grow() : this.words;
    words[2 * n] = cookie;
    words[2 * n + 1] = code;
    this.slots[CONTROL.answers] = n + 1;
    return n;
  }

  #grow(): Uint32Array {
    const bigger = new Uint8Array(this.bytes.byteLength * 2);
    bigger.set(this.bytes);
    this.bytes = bigger;
    this.words = new Uint32Array(bigger.buffer);
    this.#pump.setAnswers(bigger, this.slots);
    return this.words;
  }

  /** The cookie of waiting response `i`. */
  cookie(i: number): number { return this.words[2 * i]; }

  /** A counter of the control block (CONTROL.answered, ...). */
  count(slot: number): number { return this.counters[slot]; }
}

const ignore = () => {};

/**
 * Answers INVALID every group in `pending` and every group the kernel still has queued, then closes
 * the pump: the end of every queue, closed or abandoned. `pending` maps cookie to generation.
 * Answers waiting in the answer buffer are written first.
 */
export function answerRest(pump: NativeEventPump, pending: Map<number, number>): { stale: number; accepted: number; refused: number } {
  let stale = 0;
  try {
    pump.stop();
    pump.writeAnswers();
    pump.setCallbacks(collect, ignore);
    pump.read();
    const n = pending.size;
    if (n === 0) return { stale, accepted: 0, refused: 0 };
    const bytes = new Uint8Array(n * FAULT_RESPONSE_SIZE);
    const view = new DataView(bytes.buffer);
    let k = 0;
    for (const cookie of pending.keys()) encodeResponse(view, k++ * FAULT_RESPONSE_SIZE, cookie, PAGE_RESP_INVALID);
    pending.clear();
    const failed = pump.write(bytes);
    const refused = failed ? failed.length / 2 : 0;
    return { stale, accepted: n - refused, refused };
  } finally {
    pump.close();
  }
  function collect(batch: Uint8Array, byteLength: number) {
    const view = new DataView(batch.buffer, batch.byteOffset, byteLength);
    forEachFaultGroup(view, byteLength, (offset) => {
      const cookie = view.getUint32(offset + PGFAULT_COOKIE, true);
      if (pending.has(cookie)) stale++;
      pending.set(cookie, 0);
    });
  }
}

interface Flight {
  resolve: () => void;
  reject: (e: Error) => void;
  promise: Promise<void>;
  /** Its answer's index in the answer buffer's current write. */
  index: number;
}


/**
 * Rejects an answer's promise, first giving it a handler so that an ignored promise never becomes
 * an unhandled rejection. Done here, on the rare failure, rather than with a .catch() per answer:
 * that was a second promise and a closure for every fault.
 */
function refuse(flight: Flight, error: Error): void {
  flight.promise.catch(ignore);
  flight.reject(error);
}

/** respond()'s promises, waiting for the write of their answers. */
export class Flights {
  #list: Flight[] = [];

  /** A promise for the answer at `index` of the answer buffer. */
  add(index: number): Promise<void> {
    const f: Flight = { resolve: ignore, reject: ignore, promise: undefined as unknown as Promise<void>, index };
    f.promise = new Promise<void>((resolve, reject) => {
      f.resolve = resolve;
      f.reject = reject;
    });
    this.#list.push(f);
    return f.promise;
  }

  /** Settles them after a write: `failed` holds [index, errno] pairs of refused answers. */
  settle(failed: Int32Array | undefined, error: (index: number, errno: number) => Error): void {
    const list = this.#list;
    if (list.length === 0) return;
    this.#list = [];
    if (!failed) {
      for (const f of list) f.resolve(); // the usual case: the kernel took every answer
      return;
    }
    const refused = new Map<number, number>();
    for (let k = 0; k < failed.length; k += 2) refused.set(failed[k], failed[k + 1]);
    for (const f of list) {
      const errno = refused.get(f.index);
      if (errno === undefined) f.resolve();
      else refuse(f, error(f.index, errno));
    }
  }

  /** The write itself failed: every waiting answer with it. */
  failAll(error: Error): void {
    const list = this.#list;
    this.#list = [];
    for (const f of list) refuse(f, error);
  }
}
