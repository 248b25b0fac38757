// Off the happy path, against the real kernel: wrong arguments, closed and foreign objects,
// teardown in every order with faults pending, and every fault accounted for. The child-process
// cases (workers, GC, churn, process death, keep-alive) are in lifecycle.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { allocPages, ErrorCodes, type FaultGroup, Iommufd, IommufdError } from '../../../lib/index.js';
import { HWPT_DATA_SELFTEST } from '../../../lib/testing.js';
import { closeAll, fdCount, kinds, open, settle, setup, take } from './helpers.js';

afterEach(closeAll);

/** The id the kernel would give the next object: ids are the lowest free, so a leaked object shows. */
function nextId(iommufd: Iommufd): number {
  const ioas = iommufd.allocIoas();
  ioas.destroy();
  return ioas.id;
}

const typeError = (op: RegExp) => expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(op) });
const valueError = (op: RegExp) => expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(op) });
const rangeError = (op: RegExp) => expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(op) });

describe('bad arguments', () => {
  it('Iommufd.open takes a path string only', () => {
    for (const bad of [42, null, {}, true, ['/dev/iommu']]) {
      expect(() => Iommufd.open(bad as unknown as string)).toThrow(typeError(/^Iommufd\.open: path must be a string/));
    }
  });

  it('allocFaultQueue: bad options are typed errors and leave no fd and no kernel object behind', () => {
    const iommufd = Iommufd.open();
    open.push(iommufd);
    const fds = fdCount();
    const id = nextId(iommufd);
    const cases: [unknown, ReturnType<typeof typeError>][] = [
      [{ bufferRecords: -1 }, rangeError(/options\.bufferRecords/)],
      [{ bufferRecords: 'x' }, typeError(/options\.bufferRecords/)],
      [{ bufferRecords: 1.5 }, rangeError(/options\.bufferRecords/)],
      [{ bufferRecords: 134217728 }, rangeError(/options\.bufferRecords/)],
      [{ bufferRecords: 2 ** 32 - 1 }, rangeError(/options\.bufferRecords/)],
      [{ signal: 'x' }, typeError(/options\.signal must be an AbortSignal/)],
      [{ signal: {} }, typeError(/options\.signal/)],
      [{ highWaterMark: 'abc' }, typeError(/options\.highWaterMark/)],
      [{ highWaterMark: NaN }, rangeError(/options\.highWaterMark/)],
      [{ highWaterMark: -1 }, rangeError(/options\.highWaterMark/)],
      [{ lowWaterMark: 'x' }, typeError(/options\.lowWaterMark/)],
      [{ highWaterMark: 4, lowWaterMark: 4 }, rangeError(/options\.lowWaterMark must be an integer from 0 to 3/)],
      ['fast', typeError(/options must be an object/)],
      [null, typeError(/options must be an object/)],
    ];
    for (const [options, error] of cases) {
      expect(() => iommufd.allocFaultQueue(options as object), JSON.stringify(options)).toThrow(error);
    }
    expect(fdCount()).toBe(fds);
    expect(nextId(iommufd)).toBe(id);
  });

  it('allocHwpt: faultQueue must be an open FaultQueue of the same iommufd', async () => {
    const { iommufd, ioas, dev } = setup(kinds[0]);
    const hwpt = (faultQueue: unknown) => () =>
      iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, faultQueue: faultQueue as never });
    for (const bad of [{}, 'x', 5, { id: 1 }]) expect(hwpt(bad)).toThrow(typeError(/^Iommufd\.allocHwpt: options\.faultQueue must be a FaultQueue/));
    const other = Iommufd.open();
    open.push(other);
    expect(hwpt(other.allocFaultQueue())).toThrow(valueError(/^Iommufd\.allocHwpt: options\.faultQueue must be a FaultQueue of this Iommufd/));
    const closed = iommufd.allocFaultQueue();
    await closed.close();
    expect(hwpt(closed)).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED, message: expect.stringMatching(/^Iommufd\.allocHwpt: options\.faultQueue/) }));
    expect(() => iommufd.allocHwpt(null as never)).toThrow(typeError(/^Iommufd\.allocHwpt: options must be an object/));
  });

  it('memory of every kind maps, or is a kernel error naming the ioctl; what is no memory is a typed error naming the call', () => {
    const iommufd = Iommufd.open();
    open.push(iommufd);
    const ioas = iommufd.allocIoas();
    // A DataView over page-aligned memory maps like any other view of it.
    const pages = allocPages(8192);
    expect(ioas.map(new DataView(pages), { iova: 0x100000n })).toBe(0x100000n);
    // A SharedArrayBuffer, or a view of one, is memory too; whether the kernel takes it is the kernel's word.
    for (const [shared, iova] of [[new Uint8Array(new SharedArrayBuffer(8192)), 0x200000n], [new SharedArrayBuffer(8192), 0x300000n]] as const) {
      try {
        expect(ioas.map(shared, { iova })).toBe(iova);
      } catch (e) {
        expect(e).toBeInstanceOf(IommufdError);
        expect(e).toMatchObject({ syscall: 'IOMMU_IOAS_MAP' });
      }
    }
    for (const bad of ['x', 4096, [0], {}, null]) expect(() => ioas.map(bad as never)).toThrow(typeError(/^Ioas\.map: memory must be an ArrayBuffer/));
  });

  it('HWPT driver data over a SharedArrayBuffer or a DataView reaches the kernel', () => {
    const { iommufd, ioas, dev } = setup(kinds[0]);
    const parent = iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: ioas.id, flags: 1 });
    for (const data of [new Uint8Array(new SharedArrayBuffer(8)), new DataView(new ArrayBuffer(8))]) {
      new DataView(data.buffer).setUint32(0, 0xbadbeef, true);
      const view = data instanceof DataView ? data : new Uint8Array(data.buffer, 0, data.byteLength);
      try {
        expect(iommufd.allocHwpt({ deviceId: dev.deviceId, parentId: parent.id, dataType: HWPT_DATA_SELFTEST, data: view as never }).id).toBeGreaterThan(0);
      } catch (e) {
        // 6.12's selftest data is 4 bytes: 8 with a non-zero tail would be E2BIG; a typed error all the same.
        expect(e).toMatchObject({ name: 'IommufdError', syscall: 'IOMMU_HWPT_ALLOC' });
      }
    }
  });

  it('closed objects: every call is ERR_IOMMUFD_CLOSED, close is idempotent', async () => {
    const { iommufd, ioas, dev, queue } = setup(kinds[0]);
    dev.triggerIopf({ groupId: 1 });
    const [group] = await take(queue, 1);
    await iommufd.close();
    const closed = expect.objectContaining({ code: ErrorCodes.CLOSED });
    expect(() => iommufd.allocIoas()).toThrow(closed);
    expect(() => iommufd.allocFaultQueue()).toThrow(closed);
    expect(() => iommufd.destroy(1)).toThrow(closed);
    expect(() => iommufd.getHwInfo(dev.deviceId)).toThrow(closed);
    expect(() => ioas.map(allocPages(4096))).toThrow(closed);
    expect(() => dev.triggerIopf()).toThrow(closed);
    expect(() => group.respond()).toThrow(closed);
    expect(() => group.answer()).toThrow(closed);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
    await expect(queue.close()).resolves.toEqual({ answeredInvalid: 1 });
    await iommufd.close();
  });
});

describe.each(kinds)('kernel objects close() frees, on a %s HWPT', (kind) => {
  it('close() destroys the fault object; while a HWPT holds it, destroy() of that HWPT does', async () => {
    const { iommufd, ioas, dev, queue, hwpt } = setup(kind);
    const gone = expect.objectContaining({ code: 'ENOENT', syscall: 'IOMMU_DESTROY' });
    const bare = iommufd.allocFaultQueue();
    await bare.close();
    expect(() => iommufd.destroy(bare.id)).toThrow(gone);
    await queue.close();
    expect(() => iommufd.destroy(queue.id)).toThrow(expect.objectContaining({ code: 'EBUSY' })); // the HWPT holds it
    dev.replace(ioas.id);
    hwpt.destroy();
    expect(() => iommufd.destroy(queue.id)).toThrow(gone);
  });
});

describe('close vs a waiting consumer', () => {
  it('a next() pending across close() resolves done, not with a group close() answered', async () => {
    const { dev, queue } = setup(kinds[0]);
    const waiting = queue.next();
    dev.triggerIopf({ groupId: 5 });
    // The fault is queued in the kernel; close reads and answers it before the pump's poll runs.
    const closing = queue.close();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(await closing).toEqual({ answeredInvalid: 1 });
    expect(queue.stats).toMatchObject({ delivered: 1, answered: 1, pending: 0 });
  });
});

/** Every group read is counted once: answered, refused, stale (kernel-answered), or pending. */
function expectAccounted(stats: { delivered: number; answered: number; refused: number; stale: number; pending: number }) {
  expect(stats.answered + stats.refused + stats.stale + stats.pending).toBe(stats.delivered);
}

describe('every fault accounted for', () => {
  it('close() after the kernel auto-answered: its refused INVALID answers are counted', async () => {
    const { ioas, dev, queue } = setup(kinds[0]);
    dev.triggerIopf({ groupId: 0 }, 10);
    await take(queue, 10);
    dev.replace(ioas.id); // the kernel answers all 10 INVALID
    expect(await queue.close()).toEqual({ answeredInvalid: 0 });
    expect(queue.stats).toMatchObject({ delivered: 10, answered: 0, refused: 10, pending: 0 });
    expectAccounted(queue.stats);
  });

  it('100k faults, a random mix of respond, answer, invalid and ignore, then close(): each once', async () => {
    const { dev, queue } = setup(kinds[0]);
    const N = 100_000;
    let seed = 0x2545f491;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 3;
    const count = { respond: 0, answer: 0, invalid: 0, ignore: 0 };
    const promises: Promise<void>[] = [];
    let handed = 0;
    for (let sent = 0; sent < N; sent += 10_000) dev.triggerIopf({ groupId: sent }, 10_000);
    for await (const batch of queue.batches()) {
      for (const g of batch) {
        switch (random()) {
          case 0: count.respond++; promises.push(g.respond()); break;
          case 1: count.answer++; g.answer(); break;
          case 2: count.invalid++; promises.push(g.respond('invalid')); break;
          default: count.ignore++; break;
        }
      }
      handed += batch.length;
      if (handed === N) break;
    }
    await Promise.all(promises);
    const { answeredInvalid } = await queue.close();
    expect(answeredInvalid).toBe(count.ignore);
    expect(queue.stats).toMatchObject({ delivered: N, answered: N, refused: 0, stale: 0, pending: 0 });
    for (const n of Object.values(count)) expect(n).toBeGreaterThan(N / 5);
  }, 600_000);
});

type Ctx = ReturnType<typeof setup>;
const steps: Record<string, (c: Ctx) => unknown> = {
  'queue.close': (c) => c.queue.close(),
  'iommufd.close': (c) => c.iommufd.close(),
  'device.destroy': (c) => c.dev.destroy(),
  'detach+hwpt.destroy': (c) => { c.dev.replace(c.ioas.id); c.hwpt.destroy(); },
  'hwpt.destroy': (c) => c.hwpt.destroy(),
};
const orders = [
  ['queue.close', 'iommufd.close'],
  ['iommufd.close'],
  ['device.destroy', 'queue.close', 'iommufd.close'],
  ['detach+hwpt.destroy', 'queue.close', 'iommufd.close'],
  ['queue.close', 'detach+hwpt.destroy', 'device.destroy', 'iommufd.close'],
  ['device.destroy', 'iommufd.close'],
  ['device.destroy', 'queue.close', 'hwpt.destroy', 'iommufd.close'],
];

describe.each(['read', 'unread'])('teardown in every order, faults pending %s', (pending) => {
  it.each(orders.map((o) => [o.join(' → '), o]))('%s', async (_name, order) => {
    const fds = fdCount();
    const c = setup(kinds[0], { bufferRecords: 2, highWaterMark: 2 });
    c.dev.triggerIopf({ groupId: 0 }, 6);
    let taken: FaultGroup[] = [];
    if (pending === 'read') taken = await take(c.queue, 2);
    for (const step of order as string[]) await steps[step](c);
    open.splice(open.indexOf(c.iommufd), 1);
    expect(fdCount()).toBe(fds);
    expect(c.queue.closed).toBe(true);
    expect(c.queue.stats.pending).toBe(0);
    expectAccounted(c.queue.stats);
    // Closed first, the queue answered everything itself, read or still queued; after a detach the
    // kernel had answered (and dropped) what was pending, and refused our late answers.
    if (order[0] === 'queue.close' || order[0] === 'iommufd.close') expect(c.queue.stats).toMatchObject({ delivered: 6, answered: 6 });
    for (const g of taken) expect(() => g.answer()).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
    await settle();
  });
});
