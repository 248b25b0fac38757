// The serve loop's worker thread (FaultQueue.serveInWorker): imports the user's handler module and
// serves until stopped. Plain JS, so that the CommonJS build can import an ES module handler. What
// goes wrong before serving (no module, no such export) is told to the main side, which throws it
// typed: an error thrown here would reach it without its code.
import { parentPort, workerData } from 'node:worker_threads';
import { serveWorkerMain } from './serve.js';

let module;
try {
  module = await import(workerData.module);
} catch (e) {
  parentPort.postMessage({ type: 'import-failed', message: String(e?.message ?? e), code: e?.code });
}
if (module) serveWorkerMain(workerData, module, parentPort);
