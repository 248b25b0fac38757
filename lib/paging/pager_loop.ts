// The demand pager's worker: a serve loop on the fault queue's fd (the pump's blocking poll(2)
// loop, no event loop), which maps each fault's pages through the IOAS handle and answers in the
// same batch. Faults whose pages the policy hook must fill first wait: their fills go to the main
// thread, which posts the results on a port of their own and signals the loop's wake-up eventfd;
// the loop then leaves poll(2), takes the results (receiveMessageOnPort: no event loop needed),
// maps, answers, and polls again. Stop: the shared stop flag and the same wake-up; every group
// still waiting is answered INVALID before the worker ends.
//
// The common fault (a page of the window, absent, room in the budget) does not reach JS at all:
// the pump's native map step (native/map_step.h) maps it and answers it between read(2) and the
// call into JS. This loop gives the step its credit (evicting ahead when the budget is nearly
// full), and takes the step's log (the runs it mapped, into the eviction order; its latencies)
// each time JS runs: after a batch the step did not finish, when the credit is low, the log half
// full, or every idle 100 ms.
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { AnswerBuffer } from '../fault/answers.js';
import { binding, CONTROL, MAP_STEP } from '../core/binding.js';
import { toPosted } from '../core/errors.js';
import { FaultBatch } from '../fault/fault_batch.js';
import { PAGE_RESP_INVALID, PAGE_RESP_SUCCESS, PGFAULT_PERM_WRITE } from '../fault/fault.js';
import { LATENCY_SLOTS, LatencyHistogram } from './latency.js';
import { C, PagerCore } from './pager_core.js';

export const PAGE = 4096;
/** The shared stats block: the worker's counters, the main thread's, the latency histogram. */
export const MAIN = { policyRefused: 0, policyErrors: 1, policyTimeouts: 2, count: 3 } as const;
export const STATS_SLOTS = C.count + MAIN.count + LATENCY_SLOTS;
/** The shared flags (Int32): the stop request. */
export const FLAG_STOP = 0;

/** What the worker gets (workerData). */
export interface PagerWorkerConfig {
  fd: number;
  wake: number;
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  flags: SharedArrayBuffer;
  results: MessagePort;
  token: number;
  iova: number;
  pages: number;
  budgetPages: number;
  faultAround: number;
  writable: boolean;
  policy: boolean;
  bufferRecords: number | undefined;
  /** Whether the pump's native map step serves what it can (DemandPagerOptions.nativeStep). */
  nativeStep: boolean;
}

/** Entries in the map step's log: JS runs once it is half full. */
const STEP_LOG = 256;

/** Worker -> main messages. */
export type FromPager =
  | { type: 'serving' }
  | { type: 'fill'; pages: number[] } // [page, write (0/1)] pairs
  | { type: 'fault-error'; error: unknown; first: number; count: number }
  | { type: 'error'; error: unknown }
  | { type: 'stopped'; reason: 'stopped' | 'closed'; answeredInvalid: number };

/** Main -> worker (on the results port): [page, ok (0/1)] pairs. */
export type FillResults = number[];

export function statsViews(stats: SharedArrayBuffer): { counters: Float64Array; main: Float64Array; latency: LatencyHistogram } {
  return {
    counters: new Float64Array(stats, 0, C.count),
    main: new Float64Array(stats, C.count * 8, MAIN.count),
    latency: new LatencyHistogram(new Float64Array(stats, (C.count + MAIN.count) * 8, LATENCY_SLOTS)),
  };
}

/** The worker's whole life: serves until stopped, then answers what waits and says so. */
export function pagerWorkerMain(cfg: PagerWorkerConfig, parent: MessagePort): void {
  const pump = new binding.EventPump(cfg.fd, cfg.bufferRecords, true);
  try {
    const answers = new AnswerBuffer(pump, cfg.control);
    const flags = new Int32Array(cfg.flags);
    const { counters, latency } = statsViews(cfg.stats);
    const { token, iova, writable } = cfg;
    const mapFlags = writable ? 6 : 4; // IOAS_MAP_READABLE | IOAS_MAP_WRITEABLE
    const windowEnd = cfg.pages * PAGE;
    let fills: number[] = [];
    const core = new PagerCore({ pages: cfg.pages, budgetPages: cfg.budgetPages, faultAround: cfg.faultAround, writable, policy: cfg.policy }, {
      map: (first, count) => { binding.ioasHandleMap(token, first * PAGE, count * PAGE, iova + first * PAGE, mapFlags); },
      unmap: (first, count) => { binding.ioasHandleUnmap(token, iova + first * PAGE, count * PAGE); },
      fill: (page, write) => { fills.push(page, write ? 1 : 0); },
      answer: (cookie, success) => { answers.add(cookie, success ? PAGE_RESP_SUCCESS : PAGE_RESP_INVALID); },
      mapFailed: (error, first, count) => parent.postMessage({ type: 'fault-error', error: toPosted(error), first, count } satisfies FromPager),
    }, counters, latency);
    const batch = new FaultBatch(answers, { flush: () => void pump.writeAnswers() });

    // The native map step: its credit and log, and when JS evicts ahead for it.
    const step = cfg.nativeStep ? new Float64Array(MAP_STEP.header + STEP_LOG * MAP_STEP.entry) : undefined;
    const lowWater = 1 + cfg.faultAround;
    // Evicting ahead keeps an eighth of the budget free (at most 64 pages), when that is room for a
    // group and its fault-around; with a smaller budget JS evicts on demand, as without the step.
    const ahead = Math.min(64, Math.floor(cfg.budgetPages / 8));
    const headroom = ahead >= lowWater ? ahead : 0;
    const takeLog = () => {
      if (!step) return;
      const n = step[MAP_STEP.logLength];
      for (let k = 0, e = MAP_STEP.header; k < n; k++, e += MAP_STEP.entry) {
        if (step[e] >= 0) core.tookRun(step[e], step[e + 1]);
        latency.add(step[e + 2]);
      }
      step[MAP_STEP.logLength] = 0;
    };
    const grant = () => {
      if (!step) return;
      try {
        step[MAP_STEP.credit] = core.stepCredit(headroom, lowWater);
      } catch (error) {
        // An unmap the kernel refused while evicting ahead (a bug, or the IOAS gone): the step
        // stays off until JS has room again, and the main thread hears of it.
        step[MAP_STEP.credit] = -1;
        parent.postMessage({ type: 'error', error: toPosted(error) } satisfies FromPager);
      }
    };
    if (step) {
      step[MAP_STEP.lowWater] = lowWater;
      grant();
      pump.setMapStep({
        token, iova, pages: cfg.pages, pageSize: PAGE, faultAround: cfg.faultAround, writable, policy: cfg.policy, state: core.state, block: step,
        counters, slots: {
          served: C.served, faults: C.faults, pages: C.pages, success: C.success, spurious: C.spurious, mappedPages: C.mappedPages,
          aroundPages: C.aroundPages, mappedNow: C.mappedNow, peak: C.peak,
        },
      });
    }

    const onBatch = (view: Uint8Array, byteLength: number) => {
      takeLog();
      if (byteLength === 0) {
        grant();
        return;
      }
      const t0 = performance.now();
      batch._begin(view, byteLength);
      const groups = batch.groupCount;
      let answered = 0;
      let g = 0;
      try {
        for (; g < groups; g++) {
          const first = batch.first(g);
          const end = first + batch.size(g);
          const cookie = batch.cookie(first);
          if (core.waiting > 0) core.cookieSeen(cookie);
          core.begin();
          let inside = true;
          let write = false;
          for (let r = first; r < end; r++) {
            const off = offsetOf(batch, r) - iova;
            if (!(off >= 0 && off < windowEnd)) inside = false;
            else core.addPage(Math.floor(off / PAGE));
            if (batch.perm(r) & PGFAULT_PERM_WRITE) write = true;
          }
          if (!inside) {
            counters[C.outside]++;
            counters[C.invalid]++;
            batch.answer(g, 'invalid');
            answered++;
            continue;
          }
          const r = core.serve(cookie, write, t0);
          if (r === 'pending') continue;
          batch.answer(g, r);
          answered++;
        }
      } catch (error) {
        // A bug, not a fault's outcome: the groups not yet served are answered INVALID, the main
        // thread hears of it, the loop goes on.
        for (; g < groups; g++) if (!batch.answered(g)) { batch.answer(g, 'invalid'); counters[C.invalid]++; }
        parent.postMessage({ type: 'error', error: toPosted(error) } satisfies FromPager);
      } finally {
        batch._end();
      }
      if (answered > 0) {
        const ns = (performance.now() - t0) * 1e6;
        for (let k = 0; k < answered; k++) latency.add(ns);
      }
      if (fills.length > 0) {
        parent.postMessage({ type: 'fill', pages: fills } satisfies FromPager);
        fills = [];
      }
      grant();
    };
    let failure: Error | undefined;
    pump.setCallbacks(onBatch, (e: Error) => { failure = e; Atomics.store(flags, FLAG_STOP, 1); });
    parent.postMessage({ type: 'serving' } satisfies FromPager);
    let reason: 'stopped' | 'closed' = 'stopped';
    for (;;) {
      reason = pump.serve(cfg.wake, 100);
      if (reason === 'closed' || Atomics.load(flags, FLAG_STOP)) break;
      // Woken for fill results: apply them, write the answers they made, poll again.
      takeLog();
      for (let m; (m = receiveMessageOnPort(cfg.results));) {
        const results = m.message as FillResults;
        for (let k = 0; k < results.length; k += 2) core.filled(results[k], results[k + 1] === 1);
      }
      if (answers.waiting > 0) pump.writeAnswers();
      if (fills.length > 0) {
        parent.postMessage({ type: 'fill', pages: fills } satisfies FromPager);
        fills = [];
      }
      grant();
    }
    takeLog();
    if (failure) throw failure;
    // Stopping: what still waits for a fill is answered INVALID (nobody else can: the cookies are ours).
    const waiting = core.takeWaiting();
    for (const cookie of waiting) answers.add(cookie, PAGE_RESP_INVALID);
    if (answers.waiting > 0) pump.writeAnswers();
    Atomics.store(answers.slots, CONTROL.stop, 0);
    parent.postMessage({ type: 'stopped', reason, answeredInvalid: waiting.length } satisfies FromPager);
  } finally {
    pump.close();
    cfg.results.close();
  }
}

// A record's address as a number; one above 2^53 is outside any window (windows end below it).
function offsetOf(batch: FaultBatch, r: number): number {
  try {
    return batch.address(r);
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
}
