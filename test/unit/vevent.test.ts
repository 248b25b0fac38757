// vEVENTQ record decoding and loss accounting on synthetic bytes (issue 13's groundwork): the
// scenarios of docs/veventq-kernel-facts.md section 5, and the sequence wrap, which no test can
// reach through the kernel (2^31 events on one queue).
import { describe, expect, it } from 'vitest';
import { VeventBatch } from '../../lib/vevent/vevent_batch.js';
import {
  type ArmSmmuv3Vevent, decodeArmSmmuv3Vevent, decodeVevent, VEVENT_HEADER_SIZE, VEVENTQ_FLAG_LOST_EVENTS, VEVENTQ_TYPE_ARM_SMMUV3, VEVENTQ_TYPE_SELFTEST,
  VEVENTQ_TYPE_TEGRA241_CMDQV, veventDataSize,
} from '../../lib/vevent/vevent.js';

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

function read(v: DataView, batch = new VeventBatch(VEVENTQ_TYPE_SELFTEST, veventDataSize(VEVENTQ_TYPE_SELFTEST))) {
  batch._begin(new Uint8Array(v.buffer), v.byteLength);
  const out = Array.from({ length: batch.length }, (_, i) => ({
    sequence: batch.sequence(i), ...(batch.isLostHeader(i) ? {} : { virtId: (batch.decode(i) as { virtId: number }).virtId }), lost: batch.lost(i),
  }));
  batch._end();
  return out;
}

const selftestBatch = () => new VeventBatch(VEVENTQ_TYPE_SELFTEST, 4);

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
    const seq = selftestBatch();
    expect(read(selftest([[0, 1]]), seq)).toEqual([{ sequence: 0, virtId: 1, lost: 0 }]);
    expect(read(selftest([[1, 1], [5, 1]]), seq)).toEqual([{ sequence: 1, virtId: 1, lost: 0 }, { sequence: 5, virtId: 1, lost: 3 }]);
    expect(read(selftest([[6, 1]]), seq)).toEqual([{ sequence: 6, virtId: 1, lost: 0 }]);
  });

  it('the event after a delivered LOST header adds no gap', () => {
    expect(read(selftest([[0, 1], [3], [4, 1]])).map((r) => r.lost)).toEqual([0, 3, 0]); // 1, 2 and 3 lost
  });

  it('wraps from INT_MAX to 0 without a false gap, and counts a gap across the wrap', () => {
    const max = 2 ** 31 - 1;
    expect(read(selftest([[max - 1, 1], [max, 1], [0, 1], [1, 1]])).map((r) => r.lost)).toEqual([max - 1, 0, 0, 0]);
    expect(read(selftest([[max - 1, 1], [2, 1]])).map((r) => r.lost)).toEqual([max - 1, 3]);
    expect(read(selftest([[max - 2, 1], [max]])).map((r) => r.lost)).toEqual([max - 2, 2]);
    expect(() => read(selftest([[2 ** 31, 1]]))).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('a record cut short is a RangeError, never a misread', () => {
    const v = new Uint8Array(selftest([[0, 1], [1, 1]]).buffer);
    expect(() => selftestBatch()._begin(v, 20)).toThrow(/event cut short at byte 12/);
    expect(() => selftestBatch()._begin(v, 16)).toThrow(/header cut short at byte 12|event cut short at byte 12/);
    expect(() => selftestBatch()._begin(v, 30)).toThrow(RangeError);
  });
});

describe('VeventBatch (the view the queue and its handler share)', () => {
  const u8 = (v: DataView) => new Uint8Array(v.buffer);
  function batchOf(v: DataView, batch = new VeventBatch(VEVENTQ_TYPE_SELFTEST, 4)) {
    batch._begin(u8(v), v.byteLength);
    const rows = Array.from({ length: batch.length }, (_, i) => ({
      seq: batch.sequence(i), header: batch.isLostHeader(i), lost: batch.lost(i), decoded: batch.decode(i),
    }));
    const totals = { events: batch._events, lost: batch._lost, overflows: batch._overflows, gaps: batch._gaps };
    batch._end();
    return { batch, rows, totals };
  }

  it('counts a LOST header as the events it stands for and a gap as the numbers missing', () => {
    const { rows, totals } = batchOf(selftest([[0, 0x99], [1, 0x99], [4]]));
    expect(rows.map((r) => [r.seq, r.header, r.lost])).toEqual([[0, false, 0], [1, false, 0], [4, true, 3]]);
    expect(rows[0].decoded).toEqual({ virtId: 0x99 });
    expect(rows[2].decoded).toBeUndefined();
    expect(totals).toEqual({ events: 2, lost: 3, overflows: 1, gaps: 0 });
    const gap = batchOf(selftest([[0, 1], [3, 1]]));
    expect(gap.rows.map((r) => r.lost)).toEqual([0, 2]);
    expect(gap.totals).toEqual({ events: 2, lost: 2, overflows: 0, gaps: 1 });
  });

  it('carries the sequence across reads and across the wrap from INT_MAX to 0', () => {
    const batch = new VeventBatch(VEVENTQ_TYPE_SELFTEST, 4);
    const max = 2 ** 31 - 1;
    const first = batchOf(selftest([[0, 1], [max - 2]]), batch);
    expect(first.totals.lost).toBe(max - 2); // the header stands for 1..max-2
    const next = batchOf(selftest([[max - 1, 1], [max, 1], [0, 1], [2, 1]]), batch);
    expect(next.rows.map((r) => r.lost)).toEqual([0, 0, 0, 1]);
    expect(next.totals).toEqual({ events: 4, lost: 1, overflows: 0, gaps: 1 });
    const across = batchOf(selftest([[max - 3]]), new VeventBatch(VEVENTQ_TYPE_SELFTEST, 4));
    expect(across.totals.lost).toBe(max - 2);
    const wrapGap = batchOf(selftest([[1, 1]]), across.batch);
    expect(wrapGap.rows[0].lost).toBe(4); // max-2, max-1, max, 0 missing
  });

  it('is over once its handler returns, and checks indexes', () => {
    const batch = new VeventBatch(VEVENTQ_TYPE_SELFTEST, 4);
    const v = selftest([[0, 7]]);
    batch._begin(u8(v), v.byteLength);
    expect([...batch.data(0)]).toEqual([7, 0, 0, 0]);
    expect(batch.dataOffset(0)).toBe(VEVENT_HEADER_SIZE);
    expect(() => batch.sequence(1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    batch._end();
    expect(() => batch.sequence(0)).toThrow(expect.objectContaining({ code: 'ERR_IOMMUFD_BATCH_ENDED' }));
  });
});

describe('decoders', () => {
  it('decodes an SMMUv3 record field by field (StreamID: the vSID)', () => {
    const v = new DataView(new ArrayBuffer(32));
    // evt[0]: ID 0x10 F_TRANSLATION, SSV, SSID 0x12345, vSID 0x99
    v.setBigUint64(0, 0x10n | (1n << 11n) | (0x12345n << 12n) | (0x99n << 32n), true);
    // evt[1]: STAG 0xabc, STALL, RnW, CLASS 2, TT_READ
    v.setBigUint64(8, 0xabcn | (1n << 31n) | (1n << 35n) | (2n << 40n) | (1n << 44n), true);
    v.setBigUint64(16, 0xdead_b000n, true);
    v.setBigUint64(24, 0xfff0_0000_1234_5fffn, true);
    const d = decodeVevent(VEVENTQ_TYPE_ARM_SMMUV3, v, 0) as ArmSmmuv3Vevent;
    expect(d).toMatchObject({
      id: 0x10, name: 'F_TRANSLATION', ssv: true, ssid: 0x12345, vsid: 0x99, stag: 0xabc, stall: true, pnu: false,
      ind: false, rnw: true, s2: false, class: 2, ttRead: true, inputAddress: 0xdead_b000n, ipa: 0x0000_0000_1234_5000n,
    });
    expect(d.evt).toHaveLength(4);
    expect(decodeArmSmmuv3Vevent(v, 0).name).toBe('F_TRANSLATION');
  });

  it('decodes Tegra241 CMDQV as a 128-bit map, and leaves an unknown type undecoded', () => {
    const v = new DataView(new ArrayBuffer(16));
    v.setBigUint64(0, 1n, true);
    v.setBigUint64(8, 1n << 63n, true);
    expect(decodeVevent(VEVENTQ_TYPE_TEGRA241_CMDQV, v, 0)).toEqual({ lvcmdqErrMap: 1n | (1n << 127n) });
    expect(decodeVevent(77, v, 0)).toBeUndefined();
  });
});
