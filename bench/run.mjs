#!/usr/bin/env node
// npm run bench: the fault-path benchmark, Node vs a C reference client, in ONE guest boot.
//
//   npm run bench [-- [--rounds N] [--quick] [--only drain10k,drain100k,rtt,pipe,mem] [--smp N] [--mem MIB]]
//
// On the host: builds the C client (g++ -O2) and a private snapshot of the package (tsc + a copy
// of the addon; see bench/prepare.mjs), then boots the rig's newest kernel under QEMU and runs
// bench/guest.mjs inside, which prints the table and writes bench/results.json into the shared
// project directory.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildC, buildPkg } from './prepare.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: join(here, 'results.json') },
    smp: { type: 'string', default: '2' },
    mem: { type: 'string', default: '3072' },
    kernel: { type: 'string', default: 'newest' },
    timeout: { type: 'string', default: '3600' },
    variant: { type: 'string', multiple: true },
    'no-build': { type: 'boolean', default: false },
  },
});

if (!opt['no-build']) {
  process.stderr.write('[bench] building the C client and the package snapshot\n');
  buildC();
  buildPkg();
}

// Calibration on the host, without emulation: the same user-space work the guest measures again,
// so the report can say how much TCG slows C and JS down (see node_bench.mjs calib).
process.stderr.write('[bench] calibration on the host\n');
const calibRuns = { c: [], node: [] };
for (let i = 0; i < 3; i++) {
  calibRuns.c.push(JSON.parse(execFileSync(join(here, 'build/fault_bench'), ['calib', '20000'], { encoding: 'utf8' })));
  calibRuns.node.push(JSON.parse(execFileSync(process.execPath, [join(here, 'node_bench.mjs'), 'calib', '2000'],
    { encoding: 'utf8', env: { ...process.env, IOMMUFD_BENCH_PKG: join(here, 'build/pkg') } })));
}
const hostCalib = join(here, 'build/host-calib.json');
writeFileSync(hostCalib, JSON.stringify(calibRuns));

const guestArgs = ['--rounds', opt.rounds, '--out', opt.out, '--host-calib', hostCalib];
if (opt.quick) guestArgs.push('--quick');
if (opt.only) guestArgs.push('--only', opt.only);
for (const v of opt.variant ?? []) guestArgs.push('--variant', v);
const r = spawnSync(process.execPath, [
  join(root, 'scripts/rig.mjs'), '-q', '--kernel', opt.kernel, '--smp', opt.smp, '--mem', opt.mem, '--timeout', opt.timeout,
  '--', process.execPath, join(here, 'guest.mjs'), ...guestArgs,
], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
