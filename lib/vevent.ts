// Decoding of vEVENTQ records and their loss accounting (pure: no kernel). The queue object that
// reads them comes with issue 13; see docs/veventq-kernel-facts.md for what the kernel does.
//
// A read() returns whole records: an 8-byte header {flags, sequence} and the type's data (its size
// is the type's: the header has none), or a LOST_EVENTS header alone. Every event the kernel
// reports takes a sequence number, lost ones included, counting 0..INT_MAX and wrapping to 0. A
// LOST_EVENTS header carries the number of the last lost event; once a newer event is queued the
// kernel drops it, and the loss shows only as a gap in the numbers.
import { binding } from './binding.js';

const V = binding.vevent;
export const VEVENT_HEADER_SIZE: number = V.headerSize;
export const VEVENTQ_FLAG_LOST_EVENTS: number = V.flagLostEvents;
/** vEVENTQ types (IOMMU_VEVENTQ_TYPE_*). */
export const VEVENTQ_TYPE_ARM_SMMUV3: number = V.types.armSmmuv3;
export const VEVENTQ_TYPE_TEGRA241_CMDQV: number = V.types.tegra241Cmdqv;
export const VEVENTQ_TYPE_SELFTEST: number = V.types.selftest;

const SEQUENCE_SPAN = 2 ** 31; // sequences count 0..INT_MAX

/** The data size of a vEVENTQ type's records; a RangeError for a type the mirror does not know. */
export function veventDataSize(type: number): number {
  const size = V.dataSize[type];
  if (size === undefined) throw Object.assign(new RangeError(`vEVENTQ type ${type} has no known record layout`), { code: 'ERR_OUT_OF_RANGE' });
  return size;
}

/**
 * Calls `onRecord(offset, flags, sequence, dataOffset)` for each record in `byteLength` bytes:
 * dataOffset is -1 for a LOST_EVENTS header. A record cut short is a RangeError (the kernel copies
 * whole records only).
 */
export function forEachVevent(view: DataView, byteLength: number, dataSize: number,
  onRecord: (offset: number, flags: number, sequence: number, dataOffset: number) => void): void {
  if (!Number.isInteger(byteLength) || byteLength < 0 || byteLength > view.byteLength) {
    throw new RangeError(`vEVENT records: ${byteLength} bytes is not within the ${view.byteLength} bytes given`);
  }
  let off = 0;
  while (off < byteLength) {
    if (off + VEVENT_HEADER_SIZE > byteLength) throw new RangeError(`vEVENT records: a header cut short at byte ${off} of ${byteLength}`);
    const flags = view.getUint32(off, true);
    const sequence = view.getUint32(off + 4, true);
    if (flags & VEVENTQ_FLAG_LOST_EVENTS) {
      onRecord(off, flags, sequence, -1);
      off += VEVENT_HEADER_SIZE;
      continue;
    }
    if (off + VEVENT_HEADER_SIZE + dataSize > byteLength) throw new RangeError(`vEVENT records: an event cut short at byte ${off} of ${byteLength}`);
    onRecord(off, flags, sequence, off + VEVENT_HEADER_SIZE);
    off += VEVENT_HEADER_SIZE + dataSize;
  }
}

/**
 * Counts the events lost between the records a reader sees, across reads and across the wrap.
 * `see()` takes each record in order and returns how many events were lost just before it (for a
 * LOST_EVENTS header: the events it stands for, its own number included).
 */
export class VeventSequence {
  #last: number | undefined;

  /** The sequence of the last record seen, or undefined before the first. */
  get last(): number | undefined { return this.#last; }

  see(sequence: number, lostHeader: boolean): number {
    if (!(Number.isInteger(sequence) && sequence >= 0 && sequence < SEQUENCE_SPAN)) {
      throw Object.assign(new RangeError(`vEVENT sequence ${sequence} is not in 0..2^31-1`), { code: 'ERR_OUT_OF_RANGE' });
    }
    const prev = this.#last;
    this.#last = sequence;
    // A new queue numbers from 0: before the first record, everything below it was lost.
    const delta = prev === undefined ? sequence + 1 : (sequence - prev + SEQUENCE_SPAN) % SEQUENCE_SPAN;
    return lostHeader ? delta : delta - 1;
  }
}
