#!/usr/bin/env node
// npm run bench:pri: the real-path round trip, Node against C, paging and nested, in ONE guest boot
// (--qemu nested; --qemu iopf runs the paging rows alone, on the second-stage path).
//
//   npm run bench:pri [-- --iters N --warmup N --rounds N --out FILE --qemu nested|iopf|PATH --kernel K]
//
// The rig's PRI test device starts a DMA read of a page the device cannot translate; the page
// request travels through the emulated VT-d page request queue and the guest kernel to the fault
// queue; the handler makes the page present and answers SUCCESS; the device retries and finishes.
//   paging: a fault-capable paging HWPT of an empty IOAS; the handler maps one page at the faulting
//     address (IOMMU_IOAS_MAP). Under --qemu nested, Linux 7.x makes this HWPT first-stage (the
//     IOMMU has both stages: first_level_by_default); under --qemu iopf (second stage only) and on
//     6.12 it is second-stage. The results say which ("pagingStage").
//   nested: a nested HWPT (VT-d stage 1 owned by the client) over a NEST_PARENT HWPT of an IOAS that
//     maps one page at Y; the fault is a stage-1 miss; the handler writes the stage-1 entry
//     (IOVA -> Y) and issues one IOMMU_HWPT_INVALIDATE per batch (one page here). Needs --qemu
//     nested and Linux 7.x (6.12 leaves ATS off under a nested domain: no page request).
// Measured per fault, from the GO register write (the job's other registers are written before the
// clock starts): fault delivered, answered (of which "iommu": the handler's one ioctl, the map or
// the invalidation), DMA done; and a baseline (GO and done again, the page now present: the
// device, QEMU and the register accesses alone). Both sides spin on the status register for
// "done"; the batch handler's side first lets its answer out (one event-loop turn: the pump writes
// a handler's answers after the microtasks it queued have run). The C client (bench/c/pri_bench.cc)
// and the Node handlers take turns on the same device, every row once per round, the order of the
// rows reversed every other round.
//
// On the host this builds the C client and the package snapshot (bench/prepare.mjs) and boots the
// rig; inside the guest (IOMMUFD_RIG=1) it runs the rounds and writes bench/results-pri.json
// (--qemu nested) or bench/results-pri-iopf.json (--qemu iopf).
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
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
    out: { type: 'string' },
    kernel: { type: 'string', default: 'newest' },
    qemu: { type: 'string', default: 'nested' }, // iopf, or a binary, as iommufd-rig --qemu takes it
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
const {
  Iommufd, VfioDevice, allocPages, bindVfioPci, findPciDevices, HWPT_ALLOC_NEST_PARENT, PCI_EXT_CAP_ID_ATS, pciExtendedCapabilities, readPciConfig,
} = await import(new URL('dist/esm/index.js', pkg).href);
const { PriTestDevice, VtdStage1Table, PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID } = await import(new URL('dist/esm/testing.js', pkg).href);

const ITERS = Number(opt.iters);
const WARMUP = Number(opt.warmup);
const PAGE = 4096;
// The C client's addresses (bench/c/pri_bench.cc): faulting IOVAs from BASE, nested: stage 1 maps
// each to Y, the one page the IOAS maps; the stage-1 tables at TABLES.
const BASE = 0x1_0000_0000n;
const Y = 0x2_0000_0000n;
const TABLES = 0x8000_0000n;
const address = findPciDevices(PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID)[0];
if (!address) throw new Error('no PRI test device: boot the rig with --qemu nested or iopf');
bindVfioPci(address);
const now = () => process.hrtime.bigint();

// The device on a nested HWPT (parent attached first, as the C client and examples/nested-stage1.mjs do).
function attachNested(iommufd, dev, deviceId, ioas, queue) {
  const parent = iommufd.allocHwpt({ deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
  dev.attach(parent);
  const table = new VtdStage1Table(ioas, { iova: TABLES });
  const hwpt = iommufd.allocHwpt({ deviceId, parentId: parent.id, faultQueue: queue, stage1: { type: 'vtd-s1', pgtblAddr: table.root } });
  dev.attach(hwpt);
  return { hwpt, table };
}

// Which HWPT the paging rows measure, and whether the nested rows can run (a reason if not).
async function pathInfo() {
  const iommufd = Iommufd.open();
  const dev = VfioDevice.openPci(address);
  try {
    const deviceId = dev.bind(iommufd);
    const { ecap } = dev.hwInfo().vtd;
    const pagingStage = Number(release().split('.')[0]) >= 7 && ecap.flts ? 'first' : 'second';
    if (!ecap.nest) return { pagingStage, nestedSkipped: 'the IOMMU has no nested translation (ecap NEST): boot with --qemu nested' };
    const ioas = iommufd.allocIoas();
    attachNested(iommufd, dev, deviceId, ioas, iommufd.allocFaultQueue());
    const config = readPciConfig(address);
    const ats = pciExtendedCapabilities(config).find((c) => c.id === PCI_EXT_CAP_ID_ATS);
    if (!ats || !(config[ats.offset + 7] & 0x80)) {
      return { pagingStage, nestedSkipped: `Linux ${release()} leaves ATS off under a nested domain: no page request (a kernel stop, docs/qemu-nesting-facts.md)` };
    }
    return { pagingStage, nestedSkipped: null };
  } finally {
    dev.close();
    await iommufd.close();
  }
}

// One Node run: `scenario` is paging or nested, `variant` how the handler sees and answers faults.
async function nodeRun(scenario, variant) {
  const iommufd = Iommufd.open();
  const dev = VfioDevice.openPci(address);
  const deviceId = dev.bind(iommufd);
  const ioas = iommufd.allocIoas();
  const queue = iommufd.allocFaultQueue();
  const page = allocPages(PAGE);
  new Uint8Array(page).fill(0x5a);
  // handle(addresses): makes the pages present, returns the nanoseconds of its one ioctl.
  let handle;
  if (scenario === 'paging') {
    const hwpt = iommufd.allocHwpt({ deviceId, parentId: ioas.id, faultQueue: queue });
    dev.attach(hwpt);
    handle = (addrs) => {
      const a = now();
      for (const addr of addrs) ioas.map(page, { iova: addr });
      return now() - a;
    };
  } else {
    ioas.map(page, { iova: Y });
    const { hwpt, table } = attachNested(iommufd, dev, deviceId, ioas, queue);
    handle = (addrs) => {
      for (const addr of addrs) table.map(addr, Y);
      const a = now();
      hwpt.invalidate(addrs.map((addr) => ({ addr, npages: 1n })));
      return now() - a;
    };
  }
  const pri = new PriTestDevice(dev);
  const out = { total: [], delivered: [], handler: [], iommu: [], completion: [], baseline: [] };
  let t1 = 0n;
  let t2 = 0n;
  let op = 0n;
  let resolveHandled;
  if (variant === 'batch handler') {
    // The fast API: a synchronous handler per read; its answers go out in one write when it returns.
    queue.setBatchHandler((batch) => {
      t1 = now();
      const addrs = [];
      for (let g = 0; g < batch.groupCount; g++) addrs.push(batch.addressBigInt(batch.first(g)));
      op = handle(addrs);
      for (let g = 0; g < batch.groupCount; g++) batch.answer(g, 'success');
      t2 = now(); // the pump writes the answers when this returns
      resolveHandled();
    });
  }
  for (let i = 0; i < WARMUP + ITERS; i++) {
    const iova = BASE + BigInt(i * PAGE);
    const handled = new Promise((r) => { resolveHandled = r; });
    pri.prepare(0, { iova, offset: 0, length: 64 });
    const t0 = now();
    pri.go(0);
    if (variant === 'for await') {
      const { value: group } = await queue.next();
      t1 = now();
      op = handle([group.faults[0].addr]);
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
    out.iommu.push(Number(op));
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

const info = await pathInfo();
const scenarios = info.nestedSkipped ? ['paging'] : ['paging', 'nested'];
if (info.nestedSkipped) process.stderr.write(`[bench:pri] no nested rows: ${info.nestedSkipped}\n`);
process.stderr.write(`[bench:pri] Linux ${release()}, --qemu ${process.env.IOMMUFD_RIG_QEMU}: the paging HWPT is ${info.pagingStage}-stage\n`);
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const variants = ['C', 'for await', 'batch handler'];
const rowsToRun = scenarios.flatMap((sc) => variants.map((v) => [sc, v]));
const fields = ['total', 'delivered', 'handler', 'iommu', 'completion', 'baseline'];
const samples = Object.fromEntries(scenarios.map((sc) => [sc, Object.fromEntries(variants.map((v) => [v, Object.fromEntries(fields.map((k) => [k, []]))]))]));
// Each run's own p50 of the total: the spread between rounds shows how much the host's load moved them.
const roundP50 = Object.fromEntries(scenarios.map((sc) => [sc, Object.fromEntries(variants.map((v) => [v, []]))]));
const us = (ns) => Number((ns / 1000).toFixed(1));
for (let round = 0; round < Number(opt.rounds); round++) {
  for (const [sc, v] of round % 2 ? [...rowsToRun].reverse() : rowsToRun) {
    const r = v === 'C'
      ? JSON.parse(execFileSync(join(here, 'build/pri_bench'), [sc === 'nested' ? 'rtt-nested' : 'rtt', address, String(ITERS), String(WARMUP)], { encoding: 'utf8' }))
      : await nodeRun(sc, v);
    for (const k of fields) samples[sc][v][k].push(...r[k]);
    roundP50[sc][v].push(us(pct(r.total, 50)));
    const p50 = (k) => (pct(r[k], 50) / 1000).toFixed(1);
    process.stderr.write(`[bench:pri] round ${round + 1} ${sc} ${v}: p50 ${p50('total')} us (delivered ${p50('delivered')}, handler ${p50('handler')} of which iommu ${p50('iommu')}, completion ${p50('completion')}, baseline ${p50('baseline')})\n`);
  }
}

const summary = Object.fromEntries(scenarios.map((sc) => [sc, Object.fromEntries(variants.map((v) => [v,
  { ...Object.fromEntries(fields.map((k) => [k, { p50: us(pct(samples[sc][v][k], 50)), p99: us(pct(samples[sc][v][k], 99)) }])), roundP50: roundP50[sc][v] }]))]));
const both = scenarios.length === 2;
const rows = [['scenario', 'variant', 'p50 us', 'p99 us', 'rounds\' p50s', 'Node/C', ...(both ? ['nested/paging'] : []), 'delivered', 'handler', 'of which iommu', 'completion', 'baseline']];
for (const sc of scenarios) {
  for (const v of variants) {
    const s = summary[sc][v];
    const vsPaging = sc === 'nested' ? `${(s.total.p50 / summary.paging[v].total.p50).toFixed(2)}x` : '';
    rows.push([sc === 'paging' ? `paging (${info.pagingStage} stage)` : sc, v, s.total.p50, s.total.p99, `${Math.min(...s.roundP50)}-${Math.max(...s.roundP50)}`, `${(s.total.p50 / summary[sc].C.total.p50).toFixed(2)}x`,
      ...(both ? [vsPaging] : []), s.delivered.p50, s.handler.p50, s.iommu.p50, s.completion.p50, s.baseline.p50]);
  }
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
console.log(`\nreal-path round trip (DMA start -> fault -> page made present + SUCCESS -> DMA done), p50 columns in us, ${ITERS} faults x ${opt.rounds} rounds per row, one boot (Linux ${release()}, --qemu ${process.env.IOMMUFD_RIG_QEMU}):`);
for (const r of rows) console.log(r.map((x, c) => String(x)[c < 2 ? 'padEnd' : 'padStart'](widths[c])).join('  '));
if (info.nestedSkipped) console.log(`no nested rows: ${info.nestedSkipped}`);
const out = opt.out ?? join(here, process.env.IOMMUFD_RIG_QEMU === 'iopf' ? 'results-pri-iopf.json' : 'results-pri.json');
writeFileSync(out, `${JSON.stringify({
  date: new Date().toISOString(), kernel: release(), qemu: process.env.IOMMUFD_RIG_QEMU, pagingStage: info.pagingStage, nestedSkipped: info.nestedSkipped,
  iters: ITERS, warmup: WARMUP, rounds: Number(opt.rounds), unit: 'microseconds', summary,
}, null, 2)}\n`);
