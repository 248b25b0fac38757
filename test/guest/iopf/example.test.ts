// examples/demand-paging.mjs (npm run demo) runs as a user would run it, and does what it says:
// every page of guest RAM mapped on first touch by the device, the bytes checked, a job outside
// guest RAM refused. So does examples/demand-pager.mjs (npm run demo:pager): the DemandPager
// within its budget, most page requests served by its native step.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { pagingFaultSupported } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

it.runIf(pagingFaultSupported())('the demand-paging example maps 64 pages on demand, the bytes match, and exits 0', () => {
  const r = spawnSync(process.execPath, [join(root, 'examples/demand-paging.mjs')], { encoding: 'utf8', timeout: 120_000 });
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/^jobs: 8\/8 done, \d+ page requests, 64 pages mapped on demand; bytes match$/m);
  expect(r.stdout).toMatch(/^job outside guest RAM: error \(error 1: the device saw INVALID\)$/m);
  // Half of the jobs asked in groups: some fault lines name more than one page.
  expect(r.stdout).toMatch(/fault: ([2-8]) page\(s\)/);
  expect(r.status).toBe(0);
});

it.runIf(pagingFaultSupported())('the demand-pager example: 1024 jobs over 16 MiB under a 256 KiB budget, most page requests served natively, the bytes match, exits 0', () => {
  const r = spawnSync(process.execPath, [join(root, 'examples/demand-pager.mjs')], { encoding: 'utf8', timeout: 300_000 });
  expect(r.stderr).toBe('');
  const served = /^1024 DMA jobs over 16 MiB of guest RAM: (\d+) page requests, (\d+) of them mapped and answered in the addon, (\d+) through JS$/m.exec(r.stdout);
  expect(served, r.stdout).not.toBeNull();
  const [requests, natively] = [Number(served![1]), Number(served![2])];
  // 4096 pages touched, at random over 4096: a few were still mapped from an earlier job (no request).
  expect(requests).toBeGreaterThan(3500);
  expect(natively).toBeGreaterThan(requests / 2);
  expect(r.stdout).toMatch(/^mapped \d+ pages, evicted \d+; at most 256 KiB mapped \(budget 256 KiB\)$/m);
  expect(r.stdout).toMatch(/bytes match$/m);
  expect(r.status).toBe(0);
});
