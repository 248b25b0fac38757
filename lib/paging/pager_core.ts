// The demand pager's bookkeeping, free of threads and the kernel (host-testable with a fake
// mapper): which pages of the window are mapped, filled (by the policy hook) or being filled, the
// runs that were mapped in one ioctl (the unit of eviction: the kernel unmaps whole areas only),
// oldest first, the groups that wait for a fill, and the counters. The worker's loop
// (pager_loop.ts) feeds it fault groups and answers what it says.
//
// Budget: before a group's pages are mapped, the oldest runs are unmapped until the mapped pages
// plus the group's missing ones fit the budget, or nothing is left to unmap; then the group's
// pages are mapped (all of them: a group is answered once, for all its pages). So at any time
// mapped <= max(budget, the largest group) <= budget + one group. Fault-around neighbours are
// mapped only within the budget, never by unmapping what this group just mapped.
import { MAP_STEP } from '../core/binding.js';
import { LatencyHistogram } from './latency.js';

/** Page state bits (the worker's native map step reads and sets them too). */
const MAPPED = MAP_STEP.mapped;
const FILLED = MAP_STEP.filled;
const FILLING = MAP_STEP.filling;

/** Counters the worker writes (shared memory: the main thread reads them live). */
export const C = {
  faults: 0, pages: 1, mappedPages: 2, aroundPages: 3, evictedPages: 4, unmaps: 5, mappedNow: 6, peak: 7,
  success: 8, invalid: 9, outside: 10, fills: 11, pending: 12, stale: 13, mapErrors: 14, spurious: 15, readOnly: 16,
  /** Groups the native map step served (counted in faults, success... as well). */
  served: 17,
  /** How many there are. */
  count: 18,
} as const;

export interface CoreConfig {
  /** Pages in the window. */
  pages: number;
  /** The most pages mapped at once (budget / page size); >= 1 + faultAround. */
  budgetPages: number;
  /** Pages after a group's last page mapped with it when absent (and filled, with a policy). */
  faultAround: number;
  /** Whether the window is mapped writable (write faults are refused otherwise). */
  writable: boolean;
  /** Whether a page must be filled by the policy hook before its first mapping. */
  policy: boolean;
}

export interface CoreIo {
  /** Maps `count` window pages from `first` in one IOMMU_IOAS_MAP; throws when the kernel refuses. */
  map(first: number, count: number): void;
  /** Unmaps the run of `count` pages from `first` (exactly what one map() mapped). */
  unmap(first: number, count: number): void;
  /** Asks the policy hook about page `page` (first asked by a write fault if `write`); the answer
   *  comes back through PagerCore.filled(). */
  fill(page: number, write: boolean): void;
  /** A group that waited for fills is done: answer it. */
  answer(cookie: number, success: boolean): void;
  /** A mapping failed: the group is answered INVALID; `error` is the kernel's word. */
  mapFailed(error: unknown, first: number, count: number): void;
}

/** A group waiting for its pages' fills. */
interface Waiting {
  cookie: number;
  pages: Int32Array;
  /** Fills still outstanding for it. */
  left: number;
  refused: boolean;
  done: boolean;
  /** When it arrived (performance.now() ms), for its latency. */
  since: number;
}

export class PagerCore {
  readonly config: CoreConfig;
  readonly counters: Float64Array<ArrayBufferLike>;
  readonly latency: LatencyHistogram;
  #io: CoreIo;
  #state: Uint8Array;
  // The group being served: its window pages (deduplicated by #stamp).
  #group = new Int32Array(16);
  #groupSize = 0;
  #stamp: Int32Array;
  #serial = 0;
  // Mapped runs, oldest first: a ring of (first page, count).
  #runFirst: Int32Array;
  #runCount: Int32Array;
  #head = 0;
  #runs = 0;
  #scratch = new Int32Array(16);
  // Groups waiting for fills: by cookie, and by the pages they wait for.
  #waiting = new Map<number, Waiting>();
  #waitersOf = new Map<number, Waiting[]>();

  constructor(config: CoreConfig, io: CoreIo, counters: Float64Array<ArrayBufferLike> = new Float64Array(C.count), latency = new LatencyHistogram()) {
    this.config = config;
    this.#io = io;
    this.counters = counters;
    this.latency = latency;
    this.#state = new Uint8Array(config.pages);
    this.#stamp = new Int32Array(config.pages);
    const ring = Math.min(config.pages, config.budgetPages + 1024);
    this.#runFirst = new Int32Array(ring);
    this.#runCount = new Int32Array(ring);
  }

  /** Mapped pages now. */
  get mapped(): number { return this.counters[C.mappedNow]; }

  /** Groups waiting for fills now. */
  get waiting(): number { return this.#waiting.size; }

  /** The page state bytes, which the worker's native map step shares. */
  get state(): Uint8Array { return this.#state; }

  /** Whether page `p` is mapped (tests). */
  isMapped(p: number): boolean { return (this.#state[p] & MAPPED) !== 0; }

  /** Starts a group: add its pages with addPage(), then serve() it. */
  begin(): void {
    this.#groupSize = 0;
    this.#nextSerial();
    this.counters[C.faults]++;
  }

  #nextSerial(): void {
    if (++this.#serial === 0x7fffffff) {
      this.#serial = 1;
      this.#stamp.fill(0);
    }
  }

  /** One record of the group: window page `p` (the caller checked the window). */
  addPage(p: number): void {
    this.counters[C.pages]++;
    if (this.#stamp[p] === this.#serial) return; // a page twice in one group
    this.#stamp[p] = this.#serial;
    if (this.#groupSize === this.#group.length) {
      const bigger = new Int32Array(this.#group.length * 2);
      bigger.set(this.#group);
      this.#group = bigger;
    }
    this.#group[this.#groupSize++] = p;
  }

  /**
   * Serves the group begun: 'success' (its pages are mapped now), 'pending' (it waits for fills;
   * io.answer() answers it later) or 'invalid' (a mapping failed). `cookie` names it while it
   * waits; `write` says whether it asked for write access (checked against the window's).
   */
  serve(cookie: number, write: boolean, since: number): 'success' | 'pending' | 'invalid' {
    const c = this.counters;
    if (write && !this.config.writable) {
      c[C.readOnly]++;
      c[C.invalid]++;
      return 'invalid';
    }
    if (this.config.policy) {
      let left = 0;
      for (let k = 0; k < this.#groupSize; k++) if (!(this.#state[this.#group[k]] & FILLED)) left++;
      if (left > 0) return this.#wait(cookie, left, write, since);
    }
    const ok = this.#ensureMapped(this.#group, this.#groupSize, true);
    c[ok ? C.success : C.invalid]++;
    return ok ? 'success' : 'invalid';
  }

  #wait(cookie: number, left: number, write: boolean, since: number): 'pending' {
    const w: Waiting = { cookie, pages: this.#group.slice(0, this.#groupSize), left, refused: false, done: false, since };
    for (const p of w.pages) {
      const s = this.#state[p];
      if (s & FILLED) continue;
      let list = this.#waitersOf.get(p);
      if (!list) this.#waitersOf.set(p, (list = []));
      list.push(w);
      if (!(s & FILLING)) {
        this.#state[p] = s | FILLING;
        this.counters[C.fills]++;
        this.#io.fill(p, write);
      }
    }
    // A cookie that is still waiting here came back: the kernel answered that group itself
    // (detach, replace) and gave its cookie to this one. The old one is stale.
    const old = this.#waiting.get(cookie);
    if (old) this.#drop(old);
    this.#waiting.set(cookie, w);
    this.counters[C.pending] = this.#waiting.size;
    return 'pending';
  }

  /** A new batch's group has `cookie`: a group still waiting with it was answered by the kernel. */
  cookieSeen(cookie: number): void {
    const old = this.#waiting.get(cookie);
    if (old) this.#drop(old);
  }

  #drop(w: Waiting): void {
    w.done = true;
    this.#waiting.delete(w.cookie);
    this.counters[C.stale]++;
    this.counters[C.pending] = this.#waiting.size;
  }

  /**
   * The policy hook's word on page `p`: filled (map it from now on) or refused (the groups that
   * wait for it are answered INVALID; a later fault asks again). Returns how many groups it ended.
   */
  filled(p: number, ok: boolean): number {
    const s = this.#state[p];
    if (!(s & FILLING)) return 0;
    this.#state[p] = (s & ~FILLING) | (ok ? FILLED : 0);
    const list = this.#waitersOf.get(p);
    this.#waitersOf.delete(p);
    let ended = 0;
    for (const w of list ?? []) {
      if (w.done) continue;
      if (!ok) w.refused = true;
      if (--w.left > 0) continue;
      w.done = true;
      this.#waiting.delete(w.cookie);
      this.counters[C.pending] = this.#waiting.size;
      ended++;
      let success = !w.refused;
      if (success) {
        this.#nextSerial();
        for (const q of w.pages) this.#stamp[q] = this.#serial;
        success = this.#ensureMapped(w.pages, w.pages.length, true);
      }
      this.counters[success ? C.success : C.invalid]++;
      this.latency.add((performance.now() - w.since) * 1e6);
      this.#io.answer(w.cookie, success);
    }
    return ended;
  }

  /** Every group still waiting (close answers them INVALID); they are forgotten. */
  takeWaiting(): number[] {
    const cookies = [...this.#waiting.keys()];
    for (const w of this.#waiting.values()) w.done = true;
    this.#waiting.clear();
    this.#waitersOf.clear();
    for (let p = 0; p < this.#state.length; p++) this.#state[p] &= ~FILLING;
    this.counters[C.invalid] += cookies.length;
    this.counters[C.pending] = 0;
    return cookies;
  }

  // Maps the missing ones of `pages[0..n)` (all stamped with this step's serial), first making room
  // by unmapping the oldest runs; then fault-around. False if a mapping failed.
  #ensureMapped(pages: Int32Array, n: number, around: boolean): boolean {
    const c = this.counters;
    const budget = this.config.budgetPages;
    let need = 0;
    for (let k = 0; k < n; k++) if (!(this.#state[pages[k]] & MAPPED)) need++;
    if (need === 0) c[C.spurious]++;
    // Room first (nothing of this step is mapped yet): an unmapped run with pages of this group
    // makes them missing again.
    while (need > 0 && c[C.mappedNow] + need > budget && this.#runs > 0) need += this.#evictOldest();
    // The missing pages, ascending, in runs of consecutive pages (one ioctl each).
    let m = 0;
    if (this.#scratch.length < n) this.#scratch = new Int32Array(n * 2);
    for (let k = 0; k < n; k++) if (!(this.#state[pages[k]] & MAPPED)) this.#scratch[m++] = pages[k];
    const todo = this.#scratch.subarray(0, m).sort();
    // Fault-around: the pages after the group's last one, while absent (and filled, with a
    // policy), within the budget: runs may be unmapped for them, but none with a page of the group.
    const last = lastOf(pages, n);
    let extra = 0;
    if (around && this.config.faultAround > 0) {
      const limit = Math.min(this.config.faultAround, this.#state.length - 1 - last);
      while (extra < limit && this.#absent(last + 1 + extra)) extra++;
      while (extra > 0 && c[C.mappedNow] + m + extra > budget && this.#runs > 0 && !this.#oldestHasGroupPage()) this.#evictOldest();
      extra = Math.max(0, Math.min(extra, budget - c[C.mappedNow] - m));
    }
    let ok = true;
    let k = 0;
    while (k < m) {
      const first = todo[k];
      let count = 1;
      while (k + count < m && todo[k + count] === first + count) count++;
      k += count;
      // The neighbours join the run that ends with the group's last page.
      const joins = extra > 0 && first + count === last + 1;
      if (!this.#mapRun(first, count + (joins ? extra : 0), joins ? extra : 0)) ok = false;
      if (joins) extra = 0;
    }
    if (extra > 0) this.#mapRun(last + 1, extra, extra);
    return ok;
  }

  #oldestHasGroupPage(): boolean {
    const first = this.#runFirst[this.#head];
    for (let p = first; p < first + this.#runCount[this.#head]; p++) if (this.#stamp[p] === this.#serial) return true;
    return false;
  }

  #absent(p: number): boolean {
    const s = this.#state[p];
    return !(s & (MAPPED | FILLING)) && (!this.config.policy || (s & FILLED) !== 0);
  }

  #mapRun(first: number, count: number, around: number): boolean {
    try {
      this.#io.map(first, count);
    } catch (e) {
      this.counters[C.mapErrors]++;
      this.#io.mapFailed(e, first, count);
      return false;
    }
    for (let p = first; p < first + count; p++) this.#state[p] |= MAPPED;
    const c = this.counters;
    c[C.mappedPages] += count;
    c[C.aroundPages] += around;
    c[C.mappedNow] += count;
    if (c[C.mappedNow] > c[C.peak]) c[C.peak] = c[C.mappedNow];
    if (this.#runs === this.#runFirst.length) this.#growRing();
    const at = (this.#head + this.#runs) % this.#runFirst.length;
    this.#runFirst[at] = first;
    this.#runCount[at] = count;
    this.#runs++;
    return true;
  }

  #growRing(): void {
    const n = this.#runFirst.length;
    const order = (a: Int32Array) => {
      const b = new Int32Array(n * 2);
      for (let i = 0; i < this.#runs; i++) b[i] = a[(this.#head + i) % n];
      return b;
    };
    this.#runFirst = order(this.#runFirst);
    this.#runCount = order(this.#runCount);
    this.#head = 0;
  }

  // Unmaps the oldest run; returns how many of its pages belong to the group being served.
  #evictOldest(): number {
    const h = this.#head;
    const first = this.#runFirst[h];
    const count = this.#runCount[h];
    this.#head = (h + 1) % this.#runFirst.length;
    this.#runs--;
    this.#io.unmap(first, count);
    let ours = 0;
    for (let p = first; p < first + count; p++) {
      this.#state[p] &= ~MAPPED;
      if (this.#stamp[p] === this.#serial) ours++;
    }
    const c = this.counters;
    c[C.evictedPages] += count;
    c[C.unmaps]++;
    c[C.mappedNow] -= count;
    return ours;
  }

  /**
   * A run the native map step mapped (it set the pages' state and counted them): it joins the
   * eviction order. The step's runs come here in the order it mapped them, before JS maps again.
   */
  tookRun(first: number, count: number): void {
    if (this.#runs === this.#runFirst.length) this.#growRing();
    const at = (this.#head + this.#runs) % this.#runFirst.length;
    this.#runFirst[at] = first;
    this.#runCount[at] = count;
    this.#runs++;
  }

  /**
   * The pages the native map step may map before JS runs again: -1 (the step is off) while groups
   * wait for fills (their cookies are JS's to watch); else the budget's room, which is first made
   * `headroom` pages by unmapping the oldest runs when it is below `lowWater`. Evicting ahead, off
   * the fault path, is what lets the step serve most faults alone when the budget is full.
   */
  stepCredit(headroom: number, lowWater: number): number {
    if (this.#waiting.size > 0) return -1;
    const c = this.counters;
    const budget = this.config.budgetPages;
    if (budget - c[C.mappedNow] < lowWater) {
      this.#nextSerial();
      while (budget - c[C.mappedNow] < headroom && this.#runs > 0) this.#evictOldest();
    }
    return budget - c[C.mappedNow];
  }

  /** Every mapped run, oldest first (close unmaps them); the core forgets them. */
  takeRuns(): { first: number; count: number }[] {
    const out: { first: number; count: number }[] = [];
    for (let i = 0; i < this.#runs; i++) {
      const at = (this.#head + i) % this.#runFirst.length;
      out.push({ first: this.#runFirst[at], count: this.#runCount[at] });
      for (let p = this.#runFirst[at]; p < this.#runFirst[at] + this.#runCount[at]; p++) this.#state[p] &= ~MAPPED;
    }
    this.#runs = 0;
    this.counters[C.mappedNow] = 0;
    return out;
  }
}

function lastOf(pages: Int32Array, n: number): number {
  let last = -1;
  for (let k = 0; k < n; k++) if (pages[k] > last) last = pages[k];
  return last;
}
