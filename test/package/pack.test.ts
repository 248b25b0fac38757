// The published tarball: right contents, and an install into a clean directory with no compiler
// on PATH that loads the prebuilt addon from both module systems, with working type declarations.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const work = mkdtempSync(join(tmpdir(), 'iommufd-pack-'));
let files: string[] = [];
let tarball = '';

beforeAll(() => {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  files = info.files.map((f: { path: string }) => f.path);
  tarball = join(work, info.filename);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('ships both builds with types, the linux-x64 prebuild, the sources for a fallback build and the rig', () => {
    for (const f of [
      'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/esm/testing.js', 'dist/esm/testing.d.ts', 'dist/esm/native.cjs',
      'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/testing.js', 'dist/cjs/package.json',
      'dist/esm/serve_worker.mjs', 'dist/esm/serve_worker_path.cjs', 'dist/cjs/serve_worker.mjs', 'dist/cjs/serve_worker_path.cjs',
      'prebuilds/linux-x64/iommufd.node', 'prebuilds/linux-arm64/iommufd.node', 'binding.gyp', 'native/uapi.h', 'native/fault_queue.cc',
      'scripts/rig.mjs', 'scripts/probe.mjs', 'schema/probe.schema.json', 'scripts/build-kernel.sh', 'scripts/guest/init', 'scripts/kernel/iommufd.config', 'README.md', 'package.json',
    ]) expect(files).toContain(f);
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
    for (const m of ['dist/esm/vfio_device.js.map', 'dist/cjs/probe/verdict.js.map']) {
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
  // Only node, npm and sh: no cc, g++, make or python, so a source build could not happen.
  const env = { ...process.env, PATH: bin };

  beforeAll(() => {
    mkdirSync(app);
    mkdirSync(bin);
    for (const tool of ['node', 'npm', 'sh']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: app, env, stdio: ['ignore', 'ignore', 'inherit'] });
  });

  it('has no compiler on the PATH it installed with', () => {
    expect(readdirSync(bin).sort()).toEqual(['node', 'npm', 'sh']);
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
});
