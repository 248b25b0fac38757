// The benchmark's serve-loop handlers (FaultQueue.serveInWorker), on the worker's thread.

/** Answers every group of the batch, one by one, as a handler that looks at each would. */
export default function answerEach(batch) {
  for (let g = 0, n = batch.groupCount; g < n; g++) batch.answer(g);
}
