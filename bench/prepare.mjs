// Builds what the benchmark runs, on the host, before the guest boots:
//  - bench/build/fault_bench: the C reference client (g++ -O2, native/uapi.h);
//  - bench/build/pkg: a private snapshot of the package: dist/esm compiled from lib/ by tsc, and
//    the native addon compiled by node-gyp from a copy of binding.gyp and native/ (in
//    bench/build/addon-*, rebuilt only when those change). Nothing is built in the working tree's
//    own build/ or dist/, so a `npm run build` at the same time cannot swap or break the code
//    under a running benchmark, and the benchmark cannot break anyone's build.
//
//   node bench/prepare.mjs [--pkg DIR] [--src DIR]
//     --src: a checkout (tsconfig.json, lib/, binding.gyp, native/) to build the snapshot from
//     instead of this one, for A/B runs of a change in one boot (guest.mjs --variant).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function buildC(out = join(root, 'bench/build/fault_bench'), src = join(root, 'bench/c/fault_bench.cc')) {
  mkdirSync(dirname(out), { recursive: true });
  execFileSync('g++', ['-O2', '-std=c++17', '-Wall', '-Wextra', '-I', join(root, 'native'),
    '-pthread', src, '-o', out], { stdio: 'inherit' });
  return out;
}

// The addon, built by node-gyp in a private copy of binding.gyp + native/, keyed by their content.
export function buildAddon(src = root) {
  const files = ['binding.gyp', ...readdirSync(join(src, 'native'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile()).map((e) => relative(src, join(e.parentPath ?? e.path, e.name))).sort()];
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update(readFileSync(join(src, f)));
  const key = hash.digest('hex').slice(0, 12);
  const dir = join(root, 'bench/build', `addon-${key}`);
  const out = join(dir, 'build/Release/iommufd.node');
  if (existsSync(out)) return out;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(src, 'binding.gyp'), join(dir, 'binding.gyp'));
  cpSync(join(src, 'native'), join(dir, 'native'), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  process.stderr.write(`[bench] compiling the addon in ${dir}\n`);
  // Through npx, so npm's configuration (e.g. nodedir for the headers) applies as in `npm run build`.
  execFileSync('npx', ['--no-install', 'node-gyp', 'rebuild'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

export function buildPkg({ pkg = join(root, 'bench/build/pkg'), src = root } = {}) {
  const lib = join(src, 'lib');
  const node = buildAddon(src);
  rmSync(pkg, { recursive: true, force: true });
  const esm = join(pkg, 'dist/esm');
  mkdirSync(esm, { recursive: true });
  // tsc emits even when someone's work in progress elsewhere in lib/ does not type-check; the
  // benchmark only needs the fault path, so type errors are reported but do not stop it.
  try {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(src, 'tsconfig.json'),
      '--outDir', esm, '--sourceMap', 'false', '--inlineSources', 'false', '--declaration', 'false'], { stdio: 'inherit' });
  } catch {
    if (!existsSync(join(esm, 'index.js'))) throw new Error('tsc produced no dist');
  }
  // lib/'s plain JS files (the addon loader, the serve loop's worker), as scripts/build-ts.mjs does.
  for (const f of readdirSync(lib, { recursive: true }).filter((f) => /\.(cjs|mjs)$/.test(f))) {
    mkdirSync(dirname(join(esm, f)), { recursive: true });
    copyFileSync(join(lib, f), join(esm, f));
  }
  writeFileSync(join(esm, 'package.json'), `${JSON.stringify({ type: 'module' })}\n`);
  // native.cjs finds the package root by walking up to a binding.gyp; node-gyp-build then loads
  // build/Release/iommufd.node from there.
  writeFileSync(join(pkg, 'binding.gyp'), '{"targets": []}\n');
  mkdirSync(join(pkg, 'build/Release'), { recursive: true });
  copyFileSync(node, join(pkg, 'build/Release/iommufd.node'));
  return pkg;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { pkg: { type: 'string' }, src: { type: 'string' } } });
  buildC();
  buildPkg({ pkg: values.pkg && resolve(values.pkg), src: values.src && resolve(values.src) });
}
