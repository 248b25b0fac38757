// The Node side of the fault benchmark (npm run bench), one mode per process, run in the guest by
// bench/guest.mjs. It does what bench/c/fault_bench.cc does, through the package's public API: a
// FaultQueue consumed as an async iterator, every group answered with group.respond().
//
//   node --expose-gc bench/node_bench.mjs drain N WARMUP REPS
//   node --expose-gc bench/node_bench.mjs rtt ITERS WARMUP
//   node --expose-gc bench/node_bench.mjs pipe N WARMUP PRODUCER      PRODUCER: the fault_bench binary
//   node --expose-gc bench/node_bench.mjs mem N CHUNK
//   node --expose-gc bench/node_bench.mjs drain-raw N WARMUP REPS | rtt-raw ITERS WARMUP   (the native
//     pump alone, without FaultQueue: what the API layer costs on top of it)
//   node --expose-gc bench/node_bench.mjs grpid | calib REPS
//   drain-view|drain-serve|drain-worker N WARMUP REPS, rtt-view|rtt-serve|rtt-worker|rtt-worker-busy
//     ITERS WARMUP, pipe-view|pipe-worker N WARMUP PRODUCER, mem-view|mem-serve|mem-worker N CHUNK: the fast paths
//     (bench/node_fast.mjs)
//   vevent-drain|vevent-drain-view N WARMUP REPS: the vEVENTQ drain (bench/vevent_bench.mjs)
//
// Prints one JSON object on stdout, with the same fields as fault_bench.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { fastModes } from './node_fast.mjs';
import { veventModes } from './vevent_bench.mjs';

// The package snapshot bench/prepare.mjs built (IOMMUFD_BENCH_PKG picks another, for A/B runs).
const pkg = pathToFileURL(`${process.env.IOMMUFD_BENCH_PKG ?? new URL('build/pkg', import.meta.url).pathname}/`);
const { Iommufd, FaultQueue } = await import(new URL('dist/esm/index.js', pkg).href);
const { MockDevice } = await import(new URL('dist/esm/testing.js', pkg).href);
// A snapshot for an A/B run may predate lib/'s folders (flat files then): either is found.
const internal = (now, before) => import(new URL(`dist/esm/${existsSync(new URL(`dist/esm/${now}`, pkg)) ? now : before}`, pkg).href);
const { binding } = await internal('core/binding.js', 'binding.js');
const { checkFaultQueueOptions } = await internal('fault/fault_queue.js', 'fault_queue_options.js');

const now = () => process.hrtime.bigint(); // CLOCK_MONOTONIC ns, as fault_bench's Now()
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The guest suite's paging setup: IOAS, mock device, fault queue, paging HWPT, device moved onto it. */
function setup() {
  const iommufd = Iommufd.open();
  const ioas = iommufd.allocIoas();
  const dev = MockDevice.create(iommufd, ioas.id);
  const queue = iommufd.allocFaultQueue();
  const hwpt = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, faultQueue: queue });
  dev.replace(hwpt.id);
  return { iommufd, dev, queue };
}

const fault = { groupId: 0, perm: 1, addr: 0x10000n };

/** The handler: answers `n` groups as they come; resolves once the last answer reached the kernel. */
async function handle(queue, n) {
  let handled = 0;
  let last;
  for await (const group of queue) {
    last = group.respond();
    if (++handled === n) break;
  }
  await last;
}

/** The batch handler: one await per read (queue.batches()), answers without promises. */
async function handleBatches(queue, n) {
  let handled = 0;
  for await (const batch of queue.batches()) {
    for (const group of batch) group.answer();
    handled += batch.length;
    if (handled >= n) break;
  }
  await new Promise((r) => setImmediate(r)); // the last answers' flush
}

/** Drains `n` pre-queued faults; returns the nanoseconds from the first read to the last answer. */
async function drainOnce(dev, queue, n, handler) {
  dev.triggerIopf(fault, n);
  const t0 = now();
  await handler(queue, n);
  return Number(now() - t0);
}

// A first, "cold" drain of WARMUP faults in the fresh process, then REPS measured ones: a fault
// handler is a long-running process, and under TCG the JIT warm-up alone takes seconds.
async function drain(n, warmup, reps, handler = handle) {
  const { iommufd, dev, queue } = setup();
  const coldNs = warmup > 0 ? await drainOnce(dev, queue, warmup, handler) : 0;
  const nsAll = [];
  for (let i = 0; i < reps; i++) nsAll.push(await drainOnce(dev, queue, n, handler));
  const answered = (queue.stats.answered - warmup) / reps;
  await iommufd.close();
  return { mode: 'drain', n, answered, nsAll, warmup, coldNs };
}

// One fault at a time, through the idiomatic handler loop (for await + respond() not awaited, as
// in examples/vmm-fault-handler.mjs): the next fault is triggered once the answer reached the
// kernel, i.e. when respond()'s promise resolves.
async function rtt(iters, warmup) {
  const { iommufd, dev, queue } = setup();
  const total = warmup + iters;
  const triggerNs = [];
  const deliverNs = [];
  const totalNs = [];
  let t0 = 0n;
  let tq = 0n;
  const trigger = (i) => {
    t0 = now();
    dev.triggerIopf({ ...fault, groupId: i });
    tq = now();
  };
  let k = 0;
  let last;
  trigger(0);
  for await (const group of queue) {
    const t1 = now();
    if (group.groupId !== k) throw new Error(`rtt: fault ${k} came back with group id ${group.groupId}`);
    const a = t0;
    const b = tq;
    const i = k;
    last = group.respond().then(() => {
      const t2 = now();
      if (i >= warmup) {
        triggerNs.push(Number(b - a));
        deliverNs.push(Number(t1 - a));
        totalNs.push(Number(t2 - a));
      }
      if (i + 1 < total) trigger(i + 1);
    });
    if (++k === total) break;
  }
  await last;
  await iommufd.close();
  return { mode: 'rtt', iters, triggerNs, deliverNs, totalNs };
}

// How a mode's consumer handles `n` faults: the async iterator (respond() each), the batch view
// on the event loop, serve() on this thread, or the serve loop in a worker. Returns {handle(n), stats(), stop()}.
async function consumer(queue, how) {
  if (how === 'view') {
    const until = fast.viewHandler(queue);
    return { handle: (n) => until(n), stats: () => queue.stats, stop: async () => queue.setBatchHandler(null) };
  }
  if (how === 'worker') {
    const server = await queue.serveInWorker(fast.handlerModule);
    let expected = 0; // the faults may be answered before handle() is called: count from the start
    return {
      handle: async (n) => {
        expected += n;
        while (server.stats.answered < expected) await sleep(1);
      },
      stats: () => server.stats,
      stop: () => server.stop(),
    };
  }
  if (how === 'serve') {
    return {
      handle: async (n) => {
        let handled = 0;
        queue.serve((batch) => {
          for (let g = 0, k = batch.groupCount; g < k; g++) batch.answer(g);
          handled += batch.groupCount;
          if (handled >= n) batch.stopServing();
        });
      },
      stats: () => queue.stats,
      stop: async () => {},
    };
  }
  return { handle: (n) => handle(queue, n), stats: () => queue.stats, stop: async () => {} };
}

// The producer is fault_bench in `produce` mode with the iommufd as its fd 3, exactly as the C
// side starts it (fork, dup2 to 3, exec).
async function pipe(n, warmup, producer, how = 'iter') {
  const { iommufd, dev, queue } = setup();
  const c = await consumer(queue, how);
  // A fault handler is a long-running process: warm the JIT up first, as the drain modes do.
  dev.triggerIopf(fault, warmup);
  await c.handle(warmup);
  const base = c.stats().answered;
  const spawned = now();
  const child = spawn(producer, ['produce', '3', String(dev.deviceId), String(n)], {
    stdio: ['ignore', 'pipe', 'inherit', iommufd.fd],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s) => { out += s; });
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  const failed = exited.then((code) => new Promise((resolve) => setTimeout(() => resolve(code), 2000)));
  const result = await Promise.race([c.handle(n).then(() => 'done'), failed]);
  const done = now();
  const code = await exited;
  const answered = c.stats().answered - base;
  await c.stop();
  await iommufd.close();
  if (result !== 'done') throw new Error(`producer exited with ${code} after ${answered} of ${n} faults were answered`);
  return { mode: 'pipe', n, answered, spawnedNs: Number(spawned), doneNs: Number(done), producer: JSON.parse(out) };
}

// The floor under the FaultQueue API: the native pump used directly (internal, not public), with
// the C client's loop in the batch callback: the cookie of each group's last record into one
// reused response buffer, one write per batch. No objects, no promises per fault.
function rawSetup() {
  const iommufd = Iommufd.open();
  const ioas = iommufd.allocIoas();
  const dev = MockDevice.create(iommufd, ioas.id);
  const { id, fd } = binding.faultQueueAlloc(iommufd.fd);
  const hwptId = binding.hwptAlloc(iommufd.fd, { devId: dev.deviceId, ptId: ioas.id, faultId: id });
  dev.replace(hwptId);
  const responses = new Uint8Array(8 * 1024);
  const out = new Uint32Array(responses.buffer); // u32 words in the CPU's byte order, as the library's answers
  let words;
  const state = { answered: 0, target: 0, done: () => {} };
  const pump = new binding.EventPump(fd);
  const onBatch = (view, bytes) => {
    if (words?.buffer !== view.buffer) words = new Uint32Array(view.buffer, view.byteOffset, view.byteLength >>> 2);
    let k = 0;
    for (let w = 0, end = bytes >>> 2; w < end; w += 10) {
      if (!(words[w] & 2)) continue; // LAST_PAGE: answer the group by its last record
      out[2 * k] = words[w + 9];
      out[2 * k + 1] = 0;
      k++;
    }
    if (pump.write(responses.subarray(0, k * 8))) throw new Error('raw: a response was refused');
    state.answered += k;
    if (state.answered >= state.target) state.done();
  };
  const onError = (e) => { throw e; };
  pump.setCallbacks(onBatch, onError);
  pump.callbacks = [onBatch, onError]; // the pump holds them weakly: its owner must keep them
  pump.start();
  pump.ref(true);
  const until = (target) => new Promise((resolve) => {
    state.target = target;
    state.done = resolve;
    if (state.answered >= target) resolve();
  });
  return { iommufd, dev, pump, state, until };
}

async function drainRaw(n, warmup, reps) {
  const { iommufd, dev, pump, state, until } = rawSetup();
  const once = async (k) => {
    const base = state.answered;
    dev.triggerIopf(fault, k);
    const t0 = now();
    await until(base + k);
    return Number(now() - t0);
  };
  const coldNs = warmup > 0 ? await once(warmup) : 0;
  const nsAll = [];
  for (let i = 0; i < reps; i++) nsAll.push(await once(n));
  const answered = (state.answered - warmup) / reps;
  pump.close();
  await iommufd.close();
  return { mode: 'drain', n, answered, nsAll, warmup, coldNs };
}

async function rttRaw(iters, warmup) {
  const { iommufd, dev, pump, state, until } = rawSetup();
  const triggerNs = [];
  const deliverNs = [];
  const totalNs = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = now();
    dev.triggerIopf({ ...fault, groupId: i });
    const tq = now();
    await until(state.answered + 1);
    const t2 = now();
    if (i >= warmup) {
      triggerNs.push(Number(tq - t0));
      deliverNs.push(Number(t2 - t0)); // delivered and answered in the same callback
      totalNs.push(Number(t2 - t0));
    }
  }
  pump.close();
  await iommufd.close();
  return { mode: 'rtt', iters, triggerNs, deliverNs, totalNs };
}

// What the test device does with the group id: PRI's is 9 bits, the selftest's trigger takes a u32.
async function grpid() {
  const { iommufd, dev, queue } = setup();
  const sent = [0, 0x1ff, 0x200, 0x12345, 0xffffffff];
  for (const groupId of sent) dev.triggerIopf({ ...fault, groupId });
  const got = [];
  for await (const group of queue) {
    got.push(group.groupId);
    await group.respond();
    if (got.length === sent.length) break;
  }
  await iommufd.close();
  return { mode: 'grpid', sent, got, passedThrough: sent.every((g, i) => got[i] === g) };
}

// Calibration, no kernel needed (bench/run.mjs runs it on the host too, guest.mjs in the guest):
// how much slower TCG makes the same user-space work, C vs JS.
//  loop: the C client's per-record loop (cookie of the last record -> response), in JS, over a
//        synthetic 1024-record buffer; fault_bench calib runs the same loop in C.
//  queue: the whole FaultQueue path per fault (decode, FaultGroup, for await, respond(), flush)
//        with the native pump swapped for a stub that hands over the same synthetic batches and
//        takes every answer.
async function calib(reps) {
  const RECORDS = 1024;
  const recs = new Uint8Array(40 * RECORDS);
  const dv = new DataView(recs.buffer);
  for (let i = 0; i < RECORDS; i++) {
    dv.setUint32(i * 40, 2, true); // LAST_PAGE
    dv.setUint32(i * 40 + 4, 1, true); // dev_id
    dv.setUint32(i * 40 + 12, i, true); // grpid
    dv.setBigUint64(i * 40 + 24, 0x10000n, true); // addr
    dv.setUint32(i * 40 + 36, i, true); // cookie
  }
  const out = new DataView(new ArrayBuffer(8 * RECORDS));
  const loop = () => {
    let k = 0;
    for (let off = 0; off < 40 * RECORDS; off += 40) {
      if (!(dv.getUint32(off, true) & 2)) continue;
      out.setUint32(k * 8, dv.getUint32(off + 36, true), true);
      out.setUint32(k * 8 + 4, 0, true);
      k++;
    }
    return k;
  };
  let sink = 0;
  for (let i = 0; i < reps; i++) sink += loop(); // warm-up
  let t0 = now();
  for (let i = 0; i < reps; i++) sink += loop();
  const loopNsPerRecord = Number(now() - t0) / (reps * RECORDS);

  // The fixed costs under a JS handler's round trip: one call from JS into the addon (a pump's
  // writeAnswers() with nothing to write: no syscall) and one process.hrtime.bigint().
  const efd = binding.eventfd();
  const probe = new binding.EventPump(efd, 1, true);
  probe.setAnswers(new Uint8Array(8), new Int32Array(binding.pumpControl.bytes / 4));
  const calls = reps * 20;
  for (let i = 0; i < calls; i++) probe.writeAnswers();
  t0 = now();
  for (let i = 0; i < calls; i++) probe.writeAnswers();
  const napiCallNs = Number(now() - t0) / calls;
  probe.close();
  binding.close(efd);
  let clock = 0n;
  for (let i = 0; i < calls; i++) clock += process.hrtime.bigint();
  t0 = now();
  for (let i = 0; i < calls; i++) clock += process.hrtime.bigint();
  const hrtimeNs = Number(now() - t0) / calls;

  let onBatch;
  binding.EventPump = class {
    setCallbacks(batch) { onBatch = batch; }
    setAnswers(bytes, slots) { this.slots = slots; }
    // Takes every answer, counting them where the native pump does (the control block).
    writeAnswers() {
      new Float64Array(this.slots.buffer)[binding.pumpControl.answered] += this.slots[binding.pumpControl.answers];
      this.slots[binding.pumpControl.answers] = 0;
      return undefined;
    }
    start() {}
    ref() {}
    stop() {}
    read() {}
    write() { return undefined; }
    close() {}
  };
  const queue = new FaultQueue({ _forget() {} }, 1, -1, checkFaultQueueOptions({}));
  const batches = Math.max(2, Math.round(reps / 50));
  const run = async () => {
    let handled = 0;
    const handler = (async () => {
      for await (const group of queue) {
        group.respond();
        if (++handled === batches * RECORDS) break;
      }
    })();
    for (let b = 0; b < batches; b++) {
      onBatch(recs, recs.byteLength);
      await new Promise((r) => setImmediate(r)); // the handler runs; the last answers are written
    }
    await handler;
    await new Promise((r) => setImmediate(r));
  };
  await run(); // warm-up
  t0 = now();
  await run();
  const queueNsPerFault = Number(now() - t0) / (batches * RECORDS);
  if (queue.stats.answered !== 2 * batches * RECORDS) throw new Error(`calib: ${queue.stats.answered} answered`);
  return { mode: 'calib', reps, loopNsPerRecord, queueNsPerFault, napiCallNs, hrtimeNs, sink: sink + Number(clock & 1n) };
}

function memory() {
  global.gc();
  global.gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

// N faults in chunks: trigger CHUNK (kept in the kernel), handle them, repeat. Memory is measured
// after a full GC, before any fault, after a warm-up chunk and every 10% of the way.
async function mem(n, chunk, how = 'iter') {
  const { iommufd, dev, queue } = setup();
  const c = await consumer(queue, how);
  const cold = memory();
  dev.triggerIopf(fault, chunk);
  await c.handle(chunk);
  const before = memory();
  const samples = [{ faults: 0, ...before }];
  const t0 = now();
  const every = Math.max(chunk, Math.floor(n / 10));
  for (let done = 0; done < n;) {
    const k = Math.min(chunk, n - done);
    dev.triggerIopf({ ...fault, groupId: done }, k);
    await c.handle(k);
    done += k;
    if (done % every === 0 || done === n) samples.push({ faults: done, ...memory() });
  }
  const t1 = now();
  const after = samples.at(-1);
  const { answered } = c.stats();
  const { pending, backlog } = queue.stats;
  await c.stop();
  await iommufd.close();
  return { mode: 'mem', how, n, answered: answered - chunk, pending, backlog, ns: Number(t1 - t0), cold, before, after, samples };
}

const fast = fastModes({ pkg, setup, fault, now });
const [mode, a, b, c] = process.argv.slice(2);
const modes = {
  ...fast,
  ...await veventModes({ pkg, now }),
  'pipe-view': () => pipe(Number(a), Number(b), c, 'view'),
  'pipe-worker': () => pipe(Number(a), Number(b), c, 'worker'),
  'mem-view': () => mem(Number(a), Number(b), 'view'),
  'mem-worker': () => mem(Number(a), Number(b), 'worker'),
  'mem-serve': () => mem(Number(a), Number(b), 'serve'),
  drain: () => drain(Number(a), Number(b ?? 0), Number(c ?? 1)),
  'drain-batch': () => drain(Number(a), Number(b ?? 0), Number(c ?? 1), handleBatches),
  rtt: () => rtt(Number(a), Number(b)),
  pipe: () => pipe(Number(a), Number(b), c),
  mem: () => mem(Number(a), Number(b)),
  grpid: () => grpid(),
  calib: () => calib(Number(a ?? 2000)),
  'drain-raw': () => drainRaw(Number(a), Number(b ?? 0), Number(c ?? 1)),
  'rtt-raw': () => rttRaw(Number(a), Number(b)),
};
if (!modes[mode]) {
  console.error('usage: node --expose-gc bench/node_bench.mjs drain N WARMUP REPS | rtt ITERS WARMUP | pipe N WARMUP PRODUCER | mem N CHUNK');
  process.exit(2);
}
console.log(JSON.stringify(await modes[mode](a, b, c)));
