// CopyPool: copies that outlive the pump's buffer, carved out of shared pools. What must hold: a
// copy never changes once made (not by the source's next bytes, not by later copies), and copies
// are 8-byte aligned as the kernel's records are.
import { describe, expect, it } from 'vitest';
import { CopyPool } from '../../lib/core/copy_pool.js';

function filled(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed * 31 + i) & 0xff);
}

describe('CopyPool', () => {
  it('keeps every copy intact while the source is overwritten and the pool rolls over', () => {
    const pool = new CopyPool(256);
    const source = new Uint8Array(100);
    const copies: { view: DataView; at: number; length: number; seed: number }[] = [];
    for (let seed = 0; seed < 40; seed++) {
      const length = 1 + (seed * 7) % 100;
      source.set(filled(length, seed)); // the pump's buffer, reused for every read
      const at = pool.copy(source.buffer, source.byteOffset, length);
      expect(at % 8).toBe(0);
      expect(at + length).toBeLessThanOrEqual(256);
      copies.push({ view: pool.view, at, length, seed });
    }
    expect(new Set(copies.map((c) => c.view.buffer)).size).toBeGreaterThan(1); // several pools
    for (const c of copies) {
      expect(new Uint8Array(c.view.buffer, c.at, c.length)).toEqual(filled(c.length, c.seed));
    }
  });

  it('copies from an offset of the source', () => {
    const pool = new CopyPool(64);
    const source = filled(48, 3);
    const at = pool.copy(source.buffer, 8, 16);
    expect(new Uint8Array(pool.view.buffer, at, 16)).toEqual(source.subarray(8, 24));
  });

  it('gives a copy bigger than a pool a buffer of its own, and goes on in the pool after it', () => {
    const pool = new CopyPool(64);
    const small = pool.copy(filled(8, 1).buffer, 0, 8);
    const first = pool.view;
    const big = pool.copy(filled(100, 2).buffer, 0, 100);
    const bigView = pool.view;
    expect(big).toBe(0);
    expect(bigView.byteLength).toBe(100);
    expect(new Uint8Array(bigView.buffer)).toEqual(filled(100, 2));
    const next = pool.copy(filled(8, 4).buffer, 0, 8);
    expect(pool.view.buffer).toBe(first.buffer);
    expect(next).toBe(8);
    expect(new Uint8Array(bigView.buffer)).toEqual(filled(100, 2));
    expect(new Uint8Array(first.buffer, small, 8)).toEqual(filled(8, 1));
    expect(new Uint8Array(first.buffer, next, 8)).toEqual(filled(8, 4));
  });
});
