#!/usr/bin/env node
// Builds the ESM (dist/esm) and CommonJS (dist/cjs) entry points from lib/, each with its types.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules/typescript/bin/tsc');
rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const [config, out, type] of [['tsconfig.json', 'esm', 'module'], ['tsconfig.cjs.json', 'cjs', 'commonjs']]) {
  execFileSync(process.execPath, [tsc, '-p', join(root, config)], { stdio: 'inherit' });
  const dir = join(root, 'dist', out);
  mkdirSync(dir, { recursive: true });
  // lib/'s plain JS files and their types, at the same place under dist: the addon loader
  // (core/native.cjs), the serve loop's worker (fault/serve_worker.mjs).
  for (const file of readdirSync(join(root, 'lib'), { recursive: true }).filter((f) => /\.(cjs|mjs|d\.cts)$/.test(f))) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    copyFileSync(join(root, 'lib', file), join(dir, file));
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ type })}\n`);
}
