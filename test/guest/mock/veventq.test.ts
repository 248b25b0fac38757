// vEVENTQ through the kernel's test device: a vIOMMU over a nesting parent, the mock device's
// vDEVICE, its nested HWPT on the vIOMMU, and IOMMU_TEST_OP_TRIGGER_VEVENT as the event source
// (the flow of tools/testing/selftests/iommu's vdevice_alloc). Kernels before 6.15 get a clear error.
import { afterEach, describe, expect, it } from 'vitest';
import {
  HWPT_ALLOC_NEST_PARENT, Iommufd, VEVENTQ_MAX_DEPTH, VEVENTQ_TYPE_ARM_SMMUV3, type Vevent, type VeventBatch, type VeventLoss,
  type VeventQueueOptions, type Viommu,
} from '../../../lib/index.js';
import { HWPT_DATA_SELFTEST, MockDevice, selftestHwptData, VEVENTQ_TYPE_SELFTEST, VIOMMU_TYPE_SELFTEST } from '../../../lib/testing.js';
import { kernelVersion } from '../rig.js';
import { closeAll, fdCount, fixture, json, node, open, settle } from './helpers.js';

const [major, minor] = kernelVersion();
const hasVeventq = major > 6 || (major === 6 && minor >= 15);
const hasViommu = major > 6 || (major === 6 && minor >= 13);
const VIRT_ID = 0x99n;

afterEach(closeAll);

/** An IOAS, a mock device, a NEST_PARENT HWPT and a selftest vIOMMU over it. */
function viommuSetup() {
  const iommufd = Iommufd.open();
  open.push(iommufd);
  const ioas = iommufd.allocIoas();
  const dev = MockDevice.create(iommufd, ioas.id);
  const parent = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
  const viommu = iommufd.allocViommu({ deviceId: dev.deviceId, parent, type: VIOMMU_TYPE_SELFTEST });
  return { iommufd, ioas, dev, parent, viommu };
}

/** The vDEVICE first, then the device onto a nested HWPT of the vIOMMU (the mock takes the virt_id at attach). */
function attach(iommufd: Iommufd, viommu: Viommu, dev: MockDevice, virtId = VIRT_ID) {
  const vdevice = viommu.allocVdevice({ deviceId: dev.deviceId, virtId });
  const nested = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: viommu.id, dataType: HWPT_DATA_SELFTEST, data: selftestHwptData() });
  dev.replace(nested.id);
  return { vdevice, nested };
}

function setup(options: Partial<VeventQueueOptions> = {}) {
  const s = viommuSetup();
  const queue = s.viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST, ...options });
  return { ...s, ...attach(s.iommufd, s.viommu, s.dev), queue };
}

async function take(queue: { next(): Promise<IteratorResult<Vevent | VeventLoss>> }, n: number): Promise<(Vevent | VeventLoss)[]> {
  const out: (Vevent | VeventLoss)[] = [];
  for (let i = 0; i < n; i++) {
    const r = await queue.next();
    if (r.done) throw new Error(`queue ended after ${i} of ${n}`);
    out.push(r.value);
  }
  return out;
}

const seqs = (items: (Vevent | VeventLoss)[]) => items.map((e) => (e.kind === 'event' ? e.sequence : `lost ${e.count} ${e.first}..${e.last} ${e.reported}`));

describe.runIf(!hasVeventq)('before Linux 6.15', () => {
  it('says which kernel a vIOMMU and a vEVENTQ need, with the errno kept', () => {
    const iommufd = Iommufd.open();
    open.push(iommufd);
    const ioas = iommufd.allocIoas();
    const dev = MockDevice.create(iommufd, ioas.id);
    const parent = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
    if (!hasViommu) {
      expect(() => iommufd.allocViommu({ deviceId: dev.deviceId, parent, type: VIOMMU_TYPE_SELFTEST })).toThrow(expect.objectContaining({
        code: 'ENOTTY', syscall: 'IOMMU_VIOMMU_ALLOC', message: expect.stringMatching(/IOMMU_VIOMMU_ALLOC.*a vIOMMU needs Linux 6\.13\+ \(its event queues 6\.15\+\)/),
      }));
      return;
    }
    const viommu = iommufd.allocViommu({ deviceId: dev.deviceId, parent, type: VIOMMU_TYPE_SELFTEST });
    expect(() => viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST })).toThrow(expect.objectContaining({
      code: 'ENOTTY', message: expect.stringMatching(/a vEVENTQ needs Linux 6\.15\+/),
    }));
  });

  it('has no event source: TRIGGER_VEVENT is an unknown test op', () => {
    const iommufd = Iommufd.open();
    open.push(iommufd);
    const dev = MockDevice.create(iommufd, iommufd.allocIoas().id);
    expect(() => dev.triggerVevent()).toThrow(expect.objectContaining({ code: 'ENOTSUP', syscall: 'IOMMU_TEST_OP_TRIGGER_VEVENT' }));
  });
});

describe.runIf(hasVeventq)('vEVENTQ (Linux 6.15+)', () => {
  it('delivers one event: type, sequence 0, the vDEVICE virt_id as data, decoded', async () => {
    const { dev, queue } = setup();
    dev.triggerVevent();
    const [e] = await take(queue, 1);
    expect(e).toMatchObject({ kind: 'event', type: VEVENTQ_TYPE_SELFTEST, sequence: 0 });
    const event = e as Vevent;
    expect([...event.data]).toEqual([0x99, 0, 0, 0]);
    expect(event.decoded).toEqual({ virtId: 0x99 });
    expect(queue.stats).toMatchObject({ delivered: 1, lost: 0, overflows: 0, gaps: 0, backlog: 0 });
  });

  it('delivers a burst in order, as events and as batches', async () => {
    const { dev, queue } = setup({ depth: 4096 });
    dev.triggerVevent(3000);
    const got = await take(queue, 3000);
    expect(seqs(got)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    dev.triggerVevent(500);
    let n = 0;
    let batches = 0;
    for await (const batch of queue.batches()) {
      batches++;
      for (const e of batch) expect((e as Vevent).sequence).toBe(3000 + n++);
      if (n === 500) break;
    }
    expect(batches).toBeLessThan(500);
    expect(queue.stats).toMatchObject({ delivered: 3500, lost: 0 });
  });

  it('reports an overflow where it happened: the LOST_EVENTS header becomes a loss marker', async () => {
    const { dev, queue } = setup({ depth: 2 });
    dev.triggerVevent(5); // before the pump can read: 0 and 1 fit, 2..4 are lost
    const got = await take(queue, 3);
    expect(seqs(got)).toEqual([0, 1, 'lost 3 2..4 header']);
    dev.triggerVevent();
    const [after] = await take(queue, 1);
    expect(seqs([after])).toEqual([5]);
    expect(queue.stats).toMatchObject({ delivered: 3, lost: 3, overflows: 1, gaps: 0 });
  });

  it('reports a loss the kernel shows only as a sequence gap (its LOST header dropped by a newer event)', async () => {
    // Two records per read and a backlog limit of two: the pump stops after the first read and
    // leaves the LOST header queued; the next event then replaces it and leaves a gap.
    const { dev, queue } = setup({ depth: 2, bufferRecords: 2, highWaterMark: 2, lowWaterMark: 0 });
    dev.triggerVevent(3);
    for (let i = 0; i < 100 && queue.stats.backlog < 2; i++) await settle();
    expect(queue.stats).toMatchObject({ backlog: 2, paused: true });
    dev.triggerVevent();
    const got = await take(queue, 4);
    expect(seqs(got)).toEqual([0, 1, 'lost 1 2..2 gap', 3]);
    expect(queue.stats).toMatchObject({ delivered: 3, lost: 1, overflows: 0, gaps: 1 });
  });

  it("with overflow: 'throw', ends the iteration after the events before the loss", async () => {
    const { dev, queue } = setup({ depth: 2, overflow: 'throw' });
    dev.triggerVevent(5);
    const got: number[] = [];
    const err = await (async () => {
      for await (const e of queue) got.push((e as Vevent).sequence);
    })().catch((e: unknown) => e);
    expect(got).toEqual([0, 1]);
    expect(err).toMatchObject({ name: 'IommufdError', code: 'ERR_IOMMUFD_VEVENTS_LOST', lost: { count: 3, first: 2, last: 4, reported: 'header' } });
    expect(String((err as Error).message)).toMatch(/vEVENTQ \d+: 3 events lost \(sequence 2 to 4\)/);
    await expect(queue.next()).rejects.toMatchObject({ code: 'ERR_IOMMUFD_VEVENTS_LOST' });
  });

  it('gives a batch handler every read without an object per event, losses included', async () => {
    const { dev, queue } = setup({ depth: 8 });
    const seen: string[] = [];
    let kept: VeventBatch | undefined;
    queue.setBatchHandler((b) => {
      kept = b;
      for (let i = 0; i < b.length; i++) {
        seen.push(b.isLostHeader(i) ? `LOST ${b.sequence(i)} (${b.lost(i)})` : `${b.sequence(i)}:${b.view.getUint32(b.dataOffset(i), true).toString(16)}`);
      }
    });
    dev.triggerVevent(10);
    for (let i = 0; i < 100 && seen.length < 9; i++) await settle();
    expect(seen).toEqual([...Array.from({ length: 8 }, (_, i) => `${i}:99`), 'LOST 9 (2)']);
    expect(() => kept!.length).toThrow(expect.objectContaining({ code: 'ERR_IOMMUFD_BATCH_ENDED' }));
    expect(queue.stats).toMatchObject({ delivered: 8, lost: 2, overflows: 1, backlog: 0 });
    queue.setBatchHandler(null);
  });

  it('keeps two queues of different types on one vIOMMU apart; a second queue of a type is EEXIST', async () => {
    const { viommu, dev, queue } = setup();
    const smmu = viommu.allocVeventQueue({ type: VEVENTQ_TYPE_ARM_SMMUV3 });
    expect(() => viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST })).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'IOMMU_VEVENTQ_ALLOC' }));
    dev.triggerVevent(3);
    expect(seqs(await take(queue, 3))).toEqual([0, 1, 2]);
    await settle();
    expect(smmu.stats).toMatchObject({ delivered: 0, backlog: 0 });
    expect(() => viommu.allocVeventQueue({ type: VEVENTQ_TYPE_ARM_SMMUV3 })).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    await smmu.close();
    // Closing destroyed the object: the type is free again (the kernel may hand out the same id).
    const again = viommu.allocVeventQueue({ type: VEVENTQ_TYPE_ARM_SMMUV3, depth: 1 });
    expect(again.closed).toBe(false);
    await again.close();
  });

  it('refuses bad options before allocating, and TRIGGER_VEVENT without a queue says EOPNOTSUPP', () => {
    const { viommu, dev, iommufd } = viommuSetup();
    attach(iommufd, viommu, dev);
    expect(() => dev.triggerVevent()).toThrow(expect.objectContaining({ code: 'ENOTSUP' }));
    expect(() => viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST, depth: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => viommu.allocVeventQueue({ type: 12345 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/^Viommu\.allocVeventQueue: options\.type must be a VEVENTQ_TYPE_\* this library knows/) }));
    expect(() => viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST, overflow: 'drop' as 'mark' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => viommu.allocVdevice({ deviceId: dev.deviceId, virtId: 1 as unknown as bigint })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // One vDEVICE per device: the kernel's answer, with the ioctl named.
    expect(() => viommu.allocVdevice({ deviceId: dev.deviceId, virtId: 7n })).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'IOMMU_VDEVICE_ALLOC' }));
    // A queue still works after all that.
    const q = viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST, depth: VEVENTQ_MAX_DEPTH });
    dev.triggerVevent();
    return take(q, 1).then(([e]) => expect(e).toMatchObject({ sequence: 0 }));
  });

  describe('teardown', () => {
    it('in object order: queue, vDEVICE (after detach), nested HWPT, vIOMMU, parent; no fd left', async () => {
      const before = fdCount();
      const { iommufd, ioas, dev, parent, viommu, vdevice, nested, queue } = setup();
      dev.triggerVevent(2);
      await queue.close();
      expect(queue.closed).toBe(true);
      expect(await queue.next()).toEqual({ value: undefined, done: true });
      dev.replace(ioas.id);
      vdevice.destroy();
      nested.destroy();
      viommu.destroy();
      parent.destroy();
      expect(viommu.destroyed).toBe(true);
      await iommufd.close();
      expect(fdCount()).toBe(before);
    });

    it('the kernel refuses a vIOMMU destroy while its queue, vDEVICE or nested HWPT lives (EBUSY)', async () => {
      const { ioas, dev, viommu, vdevice, nested, queue } = setup();
      expect(() => viommu.destroy()).toThrow(expect.objectContaining({ code: 'EBUSY', syscall: 'IOMMU_DESTROY' }));
      await queue.close();
      dev.replace(ioas.id);
      nested.destroy();
      expect(() => viommu.destroy()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
      vdevice.destroy();
      viommu.destroy();
      viommu.destroy(); // twice: a no-op
      expect(viommu.destroyed).toBe(true);
    });

    it('iommufd.close() with everything open closes the queue too: a waiting consumer gets done, no fd left', async () => {
      const before = fdCount();
      const { iommufd, dev, queue } = setup();
      dev.triggerVevent(3);
      const pending = (async () => { const out = []; for await (const e of queue) out.push(e); return out; })();
      await settle();
      await iommufd.close();
      expect((await pending).length).toBe(3);
      expect(queue.closed).toBe(true);
      expect(fdCount()).toBe(before);
    });

    it('the device destroyed under its vDEVICE and queue: the queue closes cleanly afterwards', async () => {
      const before = fdCount();
      const { iommufd, dev, queue } = setup();
      dev.triggerVevent();
      await take(queue, 1);
      let destroyed: unknown = 'ok';
      try { dev.destroy(); } catch (e) { destroyed = (e as { code: string }).code; }
      // Whatever the kernel answers, nothing hangs or crashes and no fd is left.
      expect(['ok', 'EBUSY']).toContain(destroyed);
      await queue.close();
      await iommufd.close();
      expect(fdCount()).toBe(before);
    });

    it('an AbortSignal closes the queue; await using closes it at the end of scope', async () => {
      const ac = new AbortController();
      const { dev, queue, viommu } = setup({ signal: ac.signal });
      const waiting = queue.next();
      ac.abort();
      expect(await waiting).toEqual({ value: undefined, done: true });
      expect(queue.closed).toBe(true);
      expect(() => dev.triggerVevent()).toThrow(expect.objectContaining({ code: 'ENOTSUP' })); // the object is gone
      {
        await using q = viommu.allocVeventQueue({ type: VEVENTQ_TYPE_SELFTEST });
        dev.triggerVevent();
        expect(seqs(await take(q, 1))).toEqual([0]); // a new queue numbers from 0
      }
      expect(() => dev.triggerVevent()).toThrow(expect.objectContaining({ code: 'ENOTSUP' }));
    });

    it('a dropped queue is closed by GC with a warning and its vEVENTQ destroyed (a new one of its type allocates); workers terminated mid-iteration leave no fd (child process)', async () => {
      const out = json(await node(['--expose-gc', fixture('vevent-lifetime.mjs'), '5'], 300_000));
      expect(out.fds).toEqual([
        [],
        ['/dev/iommu', expect.stringMatching(/^anon_inode:.*iommufd/)],
        ['/dev/iommu'],
      ]);
      expect(out.warnings).toEqual([
        { code: 'IOMMUFD_UNCLOSED', message: expect.stringMatching(/^VeventQueue \d+ was garbage-collected without close\(\): its fd was closed and its vEVENTQ destroyed$/) },
      ]);
      // Freed as close() frees it: a new queue of the same type on that vIOMMU is no EEXIST.
      expect(out.realloc).toBe('ok');
      expect(out.fdsAfter).toBe(out.fdsBefore);
    }, 330_000); // past the child's own 300 s bound, so that bound (with the child's output) decides

    it('an iterator aborted by its own signal leaves the queue open', async () => {
      const { dev, queue } = setup();
      const ac = new AbortController();
      const it = queue.events({ signal: ac.signal });
      const p = it.next();
      ac.abort(new Error('enough'));
      await expect(p).rejects.toThrow('enough');
      dev.triggerVevent();
      expect(seqs(await take(queue, 1))).toEqual([0]);
    });
  });
});
