// The demand pager's worker: a serve loop on the fault queue's fd (the pump's blocking poll(2)
// loop, no event loop), which maps each fault's pages through the IOAS handle and answers in the
// same batch. Faults whose pages the policy hook must fill first wait: their fills go to the main
// thread, which posts the results on a port of their own and signals the loop's wake-up eventfd;
// the loop then leaves poll(2), takes the results (receiveMessageOnPort: no event loop needed),
// maps, answers, and polls again. Stop: the shared stop flag and the same wake-up; every group
// still waiting is answered INVALID before the worker ends.
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { AnswerBuffer } from '../fault/answers.js';
import { binding, CONTROL } from '../core/binding.js';
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
}

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
      mapFailed: (error, first, count) => parent.postMessage({ type: 'fault-error', error, first, count } satisfies FromPager),
    }, counters, latency);
    const batch = new FaultBatch(answers, { flush: () => void pump.writeAnswers() });

    const onBatch = (view: Uint8Array, byteLength: number) => {
      if (byteLength === 0) return;
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
        parent.postMessage({ type: 'error', error } satisfies FromPager);
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
    };
    let failure: Error | undefined;
    pump.setCallbacks(onBatch, (e: Error) => { failure = e; Atomics.store(flags, FLAG_STOP, 1); });
    parent.postMessage({ type: 'serving' } satisfies FromPager);
    let reason: 'stopped' | 'closed' = 'stopped';
    for (;;) {
      reason = pump.serve(cfg.wake, 100);
      if (reason === 'closed' || Atomics.load(flags, FLAG_STOP)) break;
      // Woken for fill results: apply them, write the answers they made, poll again.
      for (let m; (m = receiveMessageOnPort(cfg.results));) {
        const results = m.message as FillResults;
        for (let k = 0; k < results.length; k += 2) core.filled(results[k], results[k + 1] === 1);
      }
      if (answers.waiting > 0) pump.writeAnswers();
      if (fills.length > 0) {
        parent.postMessage({ type: 'fill', pages: fills } satisfies FromPager);
        fills = [];
      }
    }
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
