// CopyPool: copies of a pump's bytes that must outlive its buffer (kept fault groups, the
// iterator's vEVENTs), carved out of shared ArrayBuffers as Node's Buffer pool carves Buffers.
// An ArrayBuffer per copy cost a consumer taking one fault at a time more than the rest of its
// path (host, `for await`: ~1.3 µs of ~2.1 per fault); here one is allocated per `size` bytes.
// A copy keeps its whole pool alive until the copy is collected.

const EMPTY = new Uint8Array(0);

export class CopyPool {
  readonly #size: number;
  #bytes: Uint8Array<ArrayBuffer> = EMPTY;
  #poolView: DataView<ArrayBuffer> = new DataView(EMPTY.buffer);
  #used = 0;
  // Where the last copy went: the pool, or a buffer of its own.
  #view = this.#poolView;

  constructor(size = 64 * 1024) {
    this.#size = size;
  }

  /** The buffer the last copy went to. */
  get view(): DataView<ArrayBuffer> { return this.#view; }

  /** Copies `length` bytes at `byteOffset` of `buffer`; returns the copy's offset in `view`. */
  copy(buffer: ArrayBufferLike, byteOffset: number, length: number): number {
    const from = new Uint8Array(buffer, byteOffset, length);
    if (length > this.#size) { // bigger than a pool: a buffer of its own, the pool left as it is
      this.#view = new DataView(from.slice().buffer);
      return 0;
    }
    if (this.#used + length > this.#bytes.byteLength) {
      this.#bytes = new Uint8Array(this.#size);
      this.#poolView = new DataView(this.#bytes.buffer);
      this.#used = 0;
    }
    const at = this.#used;
    this.#bytes.set(from, at);
    this.#used = (at + length + 7) & ~7; // 8-byte aligned, as the kernel's records are
    this.#view = this.#poolView;
    return at;
  }
}
