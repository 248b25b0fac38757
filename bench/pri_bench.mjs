#!/usr/bin/env node
// npm run bench:pri: the real-path round trip, Node against C, paging and nested, in ONE guest boot
// (--qemu nested; --qemu iopf runs the paging rows alone, on the second-stage path).
//
//   npm run bench:pri [-- --iters N --warmup N --rounds N --warm-rounds N --waves N --only paging,nested,tput --out FILE
//                         --qemu nested|iopf|PATH --kernel K]
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
//   paging also has the fast shapes (bench/pri_node.mjs): serve(), serveInWorker() (mapping
//     through an IoasMapper on its worker) and the DemandPager; and "C thread", the C handler on a
//     thread of its own, the design of the worker rows (their device driver pauses 50 us between
//     status reads).
//   tput: throughput, all 8 slots busy with 64 fresh pages each, more page requests than the PRI
//     allocation: pages/s, every shape mapping and answering each page.
// Every wait is bounded: the device's and the C client's own timeouts, deadlines on the spins, and
// a watchdog (bench/pri_watchdog.mjs) that reports the device's state and ends a stalled run.
//
// On the host this builds the C client and the package snapshot (bench/prepare.mjs) and boots the
// rig; inside the guest (IOMMUFD_RIG=1) it runs the rounds and writes bench/results-pri.json
// (--qemu nested) or bench/results-pri-iopf.json (--qemu iopf).
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const { values: opt } = parseArgs({
  options: {
    iters: { type: 'string', default: '300' },
    // Faults per row before its clock starts (tput: about as many pages of waves). Under TCG the
    // JIT takes about a thousand faults to settle (bench/pri_steps.mjs: for await 1208-1520 us in
    // a process's first 330 faults, 539-574 after 1000); a VMM's handler runs warm.
    warmup: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    // Unrecorded rounds first (each row with at most 100 faults and its warm-up, one wave): with a
    // short --warmup, the first round ran at twice its later cost (the bench's device driver is JS
    // too, and cold in a fresh process).
    'warm-rounds': { type: 'string', default: '0' },
    waves: { type: 'string', default: '4' }, // tput: measured waves per run (one more to warm up)
    only: { type: 'string', default: 'paging,nested,tput' },
    out: { type: 'string' },
    kernel: { type: 'string', default: 'newest' },
    qemu: { type: 'string', default: 'nested' }, // iopf, or a binary, as iommufd-rig --qemu takes it
  },
});

if (process.env.IOMMUFD_RIG !== '1') {
  // The guest writes the results, and it sees only the checkout: fail now, not after the run.
  if (opt.out && relative(root, resolve(opt.out)).startsWith('..')) {
    process.stderr.write(`bench:pri: --out ${opt.out} is outside the checkout, which is all the guest can write\n`);
    process.exit(2);
  }
  const { buildC, buildPkg } = await import('./prepare.mjs');
  process.stderr.write('[bench:pri] building the C client and the package snapshot\n');
  buildC(join(here, 'build/pri_bench'), join(root, 'bench/c/pri_bench.cc'));
  buildPkg();
  // The boot is watched from here too: a guest vCPU whose timer interrupt stops (seen in this
  // rig under TCG: an RCU stall on an idle CPU in the serial log) stops every timed wait on that
  // CPU, the in-guest watchdog's included. No output for STALL_MS: the boot is stopped.
  // One TCG thread per vCPU, as the published numbers were measured (the rig's default for the PRI
  // device is one thread for all: docs/rig.md); this watchdog bounds the stall that risks.
  const STALL_MS = 5 * 60_000;
  const child = spawn(process.execPath, [
    join(root, 'scripts/rig.mjs'), '-q', '--qemu', opt.qemu, '--tcg-thread', 'multi', '--kernel', opt.kernel, '--timeout', '3600',
    '--', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2),
  ], { cwd: root, stdio: ['inherit', 'pipe', 'pipe'] });
  let last = Date.now();
  let stalled = false;
  child.stdout.on('data', (b) => { last = Date.now(); process.stdout.write(b); });
  child.stderr.on('data', (b) => { last = Date.now(); process.stderr.write(b); });
  const check = setInterval(() => {
    if (Date.now() - last < STALL_MS) return;
    stalled = true;
    clearInterval(check);
    process.stderr.write(`[bench:pri] no output from the guest for ${STALL_MS / 60_000} min: stopping the boot (look for an RCU stall or "timer wakeup didn't happen" in the rig's serial log)\n`);
    child.kill('SIGTERM'); // the rig forwards it to QEMU
  }, 10_000);
  const code = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  clearInterval(check);
  process.exit(stalled ? 124 : code);
}

const pkg = pathToFileURL(`${process.env.IOMMUFD_BENCH_PKG ?? join(here, 'build/pkg')}/`);
const api = await import(new URL('dist/esm/index.js', pkg).href);
const testing = await import(new URL('dist/esm/testing.js', pkg).href);
const { Iommufd, VfioDevice, bindVfioPci, findPciDevices, HWPT_ALLOC_NEST_PARENT, PCI_EXT_CAP_ID_ATS, pciExtendedCapabilities, readPciConfig } = api;
const { VtdStage1Table, PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID } = testing;
const { nodeRuns } = await import('./pri_node.mjs');
const { startWatchdog } = await import('./pri_watchdog.mjs');

const ITERS = Number(opt.iters);
const WARMUP = Number(opt.warmup);
const WAVES = Number(opt.waves);
const address = findPciDevices(PRI_TESTDEV_VENDOR_ID, PRI_TESTDEV_DEVICE_ID)[0];
if (!address) throw new Error('no PRI test device: boot the rig with --qemu nested or iopf');
bindVfioPci(address);
const watchdog = startWatchdog(30_000);
const node = nodeRuns({ api, testing, address, watchdog, handlers: new URL('pri_handlers.mjs', import.meta.url) });

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
    const parent = iommufd.allocHwpt({ deviceId, parentId: ioas.id, flags: HWPT_ALLOC_NEST_PARENT });
    dev.attach(parent);
    const table = new VtdStage1Table(ioas, { iova: 0x8000_0000n });
    dev.attach(iommufd.allocHwpt({ deviceId, parentId: parent.id, faultQueue: iommufd.allocFaultQueue(), stage1: { type: 'vtd-s1', pgtblAddr: table.root } }));
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

// The C client: a child process, bounded (its own waits are, and so is this).
function cRun(mode, a, b, timeoutMs) {
  watchdog.pause();
  return JSON.parse(execFileSync(join(here, 'build/pri_bench'), [mode, address, String(a), String(b)], { encoding: 'utf8', timeout: timeoutMs }));
}

const info = await pathInfo();
const only = new Set(opt.only.split(','));
const scenarios = ['paging', ...(info.nestedSkipped ? [] : ['nested']), 'tput'].filter((sc) => only.has(sc));
if (info.nestedSkipped && only.has('nested')) process.stderr.write(`[bench:pri] no nested rows: ${info.nestedSkipped}\n`);
process.stderr.write(`[bench:pri] Linux ${release()}, --qemu ${process.env.IOMMUFD_RIG_QEMU}: the paging HWPT is ${info.pagingStage}-stage\n`);
const VARIANTS = {
  paging: ['C', 'C thread', 'for await', 'batch handler', 'serve()', 'serveInWorker()', 'DemandPager', 'DemandPager (JS step)'],
  nested: ['C', 'for await', 'batch handler'],
  tput: ['C', 'for await', 'batch handler', 'serve()', 'serveInWorker()', 'DemandPager', 'DemandPager (JS step)'],
};
const fields = ['total', 'delivered', 'handler', 'iommu', 'completion', 'baseline'];
const rowsToRun = scenarios.flatMap((sc) => VARIANTS[sc].map((v) => [sc, v]));
const pct = (xs, p) => {
  const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : null;
};
const us = (ns) => (ns === null ? null : Number((ns / 1000).toFixed(1)));
const samples = {};
const roundP50 = {};
const pagerLatency = {}; // per DemandPager row: its own latency percentiles per run
let tputPages = 0; // per wave: 64 pages per slot, as many slots as the PRI allocation
const cRttMs = (ITERS + WARMUP) * 1000 + 60_000; // generous: 1 ms per fault and a minute
const WARM_ROUNDS = Number(opt['warm-rounds']);
const TPUT_WARM = Math.max(1, Math.round(WARMUP / 256)); // waves of (usually) 4 slots x 64 pages
for (let round = -WARM_ROUNDS; round < Number(opt.rounds); round++) {
  if (round < 0) {
    // Every row once, as a measured round runs it, nothing recorded (errors still end the run).
    const iters = Math.min(ITERS, 100);
    for (const [sc, v] of rowsToRun) {
      if (sc === 'tput') await (v === 'C' ? cRun('tput', 1, 1, 120_000) : node.tput(v, 1, 1));
      else if (v === 'C' || v === 'C thread') cRun(v === 'C thread' ? 'rtt-thread' : sc === 'nested' ? 'rtt-nested' : 'rtt', iters, WARMUP, cRttMs);
      else await node.rtt(sc, v, iters, WARMUP);
    }
    process.stderr.write(`[bench:pri] warm-up round ${round + WARM_ROUNDS + 1} of ${WARM_ROUNDS}: every row once, not recorded\n`);
    continue;
  }
  for (const [sc, v] of round % 2 ? [...rowsToRun].reverse() : rowsToRun) {
    const key = `${sc}/${v}`;
    let r;
    if (sc === 'tput') {
      r = v === 'C' ? cRun('tput', WAVES, TPUT_WARM, (WAVES + TPUT_WARM) * 60_000) : await node.tput(v, WAVES, TPUT_WARM);
      tputPages = r.pages;
      const rates = r.ns.map((ns) => r.pages / (ns / 1e9));
      (samples[key] ??= []).push(...rates);
      (roundP50[key] ??= []).push(Math.round(pct(rates, 50)));
      process.stderr.write(`[bench:pri] round ${round + 1} tput ${v}: ${rates.map((x) => Math.round(x)).join(', ')} pages/s\n`);
      continue;
    }
    if (v === 'C') r = cRun(sc === 'nested' ? 'rtt-nested' : 'rtt', ITERS, WARMUP, cRttMs);
    else if (v === 'C thread') r = cRun('rtt-thread', ITERS, WARMUP, cRttMs);
    else r = await node.rtt(sc, v, ITERS, WARMUP);
    if (r.pagerLatency) (pagerLatency[v] ??= []).push({ ...r.pagerLatency, servedNatively: r.servedNatively });
    samples[key] ??= Object.fromEntries(fields.map((k) => [k, []]));
    for (const k of fields) samples[key][k].push(...r[k]);
    (roundP50[key] ??= []).push(us(pct(r.total, 50)));
    const p50 = (k) => us(pct(r[k], 50)) ?? '-';
    process.stderr.write(`[bench:pri] round ${round + 1} ${sc} ${v}: p50 ${p50('total')} us (delivered ${p50('delivered')}, handler ${p50('handler')} of which iommu ${p50('iommu')}, completion ${p50('completion')}, baseline ${p50('baseline')})\n`);
  }
}
watchdog.stop();

const { summary, table } = (await import('./pri_table.mjs')).summarize({ scenarios, VARIANTS, fields, samples, roundP50, pct, us, info, pagerLatency, tputPages });
console.log(`\nreal-path round trip (DMA start -> fault -> page made present + SUCCESS -> DMA done), p50 columns in us, ${ITERS} faults x ${opt.rounds} rounds per row; throughput: ${WAVES} waves of ${tputPages} pages x ${opt.rounds} rounds; one boot (Linux ${release()}, --qemu ${process.env.IOMMUFD_RIG_QEMU}):`);
console.log(table);
if (info.nestedSkipped) console.log(`no nested rows: ${info.nestedSkipped}`);
const out = opt.out ?? join(here, process.env.IOMMUFD_RIG_QEMU === 'iopf' ? 'results-pri-iopf.json' : 'results-pri.json');
writeFileSync(out, `${JSON.stringify({
  date: new Date().toISOString(), kernel: release(), qemu: process.env.IOMMUFD_RIG_QEMU, pagingStage: info.pagingStage, nestedSkipped: info.nestedSkipped,
  iters: ITERS, warmup: WARMUP, rounds: Number(opt.rounds), warmRounds: WARM_ROUNDS, waves: WAVES, pagesPerWave: tputPages, unit: 'microseconds; tput: pages per second', summary,
}, null, 2)}\n`);
