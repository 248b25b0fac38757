// FaultBatch: the zero-object view over one read of the fault fd. One object per queue, reused for
// every batch: accessors read the pump's bytes by index, answers are encoded straight into the
// answer buffer the pump writes from when the handler returns. No object, promise or Map entry
// per fault.
import type { AnswerBuffer } from './answers.js';
import { checkOneOf, indexError, outOfRange } from '../core/args.js';
import { CopyPool } from '../core/copy_pool.js';
import { ErrorCodes, IommufdError } from '../core/errors.js';
import {
  decodeFaultRecord, FAULT_RECORD_SIZE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS, PGFAULT_COOKIE, PGFAULT_FLAGS_LAST_PAGE,
  PGFAULT_FLAGS_PASID_VALID, RESPONSE_CODES, type FaultRecord, type ResponseCode,
} from './fault.js';
import type { FaultGroup } from './fault_group.js';

const OPEN = 0;
const ANSWERED = 1;
const KEPT = 2;
const HI = 2 ** 32;
// struct iommu_hwpt_pgfault in u32 words: flags is word 0.
const WORDS = FAULT_RECORD_SIZE / 4;
const COOKIE = PGFAULT_COOKIE / 4;

/** @internal What a batch's owner lets it do beyond answering now. */
export interface BatchOwner {
  /** Turns a group (`count` records at `offset` of a copy of the batch) into a FaultGroup answerable
   *  later (undefined: a serve loop, which cannot). */
  keep?(bytes: DataView, offset: number, count: number): FaultGroup;
  /** Writes the answers made so far now. */
  flush(): void;
  /** Ends the serve loop after this batch (undefined outside one). */
  stop?(): void;
}

/**
 * One read's fault groups, valid while the handler it was passed to runs. Groups are indexed
 * 0..groupCount-1, records 0..recordCount-1; `first(g)` and `size(g)` map one to the other. The
 * record accessors take a record index. Answers are by group index. After the handler returns,
 * every call throws ERR_IOMMUFD_BATCH_ENDED: the bytes belong to the next read by then; keep(g)
 * what must be answered later.
 */
export class FaultBatch {
  #view: DataView = new DataView(new ArrayBuffer(0));
  // The same bytes as u32 words in the CPU's byte order (struct iommu_hwpt_pgfault is 10 of them):
  // the per-record reads of the hot path (_begin, answer) index it instead of a DataView call.
  #words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
  #records = 0;
  #groups = 0;
  // Record index where each group starts, plus one past the last group.
  #starts = new Int32Array(1025);
  // Each group's cookie, the word its answer needs.
  #cookies = new Uint32Array(1024);
  #state = new Uint8Array(1024);
  #open = 0;
  #live = false;
  #answers: AnswerBuffer;
  #owner: BatchOwner;
  // Where this batch's records were copied for kept groups (-1: not yet).
  #copyAt = -1;
  #pool = new CopyPool();

  /** @internal */
  constructor(answers: AnswerBuffer, owner: BatchOwner) {
    this.#answers = answers;
    this.#owner = owner;
  }

  /** @internal Opens the batch over `byteLength` bytes of records in `bytes`. */
  _begin(bytes: Uint8Array, byteLength: number): void {
    if (this.#view.buffer !== bytes.buffer || this.#view.byteLength !== bytes.byteLength) {
      this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.#words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2); // the pump's buffer is aligned
    }
    const records = byteLength / FAULT_RECORD_SIZE;
    if (records + 1 > this.#starts.length) {
      this.#starts = new Int32Array(records + 1);
      this.#cookies = new Uint32Array(records);
      this.#state = new Uint8Array(records);
    }
    // Group boundaries as forEachFaultGroup finds them: at LAST_PAGE, or where the cookie changes.
    const w = this.#words;
    const starts = this.#starts;
    const cookies = this.#cookies;
    let groups = 0;
    let start = 0;
    for (let r = 0; r < records; r++) {
      const cookie = w[r * WORDS + COOKIE];
      if (r > start && cookie !== cookies[groups]) {
        starts[groups++] = start;
        start = r;
      }
      if (r === start) cookies[groups] = cookie;
      if (w[r * WORDS] & PGFAULT_FLAGS_LAST_PAGE) {
        starts[groups++] = start;
        start = r + 1;
      }
    }
    if (start < records) starts[groups++] = start;
    starts[groups] = records;
    this.#state.fill(OPEN, 0, groups);
    this.#records = records;
    this.#groups = groups;
    this.#open = groups;
    this.#copyAt = -1;
    this.#live = true;
  }

  /** @internal Ends the batch: nothing may use it any more. */
  _end(): void { this.#live = false; }

  /** @internal Whether its handler is running. */
  get _live(): boolean { return this.#live; }

  /** @internal Groups neither answered nor kept. */
  get _unanswered(): number { return this.#open; }

  #check(op: string): void {
    if (!this.#live) throw new IommufdError(`FaultBatch.${op}: the batch is over (its handler returned); keep() a group to answer it later`, ErrorCodes.BATCH_ENDED);
  }

  // Record r's offset, after one inline test on the fast path (typeof first: `>>>` throws on a
  // bigint); the error is built only when it fails.
  #rec(r: number, op: string): number {
    if (this.#live && typeof r === 'number' && r >>> 0 === r && r < this.#records) return r * FAULT_RECORD_SIZE;
    this.#check(op);
    throw indexError(`FaultBatch.${op}`, 'record', r, this.#records);
  }

  #grp(g: number, op: string): void {
    if (this.#live && typeof g === 'number' && g >>> 0 === g && g < this.#groups) return;
    this.#check(op);
    throw indexError(`FaultBatch.${op}`, 'group', g, this.#groups);
  }

  /** Fault groups in this batch. */
  get groupCount(): number { this.#check('groupCount'); return this.#groups; }
  /** Records (pages) in this batch. */
  get recordCount(): number { this.#check('recordCount'); return this.#records; }
  /** The record index of group `g`'s first record. */
  first(g: number): number { this.#grp(g, 'first'); return this.#starts[g]; }
  /** How many records group `g` has. */
  size(g: number): number { this.#grp(g, 'size'); return this.#starts[g + 1] - this.#starts[g]; }

  /** PGFAULT_FLAGS_* of record `r`. */
  flags(r: number): number { return this.#view.getUint32(this.#rec(r, 'flags'), true) & 3; }
  /** The iommufd device id of record `r`. */
  deviceId(r: number): number { return this.#view.getUint32(this.#rec(r, 'deviceId') + 4, true); }
  /** The PASID of record `r`, or -1 when the request carried none. */
  pasid(r: number): number {
    const off = this.#rec(r, 'pasid');
    return this.#view.getUint32(off, true) & PGFAULT_FLAGS_PASID_VALID ? this.#view.getUint32(off + 8, true) : -1;
  }
  /** The PRI page request group index of record `r`. */
  groupId(r: number): number { return this.#view.getUint32(this.#rec(r, 'groupId') + 12, true); }
  /** PGFAULT_PERM_* of record `r`. */
  perm(r: number): number { return this.#view.getUint32(this.#rec(r, 'perm') + 16, true); }
  /** The faulting address of record `r` as a number; a RangeError above 2^53 (use addressBigInt). */
  address(r: number): number {
    const off = this.#rec(r, 'address');
    const hi = this.#view.getUint32(off + 28, true);
    if (hi >= 0x200000) throw outOfRange('FaultBatch.address', 'the address', 'below 2^53 (read it with addressBigInt)', this.#view.getBigUint64(off + 24, true));
    return hi * HI + this.#view.getUint32(off + 24, true);
  }
  /** The faulting address of record `r`. */
  addressBigInt(r: number): bigint { return this.#view.getBigUint64(this.#rec(r, 'addressBigInt') + 24, true); }
  /** The length field of record `r` (0 for PRI: one page). */
  length(r: number): number { return this.#view.getUint32(this.#rec(r, 'length') + 32, true); }
  /** The kernel's cookie of record `r`'s group. */
  cookie(r: number): number { return this.#view.getUint32(this.#rec(r, 'cookie') + PGFAULT_COOKIE, true); }
  /** Record `r` decoded into an object (allocates: for logging and slow paths). */
  record(r: number): FaultRecord { return decodeFaultRecord(this.#view, this.#rec(r, 'record')); }

  /** Whether group `g` was answered (or kept) already. */
  answered(g: number): boolean { this.#grp(g, 'answered'); return this.#state[g] !== OPEN; }

  /**
   * Answers group `g` (default 'success'); the pump writes the batch's answers in one write(2)
   * when the handler returns. A refusal by the kernel shows in the queue's stats.refused.
   */
  answer(g: number, code: ResponseCode = 'success'): void {
    this.#grp(g, 'answer');
    const value = code === 'success' ? PAGE_RESP_SUCCESS : code === 'invalid' ? PAGE_RESP_INVALID : codeError('answer', code);
    if (this.#state[g] !== OPEN) throw alreadyAnswered('answer', this.#cookies[g], this.#state[g]);
    this.#state[g] = ANSWERED;
    this.#open--;
    this.#answers.add(this.#cookies[g], value);
  }

  /** Answers every group not answered or kept yet (default 'success'); returns how many. */
  answerAll(code: ResponseCode = 'success'): number {
    this.#check('answerAll');
    const value = code === 'success' ? PAGE_RESP_SUCCESS : code === 'invalid' ? PAGE_RESP_INVALID : codeError('answerAll', code);
    if (this.#open === 0) return 0;
    const n = this.#open;
    for (let g = 0; g < this.#groups; g++) {
      if (this.#state[g] !== OPEN) continue;
      this.#state[g] = ANSWERED;
      this.#answers.add(this.#cookies[g], value);
    }
    this.#open = 0;
    return n;
  }

  /**
   * Keeps group `g` to answer after the handler returns: a FaultGroup with a copy of its records,
   * answered through the queue like the async iterator's groups. Not in a serve loop, whose
   * answers are all made before it reads again.
   */
  keep(g: number): FaultGroup {
    this.#grp(g, 'keep');
    const keep = this.#owner.keep;
    if (!keep) throw Object.assign(new Error('FaultBatch.keep: a serve loop answers every group before its next read; answer it now'), { code: 'ERR_INVALID_STATE' });
    if (this.#state[g] !== OPEN) throw alreadyAnswered('keep', this.#cookies[g], this.#state[g]);
    // One copy of the batch's records, shared by every group kept from it.
    if (this.#copyAt < 0) this.#copyAt = this.#pool.copy(this.#view.buffer, this.#view.byteOffset, this.#records * FAULT_RECORD_SIZE);
    this.#state[g] = KEPT;
    this.#open--;
    const start = this.#starts[g];
    return keep(this.#pool.view, this.#copyAt + start * FAULT_RECORD_SIZE, this.#starts[g + 1] - start);
  }

  /** Writes the answers made so far now, before the handler returns (e.g. before slow work). */
  flush(): void {
    this.#check('flush');
    this.#owner.flush();
  }

  /** In a serve loop: return from it after this batch (faults still queued stay in the kernel). */
  stopServing(): void {
    this.#check('stopServing');
    if (!this.#owner.stop) throw Object.assign(new Error('FaultBatch.stopServing: not in a serve loop'), { code: 'ERR_INVALID_STATE' });
    this.#owner.stop();
  }
}

function codeError(op: string, code: unknown): never {
  checkOneOf(`FaultBatch.${op}`, 'code', code, RESPONSE_CODES);
  throw new Error('unreachable');
}

function alreadyAnswered(op: string, cookie: number, state: number): never {
  throw new IommufdError(`FaultBatch.${op}: fault group ${cookie} was already ${state === KEPT ? 'kept' : 'answered'}`, ErrorCodes.ALREADY_ANSWERED);
}
