// The benchmark's fast-path modes (bench/node_bench.mjs runs them): the batch view on the event
// loop (setBatchHandler), the serve loop on the main thread (serve()) and in a worker
// (serveInWorker()). Each handler answers every group by index, as the C client does.
import { Worker } from 'node:worker_threads';

export function fastModes({ pkg, setup, fault, now }) {
  const handlerModule = new URL('serve_handlers.mjs', import.meta.url);

  // Resolves when `n` more groups were answered by the queue's batch handler.
  function viewHandler(queue) {
    const state = { handled: 0, target: 0, done: () => {} };
    queue.setBatchHandler((batch) => {
      for (let g = 0, n = batch.groupCount; g < n; g++) batch.answer(g);
      state.handled += batch.groupCount;
      if (state.handled >= state.target) setImmediate(state.done); // after the pump's write
    });
    const until = (n) => new Promise((resolve) => {
      state.target = state.handled + n;
      state.done = resolve;
    });
    return until;
  }

  async function drainWith(n, warmup, reps, once) {
    const coldNs = warmup > 0 ? await once(warmup) : 0;
    const nsAll = [];
    for (let i = 0; i < reps; i++) nsAll.push(await once(n));
    return { mode: 'drain', n, nsAll, warmup, coldNs };
  }

  async function drainView(n, warmup, reps) {
    const { iommufd, dev, queue } = setup();
    const until = viewHandler(queue);
    const r = await drainWith(n, warmup, reps, async (k) => {
      const done = until(k);
      dev.triggerIopf(fault, k);
      const t0 = now();
      await done;
      return Number(now() - t0);
    });
    r.answered = (queue.stats.answered - warmup) / reps;
    await iommufd.close();
    return r;
  }

  async function drainServe(n, warmup, reps) {
    const { iommufd, dev, queue } = setup();
    const r = await drainWith(n, warmup, reps, async (k) => {
      dev.triggerIopf(fault, k);
      const t0 = now();
      let handled = 0;
      queue.serve((batch) => {
        for (let g = 0, c = batch.groupCount; g < c; g++) batch.answer(g);
        handled += batch.groupCount;
        if (handled >= k) batch.stopServing();
      });
      return Number(now() - t0);
    });
    r.answered = (queue.stats.answered - warmup) / reps;
    await iommufd.close();
    return r;
  }

  // Spins on the serve loop's counters: the main thread has nothing else to do here, and a timer
  // would add its own granularity to the figure.
  function spinUntil(server, answered) {
    while (server.stats.answered < answered);
  }

  // The worker would answer faults while the main thread is still raising them (each trigger is an
  // ioctl); a gate holds its handler until the drain is queued. The first read (up to 1024
  // records) happens before the clock starts: ~1% of a 100k drain.
  async function drainWorker(n, warmup, reps) {
    const { iommufd, dev, queue } = setup();
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const server = await queue.serveInWorker(handlerModule, { exportName: 'gated', workerData: { gate } });
    const r = await drainWith(n, warmup, reps, async (k) => {
      const target = server.stats.answered + k;
      Atomics.store(gate, 0, 1);
      dev.triggerIopf(fault, k);
      const t0 = now();
      Atomics.store(gate, 0, 0);
      spinUntil(server, target);
      return Number(now() - t0);
    });
    r.answered = (server.stats.answered - warmup) / reps;
    await server.stop();
    await iommufd.close();
    return r;
  }

  // One fault at a time, as the C client does: the handler answers, flush() writes the answer at
  // once, and the next fault is raised right there (the pump reads it in the same drain).
  function rttLoop(iters, warmup, dev, onDone) {
    const total = warmup + iters;
    const triggerNs = [];
    const deliverNs = [];
    const totalNs = [];
    let i = 0;
    let t0 = 0n;
    let tq = 0n;
    const trigger = () => {
      t0 = now();
      dev.triggerIopf({ ...fault, groupId: i });
      tq = now();
    };
    const handler = (batch) => {
      const t1 = now();
      if (batch.groupCount !== 1 || batch.groupId(0) !== i) throw new Error(`rtt: expected group ${i} alone`);
      batch.answer(0);
      batch.flush();
      const t2 = now();
      if (i >= warmup) {
        triggerNs.push(Number(tq - t0));
        deliverNs.push(Number(t1 - t0));
        totalNs.push(Number(t2 - t0));
      }
      if (++i < total) trigger();
      else onDone(batch);
    };
    return { trigger, handler, result: () => ({ mode: 'rtt', iters, triggerNs, deliverNs, totalNs }) };
  }

  async function rttView(iters, warmup) {
    const { iommufd, dev, queue } = setup();
    const finished = new Promise((resolve) => {
      const loop = rttLoop(iters, warmup, dev, () => setImmediate(() => resolve(loop.result())));
      queue.setBatchHandler(loop.handler);
      loop.trigger();
    });
    const r = await finished;
    await iommufd.close();
    return r;
  }

  async function rttServe(iters, warmup) {
    const { iommufd, dev, queue } = setup();
    const loop = rttLoop(iters, warmup, dev, (batch) => batch.stopServing());
    loop.trigger();
    queue.serve(loop.handler);
    await iommufd.close();
    return loop.result();
  }

  // The serve loop in a worker, the faults raised by a "device" thread (device_worker.mjs); the
  // main thread idle, or busy: its event loop blocked 20 ms in every 50 ms.
  async function rttWorker(iters, warmup, busy) {
    const { iommufd, dev, queue } = setup();
    const server = await queue.serveInWorker(handlerModule);
    let blocker;
    if (busy) {
      blocker = setInterval(() => {
        const until = performance.now() + 20;
        while (performance.now() < until);
      }, 50);
    }
    const device = new Worker(new URL('device_worker.mjs', import.meta.url), {
      workerData: { pkg: pkg.href, fd: iommufd.fd, devId: dev.deviceId, iters, warmup, writes: server.writes },
    });
    const [out] = await Promise.race([
      new Promise((resolve) => device.once('message', (m) => resolve([m]))),
      new Promise((_, reject) => device.once('error', reject)),
    ]);
    clearInterval(blocker);
    await server.stop();
    await iommufd.close();
    return { mode: 'rtt', iters, triggerNs: out.triggerNs, deliverNs: out.totalNs, totalNs: out.totalNs };
  }

  return {
    'drain-view': (a, b, c) => drainView(Number(a), Number(b ?? 0), Number(c ?? 1)),
    'drain-serve': (a, b, c) => drainServe(Number(a), Number(b ?? 0), Number(c ?? 1)),
    'drain-worker': (a, b, c) => drainWorker(Number(a), Number(b ?? 0), Number(c ?? 1)),
    'rtt-view': (a, b) => rttView(Number(a), Number(b)),
    'rtt-serve': (a, b) => rttServe(Number(a), Number(b)),
    'rtt-worker': (a, b) => rttWorker(Number(a), Number(b), false),
    'rtt-worker-busy': (a, b) => rttWorker(Number(a), Number(b), true),
    viewHandler,
    spinUntil,
    handlerModule,
  };
}
