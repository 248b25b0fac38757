// Ioas: an I/O address space (IOMMU_IOAS_ALLOC) that user memory is mapped into.
import { binding } from '../core/binding.js';
import type { IommufdContext } from '../core/context.js';

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

/**
 * Page-aligned anonymous memory (mmap) for Ioas.map(): the IOMMU maps whole pages, and no JS
 * allocation promises page alignment. Unmapped when the ArrayBuffer is collected; the Ioas keeps
 * what it maps alive while mapped.
 */
export function allocPages(length: number): ArrayBuffer {
  return binding.allocPages(length);
}

export class Ioas {
  readonly iommufd: IommufdContext;
  readonly id: number;
  // Mapped memory must outlive its mapping: the kernel has its pages pinned.
  #mapped = new Map<bigint, { memory: ArrayBuffer | ArrayBufferView; length: bigint }>();

  /** @internal Use Iommufd.allocIoas(). */
  constructor(iommufd: IommufdContext, id: number) {
    this.iommufd = iommufd;
    this.id = id;
  }

  /** IOMMU_IOAS_MAP of a buffer's pages; returns the IOVA. The buffer should be page aligned. */
  map(memory: ArrayBuffer | ArrayBufferView, { iova, readable = true, writable = true }: MapOptions = {}): bigint {
    const flags = (readable ? IOAS_MAP_READABLE : 0) | (writable ? IOAS_MAP_WRITEABLE : 0);
    const at = binding.ioasMap(this.iommufd.fd, this.id, memory, iova, flags);
    this.#mapped.set(at, { memory, length: BigInt(memory.byteLength) });
    return at;
  }

  /** IOMMU_IOAS_UNMAP; returns the number of bytes unmapped. Without arguments unmaps everything. */
  unmap(iova?: bigint, length?: bigint): bigint {
    const all = iova === undefined;
    // The kernel's "everything" is iova 0 with length U64_MAX.
    const done = binding.ioasUnmap(this.iommufd.fd, this.id, iova ?? 0n, all ? 2n ** 64n - 1n : length ?? this.#mapped.get(iova)?.length ?? 0n);
    if (all) this.#mapped.clear();
    else this.#mapped.delete(iova);
    return done;
  }

  /** IOMMU_IOAS_IOVA_RANGES: where IOVAs may be placed, and their required alignment. */
  iovaRanges(): { ranges: IovaRange[]; alignment: bigint } {
    return binding.ioasIovaRanges(this.iommufd.fd, this.id);
  }

  destroy(): void {
    this.iommufd.destroy(this.id);
    this.#mapped.clear();
  }
}
