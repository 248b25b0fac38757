// The demand pager's worker thread (DemandPager.start): serves the fault queue until stopped.
// Plain JS, so that the CommonJS build can run it as well.
import { parentPort, workerData } from 'node:worker_threads';
import { pagerWorkerMain } from './pager_loop.js';

pagerWorkerMain(workerData, parentPort);
