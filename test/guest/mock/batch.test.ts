// The batch view (FaultBatch) and the synchronous batch handler against the real kernel: what the
// view reads equals the records' decoding, answers by index reach the kernel (it frees and reuses
// their cookies), stale and late answers are refused, and what the handler leaves flows on to the
// async iterator.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, type FaultBatch, type FaultGroup, PGFAULT_PERM_READ, PGFAULT_PERM_WRITE } from '../../../lib/index.js';
import { closeAll, faultHwpt, kinds, settle, setup, take } from './helpers.js';

afterEach(closeAll);

/** Resolves with what `fn` returns for the next batch the queue's handler sees. */
function nextBatch<T>(queue: ReturnType<typeof setup>['queue'], fn: (batch: FaultBatch) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    queue.setBatchHandler((batch) => {
      queue.setBatchHandler(null);
      try {
        resolve(fn(batch));
      } catch (e) {
        reject(e);
      }
    });
  });
}

describe.each(kinds)('FaultBatch on a %s HWPT', (kind) => {
  it('every accessor equals the decoding of the record it reads', async () => {
    const { dev, queue } = setup(kind);
    const pasid = kind === 'nested' ? 0x42 : 0;
    const addrs = [0x1000n, 0xdead_b000n, 0x1f_ffff_ffff_f000n, 0xffff_ffff_ffff_f000n];
    addrs.forEach((addr, i) => dev.triggerIopf({ pasid: i % 2 ? pasid : 0, groupId: 0x100 + i, perm: i % 2 ? PGFAULT_PERM_WRITE : PGFAULT_PERM_READ, addr }));
    const seen = await nextBatch(queue, (batch) => {
      const out = [];
      expect(batch.groupCount).toBe(addrs.length);
      expect(batch.recordCount).toBe(addrs.length);
      for (let g = 0; g < batch.groupCount; g++) {
        const r = batch.first(g);
        expect(batch.size(g)).toBe(1);
        const rec = batch.record(r);
        expect({
          flags: batch.flags(r), deviceId: batch.deviceId(r), pasid: batch.pasid(r) === -1 ? undefined : batch.pasid(r),
          groupId: batch.groupId(r), perm: batch.perm(r), addr: batch.addressBigInt(r), length: batch.length(r), cookie: batch.cookie(r),
        }).toEqual(rec);
        if (rec.addr < 2n ** 53n) expect(batch.address(r)).toBe(Number(rec.addr));
        else expect(() => batch.address(r)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
        out.push(rec);
        batch.answer(g);
      }
      expect(() => batch.first(addrs.length)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      expect(() => batch.flags(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      return out;
    });
    expect(seen.map((r) => [r.deviceId, r.groupId, r.addr, r.pasid])).toEqual(
      addrs.map((addr, i) => [dev.deviceId, 0x100 + i, addr, i % 2 && pasid ? pasid : undefined]));
    await settle();
    expect(queue.stats).toMatchObject({ delivered: 4, answered: 4, refused: 0, pending: 0, backlog: 0 });
  });

  it('answers by index reach the kernel: it frees their cookies and hands them out again', async () => {
    const { dev, queue } = setup(kind);
    dev.triggerIopf({ groupId: 1 }, 3);
    const first = await nextBatch(queue, (batch) => {
      const cookies = [0, 1, 2].map((g) => batch.cookie(batch.first(g)));
      batch.answer(1, 'invalid');
      batch.answer(0);
      batch.answer(2);
      return cookies;
    });
    // The kernel allocates the lowest free cookie: three new groups get the same three numbers
    // only if the three answers freed them.
    dev.triggerIopf({ groupId: 2 }, 3);
    const again = await nextBatch(queue, (batch) => {
      batch.answerAll();
      return [0, 1, 2].map((g) => batch.cookie(batch.first(g)));
    });
    expect([...again].sort()).toEqual([...first].sort());
    await settle();
    expect(queue.stats).toMatchObject({ delivered: 6, answered: 6, refused: 0, pending: 0 });
  });

  it('the handler\'s answers are written when it returns, before the loop runs anything else', async () => {
    const { dev, queue } = setup(kind);
    dev.triggerIopf({ groupId: 1 }, 5);
    const seen = await new Promise<number[]>((resolve) => {
      queue.setBatchHandler((batch) => {
        batch.answerAll();
        const during = queue.stats.answered;
        queueMicrotask(() => setImmediate(() => resolve([during, queue.stats.answered])));
      });
    });
    expect(seen).toEqual([0, 5]);
    // flush() writes at once, inside the handler.
    dev.triggerIopf({ groupId: 2 }, 2);
    const flushed = await nextBatch(queue, (batch) => {
      batch.answer(0);
      batch.flush();
      const after = queue.stats.answered;
      batch.answer(1);
      return after;
    });
    expect(flushed).toBe(6);
    await settle();
    expect(queue.stats.answered).toBe(7);
  });

  it('groups the handler leaves go on to the async iterator; kept ones stay answerable', async () => {
    const { dev, queue } = setup(kind);
    for (let i = 0; i < 6; i++) dev.triggerIopf({ groupId: i });
    let kept: FaultGroup | undefined;
    queue.setBatchHandler((batch) => {
      for (let g = 0; g < batch.groupCount; g++) {
        const id = batch.groupId(batch.first(g));
        if (id === 5) kept = batch.keep(g);
        else if (id % 2 === 0) batch.answer(g);
      }
    });
    const rest = await take(queue, 2);
    expect(rest.map((g) => g.groupId)).toEqual([1, 3]);
    expect(kept?.groupId).toBe(5);
    queue.setBatchHandler(null);
    await settle(); // the handler's answers are written when the pump's callback returns
    expect(queue.stats).toMatchObject({ delivered: 6, answered: 3, pending: 3, backlog: 0 });
    for (const g of rest) g.answer();
    await kept!.respond('invalid');
    expect(queue.stats).toMatchObject({ delivered: 6, answered: 6, refused: 0, pending: 0 });
  });

  it('a batch used after its handler returned, a second answer, a bad code: typed errors', async () => {
    const { dev, queue } = setup(kind);
    dev.triggerIopf({ groupId: 1 }, 2);
    const batch = await nextBatch(queue, (b) => {
      b.answer(0);
      expect(() => b.answer(0)).toThrow(expect.objectContaining({ code: ErrorCodes.ALREADY_ANSWERED }));
      expect(() => b.keep(0)).toThrow(expect.objectContaining({ code: ErrorCodes.ALREADY_ANSWERED }));
      expect(() => b.answer(1, 'yes' as never)).toThrow(TypeError);
      expect(() => b.stopServing()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      b.answer(1);
      return b;
    });
    expect(() => queue.setBatchHandler('x' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    for (const call of [() => batch.groupCount, () => batch.answer(0), () => batch.cookie(0), () => batch.keep(1), () => batch.answerAll()]) {
      expect(call).toThrow(expect.objectContaining({ code: ErrorCodes.BATCH_ENDED }));
    }
    await settle();
    expect(queue.stats).toMatchObject({ delivered: 2, answered: 2, refused: 0 });
  });

  it('a kept group whose cookie the kernel reused after a replace is stale, not someone else\'s answer', async () => {
    const { iommufd, ioas, dev, queue } = setup(kind);
    dev.triggerIopf({ groupId: 1 });
    const old = await nextBatch(queue, (batch) => batch.keep(0));
    dev.replace(ioas.id); // the kernel answers the group INVALID itself and frees its cookie
    dev.replace(faultHwpt(iommufd, ioas.id, dev, queue, kind).id);
    dev.triggerIopf({ groupId: 2 });
    const cookie = await nextBatch(queue, (batch) => {
      batch.answer(0);
      return batch.cookie(0);
    });
    expect(cookie).toBe(old.cookie);
    expect(() => old.answer()).toThrow(expect.objectContaining({ code: ErrorCodes.FAULT_STALE }));
    await settle();
    expect(queue.stats).toMatchObject({ delivered: 2, answered: 1, stale: 1, pending: 0 });
  });

  it('10,000 faults through the batch handler: each answered once, none left', async () => {
    const { dev, queue } = setup(kind);
    let groups = 0;
    const cookies = new Set<number>();
    queue.setBatchHandler((batch) => {
      for (let g = 0; g < batch.groupCount; g++) {
        cookies.add(batch.cookie(batch.first(g)));
        batch.answer(g);
      }
      groups += batch.groupCount;
    });
    dev.triggerIopf({ groupId: 1 }, 10_000);
    while (groups < 10_000) await settle();
    expect(groups).toBe(10_000);
    expect(queue.stats).toMatchObject({ delivered: 10_000, answered: 10_000, refused: 0, pending: 0, backlog: 0 });
    expect((await queue.close()).answeredInvalid).toBe(0);
  });
});

it('a throwing handler: its batch is answered INVALID and the error is uncaught, as a listener\'s (child process)', () => {
  const out = JSON.parse(execFileSync(process.execPath, [new URL('../fixtures/batch-throw.mjs', import.meta.url).pathname], { encoding: 'utf8', timeout: 60_000 }));
  expect(out.message).toBe('handler bug');
  expect(out.stats).toMatchObject({ delivered: 3, answered: 3, refused: 0, pending: 0, backlog: 0 });
});
