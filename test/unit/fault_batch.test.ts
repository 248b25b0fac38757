// FaultBatch's pure logic on synthetic records (the guest suite checks it against the kernel):
// group boundaries as forEachFaultGroup finds them, multi-record groups (the test device only
// makes single-record ones), answers by group, the end of a batch.
import { describe, expect, it } from 'vitest';
import { AnswerBuffer } from '../../lib/fault/answers.js';
import { CONTROL, type NativeEventPump } from '../../lib/core/binding.js';
import { ErrorCodes } from '../../lib/core/errors.js';
import { encodeResponse, FAULT_RECORD_SIZE, FAULT_RESPONSE_SIZE, forEachFaultGroup, PGFAULT_FLAGS_LAST_PAGE, PGFAULT_FLAGS_PASID_VALID } from '../../lib/fault/fault.js';
import { FaultBatch } from '../../lib/fault/fault_batch.js';

/** Records of [cookie, last, addr?, pasid?] */
function records(list: [number, boolean, bigint?, number?][]): Uint8Array {
  const bytes = new Uint8Array(list.length * FAULT_RECORD_SIZE + 40); // spare room, as the pump's buffer has
  const v = new DataView(bytes.buffer);
  list.forEach(([cookie, last, addr = 0x1000n, pasid], i) => {
    const o = i * FAULT_RECORD_SIZE;
    v.setUint32(o, (last ? PGFAULT_FLAGS_LAST_PAGE : 0) | (pasid !== undefined ? PGFAULT_FLAGS_PASID_VALID : 0), true);
    v.setUint32(o + 4, 7, true);
    v.setUint32(o + 8, pasid ?? 0, true);
    v.setUint32(o + 12, i, true);
    v.setBigUint64(o + 24, addr, true);
    v.setUint32(o + 36, cookie, true);
  });
  return bytes;
}

function batchOf(bytes: Uint8Array, n: number) {
  const answers: [number, number][] = [];
  const sink = { add: (cookie: number, code: number) => answers.push([cookie, code]) } as unknown as AnswerBuffer;
  const batch = new FaultBatch(sink, { flush() {} });
  batch._begin(bytes, n * FAULT_RECORD_SIZE);
  return { batch, answers };
}

describe('FaultBatch', () => {
  const list: [number, boolean, bigint?, number?][] = [
    [5, false], [5, false], [5, true], // one group of three pages
    [9, true], // one page
    [3, false], [4, true], // cookie changes without LAST_PAGE: two groups, never merged
    [8, false, 0xffff_ffff_ffff_f000n, 0x42], // a trailing group without LAST_PAGE is kept
  ];

  it('finds the groups forEachFaultGroup finds', () => {
    const bytes = records(list);
    const { batch } = batchOf(bytes, list.length);
    const expected: [number, number][] = [];
    forEachFaultGroup(new DataView(bytes.buffer), list.length * FAULT_RECORD_SIZE, (off, count) => expected.push([off / FAULT_RECORD_SIZE, count]));
    expect(batch.groupCount).toBe(expected.length);
    expect(batch.recordCount).toBe(list.length);
    expect(Array.from({ length: batch.groupCount }, (_, g) => [batch.first(g), batch.size(g)])).toEqual(expected);
    expect(expected).toEqual([[0, 3], [3, 1], [4, 1], [5, 1], [6, 1]]);
  });

  it('reads fields; address() refuses what a number cannot hold', () => {
    const { batch } = batchOf(records(list), list.length);
    expect(batch.pasid(0)).toBe(-1);
    expect(batch.pasid(6)).toBe(0x42);
    expect(batch.flags(2)).toBe(PGFAULT_FLAGS_LAST_PAGE);
    expect(batch.address(0)).toBe(0x1000);
    expect(batch.addressBigInt(6)).toBe(0xffff_ffff_ffff_f000n);
    expect(() => batch.address(6)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(batch.record(6)).toMatchObject({ pasid: 0x42, addr: 0xffff_ffff_ffff_f000n, cookie: 8 });
  });

  it('answers a group once, by its cookie; answerAll answers the rest', () => {
    const { batch, answers } = batchOf(records(list), list.length);
    batch.answer(0, 'invalid');
    expect(() => batch.answer(0)).toThrow(expect.objectContaining({ code: ErrorCodes.ALREADY_ANSWERED }));
    expect(batch.answered(0)).toBe(true);
    expect(batch.answerAll()).toBe(4);
    expect(batch.answerAll()).toBe(0);
    expect(answers).toEqual([[5, 1], [9, 0], [3, 0], [4, 0], [8, 0]]);
    expect(() => batch.keep(1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
  });

  it('is over when its handler returned; a reused batch starts afresh', () => {
    const bytes = records(list);
    const { batch, answers } = batchOf(bytes, list.length);
    batch.answer(1);
    batch._end();
    expect(() => batch.groupCount).toThrow(expect.objectContaining({ code: ErrorCodes.BATCH_ENDED }));
    expect(() => batch.answer(2)).toThrow(expect.objectContaining({ code: ErrorCodes.BATCH_ENDED }));
    batch._begin(bytes, 2 * FAULT_RECORD_SIZE);
    expect(batch.groupCount).toBe(1);
    expect(batch.size(0)).toBe(2); // two records of cookie 5, no LAST_PAGE yet: one trailing group
    batch.answer(0);
    expect(answers).toEqual([[9, 0], [5, 0]]);
  });

  it('grows for a batch bigger than any before', () => {
    const many: [number, boolean][] = Array.from({ length: 3000 }, (_, i) => [i, true]);
    const { batch, answers } = batchOf(records(many), many.length);
    expect(batch.groupCount).toBe(3000);
    expect(batch.cookie(batch.first(2999))).toBe(2999);
    batch.answer(2999);
    batch.answer(1500);
    expect(answers).toEqual([[2999, 0], [1500, 0]]); // the cookies of groups past the first 1024
  });
  it('keeps groups from many reads of one buffer: each keeps its own records', () => {
    // A consumer taking one fault at a time keeps one group per read; the pump reuses its buffer.
    const bytes = records([[0, true]]);
    const v = new DataView(bytes.buffer);
    const kept: { offset: number; count: number; view: DataView }[] = [];
    const sink = { add() {} } as unknown as AnswerBuffer;
    const batch = new FaultBatch(sink, { flush() {}, keep: (view, offset, count) => { kept.push({ view, offset, count }); return undefined as never; } });
    const n = 3000; // past one pool (64 KiB: 1638 records)
    for (let i = 0; i < n; i++) {
      v.setUint32(36, i, true);
      v.setBigUint64(24, BigInt(i) << 12n, true);
      batch._begin(bytes, FAULT_RECORD_SIZE);
      batch.keep(0);
      batch._end();
    }
    expect(new Set(kept.map((k) => k.view.buffer)).size).toBeGreaterThan(1);
    kept.forEach((k, i) => {
      expect(k.count).toBe(1);
      expect(k.view.getUint32(k.offset + 36, true)).toBe(i);
      expect(k.view.getBigUint64(k.offset + 24, true)).toBe(BigInt(i) << 12n);
    });
  });
});

describe('AnswerBuffer', () => {
  it('encodes each answer as struct iommu_hwpt_page_response, growing past its first size', () => {
    const given: Uint8Array[] = [];
    const pump = { setAnswers: (bytes: Uint8Array) => given.push(bytes) } as unknown as NativeEventPump;
    const answers = new AnswerBuffer(pump, undefined, 2);
    const list: [number, number][] = [[0xffff_ffff, 1], [7, 0], [0x8000_0001, 1]];
    list.forEach(([cookie, code], i) => expect(answers.add(cookie, code)).toBe(i));
    expect(answers.waiting).toBe(3);
    expect(given.length).toBe(2); // the pump was given the bigger buffer
    const expected = new DataView(new ArrayBuffer(list.length * FAULT_RESPONSE_SIZE));
    list.forEach(([cookie, code], i) => encodeResponse(expected, i * FAULT_RESPONSE_SIZE, cookie, code));
    expect(given[1].subarray(0, expected.byteLength)).toEqual(new Uint8Array(expected.buffer));
    expect(answers.cookie(2)).toBe(0x8000_0001);
    expect(answers.slots[CONTROL.answers]).toBe(3);
  });
});
