// Preloaded (NODE_OPTIONS=--require) into every aarch64 Node that scripts/test-arm64.mjs starts
// under qemu-user. Without binfmt_misc the host kernel cannot exec an aarch64 ELF, so a child that
// Node starts with process.execPath (vitest's forked workers; tsc and the probe CLI that
// test/unit/probe.test.ts spawns) would fail with ENOEXEC. process.execPath names instead a host
// shell script that runs the same aarch64 Node through qemu-aarch64: the children are aarch64 too.
'use strict';
if (process.arch !== 'arm64') throw new Error(`test-arm64: this Node is ${process.arch}, not the aarch64 one`);
if (process.env.IOMMUFD_ARM64_NODE) process.execPath = process.env.IOMMUFD_ARM64_NODE;
