// The benchmark's serve-loop handlers (FaultQueue.serveInWorker), on the worker's thread.

/** Answers every group of the batch, one by one, as a handler that looks at each would. */
export default function answerEach(batch) {
  for (let g = 0, n = batch.groupCount; g < n; g++) batch.answer(g);
}

/** answerEach behind a gate: while data.gate[0] is 1 the handler waits, so that the main thread
 *  can queue a whole drain in the kernel before the loop answers it. */
export function gated(batch, data) {
  while (Atomics.load(data.gate, 0) === 1);
  answerEach(batch);
}
