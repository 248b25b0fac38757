#!/usr/bin/env node
// npm run bench: the fault-path benchmark, Node vs a C reference client, in ONE guest boot.
//
//   npm run bench [-- [--rounds N] [--quick] [--only drain10k,drain100k,rtt,pipe,mem] [--smp N] [--mem MIB]]
//
// On the host: builds the C client (g++ -O2) and a private snapshot of the package (tsc + a copy
// of the addon; see bench/prepare.mjs), then boots the rig's newest kernel under QEMU and runs
// bench/guest.mjs inside, which prints the table and writes bench/results.json into the shared
// project directory.
import { spawnSync } from 'node:child_process';
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

const guestArgs = ['--rounds', opt.rounds, '--out', opt.out];
if (opt.quick) guestArgs.push('--quick');
if (opt.only) guestArgs.push('--only', opt.only);
for (const v of opt.variant ?? []) guestArgs.push('--variant', v);
const r = spawnSync(process.execPath, [
  join(root, 'scripts/rig.mjs'), '-q', '--kernel', opt.kernel, '--smp', opt.smp, '--mem', opt.mem, '--timeout', opt.timeout,
  '--', process.execPath, join(here, 'guest.mjs'), ...guestArgs,
], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
