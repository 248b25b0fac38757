// examples/demand-paging.mjs (npm run demo) runs as a user would run it, and does what it says:
// every page of guest RAM mapped on first touch by the device, the bytes checked, a job outside
// guest RAM refused.
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
