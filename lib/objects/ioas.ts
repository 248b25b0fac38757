// Ioas: an I/O address space (IOMMU_IOAS_ALLOC) that user memory is mapped into.
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import {
  checkBytes, checkOneOf, checkOptions, integerError, invalidArgValue, iommufdFd, optionalBoolean, optionalU64,
} from '../core/args.js';
import { binding } from '../core/binding.js';
import { closedError, IommufdError } from '../core/errors.js';
import type { IommufdContext } from '../core/context.js';
import { IoasHandle } from './ioas_handle.js';

export const IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOAS_MAP_WRITEABLE = 1 << 1;
export const IOAS_MAP_READABLE = 1 << 2;

export interface MapOptions {
  /** Map at this IOVA (IOMMU_IOAS_MAP_FIXED_IOVA); otherwise the kernel picks one. */
  iova?: bigint;
  /** Device may read (default true). */
  readable?: boolean;
  /** Device may write (default true). */
  writable?: boolean;
}

export interface IovaRange {
  start: bigint;
  last: bigint;
}

export interface AllocPagesOptions {
  /**
   * Back the memory with huge pages: 'hugetlb' (mmap MAP_HUGETLB, pages of the default hugetlb
   * size from the reserved pool, /proc/sys/vm/nr_hugepages) or 'thp' (a range aligned to the PMD
   * size, madvise(MADV_HUGEPAGE): transparent huge pages where the kernel can assemble them).
   * `length` must then be a multiple of that huge page size.
   */
  hugePages?: 'hugetlb' | 'thp';
}

/**
 * Page-aligned anonymous memory (mmap) for Ioas.map(): the IOMMU maps whole pages, and no JS
 * allocation promises page alignment. Unmapped when the ArrayBuffer is collected; the Ioas keeps
 * what it maps alive while mapped. With `options.hugePages`, huge-page-backed memory (guest RAM as
 * VMMs back it); a kernel refusal (no reserved hugetlb pages: ENOMEM) is an IommufdError whose
 * message names allocPages and the option.
 */
export function allocPages(length: number, options?: AllocPagesOptions): ArrayBuffer {
  const call = 'allocPages';
  const o = checkOptions<AllocPagesOptions>(call, options, true);
  const huge = o.hugePages === undefined ? undefined : checkOneOf(call, 'options.hugePages', o.hugePages, ['hugetlb', 'thp'] as const);
  const unit = huge === undefined ? pageSize() : hugePageSize(huge);
  const max = 2 ** 32 - unit;
  if (!(typeof length === 'number' && Number.isInteger(length) && length >= unit && length <= max && length % unit === 0)) {
    const what = huge === undefined ? `the page size (${unit})` : `the ${huge} huge page size (${unit}, options.hugePages '${huge}')`;
    throw integerError(call, 'length', length, unit, max, `a multiple of ${what} from ${unit} to ${max}`);
  }
  if (huge === undefined) return binding.allocPages(length);
  try {
    return binding.allocPages(length, huge === 'hugetlb' ? 1 : 2, unit);
  } catch (e) {
    throw hugePagesError(e, huge, length, unit);
  }
}

const HUGE_DEFAULT = 2 << 20;

/** The size of a huge page of that kind: the hugetlb default (/proc/meminfo Hugepagesize) or the
 *  THP PMD size; 2 MiB when the kernel does not say (it then refuses the mmap or madvise). */
function hugePageSize(kind: 'hugetlb' | 'thp'): number {
  try {
    if (kind === 'thp') return Number(readFileSync('/sys/kernel/mm/transparent_hugepage/hpage_pmd_size', 'utf8').trim()) || HUGE_DEFAULT;
    const m = /^Hugepagesize:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : HUGE_DEFAULT;
  } catch {
    return HUGE_DEFAULT;
  }
}

// The mmap or madvise error with what allocPages asked for and what the kernel had.
function hugePagesError(e: unknown, kind: 'hugetlb' | 'thp', length: number, unit: number): unknown {
  if (!(e instanceof IommufdError)) return e;
  let why: string;
  if (kind === 'hugetlb') {
    let free = '?';
    try { free = /^HugePages_Free:\s+(\d+)$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 'no hugetlb support'; } catch {}
    why = `MAP_HUGETLB of ${length / unit} pages of ${unit / 1024} KiB, HugePages_Free: ${free}; reserve them in /proc/sys/vm/nr_hugepages`;
  } else {
    why = `madvise(MADV_HUGEPAGE) of ${length} bytes: the kernel has no transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE)`;
  }
  return new IommufdError(`${e.message} (allocPages: options.hugePages '${kind}': ${why})`, e.code, e.errno, e.syscall);
}

let page = 0;
/** The kernel's page size, from the auxiliary vector (AT_PAGESZ); 4096 if it cannot be read. */
function pageSize(): number {
  if (page === 0) {
    page = 4096;
    try {
      const auxv = readFileSync('/proc/self/auxv');
      const view = new DataView(auxv.buffer, auxv.byteOffset, auxv.byteLength);
      const le = endianness() === 'LE';
      for (let off = 0; off + 16 <= auxv.byteLength; off += 16) {
        if (view.getBigUint64(off, le) === 6n) page = Number(view.getBigUint64(off + 8, le)); // AT_PAGESZ
      }
    } catch {}
  }
  return page;
}

export class Ioas {
  readonly iommufd: IommufdContext;
  readonly id: number;
  // Mapped memory must outlive its mapping: the kernel has its pages pinned.
  #mapped = new Map<bigint, { memory: ArrayBuffer | ArrayBufferView | SharedArrayBuffer; length: bigint }>();
  // Memory that closed IoasHandles mapped from (their mappings may remain): until unmap() or destroy().
  #kept = new Set<ArrayBuffer | ArrayBufferView | SharedArrayBuffer>();
  #destroyed = false;

  /** @internal Use Iommufd.allocIoas(). */
  constructor(iommufd: IommufdContext, id: number) {
    this.iommufd = iommufd;
    this.id = id;
  }

  /** Whether destroy() destroyed it (closing the iommufd destroys it too). */
  get destroyed(): boolean { return this.#destroyed; }

  // The iommufd's fd, for a call on an IOAS that must still exist.
  #fd(call: string): number {
    if (this.#destroyed) throw closedError(call, `IOAS ${this.id} (destroyed)`);
    return iommufdFd(call, this.iommufd);
  }

  /**
   * IOMMU_IOAS_MAP of a buffer's pages; returns the IOVA. `memory`: an ArrayBuffer, a
   * SharedArrayBuffer or any view of one (its bytes from byteOffset); it should be page aligned
   * (allocPages()). The IOAS keeps it alive while it is mapped.
   */
  map(memory: ArrayBuffer | SharedArrayBuffer | ArrayBufferView, options?: MapOptions): bigint {
    const call = 'Ioas.map';
    const bytes = checkBytes(call, 'memory', memory);
    const o = checkOptions<MapOptions>(call, options, true);
    const iova = optionalU64(call, 'options.iova', o.iova);
    const readable = optionalBoolean(call, 'options.readable', o.readable) ?? true;
    const writable = optionalBoolean(call, 'options.writable', o.writable) ?? true;
    const flags = (readable ? IOAS_MAP_READABLE : 0) | (writable ? IOAS_MAP_WRITEABLE : 0);
    const at = binding.ioasMap(this.#fd(call), this.id, bytes, iova, flags);
    this.#mapped.set(at, { memory, length: BigInt(bytes.byteLength) });
    return at;
  }

  /**
   * IOMMU_IOAS_UNMAP; returns the number of bytes unmapped. Without arguments unmaps everything;
   * with an iova alone, what map() mapped there.
   */
  unmap(iova?: bigint, length?: bigint): bigint {
    const call = 'Ioas.unmap';
    optionalU64(call, 'iova', iova);
    optionalU64(call, 'length', length);
    const all = iova === undefined;
    if (all && length !== undefined) throw invalidArgValue(call, 'length', 'undefined when iova is (unmap() unmaps everything)', length);
    const fd = this.#fd(call);
    // The kernel's "everything" is iova 0 with length U64_MAX.
    const done = binding.ioasUnmap(fd, this.id, iova ?? 0n, all ? 2n ** 64n - 1n : length ?? this.#mapped.get(iova)?.length ?? 0n);
    if (all) {
      this.#mapped.clear();
      this.#kept.clear();
    } else {
      this.#mapped.delete(iova);
    }
    return done;
  }

  /**
   * A handle that makes this IOAS usable from another thread (a worker) for mapping `memory`
   * (an ArrayBuffer, a SharedArrayBuffer or a view of one; fixed-length): pass its `descriptor`
   * there and IoasMapper.open(descriptor) maps ranges of the memory. The memory stays referenced
   * while the handle is open and is marked untransferable (a transfer would move it out of this
   * thread's reach). See IoasHandle.
   */
  handle(memory: ArrayBuffer | SharedArrayBuffer | ArrayBufferView): IoasHandle {
    return new IoasHandle(this, memory, 'Ioas.handle');
  }

  /** @internal A closed handle's memory, which its mappings may still use. */
  _keep(memory: ArrayBuffer | ArrayBufferView | SharedArrayBuffer): void {
    this.#kept.add(memory);
  }

  /** IOMMU_IOAS_IOVA_RANGES: where IOVAs may be placed, and their required alignment. */
  iovaRanges(): { ranges: IovaRange[]; alignment: bigint } {
    return binding.ioasIovaRanges(this.#fd('Ioas.iovaRanges'), this.id);
  }

  /** IOMMU_DESTROY (EBUSY while a device or HWPT uses it). A no-op once destroyed, or once the
   *  iommufd is closed (which destroyed it): the id may name a newer object by then. */
  destroy(): void {
    if (this.#destroyed || this.iommufd.closed) return;
    this.iommufd.destroy(this.id);
    this.#destroyed = true;
    this.#mapped.clear();
    this.#kept.clear();
  }
}
