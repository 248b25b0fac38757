// A VT-d stage-1 (first-stage) page table that a test or an example owns, as a guest owns its
// stage 1 under nested translation: x86 4-level tables (IA-32e paging, 4 KiB pages) in memory
// this process maps into the IOAS, so the IOMMU reads them through stage 2. Hand its `root` to
// Iommufd.allocHwpt({ stage1: { type: 'vtd-s1', pgtblAddr: root } }), then map and unmap pages and
// invalidate the nested HWPT after each change, as a guest driver would.
import { checkInstance, checkOptions, checkU64, optionalBoolean, optionalInteger, outOfRange } from '../core/args.js';
import { closedError } from '../core/errors.js';
import { allocPages, Ioas } from '../objects/ioas.js';

const PAGE = 4096n;
const ENTRIES = 512;
// IA-32e paging entry bits (Intel SDM vol. 3, 4.5; VT-d spec 3.6 first-stage translation).
const P = 1n << 0n;
const RW = 1n << 1n;
const US = 1n << 2n;
const A = 1n << 5n;
const D = 1n << 6n;
const ADDR = ((1n << 52n) - 1n) & ~(PAGE - 1n);
const TABLE = P | RW | US | A; // a table entry grants everything: the leaf decides

export interface Stage1Entry {
  /** The address the page translates to: an IOVA of the parent IOAS (stage 2 translates it). */
  output: bigint;
  writable: boolean;
}

export interface VtdStage1TableOptions {
  /** Where the tables go in the IOAS (4 KiB aligned): `pages` pages from there. */
  iova: bigint;
  /** Table pages to allocate from: the root, and one per other table the mappings need
   *  (default 64: each covers 2 MiB of leaf entries). */
  pages?: number;
}

export class VtdStage1Table {
  /** The root (PML4) table's IOVA: the nested HWPT's pgtblAddr. */
  readonly root: bigint;
  readonly ioas: Ioas;
  readonly #memory: DataView;
  readonly #base: bigint;
  #used = 1;
  #mapped = true;

  constructor(ioas: Ioas, options: VtdStage1TableOptions) {
    const call = 'new VtdStage1Table';
    checkInstance(call, 'ioas', ioas, Ioas, 'an Ioas', (i) => i.destroyed || i.iommufd.closed);
    const o = checkOptions<VtdStage1TableOptions>(call, options, false);
    const iova = checkU64(call, 'options.iova', o.iova);
    if (iova % PAGE !== 0n) throw outOfRange(call, 'options.iova', 'a multiple of 4096', iova);
    const pages = optionalInteger(call, 'options.pages', o.pages, 1, 65536) ?? 64;
    const memory = allocPages(pages * 4096);
    // Writable in stage 2: the IOMMU sets accessed and dirty bits in the tables as it walks.
    ioas.map(memory, { iova });
    this.ioas = ioas;
    this.#memory = new DataView(memory);
    this.#base = iova;
    this.root = iova;
  }

  /** Maps the 4 KiB page at `iova` to `output` (both 4 KiB aligned), read-only unless writable. */
  map(iova: bigint, output: bigint, options?: { writable?: boolean }): void {
    const call = 'VtdStage1Table.map';
    this.#check(call);
    const at = this.#page(call, 'iova', iova);
    const out = this.#page(call, 'output', output);
    const rw = optionalBoolean(call, 'options.writable', checkOptions<{ writable?: boolean }>(call, options, true).writable) ?? true;
    const leaf = this.#leaf(at, true)!;
    // Accessed and dirty set up front: the IOMMU need not write them back (EAFE off).
    this.#set(leaf, (out & ADDR) | P | US | A | (rw ? RW | D : 0n));
  }

  /** Removes the page at `iova`; returns whether it was mapped. Invalidate the HWPT after. */
  unmap(iova: bigint): boolean {
    const call = 'VtdStage1Table.unmap';
    this.#check(call);
    const leaf = this.#leaf(this.#page(call, 'iova', iova), false);
    if (leaf === undefined || !(this.#get(leaf) & P)) return false;
    this.#set(leaf, 0n);
    return true;
  }

  /** What the page at `iova` maps to, if anything. */
  lookup(iova: bigint): Stage1Entry | undefined {
    const call = 'VtdStage1Table.lookup';
    this.#check(call);
    const leaf = this.#leaf(this.#page(call, 'iova', iova), false);
    const e = leaf === undefined ? 0n : this.#get(leaf);
    return e & P ? { output: e & ADDR, writable: (e & RW) !== 0n } : undefined;
  }

  /** Table pages in use, of those allocated. */
  get tablePages(): number { return this.#used; }

  /** Unmaps the tables from the IOAS (detach or destroy the nested HWPT first). Idempotent. */
  destroy(): void {
    if (!this.#mapped) return;
    this.#mapped = false;
    if (!this.ioas.destroyed && !this.ioas.iommufd.closed) this.ioas.unmap(this.#base);
  }

  #check(call: string): void {
    if (!this.#mapped) throw closedError(call, 'the stage-1 table (destroyed)');
  }

  #page(call: string, name: string, value: unknown): bigint {
    const v = checkU64(call, name, value);
    if (v % PAGE !== 0n || v >= 1n << 48n) throw outOfRange(call, name, 'a 4 KiB aligned address below 2^48', v);
    return v;
  }

  // The byte offset of the leaf entry for `iova`, making the tables on the way when `make`.
  #leaf(iova: bigint, make: boolean): number | undefined {
    let table = 0; // offset of the current table in memory: the root first
    for (let level = 3; level > 0; level--) {
      const entry = table + Number((iova >> BigInt(12 + 9 * level)) & 511n) * 8;
      let e = this.#get(entry);
      if (!(e & P)) {
        if (!make) return undefined;
        if (this.#used * 4096 >= this.#memory.byteLength) {
          throw outOfRange('VtdStage1Table.map', 'the tables it needs', `at most options.pages (${this.#used}) of the constructor`, this.#used + 1);
        }
        const next = this.#used++ * 4096;
        e = ((this.#base + BigInt(next)) & ADDR) | TABLE;
        this.#set(entry, e);
      }
      table = Number((e & ADDR) - this.#base);
    }
    return table + Number((iova >> 12n) & BigInt(ENTRIES - 1)) * 8;
  }

  #get(offset: number): bigint { return this.#memory.getBigUint64(offset, true); }
  #set(offset: number, value: bigint): void { this.#memory.setBigUint64(offset, value, true); }
}
