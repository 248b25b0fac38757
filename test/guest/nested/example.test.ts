// examples/nested-stage1.mjs (npm run demo:nested) runs as a user would run it, and does what it
// says: on 7.x every page of guest RAM is installed in stage 1 on the device's page requests, one
// invalidation per batch, the bytes checked, a job outside guest RAM refused; on 6.12 it stops with
// its "kernel stop" message and exit status 3 (the kernel leaves ATS off under a nested domain).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { kernelVersion } from '../rig.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const k7 = kernelVersion()[0] >= 7;
const run = () => spawnSync(process.execPath, [join(root, 'examples/nested-stage1.mjs')], { encoding: 'utf8', timeout: 120_000 });

it.runIf(k7)('the nested example installs 64 stage-1 entries on demand, one invalidation per batch, the bytes match, and exits 0', () => {
  const r = run();
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/^0000:[0-9a-f:.]+: on nested HWPT \d+ \(stage 1 at 0x300000000\) over NEST_PARENT \d+;/m);
  const m = r.stdout.match(/^jobs: 8\/8 done, 64 page requests, 64 stage-1 entries in (\d+) invalidations; bytes match$/m);
  expect(m, r.stdout).not.toBeNull();
  // One invalidation per batch that installed something: as many as such batch lines, fewer than pages.
  const batches = r.stdout.match(/^ {2}batch: \d+ group\(s\), [1-9]\d* stage-1 entries from 0x[0-9a-f]+, 1 invalidation -> SUCCESS$/gm) ?? [];
  expect(Number(m![1])).toBe(batches.length);
  expect(batches.length).toBeLessThan(64);
  expect(r.stdout).toMatch(/^ {2}batch: 1 group\(s\), 0 stage-1 entries from 0x40140000, no invalidation -> INVALID$/m);
  expect(r.stdout).toMatch(/^job outside guest RAM: error \(error 1: the device saw INVALID\)$/m);
  expect(r.status).toBe(0);
});

it.runIf(!k7)('6.12: the nested example stops with its kernel-stop message (ATS off under a nested domain) and exit status 3', () => {
  const r = run();
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^kernel stop: Linux 6\.12\.\S+ left ATS off under the nested domain .* nested stage-1 faults need Linux 7\.x$/m);
  expect(r.status).toBe(3);
});
