// The Node side of the real-path benchmark (bench/pri_bench.mjs): one function per run, each on a
// fresh iommufd, VFIO device open, IOAS and fault queue, as the C client's runs are.
//
// Round trip (rtt): one DMA of 64 bytes at a fresh page at a time, per shape:
//   for await / batch handler: the handler on this thread's event loop (queue.groups(),
//     setBatchHandler); this thread then waits for the device.
//   serve(): one serve loop on this thread for the whole run; its handler maps, answers, flush()es,
//     then drives the device itself: waits for the job, the baseline, and starts the next job.
//   serveInWorker(): the handler (bench/pri_handlers.mjs) maps through an IoasMapper on its worker;
//     this thread only drives the device, as the C client's rtt-thread does.
//   DemandPager: the library's pager over a window of all the run's pages; this thread drives the
//     device. It has no per-step times (its own read-to-answer latency is reported instead).
// Throughput (tput): as many slots as the PRI allocation, 64 pages of fresh IOVAs each per wave,
// one page request per page, as the C client's tput (why that many: there); the wave's time is
// from the first GO to the last slot seen done.
export const PAGE = 4096;
export const SLOTS = 8;
export const JOB_PAGES = 64;
// As the C client's: faulting IOVAs from BASE; nested: stage 1 maps each to Y, the one page the
// IOAS maps, with the stage-1 tables at TABLES.
const BASE = 0x1_0000_0000n;
const Y = 0x2_0000_0000n;
const TABLES = 0x8000_0000n;
const TPUT_BASE = 0x4_0000_0000n;
const now = () => process.hrtime.bigint();
// Between status reads in the worker rows, as the C client's rtt-thread: reading the register
// back to back took the BQL from QEMU's device model and IOMMU for the whole round trip.
const NAP_NS = 50_000n;
const nap = new Int32Array(new SharedArrayBuffer(4));
/** Sleeps `ms` without the event loop (Atomics.wait is allowed on Node's main thread). */
const sleep = (ms) => Atomics.wait(nap, 0, 0, ms);

export function nodeRuns({ api, testing, address, watchdog, handlers }) {
  const { Iommufd, VfioDevice, allocPages, DemandPager, HWPT_ALLOC_NEST_PARENT } = api;
  const { PriTestDevice, VtdStage1Table } = testing;

  // Bounded: the device fails a job within its TIMEOUT_MS (5 s); a slot busy for 10 s lost it.
  // napNs: a pause between reads (the worker rows, as the C client's rtt-thread). Busy, not
  // asleep: with Atomics.wait(0.05 ms) the worker rows' completion was ~1.9 ms, C's with
  // nanosleep(50 us) 58-145 us.
  function spinDone(pri, slot = 0, napNs = 0n) {
    const until = Date.now() + 10_000;
    for (let n = 0; ; n++) {
      if (n > 0 && napNs) for (const end = now() + napNs; now() < end;);
      const s = pri.status(slot);
      if (s === 'done') return;
      if (s === 'error') throw new Error(`the device failed the job in slot ${slot}: ${JSON.stringify(pri.result(slot), (k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
      if ((n & 63) === 63 && Date.now() > until) throw new Error(`slot ${slot} still ${s} after 10 s: ${JSON.stringify(pri.counters())}`);
    }
  }

  // nested: the device on a nested HWPT over a NEST_PARENT one (the parent attached first, as the
  // C client and examples/nested-stage1.mjs do); else on a fault-capable paging HWPT.
  function open(label, nested = false) {
    const iommufd = Iommufd.open();
    const dev = VfioDevice.openPci(address);
    const deviceId = dev.bind(iommufd);
    const ioas = iommufd.allocIoas();
    const queue = iommufd.allocFaultQueue();
    let hwpt;
    let table;
    if (nested) {
      const parent = iommufd.allocHwpt({ deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
      dev.attach(parent);
      table = new VtdStage1Table(ioas, { iova: TABLES });
      hwpt = iommufd.allocHwpt({ deviceId, parentId: parent.id, faultQueue: queue, stage1: { type: 'vtd-s1', pgtblAddr: table.root } });
    } else {
      hwpt = iommufd.allocHwpt({ deviceId, parentId: ioas.id, faultQueue: queue });
    }
    dev.attach(hwpt);
    const pri = new PriTestDevice(dev);
    watchdog.run(label, dev.fd);
    const close = async () => {
      watchdog.pause();
      if (!queue.closed) await queue.close();
      dev.close();
      await iommufd.close();
    };
    return { iommufd, dev, ioas, queue, pri, close, hwpt, table };
  }

  const onePage = () => {
    const page = allocPages(PAGE);
    new Uint8Array(page).fill(0x5a);
    return page;
  };

  // The round trip of one shape (scenario paging or nested: for await and batch handler only); the
  // fields as the C client's (null: not seen by that shape).
  async function rtt(scenario, shape, iters, warmup) {
    const nested = scenario === 'nested';
    const { ioas, queue, pri, close, hwpt, table } = open(`rtt ${scenario} ${shape}`, nested);
    const out = { total: [], delivered: [], handler: [], iommu: [], completion: [], baseline: [] };
    const record = (i, t0, t1, t2, op, t3, t4) => {
      watchdog.beat(i);
      if (i < warmup) return;
      out.total.push(Number(t3 - t0));
      out.delivered.push(t1 === null ? null : Number(t1 - t0));
      out.handler.push(t1 === null ? null : Number(t2 - t1));
      out.iommu.push(op === null ? null : Number(op));
      out.completion.push(t2 === null ? null : Number(t3 - t2));
      out.baseline.push(Number(t4 - t3));
    };
    const prepare = (i) => pri.prepare(0, { iova: BASE + BigInt(i * PAGE), offset: 0, length: 64 });
    const baseline = () => {
      pri.go(0);
      spinDone(pri);
      return now();
    };
    const n = warmup + iters;
    let extra;
    try {
      if (shape === 'serve()') {
        const page = onePage();
        let i = 0;
        let t0 = 0n;
        const start = () => { prepare(i); t0 = now(); pri.go(0); };
        start();
        queue.serve((batch) => {
          const t1 = now();
          watchdog.handled();
          const a = now();
          for (let g = 0, c = batch.groupCount; g < c; g++) ioas.map(page, { iova: batch.addressBigInt(batch.first(g)) });
          const op = now() - a;
          for (let g = 0, c = batch.groupCount; g < c; g++) batch.answer(g);
          batch.flush();
          const t2 = now();
          spinDone(pri);
          const t3 = now();
          record(i, t0, t1, t2, op, t3, baseline());
          if (++i === n) batch.stopServing();
          else start();
        });
      } else if (shape === 'serveInWorker()') {
        const page = onePage();
        const handle = ioas.handle(page);
        const stamps = new BigInt64Array(new SharedArrayBuffer(32));
        const server = await queue.serveInWorker(handlers, { exportName: 'rtt', workerData: { descriptor: handle.descriptor, stamps } });
        let failure;
        server.on('error', (e) => { failure = e; });
        try {
          for (let i = 0; i < n; i++) {
            prepare(i);
            const t0 = now();
            pri.go(0);
            spinDone(pri, 0, NAP_NS);
            const t3 = now();
            if (failure) throw failure;
            // The worker stamps its times right after its write: it may not have yet.
            for (const until = Date.now() + 5000; Atomics.load(stamps, 3) !== BigInt(i + 1);) {
              if (Date.now() > until) throw new Error(`the job was done but the worker stamped ${Atomics.load(stamps, 3)} answers of ${i + 1}`);
            }
            record(i, t0, stamps[0], stamps[1], stamps[2], t3, baseline());
          }
        } finally {
          await server.stop();
          handle.close();
        }
      } else if (shape.startsWith('DemandPager')) {
        const memory = allocPages(n * PAGE);
        new Uint8Array(memory).fill(0x5a); // present before the pager pins it, as onePage() is
        const pager = await DemandPager.start({ ioas, faultQueue: queue, memory, iova: BASE, length: BigInt(n * PAGE), nativeStep: shape === 'DemandPager' });
        let failure;
        pager.on('error', (e) => { failure = e; }).on('faultError', (e) => { failure = e; });
        try {
          for (let i = 0; i < n; i++) {
            prepare(i);
            const t0 = now();
            pri.go(0);
            spinDone(pri, 0, NAP_NS);
            const t3 = now();
            if (failure) throw failure;
            record(i, t0, null, null, null, t3, baseline());
          }
        } finally {
          // After close() the stats are final (the native step's latencies are counted when the
          // worker's JS runs).
          const s = (await pager.close()).stats;
          if (!failure && (s.success !== n || s.invalid !== 0)) failure = new Error(`the pager answered ${s.success} SUCCESS, ${s.invalid} INVALID of ${n}`);
          extra = { pagerLatency: s.latency, servedNatively: s.servedNatively };
        }
        if (failure) throw failure;
      } else {
        const page = onePage();
        // Makes the pages present; returns the nanoseconds of its one ioctl (map or invalidate).
        let handle = (addrs) => {
          const a = now();
          for (const addr of addrs) ioas.map(page, { iova: addr });
          return now() - a;
        };
        if (nested) {
          ioas.map(page, { iova: Y });
          handle = (addrs) => {
            for (const addr of addrs) table.map(addr, Y);
            const a = now();
            hwpt.invalidate(addrs.map((addr) => ({ addr, npages: 1n })));
            return now() - a;
          };
        }
        let t1 = 0n;
        let t2 = 0n;
        let op = 0n;
        let resolveHandled;
        const forAwait = shape === 'for await';
        if (shape === 'batch handler') {
          queue.setBatchHandler((batch) => {
            t1 = now();
            watchdog.handled();
            const addrs = [];
            for (let g = 0; g < batch.groupCount; g++) addrs.push(batch.addressBigInt(batch.first(g)));
            op = handle(addrs);
            for (let g = 0; g < batch.groupCount; g++) batch.answer(g, 'success');
            t2 = now(); // the pump writes the answers when this returns
            resolveHandled();
          });
        }
        for (let i = 0; i < n; i++) {
          const handled = new Promise((r) => { resolveHandled = r; });
          prepare(i);
          const t0 = now();
          pri.go(0);
          if (forAwait) {
            const { value: group } = await queue.next();
            t1 = now();
            watchdog.handled();
            op = handle([group.faults[0].addr]);
            await group.respond('success');
            t2 = now();
          } else {
            await handled;
            // The pump writes the handler's answers when the handler returns, after this
            // continuation (a microtask of the same callback) would run: one turn first.
            await new Promise(setImmediate);
          }
          spinDone(pri);
          const t3 = now();
          record(i, t0, t1, t2, op, t3, baseline());
        }
      }
      const s = queue.closed ? undefined : queue.stats;
      if (s && (s.refused || s.stale)) throw new Error(`answers refused ${s.refused}, stale ${s.stale}`);
    } finally {
      await close();
    }
    return { ...out, ...extra };
  }

  // Throughput: `waves` measured after `warmup` ones; ns per wave of slots * JOB_PAGES pages.
  async function tput(shape, waves, warmup) {
    const { ioas, queue, pri, close } = open(`tput ${shape}`);
    const slots = Math.min(SLOTS, pri.counters().priAlloc);
    const mask = (1 << slots) - 1;
    const perWave = slots * JOB_PAGES;
    const total = warmup + waves;
    const ns = [];
    let done = 0; // pages answered so far, by this thread's handlers
    let t0 = 0n;
    const start = (w) => {
      const base = TPUT_BASE + BigInt(w * perWave * PAGE);
      pri.acknowledge(0xff);
      for (let s = 0; s < slots; s++) pri.prepare(s, { iova: base + BigInt(s * JOB_PAGES * PAGE), offset: 0, length: JOB_PAGES * PAGE });
      t0 = now();
      for (let s = 0; s < slots; s++) pri.go(s);
    };
    // The wave's end: every slot done (this thread is free: the handler is elsewhere).
    const waitFinished = () => {
      const until = Date.now() + 30_000;
      while ((pri.finished & mask) !== mask) {
        if (Date.now() > until) throw new Error(`wave not finished after 30 s: ${JSON.stringify(pri.counters())}`);
        sleep(1);
      }
    };
    const end = (w) => {
      for (let s = 0; s < slots; s++) spinDone(pri, s);
      if (w >= warmup) ns.push(Number(now() - t0));
      watchdog.beat(w);
    };
    const page = onePage();
    const mapAll = (batch) => {
      for (let g = 0, c = batch.groupCount; g < c; g++) {
        for (let r = batch.first(g), e = r + batch.size(g); r < e; r++) ioas.map(page, { iova: batch.addressBigInt(r) });
        batch.answer(g);
      }
      done += batch.recordCount;
      watchdog.beat(done);
    };
    try {
      if (shape === 'for await') {
        const groups = queue.groups();
        for (let w = 0; w < total; w++) {
          start(w);
          for (const target = done + perWave; done < target;) {
            const { value: group } = await groups.next();
            for (const f of group.faults) ioas.map(page, { iova: f.addr });
            group.answer('success');
            done += group.faults.length;
            watchdog.beat(done);
          }
          await new Promise(setImmediate); // the last answers' write
          end(w);
        }
      } else if (shape === 'batch handler') {
        let wake = () => {};
        let target = 0;
        queue.setBatchHandler((batch) => {
          mapAll(batch);
          if (done >= target) setImmediate(wake); // after the pump's write
        });
        for (let w = 0; w < total; w++) {
          target = done + perWave;
          const finished = new Promise((r) => { wake = r; });
          start(w);
          await finished;
          end(w);
        }
      } else if (shape === 'serve()') {
        for (let w = 0; w < total; w++) {
          const target = done + perWave;
          start(w);
          queue.serve((batch) => {
            mapAll(batch);
            if (done >= target) batch.stopServing();
          });
          end(w);
        }
      } else if (shape === 'serveInWorker()') {
        const handle = ioas.handle(page);
        const server = await queue.serveInWorker(handlers, { exportName: 'tput', workerData: { descriptor: handle.descriptor } });
        let failure;
        server.on('error', (e) => { failure = e; });
        try {
          for (let w = 0; w < total; w++) {
            start(w);
            waitFinished();
            if (failure) throw failure;
            end(w);
          }
        } finally {
          await server.stop();
          handle.close();
        }
      } else if (shape.startsWith('DemandPager')) {
        const length = total * perWave * PAGE;
        const memory = allocPages(length);
        new Uint8Array(memory).fill(0x5a);
        const pager = await DemandPager.start({ ioas, faultQueue: queue, memory, iova: TPUT_BASE, length: BigInt(length), nativeStep: shape === 'DemandPager' });
        let failure;
        pager.on('error', (e) => { failure = e; }).on('faultError', (e) => { failure = e; });
        try {
          for (let w = 0; w < total; w++) {
            start(w);
            waitFinished();
            if (failure) throw failure;
            end(w);
          }
          const s = pager.stats;
          if (s.success !== total * perWave || s.invalid !== 0) throw new Error(`the pager answered ${s.success} SUCCESS, ${s.invalid} INVALID of ${total * perWave}`);
        } finally {
          await pager.close();
        }
      } else {
        throw new Error(`no tput shape ${shape}`);
      }
    } finally {
      await close();
    }
    return { pages: perWave, slots, ns };
  }

  return { rtt, tput };
}
