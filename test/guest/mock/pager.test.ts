// The demand pager against the kernel's test device: faults raised by MockDevice.triggerIopf on a
// fault-capable HWPT (paging on 7.x; on 6.12, which takes no fault queue on a paging HWPT, a mock
// nested HWPT whose parent is the IOAS the pager maps into). A window 64x the budget, random pages:
// the pinned memory as the kernel counts it (VmPin, mm->pinned_vm: iopt_pages_update_pinned adds
// every page IOMMU_IOAS_MAP pins into a domain) never above the budget plus one group, evictions
// counted, every fault answered exactly once. Then the policy hook and every bad input of issue 23:
// a hook that throws, one that never settles, a timeout, close during a fill, overlapping windows,
// and the IOAS handle from a worker thread with Ioas.map's errors.
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  allocPages, DemandPager, type DemandPagerStats, ErrorCodes, IommufdError, PGFAULT_PERM_READ, PGFAULT_PERM_WRITE,
} from '../../../lib/index.js';
import { pagerSettled } from '../pager_settled.js';
import { vmPin } from '../proc.js';
import { closeAll, kinds, setup } from './helpers.js';

afterEach(closeAll);

const PAGE = 4096;
const WINDOW = 0x1000_0000n; // inside the mock domain's aperture (16 MiB to 2 GiB)


/** Waits until `done()`, polling (the worker writes the counters); fails after `ms`. */
async function until(done: () => boolean, ms = 60_000, what = 'the condition'): Promise<void> {
  const t0 = Date.now();
  while (!done()) {
    if (Date.now() - t0 > ms) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function rng(seed: number) {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe.each(kinds)('DemandPager and the mock device, %s HWPT', (kind) => {
  it.each([true, false])('a 64 MiB window with a 1 MiB budget (nativeStep %s): 4000 random pages read and written; VmPin never above budget + one group, evictions counted, each fault answered once', async (nativeStep) => {
    const { dev, ioas, queue } = setup(kind);
    const budget = 1 << 20;
    const length = 64 << 20;
    const memory = allocPages(length);
    const base = vmPin();
    const pager = await DemandPager.start({ ioas, faultQueue: queue, memory, iova: WINDOW, budget: BigInt(budget), nativeStep });
    const random = rng(23);
    const pages = length / PAGE;
    let peak = 0;
    let sent = 0;
    for (let chunk = 0; chunk < 100; chunk++) {
      for (let k = 0; k < 40; k++) {
        const page = Math.floor(random() * pages);
        dev.triggerIopf({ addr: WINDOW + BigInt(page * PAGE), groupId: sent++ & 0x1ff, perm: random() < 0.5 ? PGFAULT_PERM_READ : PGFAULT_PERM_WRITE });
      }
      // Sample what the kernel has pinned while the worker maps and unmaps.
      await until(() => {
        peak = Math.max(peak, vmPin() - base);
        return pager.stats.faults === sent;
      }, 60_000, `${sent} faults served`);
    }
    await until(() => pager.stats.answered === sent, 10_000, 'every answer written');
    await pagerSettled(pager, sent);
    const s: DemandPagerStats = pager.stats;
    expect(s).toMatchObject({ faults: 4000, pages: 4000, success: 4000, invalid: 0, refused: 0, answered: 4000, mapErrors: 0, pending: 0 });
    // One page per group here: the bound is the budget plus one page.
    expect(peak).toBeLessThanOrEqual(budget + PAGE);
    expect(s.peakMappedBytes).toBeLessThanOrEqual(budget);
    expect(vmPin() - base).toBe(s.mappedBytes);
    expect(s.evictedPages).toBe(s.mappedPages - s.mappedBytes / PAGE);
    expect(s.evictedPages).toBeGreaterThan(3000);
    expect(s.mappedPages + s.alreadyMapped).toBe(4000);
    expect(s.latency.count).toBe(4000);
    // The native step serves what its credit allows (the worker evicts ahead to keep 32 pages of
    // room); the groups of a batch beyond it go through JS. Off: every group goes through JS.
    if (nativeStep) expect(s.servedNatively).toBeGreaterThan(2000);
    else expect(s.servedNatively).toBe(0);
    expect(s.latency.p50).toBeGreaterThan(0);
    const closed = await pager.close();
    expect(closed).toMatchObject({ answeredInvalid: 0, unmappedBytes: BigInt(s.mappedBytes) });
    expect(vmPin()).toBe(base);
    // Nothing was left for the queue: every group went through the pager once.
    expect(await queue.close()).toEqual({ answeredInvalid: 0 });
    console.log(`mock ${kind}, nativeStep ${nativeStep}: ${s.servedNatively} served natively; 4000 faults over 64 MiB, budget 1 MiB: VmPin peak ${peak / 1024} KiB, ${s.evictedPages} pages evicted in ${s.evictions} unmaps, latency p50 ${s.latency.p50} us p99 ${s.latency.p99} us`);
  });

  it('fault-around maps the pages after a fault with it; a fault on a page mapped so is answered at once; outside the window INVALID', async () => {
    const { dev, ioas, queue } = setup(kind);
    const budget = 8 * PAGE;
    const base = vmPin();
    const pager = await DemandPager.start({ ioas, faultQueue: queue, memory: allocPages(1 << 20), iova: WINDOW, budget: BigInt(budget), faultAround: 3 });
    dev.triggerIopf({ addr: WINDOW, groupId: 1 });
    await until(() => pager.stats.answered === 1);
    expect(pager.stats).toMatchObject({ mappedPages: 4, faultAroundPages: 3, mappedBytes: 4 * PAGE });
    expect(vmPin() - base).toBe(4 * PAGE);
    dev.triggerIopf({ addr: WINDOW + 2n * BigInt(PAGE), groupId: 2 }); // mapped by fault-around already
    await until(() => pager.stats.answered === 2);
    expect(pager.stats).toMatchObject({ alreadyMapped: 1, mappedPages: 4 });
    // Outside the window: INVALID.
    dev.triggerIopf({ addr: WINDOW - BigInt(PAGE), groupId: 3 });
    dev.triggerIopf({ addr: WINDOW + (1n << 20n), groupId: 4 });
    await until(() => pager.stats.answered === 4);
    expect(pager.stats).toMatchObject({ outside: 2, invalid: 2 });
    await pager.close();
    expect(vmPin()).toBe(base);
  });

  it('policy: a page is filled once (async) before its first mapping; a refusal is INVALID; filled pages map without asking again', async () => {
    const { dev, ioas, queue } = setup(kind);
    const memory = new Uint8Array(allocPages(64 * PAGE));
    const asked: bigint[] = [];
    const pager = await DemandPager.start({
      ioas, faultQueue: queue, memory, iova: WINDOW, budget: BigInt(2 * PAGE),
      policy: async (r) => {
        asked.push(r.iova);
        expect(r.offset).toBe(Number(r.iova - WINDOW));
        await new Promise((ok) => setTimeout(ok, 5));
        if (r.offset >= 32 * PAGE) return 'refuse';
        r.bytes.fill(r.offset / PAGE);
        return 'map';
      },
    });
    for (let p = 0; p < 4; p++) dev.triggerIopf({ addr: WINDOW + BigInt(p * PAGE), groupId: p });
    dev.triggerIopf({ addr: WINDOW + 40n * BigInt(PAGE), groupId: 9 });
    await until(() => pager.stats.answered === 5);
    expect(pager.stats).toMatchObject({ success: 4, invalid: 1, policyCalls: 5, policyRefused: 1, pending: 0, evictedPages: 2 });
    expect(memory[3 * PAGE]).toBe(3);
    // Page 0 was evicted (budget 2 pages): its next fault maps it at once, no hook.
    dev.triggerIopf({ addr: WINDOW, groupId: 10 });
    await until(() => pager.stats.answered === 6);
    expect(pager.stats.policyCalls).toBe(5);
    expect(asked).toHaveLength(5);
    await pager.close();
  });

  it('a hook that throws, rejects or answers nonsense: INVALID for that fault, a faultError, the loop goes on', async () => {
    const { dev, ioas, queue } = setup(kind);
    const errors: [unknown, unknown][] = [];
    const pager = await DemandPager.start({
      ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW,
      policy: (r) => {
        if (r.offset === 0) throw new Error('no page 0');
        if (r.offset === PAGE) return Promise.reject(new Error('no page 1'));
        if (r.offset === 2 * PAGE) return 'maybe' as never;
        return undefined;
      },
    });
    pager.on('faultError', (e, info) => errors.push([e, info]));
    for (let p = 0; p < 4; p++) dev.triggerIopf({ addr: WINDOW + BigInt(p * PAGE), groupId: p });
    await until(() => pager.stats.answered === 4);
    expect(pager.stats).toMatchObject({ success: 1, invalid: 3, policyErrors: 3 });
    const messages = errors.map(([e]) => (e as Error).message).sort();
    expect(messages).toEqual(['DemandPager: the policy hook must answer \'map\', \'refuse\' or undefined, got string "maybe"', 'no page 0', 'no page 1']);
    expect(errors.find(([e]) => (e as Error).message === 'no page 0')?.[1]).toEqual({ cause: 'policy', iova: WINDOW, length: PAGE });
    await pager.close();
  });

  it('a hook that never settles: the fault stays pending (stats), other faults go on, close() answers it INVALID and aborts its signal', async () => {
    const { dev, ioas, queue } = setup(kind);
    let signal: AbortSignal | undefined;
    const pager = await DemandPager.start({
      ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW,
      policy: (r) => {
        if (r.offset === 0) {
          signal = r.signal;
          return new Promise(() => {});
        }
        return 'map';
      },
    });
    dev.triggerIopf({ addr: WINDOW, groupId: 1 });
    await until(() => pager.stats.pending === 1);
    for (let p = 1; p < 8; p++) dev.triggerIopf({ addr: WINDOW + BigInt(p * PAGE), groupId: 10 + p });
    await until(() => pager.stats.answered === 7);
    expect(pager.stats).toMatchObject({ pending: 1, success: 7 });
    const closed = await pager.close();
    expect(closed.answeredInvalid).toBe(1);
    expect(signal?.aborted).toBe(true);
    expect(closed.stats).toMatchObject({ pending: 0, invalid: 1, answered: 8, refused: 0 });
    expect(await queue.close()).toEqual({ answeredInvalid: 0 });
  });

  it('policyTimeoutMs: a hook too slow is taken as a refusal (INVALID, ERR_IOMMUFD_POLICY_TIMEOUT, its signal aborted); its late answer is ignored', async () => {
    const { dev, ioas, queue } = setup(kind);
    const seen: unknown[] = [];
    let late: (() => void) | undefined;
    const pager = await DemandPager.start({
      ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW, policyTimeoutMs: 50,
      policy: (r) => new Promise((ok) => { late = () => ok('map'); r.signal.addEventListener('abort', () => seen.push(r.signal.reason)); }),
    });
    pager.on('faultError', (e) => seen.push(e));
    dev.triggerIopf({ addr: WINDOW, groupId: 1 });
    await until(() => pager.stats.answered === 1);
    expect(pager.stats).toMatchObject({ invalid: 1, policyTimeouts: 1, pending: 0 });
    expect(seen[0]).toBeInstanceOf(IommufdError);
    expect(seen).toEqual([expect.objectContaining({ code: ErrorCodes.POLICY_TIMEOUT }), expect.objectContaining({ code: ErrorCodes.POLICY_TIMEOUT })]);
    late!();
    await new Promise((ok) => setTimeout(ok, 50));
    expect(pager.stats).toMatchObject({ answered: 1, success: 0 });
    // The page was not filled: the next fault asks again.
    dev.triggerIopf({ addr: WINDOW, groupId: 2 });
    await until(() => pager.stats.policyCalls === 2);
    await pager.close();
  });

  it('close during a fill: the group is answered INVALID once; the fill finishing later changes nothing', async () => {
    const { dev, ioas, queue } = setup(kind);
    let finish: (() => void) | undefined;
    const pager = await DemandPager.start({
      ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW,
      policy: () => new Promise<'map'>((ok) => { finish = () => ok('map'); }),
    });
    dev.triggerIopf({ addr: WINDOW, groupId: 1 });
    await until(() => finish !== undefined);
    const closing = pager.close();
    finish!();
    const closed = await closing;
    expect(closed).toMatchObject({ answeredInvalid: 1, unmappedBytes: 0n });
    expect(closed.stats).toMatchObject({ answered: 1, refused: 0, mappedBytes: 0 });
    expect(await queue.close()).toEqual({ answeredInvalid: 0 });
  });

  it('a waiting group the kernel answers itself (the device moved off the HWPT) is stale once its cookie comes back', async () => {
    const { dev, ioas, queue, hwpt } = setup(kind);
    const pager = await DemandPager.start({
      ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW,
      policy: (r) => (r.offset === 0 ? new Promise(() => {}) : 'map'),
    });
    dev.triggerIopf({ addr: WINDOW, groupId: 1 });
    await until(() => pager.stats.pending === 1);
    dev.replace(ioas.id); // the kernel answers the pending group INVALID and frees its cookie
    dev.replace(hwpt.id);
    dev.triggerIopf({ addr: WINDOW + BigInt(PAGE), groupId: 2 });
    await until(() => pager.stats.answered === 1);
    expect(pager.stats).toMatchObject({ stale: 1, pending: 0, success: 1, refused: 0 });
    expect((await pager.close()).answeredInvalid).toBe(0);
  });

  it('a map the kernel refuses (the IOVA is taken): the native step leaves the group to JS, which answers INVALID and reports it (faultError, cause map); the next group is the step\'s', async () => {
    const { dev, ioas, queue } = setup(kind);
    ioas.map(allocPages(PAGE), { iova: WINDOW + 5n * BigInt(PAGE) }); // someone else's page inside the window
    const pager = await DemandPager.start({ ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW });
    const errors: unknown[] = [];
    pager.on('faultError', (e: IommufdError, info) => errors.push({ code: e.code, syscall: e.syscall, ...info }));
    dev.triggerIopf({ addr: WINDOW + 5n * BigInt(PAGE), groupId: 1 });
    dev.triggerIopf({ addr: WINDOW + 6n * BigInt(PAGE), groupId: 2 });
    await until(() => pager.stats.answered === 2 && errors.length === 1);
    expect(pager.stats).toMatchObject({ success: 1, invalid: 1, mapErrors: 1, servedNatively: 1, mappedBytes: PAGE });
    expect(errors).toEqual([{ code: 'EEXIST', syscall: 'IOMMU_IOAS_MAP', cause: 'map', iova: WINDOW + 5n * BigInt(PAGE), length: PAGE }]);
    await pager.close();
  });

  it('close({ unmap: false }) leaves the window mapped (and pinned) in the IOAS; unmap() frees it', async () => {
    const { dev, ioas, queue } = setup(kind);
    const base = vmPin();
    const pager = await DemandPager.start({ ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW });
    for (let p = 0; p < 3; p++) dev.triggerIopf({ addr: WINDOW + BigInt(p * 2 * PAGE), groupId: p });
    await until(() => pager.stats.answered === 3);
    expect(await pager.close({ unmap: false })).toMatchObject({ unmappedBytes: 0n });
    expect(vmPin() - base).toBe(3 * PAGE);
    expect(ioas.unmap(WINDOW, 16n * BigInt(PAGE))).toBe(3n * BigInt(PAGE));
    expect(vmPin()).toBe(base);
  });

  it('the queue or the iommufd closed under a running pager ends it', async () => {
    const a = setup(kind);
    const pager = await DemandPager.start({ ioas: a.ioas, faultQueue: a.queue, memory: allocPages(16 * PAGE), iova: WINDOW });
    a.dev.triggerIopf({ addr: WINDOW, groupId: 1 });
    await until(() => pager.stats.answered === 1);
    await a.queue.close();
    await until(() => pager.closed);
    const b = setup(kind);
    const other = await DemandPager.start({ ioas: b.ioas, faultQueue: b.queue, memory: allocPages(16 * PAGE), iova: WINDOW });
    await b.iommufd.close();
    expect(other.closed).toBe(true);
    expect((await other.close()).unmappedBytes).toBe(0n);
  });
});

describe('bad input', () => {
  const kind = kinds[kinds.length - 1];

  it('overlapping windows on one IOAS: ERR_INVALID_ARG_VALUE naming the window served; a window right after it is fine', async () => {
    const { iommufd, ioas, queue, dev } = setup(kind);
    const pager = await DemandPager.start({ ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW });
    const second = iommufd.allocFaultQueue();
    await expect(DemandPager.start({ ioas, faultQueue: second, memory: allocPages(16 * PAGE), iova: WINDOW + 8n * BigInt(PAGE) })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/^DemandPager\.start: options\.iova must be a window that overlaps no other pager's \(0x10000000-0x1000ffff is served\)/),
    });
    const next = await DemandPager.start({ ioas, faultQueue: second, memory: allocPages(16 * PAGE), iova: WINDOW + 16n * BigInt(PAGE) });
    await next.close();
    // One queue, one pager.
    await expect(DemandPager.start({ ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW + 64n * BigInt(PAGE) })).rejects.toMatchObject({ code: ErrorCodes.SERVING });
    await pager.close();
    // Closed, its window is free again.
    const again = await DemandPager.start({ ioas, faultQueue: queue, memory: allocPages(16 * PAGE), iova: WINDOW });
    dev.triggerIopf({ addr: WINDOW, groupId: 1 });
    await until(() => again.stats.answered === 1);
    await again.close();
  });

  it('a window not page aligned, memory smaller than the window or not page aligned, a budget below one group: typed errors before anything starts', async () => {
    const { ioas, queue } = setup(kind);
    const memory = allocPages(16 * PAGE);
    const start = (o: object) => DemandPager.start({ ioas, faultQueue: queue, memory, iova: WINDOW, ...o });
    await expect(start({ iova: WINDOW + 512n })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/options\.iova must be a multiple of 4096/) });
    await expect(start({ length: 17n * BigInt(PAGE) })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/options\.length .* to the memory's 65536 bytes/) });
    await expect(start({ memory: new Uint8Array(memory, 100, 8 * PAGE) })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/options\.memory must be page-aligned/) });
    await expect(start({ budget: 4n * BigInt(PAGE), faultAround: 4 })).rejects.toMatchObject({
      code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/options\.budget must be a multiple of 4096 of at least 20480 bytes \(one page and its fault-around of 4\)/),
    });
    // Nothing was left behind: the queue serves a pager now.
    const pager = await start({});
    await pager.close();
  });
});

describe('IoasHandle and IoasMapper: the IOAS from a worker thread', () => {
  const kind = kinds[kinds.length - 1];

  async function worker() {
    const w = new Worker(new URL('../fixtures/ioas-mapper-worker.mjs', import.meta.url));
    const replies: ((m: unknown) => void)[] = [];
    await new Promise((ok) => w.once('message', ok));
    w.on('message', (m) => replies.shift()?.(m));
    const call = (op: string, ...args: unknown[]) => new Promise<{ value?: unknown; error?: Record<string, unknown> }>((ok) => {
      replies.push(ok as (m: unknown) => void);
      w.postMessage({ op, args });
    });
    return { call, end: () => w.terminate() };
  }

  it('a worker maps and unmaps this thread\'s memory; the kernel\'s errors are IommufdErrors with the syscall; after close() ERR_IOMMUFD_CLOSED', async () => {
    const { ioas } = setup(kind);
    const memory = allocPages(8 * PAGE);
    const handle = ioas.handle(memory);
    const base = vmPin();
    const w = await worker();
    try {
      expect(await w.call('open', handle.descriptor)).toEqual({ value: 8 * PAGE });
      expect(await w.call('map', PAGE, 2 * PAGE, { iova: WINDOW })).toEqual({ value: WINDOW });
      expect(vmPin() - base).toBe(2 * PAGE);
      expect((await w.call('map', 0, PAGE, { iova: WINDOW })).error).toMatchObject({ name: 'IommufdError', code: 'EEXIST', syscall: 'IOMMU_IOAS_MAP' });
      expect((await w.call('map', 100, PAGE)).error).toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/^IoasMapper\.map: offset must be a multiple of 4096/) });
      expect((await w.call('map', 0, 9 * PAGE)).error).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
      expect(await w.call('unmap', WINDOW, 2n * BigInt(PAGE))).toEqual({ value: 2n * BigInt(PAGE) });
      expect(await w.call('map', 0, PAGE, { iova: WINDOW + 0x10_0000n })).toEqual({ value: WINDOW + 0x10_0000n });
      handle.close();
      expect(handle.closed).toBe(true);
      expect((await w.call('map', 0, PAGE, { iova: WINDOW })).error).toMatchObject({ name: 'IommufdError', code: 'ERR_IOMMUFD_CLOSED', message: expect.stringMatching(/^IoasMapper\.map: /) });
      expect((await w.call('unmap', WINDOW, 4096n)).error).toMatchObject({ code: 'ERR_IOMMUFD_CLOSED' });
      // What it mapped stays mapped: the Ioas keeps the memory until unmap().
      expect(ioas.unmap()).toBe(BigInt(PAGE));
    } finally {
      await w.end();
    }
  });

  it('the IOAS destroyed or the iommufd closed ends every handle of it', async () => {
    const a = setup(kind);
    const spare = a.iommufd.allocIoas();
    const h1 = spare.handle(allocPages(PAGE));
    const w = await worker();
    try {
      await w.call('open', h1.descriptor);
      spare.destroy();
      expect(h1.closed).toBe(true);
      expect((await w.call('map', 0, PAGE, { iova: WINDOW })).error).toMatchObject({ code: 'ERR_IOMMUFD_CLOSED' });
      const h2 = a.ioas.handle(allocPages(PAGE));
      await w.call('open', h2.descriptor);
      await a.iommufd.close();
      expect((await w.call('map', 0, PAGE, { iova: WINDOW })).error).toMatchObject({ code: 'ERR_IOMMUFD_CLOSED' });
    } finally {
      await w.end();
    }
  });

  it('Ioas.handle: memory stays with this thread (markAsUntransferable: a transfer copies it); resizable memory is refused', () => {
    const { ioas } = setup(kind);
    const memory = allocPages(PAGE);
    const handle = ioas.handle(memory);
    const copy = structuredClone(memory, { transfer: [memory] });
    expect(memory.byteLength).toBe(PAGE);
    expect(copy).not.toBe(memory);
    handle.close();
    expect(() => ioas.handle(new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(PAGE, { maxByteLength: 2 * PAGE }))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});
