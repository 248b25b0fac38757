// IOAS handles: an IOAS made usable from another thread (a worker) for mapping one block of memory
// this thread owns. Ioas.handle(memory) makes an IoasHandle here; its `descriptor` (plain data)
// goes to the worker (postMessage, workerData), where IoasMapper.open(descriptor) maps and unmaps
// ranges of that memory with Ioas.map's arguments and errors.
//
// Why this is safe (native/ioas_handle.cc has the details): the kernel pins IOMMU_IOAS_MAP's
// memory by user address in the process's mm, which all threads share, so only lifetimes matter.
// The descriptor carries a token, never an address or an fd. The token names an entry in a
// process-wide table that holds the memory's address, the iommufd fd and the IOAS id; the thread
// that made the handle keeps the memory referenced (and untransferable) while the entry lives;
// every map or unmap by token runs under the entry's lock; and the entry ends (waiting for an
// ioctl in flight) before the memory can be released, before the iommufd fd is closed and right
// when the IOAS is destroyed. After that a mapper's calls are ERR_IOMMUFD_CLOSED. Mappings the
// handle made may outlive it: closing it hands the memory to the Ioas, which keeps it referenced
// until unmap() of everything or destroy().
import { markAsUntransferable } from 'node:worker_threads';
import {
  checkBytes, checkId, checkInteger, checkOptions, checkU64, integerError, invalidArgValue, iommufdFd, optionalBoolean, optionalU64,
} from '../core/args.js';
import { binding } from '../core/binding.js';
import type { IommufdContext } from '../core/context.js';
import { closedError, ErrorCodes } from '../core/errors.js';

type Bytes = ArrayBuffer | SharedArrayBuffer | ArrayBufferView;

/** What a handle's `descriptor` is: plain data, for postMessage or workerData. */
export interface IoasDescriptor {
  /** The handle's entry in the process-wide table (not an fd, not an address). */
  readonly token: number;
  /** The IOAS's object id (for messages). */
  readonly ioasId: number;
  /** The memory's length in bytes. */
  readonly length: number;
}

/** @internal What a handle needs from its Ioas (an interface: ioas.ts imports this file). */
export interface HandleOwner {
  readonly id: number;
  readonly iommufd: IommufdContext;
  readonly destroyed: boolean;
  /** Keeps `memory` referenced while mappings made through a handle may remain. */
  _keep(memory: Bytes): void;
}

const MAP_WRITEABLE = 1 << 1;
const MAP_READABLE = 1 << 2;

// A handle dropped without close() ends when garbage-collected: workers' maps by it fail closed
// from then on, and what it mapped keeps the memory referenced from the Ioas.
interface Dropped { token: number; memory: Bytes; owner: HandleOwner }
const dropped = new FinalizationRegistry<Dropped>((d) => {
  try {
    if (binding.ioasHandleClose(d.token) > 0n && !d.owner.destroyed && !d.owner.iommufd.closed) d.owner._keep(d.memory);
  } catch {}
});

/** The ArrayBuffer or SharedArrayBuffer under `memory`. */
function bufferOf(memory: Bytes): ArrayBuffer | SharedArrayBuffer {
  return ArrayBuffer.isView(memory) ? memory.buffer : memory;
}

/**
 * An IOAS made usable from other threads for one block of memory (Ioas.handle(memory)). Pass
 * `descriptor` to a worker; IoasMapper.open(descriptor) there maps ranges of the memory into the
 * IOAS. close() ends it (a mapper's calls then fail with ERR_IOMMUFD_CLOSED); so do the IOAS's
 * destroy() and the iommufd's close().
 */
export class IoasHandle {
  readonly ioas: HandleOwner;
  /** Plain data for the other thread: IoasMapper.open(descriptor). */
  readonly descriptor: IoasDescriptor;
  /** @internal Where the memory starts within its page (0: page aligned). */
  readonly pageOffset: number;
  #memory: Bytes;
  #closed = false;

  /** @internal Use Ioas.handle(). */
  constructor(owner: HandleOwner, memory: Bytes, call: string) {
    const bytes = checkBytes(call, 'memory', memory);
    const buffer = bufferOf(memory);
    // A resizable buffer may shrink under a mapping; a detached one's memory moved to another
    // thread, which may free it: neither can back a handle.
    if ((buffer as { resizable?: boolean; growable?: boolean }).resizable || (buffer as { growable?: boolean }).growable) {
      throw invalidArgValue(call, 'memory', 'a fixed-length buffer (not resizable or growable) or a view of one', memory);
    }
    if (bytes.byteLength === 0) throw invalidArgValue(call, 'memory', 'at least one byte long', memory);
    const fd = iommufdFd(call, owner.iommufd);
    if (owner.destroyed) throw closedError(call, `IOAS ${owner.id} (destroyed)`);
    if (buffer instanceof ArrayBuffer) markAsUntransferable(buffer);
    const { token, pageOffset } = binding.ioasHandleOpen(fd, owner.id, bytes);
    this.ioas = owner;
    this.#memory = memory;
    this.pageOffset = pageOffset;
    this.descriptor = Object.freeze({ token, ioasId: owner.id, length: bytes.byteLength });
    dropped.register(this, { token, memory, owner }, this);
  }

  /** Whether it was closed (also by the IOAS's destroy() or the iommufd's close()). */
  get closed(): boolean { return this.#closed || this.ioas.destroyed || this.ioas.iommufd.closed; }

  /**
   * Ends the handle: waits for a map in flight on another thread, then no thread can map or
   * unmap by it (ERR_IOMMUFD_CLOSED). What it mapped stays mapped; the Ioas keeps the memory
   * referenced until unmap() of everything or destroy(). Safe to call twice.
   */
  close(): void {
    this._close(false);
  }

  /** @internal `unmapped`: the caller unmapped everything it mapped through the handle. */
  _close(unmapped: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    dropped.unregister(this);
    const mapped = binding.ioasHandleClose(this.descriptor.token);
    if (mapped > 0n && !unmapped && !this.ioas.destroyed && !this.ioas.iommufd.closed) this.ioas._keep(this.#memory);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export interface MapperMapOptions {
  /** Map at this IOVA; otherwise the kernel picks one. */
  iova?: bigint;
  /** Device may read (default true). */
  readable?: boolean;
  /** Device may write (default true). */
  writable?: boolean;
}

/** The page size IoasMapper checks offsets and lengths against. */
const PAGE = 4096;

/** Rethrows a closed handle's error as ERR_IOMMUFD_CLOSED naming the call. */
function rethrow(call: string, e: unknown): never {
  if ((e as { code?: unknown }).code === ErrorCodes.CLOSED) throw closedError(call, 'its IOAS handle');
  throw e;
}

/**
 * The other thread's side of an IoasHandle: IoasMapper.open(handle.descriptor) in a worker (or
 * any thread of the process). Maps and unmaps ranges of the handle's memory in its IOAS; the
 * errors are Ioas.map's and Ioas.unmap's (arguments checked first, the kernel's as IommufdError),
 * and ERR_IOMMUFD_CLOSED once the handle has ended.
 */
export class IoasMapper {
  readonly descriptor: IoasDescriptor;

  private constructor(descriptor: IoasDescriptor) {
    this.descriptor = descriptor;
  }

  /** A mapper for the handle `descriptor` describes (IoasHandle.descriptor, copied to this thread). */
  static open(descriptor: IoasDescriptor): IoasMapper {
    const call = 'IoasMapper.open';
    const d = checkOptions<IoasDescriptor>(call, descriptor, false, 'descriptor');
    const token = checkId(call, 'descriptor.token', d.token);
    const ioasId = checkId(call, 'descriptor.ioasId', d.ioasId);
    const length = checkInteger(call, 'descriptor.length', d.length, 1, Number.MAX_SAFE_INTEGER);
    return new IoasMapper(Object.freeze({ token, ioasId, length }));
  }

  /** The IOAS's object id. */
  get ioasId(): number { return this.descriptor.ioasId; }

  /** The memory's length in bytes. */
  get length(): number { return this.descriptor.length; }

  /**
   * IOMMU_IOAS_MAP of [offset, offset + length) of the handle's memory (page multiples); returns
   * the IOVA (options.iova, or the kernel's choice).
   */
  map(offset: number, length: number, options?: MapperMapOptions): bigint {
    const call = 'IoasMapper.map';
    const total = this.descriptor.length;
    if (!(typeof offset === 'number' && Number.isInteger(offset) && offset >= 0 && offset % PAGE === 0 && offset < total)) {
      throw integerError(call, 'offset', offset, 0, total - 1, `a multiple of ${PAGE} from 0 to ${total - 1}`);
    }
    if (!(typeof length === 'number' && Number.isInteger(length) && length > 0 && length % PAGE === 0 && length <= total - offset)) {
      throw integerError(call, 'length', length, PAGE, total - offset, `a multiple of ${PAGE} from ${PAGE} to ${total - offset} (the memory left from offset)`);
    }
    const o = checkOptions<MapperMapOptions>(call, options, true);
    const iova = optionalU64(call, 'options.iova', o.iova);
    const readable = optionalBoolean(call, 'options.readable', o.readable) ?? true;
    const writable = optionalBoolean(call, 'options.writable', o.writable) ?? true;
    try {
      return binding.ioasHandleMap(this.descriptor.token, offset, length, iova, (readable ? MAP_READABLE : 0) | (writable ? MAP_WRITEABLE : 0));
    } catch (e) {
      return rethrow(call, e);
    }
  }

  /** IOMMU_IOAS_UNMAP of [iova, iova + length): every mapping inside it (none may cross its ends); returns the bytes unmapped. */
  unmap(iova: bigint, length: bigint): bigint {
    const call = 'IoasMapper.unmap';
    checkU64(call, 'iova', iova);
    checkU64(call, 'length', length);
    try {
      return binding.ioasHandleUnmap(this.descriptor.token, iova, length);
    } catch (e) {
      return rethrow(call, e);
    }
  }
}
