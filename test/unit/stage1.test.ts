// VtdStage1Table's encoding, read back by an independent IA-32e 4-level walk over the bytes it
// wrote (the guest's iopf/nested tests have the emulated IOMMU walk them for real). The Ioas here
// only records what would be mapped: no kernel behaviour is claimed.
import { describe, expect, it } from 'vitest';
import type { IommufdContext } from '../../lib/core/context.js';
import { Ioas } from '../../lib/objects/ioas.js';
import { VtdStage1Table } from '../../lib/testing/stage1.js';

class RecordingIoas extends Ioas {
  memory: DataView | undefined;
  iova = 0n;
  unmapped: bigint[] = [];
  override map(memory: ArrayBuffer | SharedArrayBuffer | ArrayBufferView, options?: { iova?: bigint }): bigint {
    this.memory = new DataView(memory as ArrayBuffer);
    this.iova = options!.iova!;
    return this.iova;
  }
  override unmap(iova?: bigint): bigint {
    this.unmapped.push(iova!);
    return 0n;
  }
}
const ctx = { fd: 3, closed: false } as unknown as IommufdContext;

/** The hardware's walk: PML4 -> PDPT -> PD -> PT, each entry's address an IOVA in the tables. */
function walk(ioas: RecordingIoas, root: bigint, iova: bigint) {
  let table = root;
  const path: bigint[] = [];
  for (let level = 3; level >= 0; level--) {
    const index = (iova >> BigInt(12 + 9 * level)) & 511n;
    const e = ioas.memory!.getBigUint64(Number(table - ioas.iova + index * 8n), true);
    path.push(e);
    if (!(e & 1n)) return { present: false, path };
    table = e & 0x000f_ffff_ffff_f000n;
  }
  const leaf = path[3];
  return { present: true, output: table, writable: (leaf & 2n) !== 0n, user: (leaf & 4n) !== 0n, path };
}

describe('VtdStage1Table', () => {
  it('maps 4 KiB pages through four levels the way IA-32e paging reads them', () => {
    const ioas = new RecordingIoas(ctx, 1);
    const t = new VtdStage1Table(ioas, { iova: 0x4000_0000n, pages: 8 });
    expect(t.root).toBe(0x4000_0000n);
    t.map(0x1000n, 0x9000_0000n);
    t.map(0x7fff_ffff_f000n, 0x9000_1000n, { writable: false });
    expect(walk(ioas, t.root, 0x1000n)).toMatchObject({ present: true, output: 0x9000_0000n, writable: true, user: true });
    expect(walk(ioas, t.root, 0x7fff_ffff_f000n)).toMatchObject({ present: true, output: 0x9000_1000n, writable: false, user: true });
    expect(walk(ioas, t.root, 0x2000n).present).toBe(false);
    // Upper levels grant read, write and user: the leaf alone decides.
    for (const e of walk(ioas, t.root, 0x7fff_ffff_f000n).path.slice(0, 3)) expect(e & 7n).toBe(7n);
    // Two leaves far apart: one root, and three tables each on the way to them.
    expect(t.tablePages).toBe(7);
  });

  it('remaps, unmaps and looks up; reports what was not mapped', () => {
    const ioas = new RecordingIoas(ctx, 1);
    const t = new VtdStage1Table(ioas, { iova: 0x10_0000n });
    t.map(0x5000n, 0x20_0000n, { writable: false });
    expect(t.lookup(0x5000n)).toEqual({ output: 0x20_0000n, writable: false });
    t.map(0x5000n, 0x21_0000n);
    expect(t.lookup(0x5000n)).toEqual({ output: 0x21_0000n, writable: true });
    expect(t.unmap(0x5000n)).toBe(true);
    expect(t.unmap(0x5000n)).toBe(false);
    expect(t.unmap(0x8000_0000n)).toBe(false);
    expect(t.lookup(0x5000n)).toBeUndefined();
    expect(walk(ioas, t.root, 0x5000n).present).toBe(false);
    t.destroy();
    t.destroy();
    expect(ioas.unmapped).toEqual([0x10_0000n]);
    expect(() => t.map(0x5000n, 0n)).toThrow(expect.objectContaining({ code: 'ERR_IOMMUFD_CLOSED' }));
  });

  it('refuses unaligned or too-high addresses, and says when its table pages run out', () => {
    const ioas = new RecordingIoas(ctx, 1);
    expect(() => new VtdStage1Table(ioas, { iova: 0x1001n })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    const t = new VtdStage1Table(ioas, { iova: 0n, pages: 4 });
    expect(() => t.map(0x1234n, 0n)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/^VtdStage1Table\.map: iova/) }));
    expect(() => t.map(1n << 48n, 0n)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => t.map(0x1000 as unknown as bigint, 0n)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    t.map(0n, 0n); // root + 3 tables: all 4 pages
    expect(() => t.map(1n << 39n, 0n)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/options\.pages/) }));
  });
});
