#!/usr/bin/env node
// npm run test:sanitize: the addon built with AddressSanitizer + UndefinedBehaviorSanitizer (in
// build-sanitize/, the normal build untouched), then the guest suite run against it on every boot.
// Node itself is not instrumented, so the ASan runtime is preloaded; leak detection is off (Node
// keeps allocations to the end on purpose); any ASan or UBSan report fails the run.
//
//   node scripts/sanitize.mjs [test-guest args...]
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'build-sanitize');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir);
cpSync(join(root, 'binding.gyp'), join(dir, 'binding.gyp'));
cpSync(join(root, 'native'), join(dir, 'native'), { recursive: true });
const flags = '-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1';
const gyp = spawnSync('npx', ['node-gyp', 'rebuild'], {
  cwd: dir, stdio: 'inherit', env: { ...process.env, CFLAGS: flags, CXXFLAGS: flags, LDFLAGS: '-fsanitize=address,undefined' },
});
if (gyp.status !== 0) process.exit(1);
const libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
const env = {
  LD_PRELOAD: libasan,
  IOMMUFD_ADDON: join(dir, 'build/Release/iommufd.node'),
  // abort_on_error: a report ends the process, so the test that caused it fails.
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:print_summary=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  // Instrumented code is ~3x slower: fewer churn cycles (the leak figures come from npm test).
  IOMMUFD_CHURN_CYCLES: '2000',
  // Tests that measure RSS know it means nothing here (ASan's quarantine).
  IOMMUFD_SANITIZE: '1',
};
const args = Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
const r = spawnSync(process.execPath, [join(root, 'scripts/test-guest.mjs'), ...args, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
