// FaultGroup: one delivered fault group, read lazily from its batch's bytes and answered once
// through its queue.
import { checkOneOf } from '../core/args.js';
import { ErrorCodes, IommufdError } from '../core/errors.js';
import {
  decodeFaultRecord, FAULT_RECORD_SIZE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS, PGFAULT_COOKIE, PGFAULT_FLAGS_PASID_VALID, RESPONSE_CODES,
  type FaultRecord, type ResponseCode,
} from './fault.js';

/** @internal What a group answers through: its FaultQueue. */
export interface GroupOwner {
  _respond(cookie: number, generation: number, code: number, op: string, wantPromise: boolean): Promise<void> | undefined;
}

/**
 * One I/O page fault group: one PRI page request group of one device, answered as a whole.
 * Its fields are read from the records' bytes when asked for: a handler pays for the records
 * (and their BigInt addresses) only if it looks at them.
 */
export class FaultGroup {
  /** The kernel's handle for the group, which the answer names. */
  readonly cookie: number;
  #queue: GroupOwner;
  // Which delivery of the cookie this group is: the kernel reuses cookies at once.
  #generation: number;
  #view: DataView;
  #offset: number;
  #count: number;
  #faults: FaultRecord[] | undefined;
  #answered = false;

  /** @internal `count` records at `offset` of `view`, which the group may keep. */
  constructor(queue: GroupOwner, view: DataView, offset: number, count: number, generation: number) {
    this.#queue = queue;
    this.#view = view;
    this.#offset = offset;
    this.#count = count;
    this.#generation = generation;
    this.cookie = view.getUint32(offset + PGFAULT_COOKIE, true);
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
    return this.#answer('FaultGroup.respond', code, true)!;
  }

  /**
   * Answers the group like respond(), without a promise: for handlers that answer many groups
   * and do not wait on each. A stale group throws ERR_IOMMUFD_FAULT_STALE here; a refusal by the
   * kernel (EINVAL) shows only in the queue's stats.refused.
   */
  answer(code: ResponseCode = 'success'): void {
    this.#answer('FaultGroup.answer', code, false);
  }

  #answer(op: string, code: ResponseCode, promise: boolean): Promise<void> | undefined {
    const value = code === 'success' ? PAGE_RESP_SUCCESS : code === 'invalid' ? PAGE_RESP_INVALID : -1;
    if (value < 0) checkOneOf(op, 'code', code, RESPONSE_CODES);
    if (this.#answered) {
      throw new IommufdError(`${op}: fault group ${this.cookie} was already answered`, ErrorCodes.ALREADY_ANSWERED);
    }
    const p = this.#queue._respond(this.cookie, this.#generation, value, op, promise);
    this.#answered = true;
    return p;
  }
}
