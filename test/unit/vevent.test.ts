// vEVENTQ record decoding and loss accounting on synthetic bytes (issue 13's groundwork): the
// scenarios of docs/veventq-kernel-facts.md section 5, and the sequence wrap, which no test can
// reach through the kernel (2^31 events on one queue).
import { describe, expect, it } from 'vitest';
import {
  forEachVevent, VEVENT_HEADER_SIZE, VEVENTQ_FLAG_LOST_EVENTS, VEVENTQ_TYPE_ARM_SMMUV3, VEVENTQ_TYPE_SELFTEST,
  VEVENTQ_TYPE_TEGRA241_CMDQV, veventDataSize, VeventSequence,
} from '../../lib/vevent.js';

/** Records of the selftest type: [sequence, virtId] events, or [sequence] for a LOST header. */
function selftest(records: ([number, number] | [number])[]): DataView {
  const size = records.reduce((n, r) => n + VEVENT_HEADER_SIZE + (r.length === 2 ? 4 : 0), 0);
  const v = new DataView(new ArrayBuffer(size));
  let off = 0;
  for (const r of records) {
    v.setUint32(off, r.length === 2 ? 0 : VEVENTQ_FLAG_LOST_EVENTS, true);
    v.setUint32(off + 4, r[0], true);
    off += VEVENT_HEADER_SIZE;
    if (r.length === 2) {
      v.setUint32(off, r[1], true);
      off += 4;
    }
  }
  return v;
}

function read(v: DataView, seq = new VeventSequence()) {
  const out: { sequence: number; virtId?: number; lost: number }[] = [];
  forEachVevent(v, v.byteLength, veventDataSize(VEVENTQ_TYPE_SELFTEST), (_off, flags, sequence, data) => {
    const lostHeader = (flags & VEVENTQ_FLAG_LOST_EVENTS) !== 0;
    out.push({ sequence, ...(data >= 0 ? { virtId: v.getUint32(data, true) } : {}), lost: seq.see(sequence, lostHeader) });
  });
  return out;
}

describe('vEVENT records', () => {
  it('data sizes come from the uAPI mirror, by type', () => {
    expect(veventDataSize(VEVENTQ_TYPE_SELFTEST)).toBe(4);
    expect(veventDataSize(VEVENTQ_TYPE_ARM_SMMUV3)).toBe(32);
    expect(veventDataSize(VEVENTQ_TYPE_TEGRA241_CMDQV)).toBe(16);
    expect(() => veventDataSize(77)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('splits 12-byte selftest events and 8-byte LOST headers', () => {
    // depth 2, five triggers: seq 0 and 1 queued, 2..4 lost; the LOST header ends with seq 4.
    expect(read(selftest([[0, 0x88], [1, 0x88], [4]]))).toEqual([
      { sequence: 0, virtId: 0x88, lost: 0 }, { sequence: 1, virtId: 0x88, lost: 0 }, { sequence: 4, lost: 3 },
    ]);
  });

  it('a loss the kernel dropped the LOST header of shows as a gap, across reads', () => {
    const seq = new VeventSequence();
    expect(read(selftest([[0, 1]]), seq)).toEqual([{ sequence: 0, virtId: 1, lost: 0 }]);
    expect(read(selftest([[1, 1], [5, 1]]), seq)).toEqual([{ sequence: 1, virtId: 1, lost: 0 }, { sequence: 5, virtId: 1, lost: 3 }]);
    expect(seq.last).toBe(5);
  });

  it('the event after a delivered LOST header adds no gap', () => {
    expect(read(selftest([[0, 1], [3], [4, 1]])).map((r) => r.lost)).toEqual([0, 3, 0]); // 1, 2 and 3 lost
  });

  it('wraps from INT_MAX to 0 without a false gap, and counts a gap across the wrap', () => {
    const seq = new VeventSequence();
    const max = 2 ** 31 - 1;
    expect(read(selftest([[max - 1, 1], [max, 1], [0, 1], [1, 1]]), seq).map((r) => r.lost)).toEqual([max - 1, 0, 0, 0]);
    expect(read(selftest([[max - 1, 1], [2, 1]]), new VeventSequence()).map((r) => r.lost)).toEqual([max - 1, 3]);
    expect(read(selftest([[max - 2, 1], [max]]), new VeventSequence()).map((r) => r.lost)).toEqual([max - 2, 2]);
    expect(() => seq.see(2 ** 31, false)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('a record cut short is a RangeError, never a misread', () => {
    const v = selftest([[0, 1], [1, 1]]);
    expect(() => forEachVevent(v, 20, 4, () => {})).toThrow(/event cut short at byte 12/);
    expect(() => forEachVevent(v, 16, 4, () => {})).toThrow(/header cut short at byte 12|event cut short at byte 12/);
    expect(() => forEachVevent(v, 30, 4, () => {})).toThrow(RangeError);
  });
});
