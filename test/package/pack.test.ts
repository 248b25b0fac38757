// The published tarball: right contents, and an install into a clean directory with no compiler
// on PATH that loads the prebuilt addon from both module systems, with working type declarations.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const work = mkdtempSync(join(tmpdir(), 'iommufd-pack-'));
let files: string[] = [];
let modes = new Map<string, number>();
let tarball = '';

beforeAll(() => {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  files = info.files.map((f: { path: string }) => f.path);
  modes = new Map(info.files.map((f: { path: string; mode: number }) => [f.path, f.mode]));
  tarball = join(work, info.filename);
  console.log(`[pack] ${info.filename}: ${info.size} bytes packed, ${info.unpackedSize} unpacked, ${info.entryCount} files`);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('ships both builds with types, the linux-x64 prebuild, the sources for a fallback build and the rig', () => {
    for (const f of [
      'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/esm/testing.js', 'dist/esm/testing.d.ts', 'dist/esm/core/native.cjs',
      'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/testing.js', 'dist/cjs/package.json',
      'dist/esm/fault/serve_worker.mjs', 'dist/esm/fault/serve_worker_path.cjs', 'dist/cjs/fault/serve_worker.mjs', 'dist/cjs/fault/serve_worker_path.cjs',
      'prebuilds/linux-x64/iommufd.node', 'prebuilds/linux-arm64/iommufd.node', 'binding.gyp', 'native/uapi.h', 'native/fault_queue.cc',
      'scripts/rig.mjs', 'scripts/probe.mjs', 'schema/probe.schema.json', 'scripts/build-kernel.sh', 'scripts/guest/init', 'scripts/kernel/iommufd.config', 'README.md', 'package.json',
      // The README's links: the docs go with it, so they work where npm shows the README.
      ...readdirSync(join(root, 'docs')).map((f) => `docs/${f}`),
    ]) expect(files).toContain(f);
  });

  it('ships what --qemu iopf builds from: build-qemu.sh and exactly the recipe inputs under scripts/qemu, byte for byte', () => {
    expect(files).toContain('scripts/build-qemu.sh');
    // build-qemu.sh's cache key hashes every file under scripts/qemu (but *~): the installed
    // package must hold the same files as the checkout to hit the same cached QEMU.
    const checkout = execFileSync('find', ['.', '-type', 'f', '!', '-name', '*~'], { cwd: join(root, 'scripts/qemu'), encoding: 'utf8' })
      .trim().split('\n').map((f) => `scripts/qemu/${f.slice(2)}`).sort();
    const shipped = files.filter((f) => f.startsWith('scripts/qemu/')).sort();
    expect(shipped).toEqual(checkout);
    // Lean: only what the recipe reads (its patches, devices, device list and checks).
    for (const f of shipped) expect(f).toMatch(/^scripts\/qemu\/(devices\.mak|expect\.txt|hw\/[\w-]+\.c|patches\/[\w.-]+\.patch)$/);
    for (const f of shipped) expect(execFileSync('tar', ['-xzOf', tarball, `package/${f}`], { encoding: 'utf8' }), f).toBe(readFileSync(join(root, f), 'utf8'));
    // The guest's init is exec'd by the kernel (init=): it must stay executable.
    expect(modes.get('scripts/guest/init')! & 0o111).toBe(0o111);
  });

  it('ships an arm64 prebuild that is an aarch64 Node-API module (cross-built; no arm64 machine here)', () => {
    const bytes = readFileSync(join(root, 'prebuilds/linux-arm64/iommufd.node'));
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(bytes.readUInt16LE(18)).toBe(183); // e_machine EM_AARCH64
    expect(bytes.includes('napi_register_module_v1')).toBe(true);
  });

  it('ships the probe (lib/probe/ built into dist/) with its schema', () => {
    for (const f of ['esm', 'cjs'].flatMap((m) => ['cli', 'index', 'report', 'render', 'types'].map((n) => `dist/${m}/probe/${n}.js`))) expect(files).toContain(f);
  });

  it('ships source maps a debugger can use: the TypeScript sources are inlined (lib/ is not shipped)', () => {
    const maps = files.filter((f) => /^dist\/(esm|cjs)\/.*\.js\.map$/.test(f));
    expect(maps.length).toBeGreaterThan(10);
    const list = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
    expect(list).toContain('package/dist/esm/probe/cli.js.map');
    for (const m of ['dist/esm/device/vfio_device.js.map', 'dist/cjs/probe/verdict.js.map']) {
      const map = JSON.parse(execFileSync('tar', ['-xzOf', tarball, `package/${m}`], { encoding: 'utf8' }));
      expect(map.sources.length).toBeGreaterThan(0);
      expect(map.sourcesContent, m).toHaveLength(map.sources.length);
      const name = m.replace(/^dist\/(esm|cjs)\//, '').replace(/\.js\.map$/, '.ts');
      expect(map.sourcesContent[0]).toBe(readFileSync(join(root, 'lib', name), 'utf8'));
    }
  });

  it('ships no tests, build output, CI or dependencies', () => {
    expect(files.filter((f) => /^(test|build|node_modules|\.ci|lib)\//.test(f))).toEqual([]);
  });
});

describe('install of the tarball', () => {
  const app = join(work, 'app');
  const bin = join(work, 'bin');
  // Only node, npm, npx and sh: no cc, g++, make or python, so a source build could not happen.
  const env = { ...process.env, PATH: bin };

  beforeAll(() => {
    mkdirSync(app);
    mkdirSync(bin);
    for (const tool of ['node', 'npm', 'npx', 'sh']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: app, env, stdio: ['ignore', 'ignore', 'inherit'] });
  });

  it('has no compiler on the PATH it installed with', () => {
    expect(readdirSync(bin).sort()).toEqual(['node', 'npm', 'npx', 'sh']);
  });

  const run = (code: string, type: 'commonjs' | 'module') =>
    execFileSync(join(bin, 'node'), ['--input-type', type, '-e', code], { cwd: app, env, encoding: 'utf8' });

  it('loads the prebuild, not a local build', () => {
    const path = run("console.log(require('node-gyp-build').path(require('node:path').dirname(require.resolve('iommufd/package.json'))))", 'commonjs');
    expect(path.trim()).toMatch(/node_modules\/iommufd\/prebuilds\/linux-x64\/iommufd\.node$/);
  });

  it('works from CommonJS and ESM, with one error class for both', () => {
    const cjs = run(`
      const { Iommufd, IommufdError } = require('iommufd');
      const { MockDevice } = require('iommufd/testing');
      try { Iommufd.open('/nonexistent'); } catch (e) { console.log(e instanceof IommufdError, e.code, e.syscall, typeof MockDevice); }`, 'commonjs');
    expect(cjs.trim()).toBe('true ENOENT open function');
    const esm = run(`
      import { Iommufd, IommufdError } from 'iommufd';
      import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)('iommufd');
      try { Iommufd.open('/nonexistent'); } catch (e) { console.log(e instanceof IommufdError, e instanceof cjs.IommufdError, e.code); }`, 'module');
    expect(esm.trim()).toBe('true true ENOENT');
  });

  it('installs the bins: the probe runs from the prebuild and explains the missing /dev/iommu', () => {
    let status = 0;
    let out = '';
    try {
      execFileSync(join(app, 'node_modules/.bin/iommufd-probe'), ['--json'], { cwd: app, env, encoding: 'utf8' });
    } catch (e) {
      status = (e as { status: number }).status;
      out = (e as { stdout: string }).stdout;
    }
    expect(status).toBe(2);
    expect(JSON.parse(out)).toMatchObject({ schemaVersion: 1 });
    expect(execFileSync(join(app, 'node_modules/.bin/iommufd-rig'), ['--help'], { cwd: app, env, encoding: 'utf8' })).toMatch(/usage: iommufd-rig/);
  });

  it('type-checks a consumer of both entry points', () => {
    writeFileSync(join(app, 'use.mts'), `
      import { Iommufd, type FaultGroup, ErrorCodes } from 'iommufd';
      import { MockDevice } from 'iommufd/testing';
      export async function handle(fd: Iommufd, dev: MockDevice): Promise<number> {
        const q = fd.allocFaultQueue({ highWaterMark: 64 });
        dev.triggerIopf({ addr: 0x1000n });
        for await (const g of q) { const x: FaultGroup = g; await x.respond('success'); return x.faults[0].cookie; }
        return ErrorCodes.CLOSED.length;
      }`);
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    execFileSync(join(bin, 'node'), [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2022', '--lib', 'es2023,esnext.disposable', '--types', 'node', '--typeRoots', join(root, 'node_modules/@types'), 'use.mts'], { cwd: app, env, stdio: 'inherit' });
  });

  // The rig from the installed package, as a user runs it: `npx iommufd-rig` in the project.
  describe('the rig (npx iommufd-rig)', () => {
    const npx = (args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}) =>
      spawnSync(join(bin, 'npx'), ['iommufd-rig', ...args], { cwd: app, env: opts.env ?? env, encoding: 'utf8', timeout: opts.timeout });
    const rigOut = join(work, 'rig');

    it('prints its usage through npx', () => {
      const r = npx(['--help']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/usage: iommufd-rig/);
      expect(r.stdout).toMatch(/--qemu system\|iopf\|nested\|PATH/);
    });

    // --qemu PATH with a stand-in QEMU (a shell script): what the rig does with QEMU's stderr and
    // the guest's status, with no kernel or QEMU build. --accel tcg: no KVM probe (it would run the
    // stand-in and remember its verdict in the cache).
    const fakeQemu = (status: number | null) => {
      mkdirSync(rigOut, { recursive: true });
      const path = join(rigOut, `qemu-${status}`);
      writeFileSync(path, `#!/bin/sh
for a; do case $a in local,id=rigjob,path=*) job=\${a#local,id=rigjob,path=}; job=\${job%%,*} ;; esac; done
: >"$job/serial.log"
echo 'qemu-system-x86_64: vtd_iova_to_slpte: detected slpte permission error (iova=0x10000000, level=0x3, slpte=0x0, write=0, pasid=0x0)' >&2
echo 'qemu-system-x86_64: vtd_iommu_translate: detected translation failure (dev=00:03:00, iova=0x10000000, pasid=0x0)' >&2
echo 'qemu-system-x86_64: New fault is not recorded due to compression of faults' >&2
echo 'qemu-system-x86_64: warning: a line QEMU means for the user' >&2
echo 'qemu-system-x86_64: vtd_iova_to_slpte: detected IOVA overflow (iova=0x1d40000030c0,pasid=0x0)' >&2
echo 'the guest command ran'
${status === null ? '' : `echo ${status} >"$job/status"`}
`);
      chmodSync(path, 0o755);
      writeFileSync(join(rigOut, 'bzImage'), '');
      return path;
    };
    const fakeArgs = (qemu: string, job: string) => ['--qemu', qemu, '--kernel', join(rigOut, 'bzImage'), '--accel', 'tcg', '--out', join(rigOut, job)];
    const faultLine = /slpte permission error|translation failure|compression of faults/;

    it("keeps QEMU's VT-d fault lines in the job's qemu.log, counted in one line, and passes its other stderr on", () => {
      const r = npx([...fakeArgs(fakeQemu(0), 'ok'), '--', 'true']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe('the guest command ran\n');
      expect(r.stderr).not.toMatch(faultLine);
      expect(r.stderr).toContain('qemu-system-x86_64: warning: a line QEMU means for the user\n');
      expect(r.stderr).toContain('qemu-system-x86_64: vtd_iova_to_slpte: detected IOVA overflow'); // broken tables: shown
      expect(r.stderr).toContain(`[rig] 3 VT-d fault lines from QEMU (the guest's DMA faults, e.g. ATS misses; the demo causes them on purpose) in ${join(rigOut, 'ok', 'qemu.log')}`);
      const log = readFileSync(join(rigOut, 'ok', 'qemu.log'), 'utf8');
      expect(log.split('\n').filter((l) => faultLine.test(l))).toHaveLength(3);
      expect(log).toContain('warning: a line QEMU means for the user');
    });

    it('with -q: silent on success, the guest status on failure (with the fault count), 125 when the guest reports none; never a crash', () => {
      const ok = npx(['-q', ...fakeArgs(fakeQemu(0), 'q0'), '--', 'true']);
      expect(ok.status, ok.stderr).toBe(0);
      expect(ok.stderr.split('\n')).toEqual(['qemu-system-x86_64: warning: a line QEMU means for the user', expect.stringMatching(/detected IOVA overflow/), '']);
      const three = npx(['-q', ...fakeArgs(fakeQemu(3), 'q3'), '--', 'true']);
      expect(three.status, three.stderr).toBe(3);
      expect(three.stderr).toMatch(/^\[rig\] 3 VT-d fault lines from QEMU .* in .*q3\/qemu\.log$/m);
      const none = npx(['-q', ...fakeArgs(fakeQemu(null), 'qn'), '--', 'true']);
      expect(none.status, none.stderr).toBe(125);
      expect(none.stderr).toMatch(/the guest stopped without reporting a status/);
      for (const r of [ok, three, none]) expect(r.stderr).not.toMatch(/ERR_|\n {4}at /);
    });

    it('with -q, a missing build script is an error message, not ERR_STREAM_NULL_VALUES (the bug of a package without build-qemu.sh)', () => {
      const alone = join(rigOut, 'alone');
      mkdirSync(alone, { recursive: true });
      copyFileSync(join(app, 'node_modules/iommufd/scripts/rig.mjs'), join(alone, 'rig.mjs'));
      for (const [args, what] of [[['--qemu', 'iopf'], 'iopf QEMU'], [['--kernel', '6.12'], '6.12 kernel']] as const) {
        const r = spawnSync(join(bin, 'node'), [join(alone, 'rig.mjs'), '-q', ...args, '--', 'true'], { cwd: app, env, encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(1);
        expect(r.stderr).toContain(`iommufd-rig: building the ${what}: ${alone}/build-`);
        expect(r.stderr).not.toMatch(/ERR_|\n {4}at /);
      }
    });

    // Real boots. They run with the user's whole PATH: the build scripts need bash, coreutils and
    // apt, and on a cache miss a compiler. `npm test` runs this file before the guest suites, so
    // on a fresh machine this is where the iopf QEMU (~4-11 min) and the newest kernel (~11 min)
    // get built, through the installed package's scripts, into the cache the guest suites use.
    const userEnv = { ...process.env };
    const installed = join(app, 'node_modules/iommufd/scripts');
    let qemuBin = '';

    it("the installed build scripts find the checkout's cached QEMU and kernel (the same cache keys), building them if missing", () => {
      const resolveWith = (dir: string, script: string, args: string[] = []) =>
        execFileSync('bash', [join(dir, script), ...args], { env: userEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop();
      qemuBin = resolveWith(installed, 'build-qemu.sh')!;
      expect(qemuBin).toMatch(/\/qemu\/10\.2\.2-[0-9a-f]{12}\/bin\/qemu-system-x86_64$/);
      expect(resolveWith(join(root, 'scripts'), 'build-qemu.sh')).toBe(qemuBin);
      const kernel = resolveWith(installed, 'build-kernel.sh', ['newest']);
      expect(kernel).toMatch(/\/bzImage$/);
      expect(resolveWith(join(root, 'scripts'), 'build-kernel.sh', ['newest'])).toBe(kernel);
    }, 3_600_000);

    // Prints the rig's QEMU mode and whether the PRI test device (1234:11e9) is on the guest's bus.
    const PRI_DEVICE = `const fs = require('node:fs'), d = '/sys/bus/pci/devices/';
      console.log(process.env.IOMMUFD_RIG_QEMU, fs.readdirSync(d).some((n) => fs.readFileSync(d + n + '/device', 'utf8').trim() === '0x11e9'))`;
    const boot = (args: string[]) => {
      const t = Date.now();
      const r = npx(['-q', '--timeout', '600', ...args], { env: userEnv, timeout: 700_000 });
      const shown = args.map((a) => (a === PRI_DEVICE ? '<PRI device check>' : a)).join(' ');
      console.log(`[pack] npx iommufd-rig -q ${shown}: exit ${r.status} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      expect(r.stderr).not.toMatch(/ERR_|\n {4}at /);
      return r;
    };

    it('boots: npx iommufd-rig -q --qemu iopf -- node -e ... exits 0, prints only the command\'s output, and the guest has the PRI test device', () => {
      expect(qemuBin, 'the cache test above failed').not.toBe('');
      const r = boot(['--qemu', 'iopf', '--', 'node', '-e', PRI_DEVICE]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe('iopf true\n');
      expect(r.stderr).toBe('');
    }, 720_000);

    it('boots: --qemu nested (the same QEMU, its intel-iommu with x-nesting=on: the guest kernel sees ecap NEST)', () => {
      expect(qemuBin, 'the cache test above failed').not.toBe('');
      // ecap bit 26 (NEST) of the emulated VT-d, as the guest kernel reads it.
      const nest = `const e = BigInt('0x' + require('node:fs').readFileSync('/sys/class/iommu/dmar0/intel-iommu/ecap', 'utf8').trim());
        console.log(process.env.IOMMUFD_RIG_QEMU, (e >> 26n & 1n) === 1n)`;
      const r = boot(['--qemu', 'nested', '--', 'node', '-e', nest]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe('nested true\n');
      expect(r.stderr).toBe('');
    }, 720_000);

    it('boots: --qemu PATH (the cached binary) with -q passes a failing command\'s status (3) through', () => {
      expect(qemuBin, 'the cache test above failed').not.toBe('');
      const r = boot(['--qemu', qemuBin, '--', 'sh', '-c', 'exit 3']);
      expect(r.status, r.stderr).toBe(3);
    }, 720_000);

    it("boots: --qemu system (the host's QEMU)", () => {
      const r = boot(['--qemu', 'system', '--', 'node', '-e', PRI_DEVICE]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe('system false\n');
      expect(r.stderr).toBe('');
    }, 720_000);
  });
});
