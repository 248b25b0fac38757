// Decoding and grouping of fault records on synthetic bytes: the kernel's test device only makes
// single-record groups, so multi-record grouping is proven here, byte for byte.
import { describe, expect, it } from 'vitest';
import {
  decodeFaultGroups, encodeResponse, FAULT_RECORD_SIZE, PGFAULT_FLAGS_LAST_PAGE, PGFAULT_FLAGS_PASID_VALID,
} from '../../lib/fault/fault.js';

interface Rec { flags: number; dev: number; pasid: number; grpid: number; perm: number; addr: bigint; length?: number; cookie: number }

function records(list: Rec[]): Uint8Array {
  const bytes = new Uint8Array(list.length * FAULT_RECORD_SIZE);
  const v = new DataView(bytes.buffer);
  list.forEach((r, i) => {
    const o = i * FAULT_RECORD_SIZE;
    v.setUint32(o, r.flags, true);
    v.setUint32(o + 4, r.dev, true);
    v.setUint32(o + 8, r.pasid, true);
    v.setUint32(o + 12, r.grpid, true);
    v.setUint32(o + 16, r.perm, true);
    v.setUint32(o + 20, 0xffffffff, true); // __reserved: must not leak into anything decoded
    v.setBigUint64(o + 24, r.addr, true);
    v.setUint32(o + 32, r.length ?? 0, true);
    v.setUint32(o + 36, r.cookie, true);
  });
  return bytes;
}

const LAST = PGFAULT_FLAGS_LAST_PAGE;
const PASID = PGFAULT_FLAGS_PASID_VALID;

describe('decodeFaultGroups', () => {
  it('decodes every field of a record at its uAPI offset', () => {
    const bytes = records([{ flags: LAST | PASID, dev: 7, pasid: 0x1234, grpid: 0x1ff, perm: 3, addr: 0xfedc_ba98_7654_3000n, length: 4096, cookie: 42 }]);
    expect(decodeFaultGroups(bytes)).toEqual([[{
      flags: LAST | PASID, deviceId: 7, pasid: 0x1234, groupId: 0x1ff, perm: 3, addr: 0xfedc_ba98_7654_3000n, length: 4096, cookie: 42,
    }]]);
  });

  it('reports pasid only when PASID_VALID is set', () => {
    const [[r]] = decodeFaultGroups(records([{ flags: LAST, dev: 1, pasid: 99, grpid: 0, perm: 1, addr: 0n, cookie: 1 }]));
    expect(r.pasid).toBeUndefined();
  });

  it('masks flags to the documented bits', () => {
    const [[r]] = decodeFaultGroups(records([{ flags: LAST | 0xf0, dev: 1, pasid: 0, grpid: 0, perm: 1, addr: 0n, cookie: 1 }]));
    expect(r.flags).toBe(LAST);
  });

  it('groups records up to and including LAST_PAGE', () => {
    const g = decodeFaultGroups(records([
      { flags: 0, dev: 1, pasid: 0, grpid: 5, perm: 1, addr: 0x1000n, cookie: 10 },
      { flags: 0, dev: 1, pasid: 0, grpid: 5, perm: 1, addr: 0x2000n, cookie: 10 },
      { flags: LAST, dev: 1, pasid: 0, grpid: 5, perm: 1, addr: 0x3000n, cookie: 10 },
      { flags: LAST, dev: 2, pasid: 0, grpid: 6, perm: 2, addr: 0x9000n, cookie: 11 },
    ]));
    expect(g.map((grp) => grp.map((r) => r.addr))).toEqual([[0x1000n, 0x2000n, 0x3000n], [0x9000n]]);
    expect(g.map((grp) => grp.map((r) => r.cookie))).toEqual([[10, 10, 10], [11]]);
  });

  it('never merges two cookies into one group, even without LAST_PAGE', () => {
    const g = decodeFaultGroups(records([
      { flags: 0, dev: 1, pasid: 0, grpid: 5, perm: 1, addr: 0x1000n, cookie: 10 },
      { flags: LAST, dev: 1, pasid: 0, grpid: 6, perm: 1, addr: 0x2000n, cookie: 11 },
    ]));
    expect(g.map((grp) => grp.map((r) => r.cookie))).toEqual([[10], [11]]);
  });

  it('keeps a trailing group that lacks LAST_PAGE instead of dropping it', () => {
    const g = decodeFaultGroups(records([{ flags: 0, dev: 1, pasid: 0, grpid: 5, perm: 1, addr: 0x1000n, cookie: 10 }]));
    expect(g).toHaveLength(1);
  });

  it('decodes only the given byte length of a larger buffer', () => {
    const bytes = records([
      { flags: LAST, dev: 1, pasid: 0, grpid: 1, perm: 1, addr: 0n, cookie: 1 },
      { flags: LAST, dev: 1, pasid: 0, grpid: 2, perm: 1, addr: 0n, cookie: 2 },
    ]);
    expect(decodeFaultGroups(bytes, FAULT_RECORD_SIZE)).toHaveLength(1);
    expect(decodeFaultGroups(bytes, 0)).toEqual([]);
  });

  it('decodes a view at a non-zero offset', () => {
    const bytes = records([
      { flags: LAST, dev: 1, pasid: 0, grpid: 1, perm: 1, addr: 0n, cookie: 1 },
      { flags: LAST, dev: 9, pasid: 0, grpid: 2, perm: 1, addr: 0n, cookie: 2 },
    ]);
    const [[r]] = decodeFaultGroups(bytes.subarray(FAULT_RECORD_SIZE));
    expect(r.deviceId).toBe(9);
  });

  it('rejects a length that is not whole records', () => {
    expect(() => decodeFaultGroups(new Uint8Array(41))).toThrow(RangeError);
  });
});

describe('encodeResponse', () => {
  it('writes struct iommu_hwpt_page_response {cookie, code}', () => {
    const bytes = new Uint8Array(16);
    encodeResponse(new DataView(bytes.buffer), 8, 0x01020304, 1);
    expect([...bytes]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 4, 3, 2, 1, 1, 0, 0, 0]);
  });
});
