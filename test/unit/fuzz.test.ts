// Random bytes and random arguments into the pure decoding and encoding code: whatever comes in,
// out comes a result or a TypeError/RangeError naming the function (with Node's code, for the
// public ones), never anything else. The whole public API gets the same from test/api/spec.ts.
import { describe, expect, it } from 'vitest';
import {
  decodeFaultGroups, decodeFaultRecord, encodeResponse, FAULT_RECORD_SIZE, forEachFaultGroup,
} from '../../lib/fault/fault.js';
import { checkFaultQueueOptions } from '../../lib/fault/fault_queue.js';

// A fixed-seed generator: a failure reproduces.
let seed = 0x9e3779b9;
const rand = () => ((seed = (seed ^ (seed << 13)) >>> 0, seed = (seed ^ (seed >>> 17)) >>> 0, seed = (seed ^ (seed << 5)) >>> 0));
const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => rand() & 0xff);
const oddValues = [-1, 0.5, NaN, Infinity, 2 ** 32, 2 ** 53, -0, '1', null, undefined, {}, [], 1n, true];
const pick = <T>(list: T[]) => list[rand() % list.length];

const CODES = ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE'];

function typedOnly(fn: () => unknown, name: RegExp | undefined, coded = true) {
  try {
    fn();
  } catch (e) {
    expect(e instanceof TypeError || e instanceof RangeError, String(e)).toBe(true);
    if (coded) expect(CODES, String(e)).toContain((e as { code?: string }).code);
    if (name) expect((e as Error).message).toMatch(name);
  }
}

describe('fuzz', () => {
  it('decodeFaultGroups on random bytes: groups whose records cover every byte, or a RangeError', () => {
    for (let i = 0; i < 2000; i++) {
      const n = rand() % 400;
      const bytes = randomBytes(n);
      typedOnly(() => {
        const groups = decodeFaultGroups(bytes);
        // Records are never invented or dropped: they add up to the bytes given.
        expect(groups.reduce((k, g) => k + g.length, 0) * FAULT_RECORD_SIZE).toBe(n);
        for (const g of groups) {
          expect(g.length).toBeGreaterThan(0);
          // Within a group every record carries the group's cookie.
          for (const r of g) expect(r.cookie).toBe(g[0].cookie);
        }
      }, /^decodeFaultGroups: byteLength/);
    }
  });

  it('decodeFaultRecord / forEachFaultGroup with random offsets and lengths: typed errors only', () => {
    for (let i = 0; i < 2000; i++) {
      const view = new DataView(randomBytes(rand() % 200).buffer);
      const offset = rand() % 2 ? rand() % 240 : pick(oddValues);
      typedOnly(() => decodeFaultRecord(view, offset as number), /^decodeFaultRecord: offset/);
      const length = rand() % 2 ? (rand() % 6) * FAULT_RECORD_SIZE : pick(oddValues);
      typedOnly(() => forEachFaultGroup(view, length as number, () => {}), /^forEachFaultGroup: byteLength/);
      typedOnly(() => decodeFaultGroups(new Uint8Array(view.buffer), length as number), /^decodeFaultGroups: byteLength/);
    }
    typedOnly(() => decodeFaultRecord({} as DataView, 0), /^decodeFaultRecord: view/);
    typedOnly(() => decodeFaultGroups('x' as unknown as Uint8Array), /^decodeFaultGroups: bytes/);
  });

  it('encodeResponse with random cookies, codes and offsets: exact bytes, or a typed error', () => {
    const target = new DataView(new ArrayBuffer(64));
    for (let i = 0; i < 2000; i++) {
      const cookie = rand() % 3 ? rand() : pick(oddValues);
      const code = rand() % 3 ? rand() % 2 : pick(oddValues);
      const offset = rand() % 70;
      typedOnly(() => {
        encodeResponse(target, offset, cookie as number, code as number);
        // == 0 for -0, which is a fine cookie 0.
        expect(target.getUint32(offset, true) === cookie).toBe(true);
        expect(target.getUint32(offset + 4, true) === code).toBe(true);
      }, /encodeResponse|Offset is outside/, false); // internal: no Node code
    }
  });

  it('FaultQueue options: random values are accepted in range or a typed error naming the option', () => {
    for (let i = 0; i < 2000; i++) {
      const key = pick(['highWaterMark', 'lowWaterMark', 'bufferRecords', 'signal']);
      const value = rand() % 2 ? rand() % 300_000 : pick(oddValues);
      typedOnly(() => checkFaultQueueOptions({ [key]: value }), new RegExp(`^Iommufd\\.allocFaultQueue: options\\.${key}`));
    }
  });
});
