// A device storm must not starve the event loop: while a producer keeps the kernel queue non-empty
// for seconds (each batch raises the next fault or vEVENT, so the pump never reads it empty), a
// timer and an I/O round trip on the same thread must still run on time. The pump yields after a
// turn's share (binding.pumpTurn: 64 batches or 2 ms) and goes on at its next turn. Every storm is
// bounded by its own producer (it stops raising at a deadline), so a starved loop fails the bounds
// below instead of hanging the run.
//
// The serve loops take the same share (native/serve_loop.cc): between two turns a loop checks its
// stop request (before every read, too) and its wake-up fd. serveInWorker() must leave this
// thread on time while its worker serves a storm, and stop()/close() must end it mid-storm;
// serve() blocks its thread by design, so what it promises is that stopServing() or close() from
// its handler ends the loop at that batch, the storm still raging.
import { createServer, type Server, type Socket, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { binding } from '../../../lib/core/binding.js';
import { HWPT_ALLOC_NEST_PARENT, Iommufd } from '../../../lib/index.js';
import { HWPT_DATA_SELFTEST, MockDevice, selftestHwptData, VEVENTQ_TYPE_SELFTEST, VIOMMU_TYPE_SELFTEST } from '../../../lib/testing.js';
import { kernelVersion } from '../rig.js';
import { closeAll, kinds, open, setup, take } from './helpers.js';

afterEach(closeAll);

const handlers = new URL('../fixtures/serve-handlers.mjs', import.meta.url);
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

const STORM_MS = 3000;
// What a timer or a round trip may be late by under the storm, under TCG (a starved loop is late
// by the whole storm). Measured values are printed.
const BOUND_MS = 500;

interface LoopReport { timerTicks: number; timerLateMaxMs: number; timerLateP50Ms: number; roundTrips: number; roundTripMaxMs: number }

/** A 10 ms interval timer and a Unix-socket echo round trip, both on this thread, watched for `ms`. */
async function watchLoop(storm: Promise<unknown>): Promise<LoopReport> {
  const late: number[] = [];
  let expected = performance.now() + 10;
  const timer = setInterval(() => {
    const now = performance.now();
    late.push(now - expected);
    expected = now + 10;
  }, 10);
  const path = `/tmp/iommufd-storm-${process.pid}.sock`;
  const server: Server = createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => {})); // reset at the end
  await new Promise<void>((r) => server.listen(path, r));
  const client: Socket = connect(path);
  await new Promise<void>((r) => client.once('connect', r));
  const trips: number[] = [];
  let running = true;
  let sent = 0;
  client.on('data', () => {
    trips.push(performance.now() - sent);
    if (running) ping();
  });
  const ping = () => {
    sent = performance.now();
    client.write('x');
  };
  ping();
  try {
    await storm;
  } finally {
    // A tick or an echo still waiting when the storm ends is as late as it is by now.
    const end = performance.now();
    if (end > expected) late.push(end - expected);
    trips.push(end - sent);
    running = false;
    clearInterval(timer);
    client.destroy();
    await new Promise((r) => server.close(r));
  }
  const sorted = [...late].sort((a, b) => a - b);
  return {
    timerTicks: late.length,
    timerLateMaxMs: Math.round(Math.max(0, ...late)),
    timerLateP50Ms: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
    roundTrips: trips.length,
    roundTripMaxMs: Math.round(Math.max(0, ...trips)),
  };
}

/** `lastRaise`: when the producer last raised an item; it must have kept raising until its deadline. */
function expectFair(name: string, r: LoopReport, produced: number, lastRaise: number, deadline: number): void {
  console.log(`storm ${name}: ${produced} items in ${STORM_MS} ms, the last ${Math.round(deadline - lastRaise)} ms before the deadline; timer ${r.timerTicks} ticks, late p50 ${r.timerLateP50Ms} ms, max ${r.timerLateMaxMs} ms; ` +
    `${r.roundTrips} socket round trips, max ${r.roundTripMaxMs} ms (pump turn: ${binding.pumpTurn?.batches} batches or ${binding.pumpTurn?.ms} ms)`);
  // The storm is the property, not its rate (which follows the host's load under TCG: 329-400 items
  // in 3 s with the host's two cores loaded 8-fold, thousands when idle): the producer kept
  // raising until its deadline, so the queue was never found empty for long.
  expect(deadline - lastRaise, 'the producer kept the queue busy until its deadline').toBeLessThan(BOUND_MS);
  expect(produced).toBeGreaterThan(STORM_MS / BOUND_MS * 7);
  expect(r.timerLateMaxMs).toBeLessThan(BOUND_MS);
  expect(r.roundTripMaxMs).toBeLessThan(BOUND_MS);
  expect(r.timerTicks).toBeGreaterThan(STORM_MS / 10 / 4);
  expect(r.roundTrips).toBeGreaterThan(STORM_MS / BOUND_MS);
}

describe.each(kinds)('a fault storm on a %s HWPT', (kind) => {
  it('batch view: one fault raised per batch of one record, for 3 s; timers and I/O stay on time', async () => {
    const { dev, queue } = setup(kind, { bufferRecords: 1 });
    let produced = 0;
    let lastRaise = 0;
    let answered = 0;
    const deadline = performance.now() + STORM_MS;
    const storm = new Promise<void>((done) => {
      queue.setBatchHandler((batch) => {
        answered += batch.answerAll();
        if (performance.now() < deadline) {
          dev.triggerIopf({ groupId: produced++ & 0xff, addr: 0x10000n });
          lastRaise = performance.now();
        } else done();
      });
    });
    dev.triggerIopf({ groupId: produced++, addr: 0x10000n });
    const report = await watchLoop(storm);
    queue.setBatchHandler(null);
    expectFair(`${kind} batch view`, report, produced, lastRaise, deadline);
    expect(answered).toBe(produced);
    expect(queue.stats).toMatchObject({ pending: 0, refused: 0 });
  });

  it('for await: a consumer that raises 7 faults every 7 groups, for 3 s; timers and I/O stay on time', async () => {
    const { dev, queue } = setup(kind, { bufferRecords: 1 });
    let produced = 0;
    let lastRaise = 0;
    const raise = (n: number) => {
      for (let i = 0; i < n; i++) dev.triggerIopf({ groupId: produced++ & 0xff, addr: 0x10000n });
      lastRaise = performance.now();
    };
    const deadline = performance.now() + STORM_MS;
    const storm = (async () => {
      let seen = 0;
      for await (const group of queue) {
        group.answer('success');
        if (++seen % 7 === 0) {
          if (performance.now() >= deadline) break;
          raise(7);
        }
      }
    })();
    raise(7);
    const report = await watchLoop(storm);
    expectFair(`${kind} for await`, report, produced, lastRaise, deadline);
    const { answeredInvalid } = await queue.close();
    expect(queue.stats.answered + queue.stats.refused).toBe(produced);
    expect(answeredInvalid).toBeLessThan(7);
  });
});

const [major, minor] = kernelVersion();
describe.runIf(major > 6 || (major === 6 && minor >= 15))('a vEVENT storm', () => {
  it('a batch handler that raises one vEVENT per batch of one, for 3 s; timers and I/O stay on time', async () => {
    const iommufd = Iommufd.open();
    open.push(iommufd);
    const ioas = iommufd.allocIoas();
    const dev = MockDevice.create(iommufd, ioas.id);
    const parent = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
    const viommu = iommufd.allocViommu({ deviceId: dev.deviceId, parent, type: VIOMMU_TYPE_SELFTEST });
    const queue = viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST, bufferRecords: 1 });
    viommu.allocVdevice({ deviceId: dev.deviceId, virtId: 7n });
    const nested = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: viommu.id, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData() });
    dev.replace(nested.id);
    let produced = 0;
    let lastRaise = 0;
    let seen = 0;
    const deadline = performance.now() + STORM_MS;
    const storm = new Promise<void>((done) => {
      queue.setBatchHandler((batch) => {
        seen += batch.length;
        if (performance.now() < deadline) {
          dev.triggerVevent(1);
          produced++;
          lastRaise = performance.now();
        } else done();
      });
    });
    dev.triggerVevent(1);
    produced++;
    const report = await watchLoop(storm);
    queue.setBatchHandler(null);
    expectFair('vEVENT batch view', report, produced, lastRaise, deadline);
    expect(seen).toBe(produced);
    expect(queue.stats.lost).toBe(0);
    await queue.close();
  });
});

describe.each(kinds)('a serve-loop storm on a %s HWPT', (kind) => {
  // The worker's handler (serve-handlers.mjs `storm`) answers each batch of one record and raises
  // the next fault, until stopped (or its backstop, 10 storms later).
  it.each(['stop()', 'close()'])('serveInWorker(): this thread\'s timer and I/O stay on time for 3 s while the worker serves a storm; %s mid-storm ends it within a bound, the queue usable after', async (end) => {
    const { iommufd, dev, queue } = setup(kind, { bufferRecords: 1 });
    const shared = new SharedArrayBuffer(16);
    const counts = new Float64Array(shared); // [raised by the worker, when it last raised (epoch ms)]
    const server = await queue.serveInWorker(handlers, {
      exportName: 'storm', stopTimeoutMs: 60_000, // longer than any bound below: a loop that does not stop fails them, it is not terminated
      workerData: { fd: iommufd.fd, devId: dev.deviceId, until: Date.now() + 10 * STORM_MS, shared },
    });
    try {
      dev.triggerIopf({ groupId: 0, addr: 0x10000n });
      const report = await watchLoop(delay(STORM_MS));
      const atStop = server.stats.delivered;
      const t0 = performance.now();
      let answeredInvalid = 0;
      const result = end === 'stop()' ? await server.stop() : (answeredInvalid = (await queue.close()).answeredInvalid, await server.stop());
      const stopMs = performance.now() - t0;
      const produced = 1 + counts[0];
      const lastRaise = counts[1] - performance.timeOrigin;
      console.log(`storm ${kind} serveInWorker, ${end} mid-storm: returned in ${Math.round(stopMs)} ms; the worker served ${result.delivered} faults (${atStop} when ${end} was called) in ${result.batches} batches`);
      expectFair(`${kind} serveInWorker`, report, produced, lastRaise, t0);
      expect(stopMs, `${end} mid-storm returns`).toBeLessThan(BOUND_MS * 4);
      expect(server.serving).toBe(false);
      expect(result).toMatchObject({ reason: 'stopped', answered: result.delivered, refused: 0, errors: 0 });
      // The worker's last batch raised a fault it did not read (at most one: one per batch of one).
      const left = produced - result.delivered;
      expect(left).toBeGreaterThanOrEqual(0);
      expect(left).toBeLessThanOrEqual(1);
      if (end === 'close()') {
        expect(answeredInvalid).toBe(left);
        expect(queue.closed).toBe(true);
        return;
      }
      // The queue is this thread's again: the fault left over, then a new one, then close().
      dev.triggerIopf({ groupId: 0x100, addr: 0x10000n });
      const groups = await take(queue, left + 1);
      expect(groups.at(-1)!.groupId).toBe(0x100);
      for (const g of groups) await g.respond();
      expect(queue.stats).toMatchObject({ delivered: left + 1, answered: left + 1, refused: 0, pending: 0 });
      expect((await queue.close()).answeredInvalid).toBe(0);
    } finally {
      await server.stop();
    }
  });

  // serve() holds this thread: the handler itself raises the next fault per batch of one, and after
  // STOP_AFTER_MS of storm raises one more (the queue is not empty) and ends the loop. A loop that
  // went on reading would call the handler again: it counts such calls, and throws 5 s later (which
  // ends serve() by another path), so a broken stop fails instead of holding the thread for good.
  const STOP_AFTER_MS = 1000;
  it.each(['stopServing()', 'close()'])('serve(): %s from the handler mid-storm ends the loop at that batch; no read after it', async (end) => {
    const { dev, queue } = setup(kind, { bufferRecords: 1 });
    let produced = 0;
    let stoppedAt = 0;
    let callsAfter = 0;
    let closed: Promise<{ answeredInvalid: number }> | undefined;
    const raise = () => dev.triggerIopf({ groupId: produced++ & 0xff, addr: 0x10000n });
    const t0 = performance.now();
    raise();
    const result = queue.serve((batch) => {
      batch.answerAll();
      const now = performance.now();
      if (stoppedAt) {
        callsAfter++;
        if (now - stoppedAt > 5000) throw new Error(`${end} did not end the loop`);
        raise();
        return;
      }
      raise();
      if (now - t0 < STOP_AFTER_MS) return;
      stoppedAt = performance.now();
      if (end === 'stopServing()') batch.stopServing();
      else closed = queue.close();
    });
    const endMs = performance.now() - stoppedAt;
    console.log(`storm ${kind} serve(), ${end} from the handler after ${Math.round(stoppedAt - t0)} ms of storm (${result.delivered} faults in ${result.batches} batches): returned in ${endMs.toFixed(2)} ms, ${callsAfter} handler calls after it`);
    expect(result.reason).toBe(end === 'close()' ? 'closed' : 'stopped');
    expect(callsAfter).toBe(0);
    expect(endMs).toBeLessThan(BOUND_MS);
    expect(result.delivered).toBeGreaterThan(STOP_AFTER_MS / BOUND_MS * 7);
    expect(result).toMatchObject({ refused: 0, errors: 0 });
    if (end === 'close()') {
      // close() read the fault raised with it (the storm was on): the loop's counters count it
      // delivered; close() answered it INVALID, which the queue counts, not the loop.
      expect(result.delivered).toBe(produced);
      expect(result.answered).toBe(result.delivered - 1);
      expect((await closed!).answeredInvalid).toBe(1);
    } else {
      // The fault raised with the stop is still queued (the storm was on): the iterator's now.
      expect(result.answered).toBe(result.delivered);
      expect(produced - result.delivered).toBe(1);
      const [g] = await take(queue, 1);
      await g.respond();
      expect((await queue.close()).answeredInvalid).toBe(0);
    }
    expect(queue.stats).toMatchObject({ answered: produced, refused: 0, pending: 0 });
  });
});
