#!/usr/bin/env node
// npm run bench:pri: the real-path round trip, Node against C in ONE guest boot (--qemu iopf).
//
//   npm run bench:pri [-- --iters N --warmup N --rounds N --out FILE --qemu iopf|PATH]
//
// The rig's PRI test device starts a DMA read of an unmapped page; the page request travels
// through the emulated VT-d page request queue and the guest kernel to the fault queue; the
// handler maps one page at the faulting address and answers SUCCESS; the device retries and
// finishes. Measured per fault, from the GO register write (the job's other registers are written
// before the clock starts): fault delivered, answered, DMA done; and a baseline (GO and done again,
// the page now mapped: the device, QEMU and the register accesses alone). Both sides spin on the
// status register for "done"; the batch handler's side first lets its answer out (one event-loop
// turn: the pump writes a handler's answers after the microtasks it queued have run). The C client
// (bench/c/pri_bench.cc) and the Node handlers take turns, round by round, on the same device.
//
// On the host this builds the C client and the package snapshot (bench/prepare.mjs) and boots the
// rig; inside the guest (IOMMUFD_RIG=1) it runs the rounds and writes bench/results-pri.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const { values: opt } = parseArgs({
  options: {
    iters: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '30' },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string', default: join(here, 'results-pri.json') },
    kernel: { type: 'string', default: 'newest' },
    qemu: { type: 'string', default: 'iopf' }, // or a binary, as iommufd-rig --qemu takes it
  },
});

if (process.env.IOMMUFD_RIG !== '1') {
  const { buildC, buildPkg } = await import('./prepare.mjs');
  process.stderr.write('[bench:pri] building the C client and the package snapshot\n');
  buildC(join(here, 'build/pri_bench'), join(root, 'bench/c/pri_bench.cc'));
  buildPkg();
  const r = spawnSync(process.execPath, [
    join(root, 'scripts/rig.mjs'), '-q', '--qemu', opt.qemu, '--kernel', opt.kernel, '--timeout', '3600',
    '--', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2),
  ], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const pkg = pathToFileURL(`${process.env.IOMMUFD_BENCH_PKG ?? join(here, 'build/pkg')}/`);
const { Iommufd, VfioDevice, allocPages, bindVfioPci, findPciDevices } = await import(new URL('dist/esm/index.js', pkg).href);
const { PriTestDevice, PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID } = await import(new URL('dist/esm/testing.js', pkg).href);

const ITERS = Number(opt.iters);
const WARMUP = Number(opt.warmup);
const PAGE = 4096;
const address = findPciDevices(PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID)[0];
if (!address) throw new Error('no PRI test device: boot the rig with --qemu iopf');
bindVfioPci(address);
const now = () => process.hrtime.bigint();

// One Node variant: `answer(group or batch)` is how the handler sees and answers the fault.
async function nodeRun(variant) {
  const iommufd = Iommufd.open();
  const dev = VfioDevice.openPci(address);
  const deviceId = dev.bind(iommufd);
  const ioas = iommufd.allocIoas();
  const queue = iommufd.allocFaultQueue();
  const hwpt = iommufd.allocHwpt({ deviceId, parentId: ioas.id, faultQueue: queue });
  dev.attach(hwpt);
  const pri = new PriTestDevice(dev);
  const page = allocPages(PAGE);
  new Uint8Array(page).fill(0x5a);
  const base = 0x1_0000_0000n;
  const out = { total: [], delivered: [], handler: [], completion: [], baseline: [] };
  let t1 = 0n;
  let t2 = 0n;
  let resolveHandled;
  if (variant === 'batch handler') {
    // The fast API: a synchronous handler per read; its answers go out in one write when it returns.
    queue.setBatchHandler((batch) => {
      t1 = now();
      for (let g = 0; g < batch.groupCount; g++) {
        ioas.map(page, { iova: batch.addressBigInt(batch.first(g)) });
        batch.answer(g, 'success');
      }
      t2 = now(); // the pump writes the answers when this returns
      resolveHandled();
    });
  }
  for (let i = 0; i < WARMUP + ITERS; i++) {
    const iova = base + BigInt(i * PAGE);
    const handled = new Promise((r) => { resolveHandled = r; });
    pri.prepare(0, { iova, offset: 0, length: 64 });
    const t0 = now();
    pri.go(0);
    if (variant === 'for await') {
      const { value: group } = await queue.next();
      t1 = now();
      ioas.map(page, { iova: group.faults[0].addr });
      await group.respond('success');
      t2 = now();
    } else {
      await handled;
      // The pump writes the handler's answers when the handler returns, after this continuation
      // (a microtask of the same callback) would run: one turn, or the spin below would block it.
      await new Promise(setImmediate);
    }
    spinDone(pri);
    const t3 = now();
    pri.go(0);
    spinDone(pri);
    const t4 = now();
    if (i < WARMUP) continue;
    out.total.push(Number(t3 - t0));
    out.delivered.push(Number(t1 - t0));
    out.handler.push(Number(t2 - t1));
    out.completion.push(Number(t3 - t2));
    out.baseline.push(Number(t4 - t3));
  }
  await queue.close();
  dev.close();
  await iommufd.close();
  return out;
}

// As the C client does: read the status register until the device is done (no event-loop turn).
function spinDone(pri) {
  for (;;) {
    const s = pri.status(0);
    if (s === 'done') return;
    if (s === 'error') throw new Error(`the device failed the job: ${JSON.stringify(pri.result(0), (k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
  }
}

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const variants = ['C', 'for await', 'batch handler'];
const samples = Object.fromEntries(variants.map((v) => [v, { total: [], delivered: [], handler: [], completion: [], baseline: [] }]));
for (let round = 0; round < Number(opt.rounds); round++) {
  for (const v of variants) {
    const r = v === 'C'
      ? JSON.parse(execFileSync(join(here, 'build/pri_bench'), ['rtt', address, String(ITERS), String(WARMUP)], { encoding: 'utf8' }))
      : await nodeRun(v);
    for (const k of Object.keys(r)) samples[v][k].push(...r[k]);
    const p50 = (k) => (pct(r[k], 50) / 1000).toFixed(1);
    process.stderr.write(`[bench:pri] round ${round + 1} ${v}: p50 ${p50('total')} us (delivered ${p50('delivered')}, handler ${p50('handler')}, completion ${p50('completion')}, baseline ${p50('baseline')})\n`);
  }
}

const us = (ns) => Number((ns / 1000).toFixed(1));
const summary = Object.fromEntries(variants.map((v) => [v, Object.fromEntries(Object.entries(samples[v]).map(([k, xs]) => [k, { p50: us(pct(xs, 50)), p99: us(pct(xs, 99)) }]))]));
const rows = [['', 'p50 us', 'p99 us', 'p50 vs C', 'delivered p50', 'handler p50', 'completion p50', 'baseline p50']];
for (const v of variants) {
  const s = summary[v];
  rows.push([v, s.total.p50, s.total.p99, `${(s.total.p50 / summary.C.total.p50).toFixed(2)}x`, s.delivered.p50, s.handler.p50, s.completion.p50, s.baseline.p50]);
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
console.log(`\nreal-path round trip (DMA start -> fault -> map + SUCCESS -> DMA done), ${ITERS} faults x ${opt.rounds} rounds per variant, one boot:`);
for (const r of rows) console.log(r.map((x, c) => String(x).padStart(widths[c])).join('  '));
writeFileSync(opt.out, `${JSON.stringify({
  date: new Date().toISOString(), kernel: process.env.IOMMUFD_RIG_KERNEL_RELEASE, iters: ITERS, warmup: WARMUP, rounds: Number(opt.rounds),
  unit: 'microseconds', summary,
}, null, 2)}\n`);
