// Serve loops against the real kernel: FaultQueue.serve() on the test's own thread and
// serveInWorker() on a worker thread. Start, stop, a throwing handler, close with faults pending,
// a handler that never returns: every group triggered is delivered and answered exactly once.
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, type FaultBatch, type FaultServer } from '../../../lib/index.js';
import { closeAll, fixture, json, kinds, node, settle, setup, take } from './helpers.js';

afterEach(closeAll);

const handlers = new URL('../fixtures/serve-handlers.mjs', import.meta.url);

/** Waits (polling, the worker writes the counters) until `done()`; fails after `ms`. */
async function until(done: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!done()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.each(kinds)('serve() on this thread, %s HWPT', (kind) => {
  it('serves until the handler stops it, then the queue is the iterator\'s again', async () => {
    const { dev, queue } = setup(kind);
    dev.triggerIopf({ groupId: 1 }, 1000);
    let groups = 0;
    const result = queue.serve((batch) => {
      groups += batch.groupCount;
      batch.answerAll();
      if (groups >= 1000) batch.stopServing();
    });
    expect(result).toMatchObject({ reason: 'stopped', delivered: 1000, answered: 1000, refused: 0, errors: 0 });
    expect(result.batches).toBeGreaterThanOrEqual(1);
    dev.triggerIopf({ groupId: 7 });
    const [g] = await take(queue, 1);
    expect(g.groupId).toBe(7);
    await g.respond();
    expect(queue.stats).toMatchObject({ delivered: 1001, answered: 1001, pending: 0 });
  });

  it('groups the handler leaves are answered INVALID; keep() is refused', async () => {
    const { dev, queue } = setup(kind);
    for (let i = 0; i < 4; i++) dev.triggerIopf({ groupId: i });
    let keepError: unknown;
    const result = queue.serve((batch: FaultBatch) => {
      try {
        batch.keep(0);
      } catch (e) {
        keepError = e;
      }
      batch.answer(0);
      batch.stopServing();
    });
    expect(keepError).toMatchObject({ code: 'ERR_INVALID_STATE' });
    expect(result).toMatchObject({ delivered: 4, answered: 4, refused: 0 });
    expect(queue.stats).toMatchObject({ delivered: 4, answered: 4, pending: 0 });
  });

  it('a throwing handler ends serve() with its error, its batch answered INVALID; with onError it goes on', async () => {
    const { dev, queue } = setup(kind);
    dev.triggerIopf({ groupId: 1 }, 3);
    expect(() => queue.serve(() => { throw new Error('bug'); })).toThrow('bug');
    expect(queue.stats).toMatchObject({ delivered: 3, answered: 3, pending: 0 });
    const errors: unknown[] = [];
    let calls = 0;
    dev.triggerIopf({ groupId: 2 });
    const result = queue.serve((batch) => {
      if (++calls === 1) {
        dev.triggerIopf({ groupId: 3 }); // for the next call
        throw new Error('first');
      }
      batch.answerAll();
      batch.stopServing();
    }, { onError: (e) => errors.push(e) });
    expect(errors).toEqual([new Error('first')]);
    expect(result).toMatchObject({ delivered: 2, answered: 2, errors: 1 });
  });

  it('closing the queue from the handler ends the loop; what was queued is answered INVALID', async () => {
    const { dev, queue } = setup(kind);
    dev.triggerIopf({ groupId: 1 }, 10);
    let closed: Promise<{ answeredInvalid: number }> | undefined;
    const result = queue.serve((batch) => {
      batch.answer(0);
      closed = queue.close();
    }, { idleMs: 10 });
    expect(result.reason).toBe('closed');
    const stats = queue.stats;
    expect(stats.delivered).toBe(10);
    expect(stats.answered + stats.refused).toBe(10);
    expect(stats.refused).toBe(0);
    expect((await closed)!.answeredInvalid).toBeLessThanOrEqual(9);
  });

  it('refuses a second serve and a closed queue', async () => {
    const { queue } = setup(kind);
    let inner: unknown;
    const other = setup(kind);
    other.dev.triggerIopf({ groupId: 1 });
    other.queue.serve((batch) => {
      try {
        other.queue.serve(() => {});
      } catch (e) {
        inner = e;
      }
      batch.stopServing();
    });
    expect(inner).toMatchObject({ code: ErrorCodes.SERVING });
    await queue.close();
    expect(() => queue.serve(() => {})).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
    expect(() => queue.serve('x' as never)).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
    expect(() => other.queue.serve('x' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe.each(kinds)('serveInWorker(), %s HWPT', (kind) => {
  let server: FaultServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('serves faults triggered here from its own thread; stop() gives the queue back', async () => {
    const { dev, queue } = setup(kind);
    server = await queue.serveInWorker(handlers);
    expect(server.serving).toBe(true);
    for (let i = 0; i < 500; i++) dev.triggerIopf({ groupId: i });
    await until(() => server!.stats.answered === 500);
    const result = await server.stop();
    expect(result).toMatchObject({ reason: 'stopped', delivered: 500, answered: 500, refused: 0, errors: 0 });
    expect(server.serving).toBe(false);
    expect(server.writes[0]).toBeGreaterThanOrEqual(1);
    dev.triggerIopf({ groupId: 9 });
    const [g] = await take(queue, 1);
    expect(g.groupId).toBe(9);
    g.answer();
    await settle();
    expect(queue.stats).toMatchObject({ delivered: 1, answered: 1, pending: 0 });
  });

  it('a throwing handler: \'error\' on the server, its batch answered INVALID, the loop goes on', async () => {
    const { dev, queue } = setup(kind);
    server = await queue.serveInWorker(handlers, { exportName: 'throwOn13' });
    const error = new Promise<Error>((resolve) => server!.once('error', resolve));
    dev.triggerIopf({ groupId: 13 });
    expect((await error).message).toBe('handler failed on group 13');
    await until(() => server!.stats.answered === 1);
    dev.triggerIopf({ groupId: 1 }, 5);
    await until(() => server!.stats.answered === 6);
    expect(await server.stop()).toMatchObject({ delivered: 6, answered: 6, refused: 0, errors: 1 });
  });

  it('groups the handler leaves are answered INVALID', async () => {
    const { dev, queue } = setup(kind);
    server = await queue.serveInWorker(handlers, { exportName: 'evenOnly' });
    for (let i = 0; i < 10; i++) dev.triggerIopf({ groupId: i });
    await until(() => server!.stats.answered === 10);
    expect(await server.stop()).toMatchObject({ delivered: 10, answered: 10, refused: 0 });
  });

  it('close() with faults pending: the worker stops, the rest is answered INVALID, nothing lost', async () => {
    const { dev, queue } = setup(kind);
    server = await queue.serveInWorker(handlers, { exportName: 'slow', workerData: { ms: 200 } });
    const triggered = 2000;
    for (let i = 0; i < triggered; i += 100) dev.triggerIopf({ groupId: i }, 100);
    await until(() => server!.stats.batches >= 1);
    const { answeredInvalid } = await queue.close();
    const s = server.stats;
    expect(server.serving).toBe(false);
    expect(s.refused).toBe(0);
    expect(s.answered).toBe(s.delivered);
    expect(answeredInvalid).toBeGreaterThan(0);
    expect(s.delivered + answeredInvalid).toBe(triggered);
    expect(queue.stats).toMatchObject({ delivered: answeredInvalid, answered: answeredInvalid, pending: 0 });
  });

  it('a handler that never returns: stop() terminates the worker after stopTimeoutMs, its batch answered INVALID', async () => {
    const { dev, queue } = setup(kind);
    server = await queue.serveInWorker(handlers, { exportName: 'stuck', stopTimeoutMs: 300 });
    dev.triggerIopf({ groupId: 1 }, 4);
    await until(() => server!.stats.batches === 1);
    const t0 = Date.now();
    const result = await server.stop();
    expect(Date.now() - t0).toBeLessThan(10_000);
    // The stuck batch (1 to 4 groups: the worker may read before all 4 are raised) is answered.
    expect(result.delivered).toBeGreaterThanOrEqual(1);
    expect(result).toMatchObject({ answered: result.delivered, refused: 0 });
    dev.triggerIopf({ groupId: 2 });
    const rest = await take(queue, 4 - result.delivered + 1);
    // triggerIopf(fault, 4) raises group ids 1..4, in order: the worker took the first ones.
    const left = Array.from({ length: 4 - result.delivered }, (_, i) => 1 + result.delivered + i);
    expect(rest.map((g) => g.groupId)).toEqual([...left, 2]);
    for (const g of rest) g.answer();
  });

  it('a module without the handler, or one that fails to load: rejected, the queue stays usable', async () => {
    const { dev, queue } = setup(kind);
    await expect(queue.serveInWorker(handlers, { exportName: 'notAFunction' })).rejects.toMatchObject({
      name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/^FaultQueue\.serveInWorker: options\.exportName must be the name of a function export of .*notAFunction.*that export is number 42/),
    });
    await expect(queue.serveInWorker(handlers, { exportName: 'nothing' })).rejects.toMatchObject({
      name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/^FaultQueue\.serveInWorker: options\.exportName .*the module has no such export/),
    });
    await expect(queue.serveInWorker(new URL('./no-such-module.mjs', handlers))).rejects.toMatchObject({
      code: 'ERR_MODULE_NOT_FOUND', message: expect.stringMatching(/^FaultQueue\.serveInWorker: handlerModule .* could not be imported: Cannot find module/),
    });
    await expect(queue.serveInWorker(42 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    dev.triggerIopf({ groupId: 3 });
    const [g] = await take(queue, 1);
    g.answer();
    server = await queue.serveInWorker(handlers);
    await expect(queue.serveInWorker(handlers)).rejects.toMatchObject({ code: ErrorCodes.SERVING });
  });

  it('unanswered groups of this thread must be answered before a worker serves', async () => {
    const { dev, queue } = setup(kind);
    dev.triggerIopf({ groupId: 3 });
    const [g] = await take(queue, 1);
    await expect(queue.serveInWorker(handlers)).rejects.toMatchObject({ code: ErrorCodes.SERVING });
    await g.respond();
    server = await queue.serveInWorker(handlers);
  });
});

it('process.exit() while a worker serves: the process ends at once', async () => {
  const r = await node([fixture('serve-exit.mjs')], 30_000);
  expect(json(r)).toEqual({ serving: true });
  expect(r.ms).toBeLessThan(20_000);
});

it('workers terminated while blocked in serve() with faults flowing: no crash, no fd left (child process)', async () => {
  const r = json(await node([fixture('serve-terminate.mjs'), '5'], 120_000));
  expect(r.rounds).toBe(5);
  expect(r.fdsAfter).toBe(r.fdsBefore);
}, 150_000);
