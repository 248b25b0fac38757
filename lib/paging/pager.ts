// DemandPager: a guest-RAM window served lazily. A device's page requests for the window come to a
// fault queue; the pager's worker thread maps each faulting page (and, optionally, the pages after
// it) from the caller's memory into the IOAS and answers SUCCESS, answers INVALID outside the
// window, and keeps the mapped (so pinned) bytes within a budget by unmapping the oldest runs.
// An optional policy hook, on this thread, fills a page before its first mapping or refuses it.
// The worker maps through an IoasHandle (objects/ioas_handle.ts: why that is safe); this side
// checks the options, answers the hook's requests, reads the stats from shared memory and stops.
import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import {
  checkBytes, checkInstance, checkOptions, checkSameIommufd, checkU64, describeValue, invalidArgValue, optionalBoolean,
  optionalFunction, optionalInteger, optionalU64, outOfRange,
} from '../core/args.js';
import { binding } from '../core/binding.js';
import { ErrorCodes, fromPosted, IommufdError } from '../core/errors.js';
import { FaultQueue } from '../fault/fault_queue.js';
import { FaultServer, type ServeResult } from '../fault/serve.js';
import { Ioas } from '../objects/ioas.js';
import type { IoasHandle } from '../objects/ioas_handle.js';
import type { LatencyPercentiles } from './latency.js';
import { C } from './pager_core.js';
import { FLAG_STOP, type FromPager, MAIN, PAGE, type PagerWorkerConfig, STATS_SLOTS, statsViews } from './pager_loop.js';
import workerPath from './pager_worker_path.cjs';

/** What the policy hook is asked: a page of the window, before its first mapping. */
export interface PageRequest {
  /** The page's IOVA. */
  iova: bigint;
  /** Its byte offset in the pager's memory. */
  offset: number;
  /** Its bytes in the pager's memory (fill them before you answer 'map'). */
  bytes: Uint8Array;
  /** Whether the first fault on it asked for write access. */
  write: boolean;
  /** Aborted when the request times out (policyTimeoutMs) or the pager closes: stop filling. */
  signal: AbortSignal;
}

/** 'map' (or undefined): the page is filled, map it from now on; 'refuse': answer INVALID. */
export type PolicyAnswer = 'map' | 'refuse' | undefined | void;
export type PagePolicy = (request: PageRequest) => PolicyAnswer | Promise<PolicyAnswer>;

export interface DemandPagerOptions {
  /** The IOAS the device's HWPT translates through (for a nested HWPT: its parent's IOAS). */
  ioas: Ioas;
  /** The queue the device's page requests arrive on (of the same iommufd). */
  faultQueue: FaultQueue;
  /** Guest RAM: page-aligned memory (allocPages()), at least `length` bytes. */
  memory: ArrayBuffer | SharedArrayBuffer | ArrayBufferView;
  /** Where the window starts in the IOAS (page aligned). */
  iova: bigint;
  /** The window's length in bytes (page multiple; default: the memory's length). */
  length?: bigint;
  /** The most bytes mapped at once (page multiple, at least one page and its fault-around);
   *  default: the window (no eviction). */
  budget?: bigint;
  /** Pages after a fault's last page mapped with it when absent (default 0, at most 512). */
  faultAround?: number;
  /** Map the window writable (default true); false: write faults are answered INVALID. */
  writable?: boolean;
  /** Called on this thread for each page's first fault, before the page is mapped. */
  policy?: PagePolicy;
  /** A hook that has not settled by then is taken as a refusal (default: no limit). */
  policyTimeoutMs?: number;
  /** Map and answer the common fault in the addon, without entering JS (default true): see
   *  docs/api-vmm.md. false: every group goes through the worker's JS, as before. */
  nativeStep?: boolean;
}

export interface DemandPagerStats {
  /** Fault groups read, and pages they asked for. */
  faults: number;
  pages: number;
  /** Pages mapped so far (fault-around ones included), of which fault-around. */
  mappedPages: number;
  faultAroundPages: number;
  /** Pages unmapped to stay within the budget, in how many unmaps (one per run). */
  evictedPages: number;
  evictions: number;
  /** Bytes mapped (so pinned) now, and at most so far. */
  mappedBytes: number;
  peakMappedBytes: number;
  /** Groups answered SUCCESS and INVALID (by the pager: close() included). */
  success: number;
  invalid: number;
  /** INVALID because a page was outside the window, or a write to a read-only window. */
  outside: number;
  readOnly: number;
  /** Groups whose pages were all mapped already (answered SUCCESS without a map). */
  alreadyMapped: number;
  /** Groups the native map step served without entering JS (counted in faults, success... too). */
  servedNatively: number;
  /** Policy hook calls, and their outcomes other than 'map'. */
  policyCalls: number;
  policyRefused: number;
  policyErrors: number;
  policyTimeouts: number;
  /** Groups waiting for the hook now. */
  pending: number;
  /** Waiting groups the kernel answered itself (detach, replace) before the hook settled. */
  stale: number;
  /** Mappings the kernel refused (the group answered INVALID; 'faultError' has the error). */
  mapErrors: number;
  /** Answers the kernel accepted and refused. */
  answered: number;
  refused: number;
  /** From a group's read to its answer, in microseconds (the hook's time included). */
  latency: LatencyPercentiles;
}

export interface DemandPagerCloseOptions {
  /** Unmap the window (default true); false leaves what is mapped (and pinned) in the IOAS. */
  unmap?: boolean;
}

export interface DemandPagerCloseResult {
  /** Groups waiting for the hook, answered INVALID. */
  answeredInvalid: number;
  /** Bytes unmapped (0n when leaving them mapped). */
  unmappedBytes: bigint;
  stats: DemandPagerStats;
}

/** What a fault error is about (the 'faultError' event's second argument). */
export interface FaultErrorInfo {
  cause: 'map' | 'policy' | 'timeout';
  iova: bigint;
  /** Bytes from iova. */
  length: number;
}

// Windows of running pagers, per IOAS (this thread's pagers: an IOAS is not shared across threads).
const windows = new WeakMap<Ioas, Set<{ start: bigint; end: bigint }>>();

/** The serve loop's FaultServer, which also raises the pager's own stop flag (a queue's close() calls its stop()). */
class PagerServer extends FaultServer {
  #flags: Int32Array;
  constructor(worker: Worker, control: SharedArrayBuffer, wake: number, end: () => void, flags: Int32Array) {
    super(worker, control, wake, end, 5000);
    this.#flags = flags;
  }

  override stop(): Promise<ServeResult> {
    Atomics.store(this.#flags, FLAG_STOP, 1);
    return super.stop();
  }
}

interface Asking { controller: AbortController; timer: NodeJS.Timeout | undefined }

/**
 * Serves a window of guest RAM on demand (DemandPager.start). Events: 'faultError' (error, info)
 * when a mapping fails or the policy hook throws, rejects, answers nonsense or times out (the group
 * is answered INVALID, the pager goes on); 'error' when its worker fails (as an EventEmitter's
 * 'error', thrown if nobody listens).
 */
export class DemandPager extends EventEmitter {
  readonly ioas: Ioas;
  readonly faultQueue: FaultQueue;
  /** The window: its IOVA and length in bytes. */
  readonly iova: bigint;
  readonly length: bigint;
  #handle: IoasHandle;
  #server: PagerServer;
  #wake: number;
  #port: MessagePort;
  #views: ReturnType<typeof statsViews>;
  #bytes: Uint8Array;
  #policy: PagePolicy | undefined;
  #timeoutMs: number | undefined;
  #asking = new Map<number, Asking>();
  #results: number[] = [];
  #window: { start: bigint; end: bigint };
  #answeredInvalid = 0;
  #closing: Promise<DemandPagerCloseResult> | undefined;

  private constructor(o: { ioas: Ioas; queue: FaultQueue; iova: bigint; length: bigint; handle: IoasHandle; server: PagerServer; wake: number; port: MessagePort;
    stats: SharedArrayBuffer; bytes: Uint8Array; policy: PagePolicy | undefined; timeoutMs: number | undefined; window: { start: bigint; end: bigint } }) {
    super();
    this.ioas = o.ioas;
    this.faultQueue = o.queue;
    this.iova = o.iova;
    this.length = o.length;
    this.#handle = o.handle;
    this.#server = o.server;
    this.#wake = o.wake;
    this.#port = o.port;
    this.#views = statsViews(o.stats);
    this.#bytes = o.bytes;
    this.#policy = o.policy;
    this.#timeoutMs = o.timeoutMs;
    this.#window = o.window;
  }

  /**
   * Starts serving `options.faultQueue`'s faults for the window [iova, iova + length) of
   * `options.ioas` from `options.memory` on a worker thread; resolves once it serves. The queue
   * is the pager's until close() (its own consumers get nothing meanwhile).
   */
  static async start(options: DemandPagerOptions): Promise<DemandPager> {
    const call = 'DemandPager.start';
    const o = checkOptions<DemandPagerOptions>(call, options, false);
    const ioas = checkInstance(call, 'options.ioas', o.ioas, Ioas, 'an Ioas', (x) => x.destroyed || x.iommufd.closed);
    const queue = checkInstance(call, 'options.faultQueue', o.faultQueue, FaultQueue, 'a FaultQueue', (q) => q.closed);
    checkSameIommufd(call, 'options.faultQueue', queue, ioas.iommufd, 'a FaultQueue of the IOAS\'s iommufd');
    const bytes = checkBytes(call, 'options.memory', o.memory);
    const iova = checkU64(call, 'options.iova', o.iova);
    if (iova % BigInt(PAGE) !== 0n) throw outOfRange(call, 'options.iova', `a multiple of ${PAGE}`, iova);
    const length = optionalU64(call, 'options.length', o.length) ?? BigInt(bytes.byteLength);
    if (length === 0n || length % BigInt(PAGE) !== 0n || length > BigInt(bytes.byteLength)) {
      throw outOfRange(call, 'options.length', `a multiple of ${PAGE} from ${PAGE} to the memory's ${bytes.byteLength} bytes`, length);
    }
    if (iova + length > 2n ** 53n) throw outOfRange(call, 'options.iova', 'a window that ends below 2^53', iova);
    const faultAround = optionalInteger(call, 'options.faultAround', o.faultAround, 0, 512) ?? 0;
    const least = BigInt((1 + faultAround) * PAGE);
    const budget = optionalU64(call, 'options.budget', o.budget) ?? length;
    if (budget % BigInt(PAGE) !== 0n || budget < least) {
      throw outOfRange(call, 'options.budget', `a multiple of ${PAGE} of at least ${least} bytes (one page and its fault-around of ${faultAround})`, budget);
    }
    const writable = optionalBoolean(call, 'options.writable', o.writable) ?? true;
    const policy = optionalFunction<PagePolicy>(call, 'options.policy', o.policy);
    const timeoutMs = optionalInteger(call, 'options.policyTimeoutMs', o.policyTimeoutMs, 1, 2 ** 31 - 1);
    const nativeStep = optionalBoolean(call, 'options.nativeStep', o.nativeStep) ?? true;
    // The window: inside one range the IOAS allows, and no other pager's here.
    const end = iova + length;
    const { ranges } = ioas.iovaRanges();
    if (!ranges.some((r) => iova >= r.start && end - 1n <= r.last)) {
      throw outOfRange(call, 'options.iova', `a window inside one of the IOAS's usable ranges (${ranges.map((r) => `0x${r.start.toString(16)}-0x${r.last.toString(16)}`).join(', ')})`, iova);
    }
    const mine = windows.get(ioas) ?? new Set();
    for (const w of mine) {
      if (iova < w.end && w.start < end) {
        throw invalidArgValue(call, 'options.iova', `a window that overlaps no other pager's (0x${w.start.toString(16)}-0x${(w.end - 1n).toString(16)} is served)`, iova);
      }
    }
    const target = queue._serveTarget(call);
    if (target.pending.size > 0) {
      throw new IommufdError(`${call}: ${target.pending.size} fault groups read by this thread are unanswered; answer them first (the pager's worker cannot protect their cookies from reuse)`, ErrorCodes.SERVING);
    }
    const handle = ioas.handle(o.memory);
    if (handle.pageOffset !== 0) {
      handle.close();
      throw invalidArgValue(call, 'options.memory', 'page-aligned memory (allocPages(), or a view of it at a page multiple)', o.memory);
    }
    const window = { start: iova, end };
    mine.add(window);
    windows.set(ioas, mine);

    const control = new SharedArrayBuffer(binding.pumpControl.bytes);
    const stats = new SharedArrayBuffer(STATS_SLOTS * 8);
    const flags = new SharedArrayBuffer(16);
    const channel = new MessageChannel();
    let wake = -1;
    let worker: Worker;
    try {
      wake = binding.eventfd();
      const config: PagerWorkerConfig = {
        fd: target.fd, wake, control, stats, flags, results: channel.port2, token: handle.descriptor.token, iova: Number(iova),
        pages: Number(length) / PAGE, budgetPages: Number(budget) / PAGE, faultAround, writable, policy: policy !== undefined,
        bufferRecords: target.bufferRecords, nativeStep,
      };
      worker = new Worker(workerPath, { workerData: config, transferList: [channel.port2] });
    } catch (e) {
      if (wake >= 0) binding.close(wake);
      channel.port1.close();
      handle.close();
      mine.delete(window);
      throw e;
    }
    let pager: DemandPager | undefined;
    const server = new PagerServer(worker, control, wake, () => {
      target.end();
      void pager?.close();
    }, new Int32Array(flags));
    pager = new DemandPager({ ioas, queue, iova, length, handle, server, wake, port: channel.port1, stats, bytes: bytes.subarray(0, Number(length)),
      policy, timeoutMs, window });
    target.begin(server);
    const p = pager;
    worker.on('message', (m: FromPager) => p.#message(m));
    server.on('error', (e) => p.emit('error', e));
    const failed = await new Promise<Error | undefined>((done) => {
      const onMessage = (m: FromPager) => { if (m.type === 'serving') finish(); };
      const onError = (e: Error) => finish(e);
      const onExit = (code: number) => finish(new IommufdError(`${call}: the worker exited (code ${code}) before serving`, ErrorCodes.SERVING));
      const finish = (e?: Error) => {
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        done(e);
      };
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
    if (failed) {
      await pager.close();
      throw failed;
    }
    worker.on('error', (e) => server.emit('error', e));
    return pager;
  }

  /** Whether close() was called (or the queue or the iommufd was closed under it). */
  get closed(): boolean { return this.#closing !== undefined; }

  /** The counters so far, read live from the memory the worker writes. */
  get stats(): DemandPagerStats {
    const { counters: c, main: m, latency } = this.#views;
    const s = this.#server.stats;
    return {
      faults: c[C.faults], pages: c[C.pages], mappedPages: c[C.mappedPages], faultAroundPages: c[C.aroundPages],
      evictedPages: c[C.evictedPages], evictions: c[C.unmaps], mappedBytes: c[C.mappedNow] * PAGE, peakMappedBytes: c[C.peak] * PAGE,
      success: c[C.success], invalid: c[C.invalid], outside: c[C.outside], readOnly: c[C.readOnly], alreadyMapped: c[C.spurious], servedNatively: c[C.served],
      policyCalls: c[C.fills], policyRefused: m[MAIN.policyRefused], policyErrors: m[MAIN.policyErrors], policyTimeouts: m[MAIN.policyTimeouts],
      pending: c[C.pending], stale: c[C.stale], mapErrors: c[C.mapErrors], answered: s.answered, refused: s.refused, latency: latency.percentiles(),
    };
  }

  #message(m: FromPager): void {
    if (m.type === 'fill') {
      for (let k = 0; k < m.pages.length; k += 2) this.#ask(m.pages[k], m.pages[k + 1] === 1);
    } else if (m.type === 'fault-error') {
      this.emit('faultError', fromPosted(m.error), { cause: 'map', iova: this.iova + BigInt(m.first * PAGE), length: m.count * PAGE } satisfies FaultErrorInfo);
    } else if (m.type === 'stopped') {
      this.#answeredInvalid = m.answeredInvalid;
    }
  }

  // The policy hook for one page; its word goes back to the worker with the others of this turn.
  #ask(page: number, write: boolean): void {
    const policy = this.#policy;
    if (!policy || this.#asking.has(page) || this.closed) return;
    const controller = new AbortController();
    const asking: Asking = { controller, timer: undefined };
    this.#asking.set(page, asking);
    if (this.#timeoutMs !== undefined) asking.timer = setTimeout(() => this.#settle(page, asking, { timeout: true }), this.#timeoutMs);
    const offset = page * PAGE;
    const request: PageRequest = { iova: this.iova + BigInt(offset), offset, bytes: this.#bytes.subarray(offset, offset + PAGE), write, signal: controller.signal };
    let answer: unknown;
    try {
      answer = policy(request);
    } catch (error) {
      this.#settle(page, asking, { error });
      return;
    }
    if (answer !== null && typeof (answer as Promise<unknown> | undefined)?.then === 'function') {
      (answer as Promise<unknown>).then((value) => this.#settle(page, asking, { value }), (error: unknown) => this.#settle(page, asking, { error }));
    } else {
      this.#settle(page, asking, { value: answer });
    }
  }

  #settle(page: number, asking: Asking, outcome: { value: unknown } | { error: unknown } | { timeout: true }): void {
    if (this.#asking.get(page) !== asking) return; // settled already (a timeout, close)
    this.#asking.delete(page);
    clearTimeout(asking.timer);
    const m = this.#views.main;
    const info = (cause: FaultErrorInfo['cause']): FaultErrorInfo => ({ cause, iova: this.iova + BigInt(page * PAGE), length: PAGE });
    let ok = false;
    if ('timeout' in outcome) {
      m[MAIN.policyTimeouts]++;
      const e = new IommufdError(`DemandPager: the policy hook did not settle within ${this.#timeoutMs} ms for the page at 0x${info('timeout').iova.toString(16)}; its fault was answered INVALID`, ErrorCodes.POLICY_TIMEOUT);
      asking.controller.abort(e);
      this.emit('faultError', e, info('timeout'));
    } else if ('error' in outcome) {
      m[MAIN.policyErrors]++;
      this.emit('faultError', outcome.error, info('policy'));
    } else if (outcome.value === undefined || outcome.value === 'map') {
      ok = true;
    } else if (outcome.value === 'refuse') {
      m[MAIN.policyRefused]++;
    } else {
      m[MAIN.policyErrors]++;
      this.emit('faultError', new TypeError(`DemandPager: the policy hook must answer 'map', 'refuse' or undefined, got ${describeValue(outcome.value)}`), info('policy'));
    }
    this.#results.push(page, ok ? 1 : 0);
    if (this.#results.length === 2) queueMicrotask(() => this.#sendResults());
  }

  #sendResults(): void {
    const results = this.#results;
    this.#results = [];
    if (results.length === 0 || !this.#server.serving) return;
    this.#port.postMessage(results);
    binding.eventfdSignal(this.#wake);
  }

  /**
   * Stops serving: the worker answers INVALID every group still waiting for the hook (the hooks'
   * signals are aborted; what they settle to later is ignored), the window is unmapped (unless
   * `unmap: false`: what is mapped stays mapped and pinned, and the Ioas keeps the memory
   * referenced until its unmap() or destroy()), and the queue is given back: faults read after
   * this go to its own consumers. Safe to call twice.
   */
  close(options?: DemandPagerCloseOptions): Promise<DemandPagerCloseResult> {
    if (this.#closing) return this.#closing;
    let unmap = true;
    try {
      const o = checkOptions<DemandPagerCloseOptions>('DemandPager.close', options, true);
      unmap = optionalBoolean('DemandPager.close', 'options.unmap', o.unmap) ?? true;
    } catch (e) {
      return Promise.reject(e);
    }
    this.#closing = this.#close(unmap);
    return this.#closing;
  }

  async #close(unmap: boolean): Promise<DemandPagerCloseResult> {
    for (const [page, asking] of [...this.#asking]) {
      this.#asking.delete(page);
      clearTimeout(asking.timer);
      asking.controller.abort(new IommufdError('DemandPager: closed', ErrorCodes.CLOSED));
    }
    await this.#server.stop();
    this.#port.close();
    let unmappedBytes = 0n;
    let failure: unknown;
    if (unmap && !this.#handle.closed) {
      try {
        unmappedBytes = binding.ioasHandleUnmap(this.#handle.descriptor.token, this.iova, this.length);
        this.#views.counters[C.mappedNow] = 0;
      } catch (e) {
        // ENOENT: nothing was mapped in the window; closed: the IOAS or the iommufd went first.
        const code = (e as { code?: unknown }).code;
        if (code !== 'ENOENT' && code !== ErrorCodes.CLOSED) failure = e;
      }
    }
    this.#handle._close(unmap && failure === undefined);
    windows.get(this.ioas)?.delete(this.#window);
    if (failure) throw failure;
    return { answeredInvalid: this.#answeredInvalid, unmappedBytes, stats: this.stats };
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close().then(() => undefined);
  }
}
