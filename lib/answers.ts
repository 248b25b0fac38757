// The answer buffer a pump writes from: responses encoded by JS (a FaultBatch's answers, a
// FaultGroup's), and the control block JS and the native pump share (layout: binding.pumpControl).
import { binding, type NativeFaultPump } from './binding.js';
import { FAULT_RESPONSE_SIZE } from './fault.js';

export const CONTROL = binding.pumpControl;

export class AnswerBuffer {
  bytes: Uint8Array;
  view: DataView;
  readonly slots: Int32Array;
  readonly counters: Float64Array;
  readonly #pump: NativeFaultPump;

  /** `control`: a SharedArrayBuffer when another thread reads the counters. */
  constructor(pump: NativeFaultPump, control: ArrayBuffer | SharedArrayBuffer = new ArrayBuffer(CONTROL.bytes), records = 1024) {
    this.#pump = pump;
    this.slots = new Int32Array(control);
    this.counters = new Float64Array(control, 0, CONTROL.bytes / 8);
    this.bytes = new Uint8Array(records * FAULT_RESPONSE_SIZE);
    this.view = new DataView(this.bytes.buffer);
    pump.setAnswers(this.bytes, this.slots);
  }

  /** Responses encoded and not yet written. */
  get waiting(): number { return this.slots[CONTROL.answers]; }

  /** Encodes {cookie, code} as the next response; returns its index in this write. */
  add(cookie: number, code: number): number {
    const n = this.slots[CONTROL.answers];
    if ((n + 1) * FAULT_RESPONSE_SIZE > this.bytes.byteLength) this.#grow();
    this.view.setUint32(n * FAULT_RESPONSE_SIZE, cookie, true);
    this.view.setUint32(n * FAULT_RESPONSE_SIZE + 4, code, true);
    this.slots[CONTROL.answers] = n + 1;
    return n;
  }

  #grow(): void {
    const bigger = new Uint8Array(this.bytes.byteLength * 2);
    bigger.set(this.bytes);
    this.bytes = bigger;
    this.view = new DataView(bigger.buffer);
    this.#pump.setAnswers(bigger, this.slots);
  }

  /** The cookie of waiting response `i`. */
  cookie(i: number): number { return this.view.getUint32(i * FAULT_RESPONSE_SIZE, true); }

  /** A counter of the control block (CONTROL.answered, ...). */
  count(slot: number): number { return this.counters[slot]; }
}
