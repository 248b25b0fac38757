#!/usr/bin/env node
// Prebuilt addons for the tarball: linux-arm64 with Debian's cross compiler when it is installed,
// then linux-x64, which is also put back in build/Release (prebuildify leaves build/ without it,
// and the tests and tools of a source checkout load the addon from there).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const run = (args, env = {}) => execFileSync('npx', ['prebuildify', '--napi', '--strip', ...args], { stdio: 'inherit', env: { ...process.env, ...env } });

if (spawnSync('sh', ['-c', 'command -v aarch64-linux-gnu-g++']).status === 0) {
  run(['--arch', 'arm64'], {
    CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', LINK: 'aarch64-linux-gnu-g++', PREBUILD_STRIP_BIN: 'aarch64-linux-gnu-strip',
  });
} else {
  console.error('[prebuild] no aarch64-linux-gnu-g++ (apt-get install g++-aarch64-linux-gnu): no linux-arm64 prebuild');
}
run([]);
mkdirSync(join(root, 'build/Release'), { recursive: true });
copyFileSync(join(root, 'prebuilds/linux-x64/iommufd.node'), join(root, 'build/Release/iommufd.node'));
