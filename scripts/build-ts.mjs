#!/usr/bin/env node
// Builds the ESM (dist/esm) and CommonJS (dist/cjs) entry points from lib/, each with its types.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules/typescript/bin/tsc');
rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const [config, out, type] of [['tsconfig.json', 'esm', 'module'], ['tsconfig.cjs.json', 'cjs', 'commonjs']]) {
  execFileSync(process.execPath, [tsc, '-p', join(root, config)], { stdio: 'inherit' });
  const dir = join(root, 'dist', out);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(root, 'lib/native.cjs'), join(dir, 'native.cjs'));
  copyFileSync(join(root, 'lib/native.d.cts'), join(dir, 'native.d.cts'));
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ type })}\n`);
}
