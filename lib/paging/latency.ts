// A latency histogram in shared memory: the worker counts, the main thread reads percentiles live.
// Log-scale buckets, 8 per doubling (each 9% wide), from 1 ns to 2^40 ns (18 minutes): constant
// memory and one Math.log2 per sample, whatever the run's length.

const PER_DOUBLING = 8;
/** Buckets, and the Float64 slots the histogram takes (the buckets, then the count and the max). */
export const LATENCY_BUCKETS = 40 * PER_DOUBLING;
export const LATENCY_SLOTS = LATENCY_BUCKETS + 2;

export interface LatencyPercentiles {
  /** Samples counted. */
  count: number;
  /** Microseconds (each within 9% of the true value), 0 with no sample. */
  p50: number;
  p90: number;
  p99: number;
  /** The largest sample, exact, in microseconds. */
  max: number;
}

export class LatencyHistogram {
  readonly slots: Float64Array<ArrayBufferLike>;

  constructor(slots: Float64Array<ArrayBufferLike> = new Float64Array(LATENCY_SLOTS)) {
    this.slots = slots;
  }

  /** One sample, in nanoseconds. */
  add(ns: number): void {
    const b = ns <= 1 ? 0 : Math.min(LATENCY_BUCKETS - 1, Math.floor(Math.log2(ns) * PER_DOUBLING));
    const s = this.slots;
    s[b]++;
    s[LATENCY_BUCKETS]++;
    if (ns > s[LATENCY_BUCKETS + 1]) s[LATENCY_BUCKETS + 1] = ns;
  }

  percentiles(): LatencyPercentiles {
    const s = this.slots;
    const count = s[LATENCY_BUCKETS];
    const at = (q: number): number => {
      if (count === 0) return 0;
      const rank = Math.ceil(q * count);
      let seen = 0;
      for (let b = 0; b < LATENCY_BUCKETS; b++) {
        seen += s[b];
        // The bucket's geometric middle, no more than the largest sample.
        if (seen >= rank) return Math.min(2 ** ((b + 0.5) / PER_DOUBLING), s[LATENCY_BUCKETS + 1]) / 1000;
      }
      return s[LATENCY_BUCKETS + 1] / 1000;
    };
    const round = (us: number) => Math.round(us * 10) / 10;
    return { count, p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), max: round(s[LATENCY_BUCKETS + 1] / 1000) };
  }
}
