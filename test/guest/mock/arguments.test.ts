// Every argument check of the calls that need kernel objects, walked against the kernel's test
// device from test/api/spec.ts: the iommufd, IOAS, HWPT, fault queue, group and batch, serve loops,
// vIOMMU, vDEVICE, vEVENTQ and its batch, the mock device. Bad arguments must be refused before the
// kernel sees anything, closed receivers and arguments with ERR_IOMMUFD_CLOSED, and a valid call
// must still work. Calls whose objects this kernel cannot make (vIOMMU: 6.13+, vEVENTQ: 6.15+)
// are reported as skipped, with the reason, never as passed.
import { afterAll, describe, expect, it } from 'vitest';
import {
  allocPages, DemandPager, type FaultBatch, type FaultQueue, HWPT_ALLOC_NEST_PARENT, IoasMapper, Iommufd, type Vevent, type VeventBatch, type VeventQueue,
} from '../../../lib/index.js';
import {
  HWPT_DATA_SELFTEST, MockDevice, selftestHwptData, VEVENTQ_TYPE_SELFTEST, VIOMMU_TYPE_SELFTEST, VtdStage1Table,
} from '../../../lib/testing.js';
import {
  type Case, casesOf, type Closed, expectNoFailures, type Harness, judge, lazyWorld, type Outcome, outcomeOf, outcomeSync, walk, type Walked,
} from '../../api/cases.js';
import { type CallSpec, handlers, type ReceiverKind, spec, type World } from '../../api/spec.js';
import { kernelVersion } from '../rig.js';
import { faultHwpt, kinds } from './helpers.js';

const [major, minor] = kernelVersion();
const atLeast = (a: number, b: number) => major > a || (major === a && minor >= b);
const has = { viommu: atLeast(6, 13), veventq: atLeast(6, 15) };
const why = { viommu: `a vIOMMU needs Linux 6.13+ (this is ${major}.${minor})`, veventq: `a vEVENTQ needs Linux 6.15+ (this is ${major}.${minor})` };

// Every Iommufd a world opened, closed when its walk is done.
const opened = new Map<World, Iommufd[]>();

/** The objects of one world, made when first used; async ones (a delivered group...) by prepare(). */
function mockWorld(): World {
  const mine: Iommufd[] = [];
  const open = () => {
    const fd = Iommufd.open();
    mine.push(fd);
    return fd;
  };
  let faults: { queue: FaultQueue; hwpt: ReturnType<typeof faultHwpt> } | undefined;
  const setupFaults = (w: World) => {
    if (!faults) {
      const queue = w.iommufd.allocFaultQueue();
      const hwpt = faultHwpt(w.iommufd, w.ioas.id, w.dev, queue, kinds[0]);
      w.dev.replace(hwpt.id);
      faults = { queue, hwpt };
    }
    return faults;
  };
  const w = lazyWorld({
    iommufd: () => open(),
    ioas: (w) => w.iommufd.allocIoas(),
    spareIoas: (w) => w.iommufd.allocIoas(),
    dev: (w) => MockDevice.create(w.iommufd, w.ioas.id),
    queue: (w) => setupFaults(w).queue,
    faultHwpt: (w) => setupFaults(w).hwpt,
    parent: (w) => w.iommufd.allocHwpt({ deviceId: w.dev.deviceId, parentId: w.ioas.id, flags: HWPT_ALLOC_NEST_PARENT }),
    nestedHwpt: (w) => w.iommufd.allocHwpt({ deviceId: w.dev.deviceId, parentId: w.parent.id, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData() }),
    stage1: (w) => new VtdStage1Table(w.ioas, { iova: 0x1000_0000n, pages: 4 }),
    viommu: (w) => w.iommufd.allocViommu({ deviceId: w.dev.deviceId, parent: w.parent, type: VIOMMU_TYPE_SELFTEST }),
    vdevice: (w) => w.viommu.allocVdevice({ deviceId: w.dev.deviceId, virtId: 0x99n }),
    // The vDEVICE first, then the device onto a nested HWPT of the vIOMMU (the mock takes the virt_id at attach).
    veventQueue: (w) => {
      const queue = w.viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST });
      void w.vdevice;
      const nested = w.iommufd.allocHwpt({ deviceId: w.dev.deviceId, parentId: w.viommu.id, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData() });
      w.dev.replace(nested.id);
      return queue;
    },
    ioasHandle: (w) => w.ioas.handle(allocPages(65536)),
    ioasMapper: (w) => IoasMapper.open(w.ioasHandle.descriptor),
    foreign: () => {
      const other = open();
      const ioas = other.allocIoas();
      const dev = MockDevice.create(other, ioas.id);
      return { Ioas: ioas, FaultQueue: other.allocFaultQueue(), Hwpt: other.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT }) };
    },
    closedArg: (w) => {
      const queue = w.iommufd.allocFaultQueue();
      void queue.close();
      const hwpt = w.iommufd.allocHwpt({ deviceId: w.dev.deviceId, parentId: w.ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
      hwpt.destroy();
      const ioas = w.iommufd.allocIoas();
      ioas.destroy();
      const closed = open();
      void closed.close();
      return { FaultQueue: queue, Hwpt: hwpt, Ioas: ioas, Iommufd: closed };
    },
  });
  opened.set(w, mine);
  return w;
}

/** Makes what a receiver kind needs that comes only asynchronously: a delivered group, a serving worker, an event. */
async function prepare(w: World, kind: ReceiverKind | undefined): Promise<World> {
  if (kind === 'faultGroup') {
    const queue = w.queue; // first: the device onto the queue's HWPT
    w.dev.triggerIopf({ groupId: 9 });
    w.faultGroup = (await queue.next()).value!;
  } else if (kind === 'server') {
    w.server = await w.queue.serveInWorker(handlers);
  } else if (kind === 'pager') {
    w.pager = await DemandPager.start({ ioas: w.ioas, faultQueue: w.queue, memory: allocPages(65536), iova: 0x1000_0000n });
  } else if (kind === 'vevent') {
    const queue = w.veventQueue;
    w.dev.triggerVevent();
    w.vevent = (await queue.next()).value as Vevent;
  }
  return w;
}

async function dispose(w: World): Promise<void> {
  for (const fd of (opened.get(w) ?? []).reverse()) await fd.close();
  opened.delete(w);
}

/**
 * Receivers of a kind in each closed state, each from a world of its own, with the case's arguments
 * made from that world before it was closed (so they are its own, not another Iommufd's).
 */
async function closedOf(kind: ReceiverKind, args: (w: World) => unknown[]): Promise<Closed[]> {
  const out: Closed[] = [];
  // One world per state: `close` brings the receiver into it.
  const state = async (close: (w: World, receiver: unknown) => unknown) => {
    const w = await prepare(mockWorld(), kind);
    const receiver = w[kind as keyof World];
    const made = args(w);
    await close(w, receiver);
    out.push({ receiver, args: made });
  };
  const iommufdClosed = (w: World) => w.iommufd.close();
  switch (kind) {
    case 'iommufd': await state(iommufdClosed); break;
    case 'ioas': await state((w) => w.ioas.destroy()); await state(iommufdClosed); break;
    case 'faultHwpt': await state((w) => { w.dev.replace(w.ioas.id); w.faultHwpt.destroy(); }); await state(iommufdClosed); break;
    case 'nestedHwpt': await state((w) => w.nestedHwpt.destroy()); await state(iommufdClosed); break;
    case 'stage1': await state((w) => w.stage1.destroy()); break;
    case 'dev': await state((w) => w.dev.destroy()); await state(iommufdClosed); break;
    case 'queue': await state((w) => w.queue.close()); await state(iommufdClosed); break;
    case 'faultGroup': await state((w) => w.queue.close()); break;
    case 'server': await state((w) => w.server.stop()); break;
    case 'viommu': await state((w) => w.viommu.destroy()); await state(iommufdClosed); break;
    case 'vdevice': await state((w) => w.vdevice.destroy()); await state(iommufdClosed); break;
    case 'veventQueue': await state((w) => w.veventQueue.close()); await state(iommufdClosed); break;
    case 'vevent': await state((w) => w.veventQueue.close()); break;
    case 'ioasHandle': await state((w) => w.ioasHandle.close()); await state((w) => w.ioas.destroy()); await state(iommufdClosed); break;
    // A mapper is closed with its handle: closed by its owner, its IOAS destroyed, its iommufd closed.
    case 'ioasMapper': await state((w) => w.ioasHandle.close()); await state((w) => w.ioas.destroy()); await state(iommufdClosed); break;
    case 'pager': await state((w) => w.pager.close()); await state((w) => w.queue.close()); await state(iommufdClosed); break;
    default: throw new Error(`no closed ${kind} in the mock runner`);
  }
  return out;
}

const closedWorlds: World[] = [];
function harness(s: CallSpec): Harness {
  return {
    world: () => prepare(mockWorld(), s.receiver),
    closed: async (kind, args) => {
      const before = new Set(opened.keys());
      const receivers = await closedOf(kind, args);
      for (const w of opened.keys()) if (!before.has(w)) closedWorlds.push(w);
      return receivers;
    },
    done: dispose,
  };
}

const summary: { walked: Walked[]; skipped: string[] } = { walked: [], skipped: [] };
const missing = (s: CallSpec) => (s.needs && !has[s.needs] ? why[s.needs] : undefined);
const inBatch = (s: CallSpec) => s.receiver === 'faultBatch' || s.receiver === 'veventBatch';

// Receivers this kernel cannot make: their calls are not walked at all.
const FEATURE_RECEIVERS: (ReceiverKind | undefined)[] = ['viommu', 'vdevice', 'veventQueue', 'veventBatch', 'vevent'];

describe('every argument check of the kernel-object calls (mock device)', () => {
  for (const s of spec.filter((x) => x.runner === 'mock' && !x.internal && !inBatch(x))) {
    const lacks = missing(s);
    // A call whose receiver exists here (allocViommu on an Iommufd) is walked but for its valid call.
    const partial = lacks !== undefined && !FEATURE_RECEIVERS.includes(s.receiver);
    const skip = partial ? undefined : lacks;
    if (skip) summary.skipped.push(`${s.call}: ${skip}`);
    if (partial) summary.skipped.push(`${s.call}, its valid call only (every bad argument walked): ${lacks}`);
    it.skipIf(skip !== undefined)(`${s.call}${skip ? ` — not walked: ${skip}` : partial ? ` — all but the valid call: ${lacks}` : ''}`, async () => {
      const r = await walk(s, harness(s), partial ? (c) => c.label !== 'a valid call' : undefined);
      for (const w of closedWorlds.splice(0)) await dispose(w);
      summary.walked.push(r);
      expectNoFailures(s.call, r.failures);
    });
  }
});

/** The batch calls' cases, run synchronously inside a batch handler (a batch lives only there). */
interface BatchRun { spec: CallSpec; cases: Case[]; failures: string[]; runs: number }

function runLive(runs: BatchRun[], w: World, phase: 'open' | 'fresh', skip?: (s: CallSpec) => boolean) {
  for (const r of runs) {
    if (skip?.(r.spec)) continue;
    for (const c of r.cases.filter((x) => x.receiver === phase)) {
      const o: Outcome = outcomeSync(r.spec, r.spec.receiver === 'faultBatch' ? w.faultBatch : w.veventBatch, c.args(w));
      r.runs++;
      const f = judge(c, o);
      if (f) r.failures.push(`${c.label}: ${f}`);
    }
  }
}

function runEnded(runs: BatchRun[], w: World, receiver: unknown) {
  for (const r of runs) {
    for (const c of r.cases.filter((x) => x.receiver === 'closed')) {
      r.runs++;
      const f = judge(c, outcomeSync(r.spec, receiver, c.args(w)));
      if (f) r.failures.push(`${c.label}: ${f}`);
    }
  }
}

function report(runs: BatchRun[]) {
  for (const r of runs) summary.walked.push({ call: r.spec.call, cases: r.cases.length, runs: r.runs, failures: r.failures });
  expect(runs.flatMap((r) => r.failures.map((f) => `${r.spec.call}: ${f}`))).toEqual([]);
}

describe('every argument check of the batch views, inside their handlers', () => {
  it('FaultBatch: bad arguments, the valid calls (stopServing in a serve loop), then the ended batch', async () => {
    const w = mockWorld();
    const runs: BatchRun[] = spec.filter((s) => s.receiver === 'faultBatch').map((s) => ({ spec: s, cases: casesOf(s), failures: [], runs: 0 }));
    try {
      const queue = w.queue; // first: the device onto the queue's HWPT
      w.dev.triggerIopf({ groupId: 0 }, 8); // one read: eight single-record groups
      const ended = await new Promise<FaultBatch>((resolve) => {
        queue.setBatchHandler((batch) => {
          w.faultBatch = batch;
          if (batch.groupCount !== 8) runs[0].failures.push(`the batch has ${batch.groupCount} groups, not 8`);
          runLive(runs, w, 'open');
          runLive(runs, w, 'fresh', (s) => s.call === 'FaultBatch.stopServing');
          queue.setBatchHandler(null);
          resolve(batch);
        });
      });
      runEnded(runs, w, ended);
      // stopServing() is valid only in a serve loop.
      const stop = runs.find((r) => r.spec.call === 'FaultBatch.stopServing')!;
      w.dev.triggerIopf({ groupId: 20 });
      w.queue.serve((batch) => {
        const o = outcomeSync(stop.spec, batch, []);
        stop.runs++;
        const f = judge(stop.cases.find((c) => c.receiver === 'fresh')!, o);
        if (f) {
          stop.failures.push(`a valid call: ${f}`);
          batch.stopServing();
        }
      });
      report(runs);
    } finally {
      await dispose(w);
    }
  });

  const vskip = has.veventq ? undefined : why.veventq;
  if (vskip) summary.skipped.push(`VeventBatch (every call): ${vskip}`);
  it.skipIf(vskip !== undefined)(`VeventBatch: bad arguments, the valid calls, then the ended batch${vskip ? ` — not walked: ${vskip}` : ''}`, async () => {
    const w = mockWorld();
    const runs: BatchRun[] = spec.filter((s) => s.receiver === 'veventBatch').map((s) => ({ spec: s, cases: casesOf(s), failures: [], runs: 0 }));
    try {
      const queue: VeventQueue = w.veventQueue;
      w.dev.triggerVevent(4);
      const ended = await new Promise<VeventBatch>((resolve) => {
        queue.setBatchHandler((batch) => {
          w.veventBatch = batch;
          runLive(runs, w, 'open');
          runLive(runs, w, 'fresh');
          queue.setBatchHandler(null);
          resolve(batch);
        });
      });
      runEnded(runs, w, ended);
      report(runs);
    } finally {
      await dispose(w);
    }
  });
});

afterAll(() => {
  const cases = summary.walked.reduce((n, r) => n + r.cases, 0);
  const runs = summary.walked.reduce((n, r) => n + r.runs, 0);
  console.log(`mock (Linux ${major}.${minor}): ${summary.walked.length} calls walked, ${cases} cases, ${runs} runs; ` +
    `${summary.skipped.length} not walked${summary.skipped.length ? `:\n  ${summary.skipped.join('\n  ')}` : ''}`);
});

// Kept for the types: outcomeOf is what walk() uses for the calls above.
void outcomeOf;
