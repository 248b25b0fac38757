// The options every queue takes (FaultQueue's, and VeventQueue's beside its own) and their checks,
// made before anything is allocated for a queue.
import { binding } from './binding.js';
import { optionalInteger, optionalSignal } from './args.js';

/** What every queue takes: FaultQueue's options, and VeventQueue's beside its own. */
export interface QueueOptions {
  /** Stop reading from the kernel while this many fault groups or events wait for the consumer
   *  (default 4096). */
  highWaterMark?: number;
  /** Resume reading once the backlog is down to this many (default highWaterMark / 2). */
  lowWaterMark?: number;
  /** Initial read buffer, in records (default 1024, at most MAX_BUFFER_RECORDS); it grows when a
   *  group does not fit. */
  bufferRecords?: number;
  /** Aborting closes the queue, as close() does. */
  signal?: AbortSignal;
}

/** The most records a pump's read buffer may hold (2^18: 10 MiB); no PRI group comes near it. */
export const MAX_BUFFER_RECORDS: number = binding.pumpMaxRecords;

/** @internal */
export interface CheckedOptions {
  high: number;
  low: number;
  bufferRecords: number | undefined;
  signal: AbortSignal | undefined;
}

/** @internal The options every queue takes (backpressure, buffer, signal), for `call`. */
export function checkQueueOptions(call: string, o: QueueOptions): CheckedOptions {
  const high = optionalInteger(call, 'options.highWaterMark', o.highWaterMark, 1, 2 ** 31) ?? 4096;
  const low = optionalInteger(call, 'options.lowWaterMark', o.lowWaterMark, 0, high - 1) ?? Math.floor(high / 2);
  const bufferRecords = optionalInteger(call, 'options.bufferRecords', o.bufferRecords, 1, MAX_BUFFER_RECORDS);
  return { high, low, bufferRecords, signal: optionalSignal(call, 'options.signal', o.signal) };
}
