// The demand pager's bookkeeping (lib/paging/pager_core.ts) against a fake IOAS that checks what
// the kernel would: no page mapped twice, every unmap exactly one earlier map (an area), and the
// budget bound (mapped <= max(budget, the group) <= budget + one group) after every step.
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../lib/paging/latency.js';
import { C, type CoreConfig, type CoreIo, PagerCore } from '../../lib/paging/pager_core.js';

class FakeIoas {
  mapped = new Set<number>();
  areas = new Map<number, number>(); // first page -> count
  fills: [number, boolean][] = [];
  answers: [number, boolean][] = [];
  failures: unknown[] = [];
  failNext = false;
  io: CoreIo = {
    map: (first, count) => {
      if (this.failNext) {
        this.failNext = false;
        throw Object.assign(new Error('EEXIST'), { code: 'EEXIST' });
      }
      for (let p = first; p < first + count; p++) {
        if (this.mapped.has(p)) throw new Error(`page ${p} mapped twice`);
        this.mapped.add(p);
      }
      this.areas.set(first, count);
    },
    unmap: (first, count) => {
      if (this.areas.get(first) !== count) throw new Error(`unmap of ${first}+${count} is no area (ENOENT)`);
      this.areas.delete(first);
      for (let p = first; p < first + count; p++) this.mapped.delete(p);
    },
    fill: (page, write) => { this.fills.push([page, write]); },
    answer: (cookie, success) => { this.answers.push([cookie, success]); },
    mapFailed: (e) => { this.failures.push(e); },
  };
}

function pager(config: Partial<CoreConfig> = {}) {
  const ioas = new FakeIoas();
  const core = new PagerCore({ pages: 1024, budgetPages: 1024, faultAround: 0, writable: true, policy: false, ...config }, ioas.io);
  const fault = (pages: number[], cookie = 1, write = false) => {
    core.begin();
    for (const p of pages) core.addPage(p);
    return core.serve(cookie, write, performance.now());
  };
  return { ioas, core, fault };
}

/** A small deterministic PRNG (xorshift32). */
function rng(seed: number) {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('PagerCore', () => {
  it('maps a faulting page, answers success, and a fault on a mapped page maps nothing', () => {
    const { ioas, core, fault } = pager();
    expect(fault([5])).toBe('success');
    expect([...ioas.mapped]).toEqual([5]);
    expect(fault([5])).toBe('success');
    expect(core.counters[C.spurious]).toBe(1);
    expect(core.counters[C.mappedPages]).toBe(1);
    expect(core.counters[C.success]).toBe(2);
  });

  it('a multi-page group: its pages mapped in runs of consecutive pages, answered once', () => {
    const { ioas, fault } = pager();
    expect(fault([12, 10, 11, 20])).toBe('success');
    expect([...ioas.areas].sort((a, b) => a[0] - b[0])).toEqual([[10, 3], [20, 1]]);
  });

  it('random faults over a window 64x the budget: mapped never above the budget, evictions unmap whole areas oldest first', () => {
    const budget = 16;
    const { ioas, core, fault } = pager({ pages: 64 * budget, budgetPages: budget });
    const random = rng(7);
    for (let i = 0; i < 5000; i++) {
      const p = Math.floor(random() * 64 * budget);
      expect(fault([p], i)).toBe('success');
      expect(ioas.mapped.has(p)).toBe(true);
      expect(ioas.mapped.size).toBe(core.mapped);
      expect(core.mapped).toBeLessThanOrEqual(budget);
    }
    const c = core.counters;
    expect(c[C.evictedPages]).toBe(c[C.mappedPages] - c[C.mappedNow]);
    expect(c[C.peak]).toBe(budget);
    expect(c[C.evictedPages]).toBeGreaterThan(4000);
  });

  it('a group larger than the budget is mapped whole (mapped <= max(budget, group)), the rest evicted', () => {
    const { ioas, core, fault } = pager({ budgetPages: 4 });
    for (let p = 0; p < 4; p++) fault([100 + p * 2]);
    expect(core.mapped).toBe(4);
    expect(fault([0, 1, 2, 3, 4, 5])).toBe('success');
    expect(core.mapped).toBe(6);
    expect([...ioas.mapped].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(core.counters[C.peak]).toBe(6);
    // The next fault brings it back within the budget.
    fault([500]);
    expect(core.mapped).toBeLessThanOrEqual(4);
  });

  it('an eviction that takes a page of the group being served maps it again', () => {
    const { ioas, core, fault } = pager({ budgetPages: 3 });
    fault([1]);
    fault([2]);
    fault([3]);
    // Page 1 is the oldest run: making room for page 9 unmaps it, and the group needs it again.
    expect(fault([1, 9])).toBe('success');
    expect(ioas.mapped.has(1) && ioas.mapped.has(9)).toBe(true);
    expect(core.mapped).toBeLessThanOrEqual(3);
  });

  it('fault-around maps the pages after the fault in the same run, within the window and the budget, skipping mapped ones', () => {
    const { ioas, core, fault } = pager({ pages: 100, budgetPages: 8, faultAround: 3 });
    fault([10]);
    expect(ioas.areas.get(10)).toBe(4);
    expect(core.counters[C.aroundPages]).toBe(3);
    fault([98]); // the window ends at 99
    expect(ioas.areas.get(98)).toBe(2);
    fault([20]); // budget 8: 4 + 2 + 4 would be 10: the oldest run (10..13) goes
    expect(core.mapped).toBeLessThanOrEqual(8);
    expect(ioas.mapped.has(20) && ioas.mapped.has(23)).toBe(true);
    fault([22]); // mapped already: nothing new
    expect(core.counters[C.spurious]).toBe(1);
    fault([40]);
    fault([43]); // 44..46 absent: mapped with it
    expect(ioas.mapped.has(46)).toBe(true);
  });

  it('fault-around never unmaps a page of the group it serves, and stops at a mapped page', () => {
    const { ioas, core, fault } = pager({ pages: 100, budgetPages: 4, faultAround: 3 });
    fault([50]);
    expect(ioas.areas.get(50)).toBe(4);
    fault([52, 60]); // 52 is mapped (in 50's run, the oldest): room for 60 + 3 would evict it
    expect(ioas.mapped.has(52) && ioas.mapped.has(60)).toBe(true);
    expect(core.mapped).toBeLessThanOrEqual(5);
  });

  it('random groups with fault-around: the kernel-side invariants hold throughout', () => {
    const budget = 32;
    const { ioas, core, fault } = pager({ pages: 2048, budgetPages: budget, faultAround: 7 });
    const random = rng(99);
    for (let i = 0; i < 3000; i++) {
      const first = Math.floor(random() * 2040);
      const size = 1 + Math.floor(random() * 4);
      const pages = Array.from({ length: size }, (_, k) => first + k);
      expect(fault(pages, i)).toBe('success');
      for (const p of pages) expect(ioas.mapped.has(p)).toBe(true);
      expect(core.mapped).toBe(ioas.mapped.size);
      expect(core.mapped).toBeLessThanOrEqual(budget);
    }
  });

  it('a read-only window answers a write fault INVALID without mapping', () => {
    const { ioas, core, fault } = pager({ writable: false });
    expect(fault([3], 1, true)).toBe('invalid');
    expect(ioas.mapped.size).toBe(0);
    expect(core.counters[C.readOnly]).toBe(1);
    expect(fault([3], 2, false)).toBe('success');
  });

  it('a mapping the kernel refuses: INVALID, reported, nothing counted as mapped', () => {
    const { ioas, core, fault } = pager();
    ioas.failNext = true;
    expect(fault([7])).toBe('invalid');
    expect(ioas.failures).toHaveLength(1);
    expect(core.counters[C.mapErrors]).toBe(1);
    expect(core.mapped).toBe(0);
    expect(fault([7])).toBe('success');
  });

  it('policy: a page is asked for once while groups wait on it; a fill maps and answers them all', () => {
    const { ioas, core, fault } = pager({ policy: true });
    expect(fault([4], 100)).toBe('pending');
    expect(fault([4, 5], 101, true)).toBe('pending');
    expect(ioas.fills).toEqual([[4, false], [5, true]]);
    expect(core.waiting).toBe(2);
    expect(core.filled(4, true)).toBe(1); // group 100 is complete; 101 waits for page 5
    expect(ioas.answers).toEqual([[100, true]]);
    expect(core.filled(5, true)).toBe(1);
    expect(ioas.answers).toEqual([[100, true], [101, true]]);
    expect([...ioas.mapped].sort()).toEqual([4, 5]);
    // Filled pages need no hook any more: after an eviction they are mapped at once.
    expect(fault([4], 102)).toBe('success');
    expect(core.counters[C.fills]).toBe(2);
  });

  it('policy: a refusal answers the waiting groups INVALID; the page is asked for again next time', () => {
    const { ioas, core, fault } = pager({ policy: true });
    fault([9], 1);
    fault([9, 10], 2);
    core.filled(9, false);
    core.filled(10, true);
    expect(ioas.answers).toEqual([[1, false], [2, false]]);
    expect(ioas.mapped.size).toBe(0);
    expect(fault([9], 3)).toBe('pending');
    expect(ioas.fills.filter(([p]) => p === 9)).toHaveLength(2);
  });

  it('policy: fault-around maps only filled neighbours', () => {
    const { ioas, core, fault } = pager({ policy: true, faultAround: 4 });
    fault([21], 1);
    core.filled(21, true);
    fault([20], 2);
    core.filled(20, true); // 21 is filled (and mapped); 22.. are not filled: no neighbour
    expect([...ioas.mapped].sort()).toEqual([20, 21]);
    expect(core.counters[C.aroundPages]).toBe(0);
  });

  it('a waiting group whose cookie comes back was answered by the kernel: stale, its late fill answers nothing', () => {
    const { ioas, core, fault } = pager({ policy: true });
    fault([30], 77);
    core.cookieSeen(77);
    expect(core.counters[C.stale]).toBe(1);
    expect(core.waiting).toBe(0);
    core.filled(30, true);
    expect(ioas.answers).toEqual([]);
  });

  it('takeWaiting hands over every waiting cookie (close answers them INVALID) and forgets them', () => {
    const { ioas, core, fault } = pager({ policy: true });
    fault([1], 11);
    fault([2], 12);
    expect(core.takeWaiting().sort()).toEqual([11, 12]);
    expect(core.waiting).toBe(0);
    expect(core.filled(1, true)).toBe(0);
    expect(ioas.answers).toEqual([]);
  });

  it('takeRuns lists what is mapped (close unmaps it) and empties the pager', () => {
    const { core, fault } = pager({ faultAround: 1 });
    fault([3]);
    fault([8]);
    expect(core.takeRuns()).toEqual([{ first: 3, count: 2 }, { first: 8, count: 2 }]);
    expect(core.mapped).toBe(0);
  });

  // What the worker's native map step does to a page (native/map_step.cc), imitated: it sets the
  // state bits and counts, then hands the run to tookRun() when the worker's JS next runs.
  function stepMaps(ioas: FakeIoas, core: PagerCore, first: number, count: number) {
    ioas.io.map(first, count);
    for (let p = first; p < first + count; p++) core.state[p] |= 1;
    core.counters[C.mappedNow] += count;
    core.counters[C.mappedPages] += count;
  }

  it('stepCredit: the budget\'s room; below the low water mark the oldest runs (the step\'s included, in order) are evicted to make the headroom', () => {
    const { ioas, core, fault } = pager({ budgetPages: 16 });
    expect(core.stepCredit(4, 1)).toBe(16);
    fault([0]);
    stepMaps(ioas, core, 5, 1);
    core.tookRun(5, 1);
    stepMaps(ioas, core, 6, 14);
    core.tookRun(6, 14);
    expect(core.mapped).toBe(16);
    // No room left: evict the oldest (page 0, then page 5) until 4 pages are free... runs are whole:
    // 0 (1 page), 5 (1 page), then 6-19 (14 pages) frees 16.
    expect(core.stepCredit(4, 1)).toBe(16);
    expect(ioas.mapped.size).toBe(0);
    expect(core.counters[C.evictedPages]).toBe(16);
    expect(core.counters[C.unmaps]).toBe(3);
    // Room above the low water mark: nothing is evicted.
    fault([30]);
    expect(core.stepCredit(4, 1)).toBe(15);
    expect(core.counters[C.unmaps]).toBe(3);
    // A headroom of 0 (a budget too small to evict ahead): never evicts.
    fault([31]);
    stepMaps(ioas, core, 40, 14);
    core.tookRun(40, 14);
    expect(core.stepCredit(0, 1)).toBe(0);
    expect(core.counters[C.unmaps]).toBe(3);
    // The JS path evicts on demand, the step's runs first in line after page 30's.
    expect(fault([60])).toBe('success');
    expect(core.isMapped(30)).toBe(false);
    expect(core.isMapped(31)).toBe(true);
  });

  it('stepCredit is -1 (the step off) while a group waits for a fill', () => {
    const { core, fault } = pager({ policy: true, budgetPages: 8 });
    expect(fault([1], 7)).toBe('pending');
    expect(core.stepCredit(2, 1)).toBe(-1);
    core.filled(1, true);
    expect(core.stepCredit(2, 1)).toBe(7);
  });
});

describe('LatencyHistogram', () => {
  it('percentiles within 9% and the exact max', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.add(i * 1000); // 1..1000 us
    const p = h.percentiles();
    expect(p.count).toBe(1000);
    expect(p.p50 / 500).toBeGreaterThan(0.91);
    expect(p.p50 / 500).toBeLessThan(1.09);
    expect(p.p99 / 990).toBeGreaterThan(0.91);
    expect(p.p99 / 990).toBeLessThan(1.09);
    expect(p.max).toBe(1000);
    expect(new LatencyHistogram().percentiles()).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });
});
