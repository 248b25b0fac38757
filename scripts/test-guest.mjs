#!/usr/bin/env node
// npm run test:guest: builds what is missing, then boots the rig once per kernel configuration and
// runs the guest vitest suite inside, printing vitest's own output. Exits non-zero if any boot fails.
//
//   node scripts/test-guest.mjs [--only newest|6.12|iopf|nested|kernel] [--env NAME=VALUE]... [vitest args...]
//
// Which suites run where (the directories under test/guest say what they need):
//   any   every boot
//   mock  the kernel's iommufd test device: 7.x with intel_iommu=on; 6.12 only with intel_iommu=off
//         (there the test device cannot bind while intel-iommu is active: MOCK_DOMAIN -> EINVAL)
//   vtd   intel-iommu on: the VFIO path with the edu device
//   iopf  --qemu iopf (QEMU 10.2 built by scripts/build-qemu.sh, cached): the PRI test device,
//         real page requests through the emulated intel-iommu
//   kernel the kernel's own iommufd selftests, built from the same tree as the guest kernel
//         (--only kernel: just these, npm run test:kernel)
//   nested --qemu nested (the same QEMU, intel-iommu x-nesting=on): the PRI test device on a nested
//         HWPT whose stage 1 the test owns
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
let only;
const i = args.indexOf('--only');
if (i >= 0) [, only] = args.splice(i, 2);
// --env NAME=VALUE: environment for the guest's test run (scripts/sanitize.mjs uses it).
const env = [];
for (let k; (k = args.indexOf('--env')) >= 0;) env.push('--env', args.splice(k, 2)[1]);

const boots = [
  { kernel: 'newest', intelIommu: 'on', suites: ['any', 'mock', 'vtd', 'kernel'] },
  { kernel: '6.12', intelIommu: 'off', suites: ['any', 'mock', 'kernel'] },
  { kernel: '6.12', intelIommu: 'on', suites: ['any', 'vtd'] },
  { kernel: 'newest', intelIommu: 'on', qemu: 'iopf', suites: ['iopf'] },
  { kernel: '6.12', intelIommu: 'on', qemu: 'iopf', suites: ['iopf'] },
  { kernel: 'newest', intelIommu: 'on', qemu: 'nested', suites: ['nested'] },
  { kernel: '6.12', intelIommu: 'on', qemu: 'nested', suites: ['nested'] },
].filter((b) => !only || b.kernel === only || b.qemu === only || (only === 'kernel' && b.suites.includes('kernel')))
  .map((b) => (only === 'kernel' ? { ...b, suites: ['kernel'] } : b));

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit' });
  return r.status ?? 1;
}

if (!existsSync(join(root, 'build/Release/iommufd.node')) && run('npx', ['node-gyp', 'rebuild']) !== 0) process.exit(1);
// The worker-thread tests load the compiled dist/ (Node 20 workers cannot run TypeScript).
if (run(process.execPath, [join(root, 'scripts/build-ts.mjs')]) !== 0) process.exit(1);

const results = [];
const counts = { passed: 0, failed: 0 };
for (const b of boots) {
  const label = `${b.kernel}, intel_iommu=${b.intelIommu}${b.qemu ? `, --qemu ${b.qemu}` : ''}`;
  console.log(`\n=== guest suite: ${label}: ${b.suites.join(', ')}`);
  // The job dir is the guest's /run/rig: vitest leaves its JSON report there for the totals.
  const out = mkdtempSync(join(tmpdir(), 'iommufd-guest-'));
  const status = run(process.execPath, [
    join(root, 'scripts/rig.mjs'), '--kernel', b.kernel, '--intel-iommu', b.intelIommu, ...(b.qemu ? ['--qemu', b.qemu] : []), '--timeout', '1800', '--stall', '600', '--out', out, ...env, '--',
    join(root, 'node_modules/.bin/vitest'), 'run', '--config', 'vitest.guest.config.ts',
    '--reporter', 'default', '--reporter', 'json', '--outputFile.json', '/run/rig/vitest.json',
    ...b.suites.map((s) => `test/guest/${s}/`), ...args,
  ]);
  try {
    const report = JSON.parse(readFileSync(join(out, 'vitest.json'), 'utf8'));
    counts.passed += report.numPassedTests;
    counts.failed += report.numFailedTests;
    // A file that failed before running any test (an import error) has no failed test to count.
    counts.failed += report.testResults.filter((f) => f.status === 'failed' && f.assertionResults.length === 0).length;
  } catch {
    counts.failed++; // no report: the boot itself failed
  }
  // A failed boot keeps its job dir: serial.log holds the guest kernel's console.
  if (status === 0) rmSync(out, { recursive: true, force: true });
  results.push({ label, status });
}
console.log('\n=== guest suite summary');
for (const r of results) console.log(`${r.status === 0 ? 'ok  ' : 'FAIL'} ${r.label}${r.status === 0 ? '' : ` (exit ${r.status})`}`);
console.log(`guest: ${counts.passed} passed, ${counts.failed} failed`);
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
