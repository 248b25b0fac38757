// VeventBatch: the zero-object view over one read of a vEVENTQ fd, the vEVENT counterpart of
// FaultBatch. One object per queue, reused for every batch; the loss accounting (LOST_EVENTS
// headers and sequence gaps, across reads and the wrap) is done once per read, here, for both the
// batch handler and the iterator.
import { indexError, outOfRange } from '../core/args.js';
import { ErrorCodes, IommufdError } from '../core/errors.js';
import { decodeVevent, VEVENT_HEADER_SIZE, VEVENT_SEQUENCE_SPAN, VEVENTQ_FLAG_LOST_EVENTS, type DecodedVevent } from './vevent.js';

const HEADER = VEVENT_HEADER_SIZE;
const SPAN = VEVENT_SEQUENCE_SPAN;

/**
 * One read's vEVENT records, valid while the handler it was passed to runs. Records are indexed
 * 0..length-1; each is an event, or a LOST_EVENTS header (isLostHeader(i)) that stands for
 * events the kernel dropped because the queue was full. lost(i) says how many events were lost
 * at record i: all a LOST_EVENTS header stands for, or for an event those missing from the
 * sequence just before it (a gap: the kernel drops its LOST_EVENTS header once a newer event is
 * queued). After the handler returns every call throws ERR_IOMMUFD_BATCH_ENDED.
 */
export class VeventBatch {
  /** The vEVENTQ type (VEVENTQ_TYPE_*): what the data bytes are. */
  readonly type: number;
  /** @internal */
  readonly _dataSize: number;
  /** @internal Bytes of records in this read. */
  _byteLength = 0;
  // The sequence of the last record of the previous reads (-1: none yet).
  #last = -1;
  #view: DataView = new DataView(new ArrayBuffer(0));
  #records = 0;
  #offsets = new Int32Array(1024);
  #lost = new Uint32Array(1024);
  #flags = new Uint8Array(1024);
  #live = false;
  /** @internal Totals of the last read, for the queue's stats. */
  _events = 0;
  _lost = 0;
  _overflows = 0;
  _gaps = 0;

  /** @internal */
  constructor(type: number, dataSize: number) {
    this.type = type;
    this._dataSize = dataSize;
  }

  /** @internal Opens the batch over `byteLength` bytes of records in `bytes`; counts the losses. */
  _begin(bytes: Uint8Array, byteLength: number): void {
    if (this.#view.buffer !== bytes.buffer || this.#view.byteLength !== bytes.byteLength) {
      this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const most = Math.floor(byteLength / VEVENT_HEADER_SIZE);
    if (most > this.#offsets.length) {
      this.#offsets = new Int32Array(most);
      this.#lost = new Uint32Array(most);
      this.#flags = new Uint8Array(most);
    }
    if (!Number.isInteger(byteLength) || byteLength < 0 || byteLength > this.#view.byteLength) {
      throw new RangeError(`vEVENT records: ${byteLength} bytes is not within the ${this.#view.byteLength} bytes given`);
    }
    // One pass, inline (the fast path's cost): where each record starts, and what was lost before
    // it. Every event, lost or not, took a number; a new queue numbers from 0.
    const v = this.#view;
    const size = this._dataSize;
    const offsets = this.#offsets, lostAt = this.#lost, kinds = this.#flags;
    let last = this.#last;
    let n = 0, off = 0;
    let events = 0, lost = 0, overflows = 0, gaps = 0;
    while (off < byteLength) {
      if (off + HEADER > byteLength) throw new RangeError(`vEVENT records: a header cut short at byte ${off} of ${byteLength}`);
      const header = (v.getUint32(off, true) & VEVENTQ_FLAG_LOST_EVENTS) !== 0;
      const sequence = v.getUint32(off + 4, true);
      if (sequence >= SPAN) throw outOfRange('vEVENT records', 'sequence', 'at most 2^31-1', sequence);
      if (!header && off + HEADER + size > byteLength) throw new RangeError(`vEVENT records: an event cut short at byte ${off} of ${byteLength}`);
      const delta = last < 0 ? sequence + 1 : sequence > last ? sequence - last : sequence - last + SPAN;
      const k = header ? delta : delta - 1;
      if (header) overflows++;
      else {
        events++;
        if (k > 0) gaps++;
      }
      lost += k;
      offsets[n] = off;
      lostAt[n] = k;
      kinds[n] = header ? 1 : 0;
      n++;
      last = sequence;
      off += header ? HEADER : HEADER + size;
    }
    this.#last = last;
    this._byteLength = byteLength;
    this.#records = n;
    this._events = events;
    this._lost = lost;
    this._overflows = overflows;
    this._gaps = gaps;
    this.#live = true;
  }

  /** @internal */
  _end(): void { this.#live = false; }

  #check(op: string): void {
    if (!this.#live) throw new IommufdError(`VeventBatch.${op}: the batch is over (its handler returned)`, ErrorCodes.BATCH_ENDED);
  }

  // Record i's offset, after one inline test on the fast path (typeof first: `>>>` throws on a
  // bigint); the error is built only when it fails.
  #index(op: string, i: number): number {
    if (this.#live && typeof i === 'number' && i >>> 0 === i && i < this.#records) return this.#offsets[i];
    this.#check(op);
    throw indexError(`VeventBatch.${op}`, 'index', i, this.#records);
  }

  /** Records in this read. */
  get length(): number { this.#check('length'); return this.#records; }

  /** The bytes of the read (header and data of every record), for zero-copy decoders: see dataOffset(). */
  get view(): DataView { this.#check('view'); return this.#view; }

  /** The record's sequence number (a LOST_EVENTS header's: the last lost event's). */
  sequence(i: number): number { return this.#view.getUint32(this.#index('sequence', i) + 4, true); }

  /** The record's header flags. */
  flags(i: number): number { return this.#view.getUint32(this.#index('flags', i), true); }

  /** Whether record i is a LOST_EVENTS header (no data). */
  isLostHeader(i: number): boolean { this.#index('isLostHeader', i); return this.#flags[i] === 1; }

  /** Events lost at record i (see the class comment); 0 for almost every event. */
  lost(i: number): number { this.#index('lost', i); return this.#lost[i]; }

  /** Where record i's data starts in `view`, or -1 for a LOST_EVENTS header. */
  dataOffset(i: number): number {
    const off = this.#index('dataOffset', i);
    return this.#flags[i] === 1 ? -1 : off + VEVENT_HEADER_SIZE;
  }

  /** Record i's data bytes: a view of the read buffer, valid only during the handler (slice() to keep). */
  data(i: number): Uint8Array {
    const off = this.#index('data', i);
    if (this.#flags[i] === 1) return new Uint8Array(0);
    const v = this.#view;
    return new Uint8Array(v.buffer, v.byteOffset + off + VEVENT_HEADER_SIZE, this._dataSize);
  }

  /** Record i's fields decoded by type (undefined for a LOST_EVENTS header or an unknown type). */
  decode(i: number): DecodedVevent | undefined {
    const off = this.#index('decode', i);
    return this.#flags[i] === 1 ? undefined : decodeVevent(this.type, this.#view, off + VEVENT_HEADER_SIZE);
  }
}
