// The "device" of the worker round-trip rows: a thread of its own that raises one fault at a time
// on the test device and waits for its answer to reach the kernel, watching the serve loop's
// write counter (FaultServer.writes), so that the main thread can be idle or busy meanwhile.
import { parentPort, workerData } from 'node:worker_threads';

import { existsSync } from 'node:fs';

// A snapshot for an A/B run may predate lib/'s folders (binding.js at the top then).
const at = new URL('dist/esm/core/binding.js', workerData.pkg);
const { binding } = await import((existsSync(at) ? at : new URL('dist/esm/binding.js', workerData.pkg)).href);
const { fd, devId, iters, warmup, writes } = workerData;
const now = () => process.hrtime.bigint();
const triggerNs = [];
const totalNs = [];
for (let i = 0; i < warmup + iters; i++) {
  const seen = Atomics.load(writes, 0);
  const t0 = now();
  binding.selftest.triggerIopf(fd, { devId, grpid: i, perm: 1, addr: 0x10000n });
  const tq = now();
  while (Atomics.load(writes, 0) === seen);
  const t2 = now();
  if (i >= warmup) {
    triggerNs.push(Number(tq - t0));
    totalNs.push(Number(t2 - t0));
  }
}
parentPort.postMessage({ triggerNs, totalNs });
