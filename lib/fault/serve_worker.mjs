// The serve loop's worker thread (FaultQueue.serveInWorker): imports the user's handler module and
// serves until stopped. Plain JS, so that the CommonJS build can import an ES module handler.
import { parentPort, workerData } from 'node:worker_threads';
import { serveWorkerMain } from './serve.js';

const module = await import(workerData.module);
serveWorkerMain(workerData, module[workerData.exportName], parentPort);
