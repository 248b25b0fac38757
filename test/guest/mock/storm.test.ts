// A device storm must not starve the event loop: while a producer keeps the kernel queue non-empty
// for seconds (each batch raises the next fault or vEVENT, so the pump never reads it empty), a
// timer and an I/O round trip on the same thread must still run on time. The pump yields after a
// turn's share (binding.pumpTurn: 64 batches or 2 ms) and goes on at its next turn. Every storm is
// bounded by its own producer (it stops raising at a deadline), so a starved loop fails the bounds
// below instead of hanging the run.
import { createServer, type Server, type Socket, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { binding } from '../../../lib/core/binding.js';
import { HWPT_ALLOC_NEST_PARENT, Iommufd } from '../../../lib/index.js';
import { HWPT_DATA_SELFTEST, MockDevice, selftestHwptData, VEVENTQ_TYPE_SELFTEST, VIOMMU_TYPE_SELFTEST } from '../../../lib/testing.js';
import { kernelVersion } from '../rig.js';
import { closeAll, kinds, open, setup } from './helpers.js';

afterEach(closeAll);

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
