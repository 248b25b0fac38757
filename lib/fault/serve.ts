// Serve loops: the pump driven by a blocking poll(2) loop instead of libuv, with one synchronous
// handler call per batch and its answers written before the next read. serveHere runs it on the
// calling thread; serveInWorker on a worker thread of its own, which the caller's event loop
// cannot delay. Both run the same loop (runLoop) over the same FaultBatch.
import { EventEmitter } from 'node:events';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type MessagePort, type ResourceLimits, Worker } from 'node:worker_threads';
import { AnswerBuffer } from './answers.js';
import { binding, CONTROL, type NativeEventPump } from '../core/binding.js';
import {
  checkFunction, checkNumber, checkOptions, checkString, describeValue, invalidArgType, invalidArgValue, optionalFunction, optionalInteger,
} from '../core/args.js';
import { ErrorCodes, fromPosted, IommufdError, toPosted } from '../core/errors.js';
import { FaultBatch } from './fault_batch.js';
import workerPath from './serve_worker_path.cjs';

/** A serve loop's handler: synchronous; `data` is serveInWorker's options.workerData. */
export type ServeHandler = (batch: FaultBatch, data?: unknown) => void;

export interface ServeOptions {
  /** Gets a handler's error while the loop goes on (the batch answered INVALID); without it the
   *  error ends the loop and serve() throws it. */
  onError?: (error: unknown) => void;
  /** How often (ms) an idle loop checks that its thread is not being torn down (default 100). */
  idleMs?: number;
}

export interface ServeInWorkerOptions {
  /** The handler's export name in the module (default: the default export). */
  exportName?: string;
  /** Passed to the handler as its second argument (structured-cloned into the worker). */
  workerData?: unknown;
  idleMs?: number;
  /** How long stop() waits for the loop to return (its handler may be busy) before it terminates
   *  the worker (default 5000 ms). */
  stopTimeoutMs?: number;
  resourceLimits?: ResourceLimits;
}

export interface ServeStats {
  /** Fault groups the loop read. */
  delivered: number;
  /** Answers the kernel accepted (the handler's, and INVALID for groups it left or threw on). */
  answered: number;
  /** Answers the kernel refused (it had answered the group itself). */
  refused: number;
  /** Batches (reads handed to the handler). */
  batches: number;
  /** Handler calls that threw. */
  errors: number;
}

export interface ServeResult extends ServeStats {
  /** 'stopped' (stopServing(), stop()) or 'closed' (the queue was closed from the handler). */
  reason: 'stopped' | 'closed';
}

/** @internal What a FaultQueue lends a serve loop. */
export interface ServeTarget {
  fd: number;
  bufferRecords: number | undefined;
  pump: NativeEventPump;
  answers: AnswerBuffer;
  pending: Map<number, number>;
  markStale(batch: FaultBatch): void;
  flush(): void;
  settle(failed: Int32Array | undefined): void;
  begin(how: 'here' | FaultServer, batch?: FaultBatch): void;
  end(): void;
}

function statsOf(counters: Float64Array, base?: ServeStats): ServeStats {
  const s = {
    delivered: counters[CONTROL.delivered], answered: counters[CONTROL.answered], refused: counters[CONTROL.refused],
    batches: counters[CONTROL.batches], errors: counters[CONTROL.errors],
  };
  if (base) for (const k of Object.keys(s) as (keyof ServeStats)[]) s[k] -= base[k];
  return s;
}

interface LoopOptions {
  wake: number;
  idleMs: number;
  onError: ((e: unknown) => void) | undefined;
  markStale?: (batch: FaultBatch) => void;
  settle?: (failed: Int32Array | undefined) => void;
}

function loopBatch(answers: AnswerBuffer, flush: () => void): FaultBatch {
  return new FaultBatch(answers, { flush, stop: () => { Atomics.store(answers.slots, CONTROL.stop, 1); } });
}

// The loop both kinds of serving run: the pump calls onBatch once per read (0 bytes: an idle
// check), then writes the answers the handler made.
function runLoop(pump: NativeEventPump, answers: AnswerBuffer, batch: FaultBatch, handler: (b: FaultBatch) => void, o: LoopOptions): 'stopped' | 'closed' {
  let failure: Error | undefined;
  const onBatch = (view: Uint8Array, byteLength: number) => {
    if (byteLength === 0) return;
    batch._begin(view, byteLength);
    o.markStale?.(batch);
    try {
      handler(batch);
    } catch (e) {
      answers.counters[CONTROL.errors]++;
      if (!o.onError) throw e;
      o.onError(e);
    } finally {
      // A serve loop answers everything before it reads again: what the handler left is INVALID.
      batch.answerAll('invalid');
      batch._end();
    }
  };
  const onPumpError = (e: Error) => {
    failure = e;
    Atomics.store(answers.slots, CONTROL.stop, 1);
  };
  pump.setCallbacks(onBatch, onPumpError, o.settle);
  const reason = pump.serve(o.wake, o.idleMs);
  if (failure) throw failure;
  return reason;
}

/** @internal FaultQueue.serve(). */
export function serveHere(t: ServeTarget, handler: ServeHandler, options: ServeOptions | undefined): ServeResult {
  const call = 'FaultQueue.serve';
  checkFunction(call, 'handler', handler);
  const o = checkOptions<ServeOptions>(call, options, true);
  const onError = optionalFunction<(e: unknown) => void>(call, 'options.onError', o.onError);
  const idleMs = optionalInteger(call, 'options.idleMs', o.idleMs, 1, 60_000) ?? 100;
  const base = statsOf(t.answers.counters);
  const wake = binding.eventfd();
  const batch = loopBatch(t.answers, t.flush);
  t.begin('here', batch);
  try {
    const reason = runLoop(t.pump, t.answers, batch, handler, {
      wake, idleMs, onError, settle: t.settle, markStale: t.markStale,
    });
    return { reason, ...statsOf(t.answers.counters, base) };
  } finally {
    binding.close(wake);
    t.end();
  }
}

interface WorkerConfig {
  fd: number;
  wake: number;
  control: SharedArrayBuffer;
  module: string;
  exportName: string;
  data: unknown;
  idleMs: number;
  bufferRecords: number | undefined;
}

type FromWorker = { type: 'serving' } | { type: 'error'; error: unknown } | { type: 'stopped'; reason: 'stopped' | 'closed' }
  // The worker could not start serving: the module did not load, or has no such function export.
  | { type: 'import-failed'; message: string; code: unknown } | { type: 'bad-export'; exists: boolean; value: string };

/**
 * A serve loop on a worker thread (FaultQueue.serveInWorker). `stats` are live. A handler's error
 * is emitted as 'error' while the loop goes on (a worker that dies is one too); as for any
 * EventEmitter, an 'error' nobody listens to is thrown. stop() ends the loop and gives the queue
 * back. The worker keeps the process alive until then, unless `server.worker.unref()`.
 */
export class FaultServer extends EventEmitter {
  /** The worker thread the loop runs on. */
  readonly worker: Worker;
  #counters: Float64Array;
  #slots: Int32Array;
  #wake: number;
  #end: () => void;
  #stopTimeoutMs: number;
  #exited: Promise<number>;
  #stopping: Promise<ServeResult> | undefined;
  #reason: 'stopped' | 'closed' = 'stopped';
  #running = true;

  /** @internal */
  constructor(worker: Worker, control: SharedArrayBuffer, wake: number, end: () => void, stopTimeoutMs: number) {
    super();
    this.worker = worker;
    this.#counters = new Float64Array(control, 0, CONTROL.bytes / 8);
    this.#slots = new Int32Array(control);
    this.#wake = wake;
    this.#end = end;
    this.#stopTimeoutMs = stopTimeoutMs;
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'error') this.emit('error', fromPosted(m.error));
      else if (m.type === 'stopped') this.#reason = m.reason;
    });
    this.#exited = new Promise((resolve) => worker.once('exit', resolve));
    void this.#exited.then(() => this.#release());
  }

  /** Whether the loop still runs. */
  get serving(): boolean { return this.#running; }

  /** The loop's counters so far, read live from the memory the worker writes. */
  get stats(): ServeStats { return statsOf(this.#counters); }

  /**
   * Write sequence: +1 after every write(2) of answers (a 32-bit counter that wraps). A thread
   * that must see an answer reach the kernel can wait for it to change (Atomics.load).
   */
  get writes(): Int32Array { return this.#slots.subarray(CONTROL.writes, CONTROL.writes + 1); }

  /** Stops the loop (from the next batch boundary), waits for the worker to exit. Idempotent. */
  stop(): Promise<ServeResult> {
    this.#stopping ??= (async () => {
      if (this.#running) {
        Atomics.store(this.#slots, CONTROL.stop, 1);
        binding.eventfdSignal(this.#wake);
        const timer = setTimeout(() => void this.worker.terminate(), this.#stopTimeoutMs);
        await this.#exited;
        clearTimeout(timer);
      }
      return { reason: this.#reason, ...this.stats };
    })();
    return this.#stopping;
  }

  #release(): void {
    if (!this.#running) return;
    this.#running = false;
    binding.close(this.#wake);
    this.#end();
  }
}

const LIMITS = ['maxYoungGenerationSizeMb', 'maxOldGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb'] as const;

/** Worker resource limits: an object of sizes in MB (Worker itself ignores what is not a number). */
function checkResourceLimits(call: string, limits: unknown): ResourceLimits | undefined {
  if (limits === undefined) return undefined;
  const o = checkOptions<Record<string, unknown>>(call, limits, false, 'options.resourceLimits');
  for (const key of LIMITS) if (o[key] !== undefined) checkNumber(call, `options.resourceLimits.${key}`, o[key], 0, 2 ** 32);
  return o as ResourceLimits;
}

/** @internal FaultQueue.serveInWorker(). */
export async function serveInWorker(t: ServeTarget, handlerModule: string | URL, options: ServeInWorkerOptions | undefined): Promise<FaultServer> {
  const op = 'FaultQueue.serveInWorker';
  let module: string;
  if (handlerModule instanceof URL) module = handlerModule.href;
  else if (typeof handlerModule === 'string' && handlerModule !== '') module = /^[a-z][a-z0-9+.-]*:/i.test(handlerModule) ? handlerModule : pathToFileURL(isAbsolute(handlerModule) ? handlerModule : resolve(handlerModule)).href;
  else if (typeof handlerModule === 'string') throw invalidArgValue(op, 'handlerModule', 'a path or a URL', handlerModule);
  else throw invalidArgType(op, 'handlerModule', 'a path or a URL', handlerModule);
  const o = checkOptions<ServeInWorkerOptions>(op, options, true);
  const exportName = o.exportName === undefined ? 'default' : checkString(op, 'options.exportName', o.exportName);
  const idleMs = optionalInteger(op, 'options.idleMs', o.idleMs, 1, 60_000) ?? 100;
  const stopTimeoutMs = optionalInteger(op, 'options.stopTimeoutMs', o.stopTimeoutMs, 0, 2 ** 31 - 1) ?? 5000;
  const resourceLimits = checkResourceLimits(op, o.resourceLimits);
  try {
    structuredClone(o.workerData);
  } catch {
    throw invalidArgType(op, 'options.workerData', 'a value the structured clone algorithm can copy', o.workerData);
  }
  // The worker cannot see the queue's kept groups, so it could not tell one of their cookies
  // coming back for a newer group: answer them first.
  if (t.pending.size > 0) {
    throw new IommufdError(`${op}: ${t.pending.size} fault groups read by this thread are unanswered; answer them first (a worker cannot protect their cookies from reuse)`, ErrorCodes.SERVING);
  }
  const control = new SharedArrayBuffer(CONTROL.bytes);
  const wake = binding.eventfd();
  const config: WorkerConfig = { fd: t.fd, wake, control, module, exportName, data: o.workerData, idleMs, bufferRecords: t.bufferRecords };
  let worker: Worker;
  try {
    worker = new Worker(workerPath, { workerData: config, resourceLimits });
  } catch (e) {
    binding.close(wake);
    throw e;
  }
  const server = new FaultServer(worker, control, wake, t.end, stopTimeoutMs);
  t.begin(server);
  // Serving once the worker says so; an import or export error ends it before that (and the
  // queue is given back when the worker has exited).
  const failed = await new Promise<Error | undefined>((done) => {
    const onMessage = (m: FromWorker) => {
      if (m.type === 'serving') finish();
      else if (m.type === 'import-failed') {
        finish(Object.assign(new Error(`${op}: handlerModule ${module} could not be imported: ${m.message}`), { code: m.code }));
      } else if (m.type === 'bad-export') {
        // The module's word, checked on the worker: typed here, where the caller sees it (a
        // TypeError thrown there would lose its code on the way).
        const error = m.exists
          ? invalidArgType(op, 'options.exportName', `the name of a function export of ${module}`, exportName)
          : invalidArgValue(op, 'options.exportName', `the name of a function export of ${module}`, exportName);
        error.message += m.exists ? ` (that export is ${m.value})` : ' (the module has no such export)';
        finish(error);
      }
    };
    const onError = (e: Error) => finish(e);
    const onExit = (code: number) => finish(new IommufdError(`${op}: the worker exited (code ${code}) before serving`, ErrorCodes.SERVING));
    const finish = (e?: Error) => {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      done(e);
    };
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
  });
  if (failed) {
    await server.stop();
    throw failed;
  }
  // From now on a worker that dies (out of memory, say) is the server's 'error'; the queue is
  // given back when it has exited.
  worker.on('error', (e) => server.emit('error', e));
  return server;
}

/** @internal The worker's side (serve_worker.mjs): serves until stopped, then says why. */
export function serveWorkerMain(config: WorkerConfig, module: Record<string, unknown>, port: MessagePort): void {
  const handler = module[config.exportName];
  if (typeof handler !== 'function') {
    port.postMessage({ type: 'bad-export', exists: config.exportName in module, value: describeValue(handler) });
    return;
  }
  const pump = new binding.EventPump(config.fd, config.bufferRecords, true);
  try {
    const answers = new AnswerBuffer(pump, config.control);
    const data = config.data;
    const bound = (batch: FaultBatch) => (handler as ServeHandler)(batch, data);
    port.postMessage({ type: 'serving' });
    const reason = runLoop(pump, answers, loopBatch(answers, () => void pump.writeAnswers()), bound, {
      wake: config.wake, idleMs: config.idleMs,
      onError: (error) => port.postMessage({ type: 'error', error: toPosted(error) }),
    });
    port.postMessage({ type: 'stopped', reason });
  } finally {
    pump.close();
  }
}
