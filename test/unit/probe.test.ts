// iommufd-probe on the host, which has no iommufd: the bin must say why, exit 2, print JSON that
// validates against schema/probe.schema.json, and do it well under a second. The verdict and
// explanation logic is also driven here with synthetic inputs for the cases the host cannot show.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binding } from '../../lib/core/binding.js';
import { decodeVtdHwInfo } from '../../lib/device/hw_info.js';
import {
  explainAbsent, ioctlKnown, iommufdIdentity, iopfVerdict, main, parseKconfig, pcieCapsFrom, probe, ProbeExit, type IommufdReport, type ProbeReport,
  type VerdictInput, vtdNesting,
} from '../../lib/probe/index.js';
import { validate } from '../json_schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const schema = JSON.parse(readFileSync(join(root, 'schema/probe.schema.json'), 'utf8'));

// The bin runs from a private build of lib/ laid out as in the installed package (scripts/ beside
// dist/esm/), so that it neither depends on nor races with the shared dist/ that `npm pack`
// (test/package) rebuilds in parallel. Everything it loads is a copy in that directory, readable
// by every user (not a link into the checkout), so that it also runs as another user when the
// checkout is not readable by others (a clone under a 0700 home, say).
// Under emulation (npm run test:arm64: Node under qemu-user starts in ~2 s) time bounds scale.
const timeScale = Number(process.env.IOMMUFD_TIME_SCALE) || 1;
const work = mkdtempSync(join(tmpdir(), 'iommufd-probe-'));
const bin = join(work, 'scripts/probe.mjs');

beforeAll(() => {
  const out = join(work, 'dist/esm');
  execFileSync(process.execPath, [
    join(root, 'node_modules/typescript/bin/tsc'), '--outDir', out, '--rootDir', join(root, 'lib'), '--module', 'nodenext',
    '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2023,esnext.disposable', '--types', 'node',
    '--typeRoots', join(root, 'node_modules/@types'), '--strict', '--skipLibCheck', join(root, 'lib/probe/cli.ts'),
  ], { stdio: 'inherit' });
  // lib/'s plain JS files (the addon loader, the serve loop's worker), as scripts/build-ts.mjs does.
  for (const f of readdirSync(join(root, 'lib'), { recursive: true, encoding: 'utf8' }).filter((f) => /\.(cjs|mjs)$/.test(f))) {
    mkdirSync(dirname(join(out, f)), { recursive: true });
    copyFileSync(join(root, 'lib', f), join(out, f));
  }
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  mkdirSync(join(work, 'scripts'));
  copyFileSync(join(root, 'scripts/probe.mjs'), bin);
  mkdirSync(join(work, 'schema'));
  copyFileSync(join(root, 'schema/probe.schema.json'), join(work, 'schema/probe.schema.json'));
  copyFileSync(join(root, 'package.json'), join(work, 'package.json'));
  // What lib/native.cjs needs to find and load the addon: binding.gyp marks the package root,
  // node-gyp-build looks in build/Release.
  copyFileSync(join(root, 'binding.gyp'), join(work, 'binding.gyp'));
  mkdirSync(join(work, 'build/Release'), { recursive: true });
  copyFileSync(join(root, 'build/Release/iommufd.node'), join(work, 'build/Release/iommufd.node'));
  cpSync(join(root, 'node_modules/node-gyp-build'), join(work, 'node_modules/node-gyp-build'), { recursive: true });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** chmod o+r on every file and o+rx on every directory under (and including) `dir`. */
function openToAll(dir: string): void {
  chmodSync(dir, statSync(dir).mode | 0o005);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) openToAll(path);
    else if (e.isFile()) chmodSync(path, statSync(path).mode | 0o004);
  }
}

function runBin(args: string[], env: Record<string, string> = {}, as: { uid?: number; gid?: number } = {}) {
  const started = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, ...as });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - started };
}

// What the host's kernel config says about iommufd, read independently of the probe.
function hostIommufdConfig(): string | undefined {
  try {
    const text = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
    return /^CONFIG_IOMMUFD=([ym])$/m.exec(text)?.[1] ?? (/^# CONFIG_IOMMUFD is not set$/m.test(text) ? 'n' : undefined);
  } catch {
    return undefined;
  }
}

describe('the JSON Schema validator', () => {
  // Without this, a validator that accepted everything would make the schema tests pass.
  const finding = { status: 'yes', detail: 'x', errno: null };
  const findingSchema = { $defs: schema.$defs, $ref: '#/$defs/finding' };
  it('rejects what the schema forbids', () => {
    expect(validate(schema, {})).toContain('$: missing required schemaVersion');
    expect(validate(findingSchema, finding)).toEqual([]);
    expect(validate(findingSchema, { ...finding, status: 'maybe' }).join()).toMatch(/status: "maybe" is not one of/);
    expect(validate(findingSchema, { ...finding, extra: 1 }).join()).toMatch(/\.extra: not allowed/);
    expect(validate(findingSchema, { ...finding, errno: 'enotty' }).join()).toMatch(/does not match/);
    expect(validate(findingSchema, { status: 'no', detail: 'x' }).join()).toMatch(/missing required errno/);
    const pcie = { $defs: schema.$defs, ...schema.$defs.device.properties.pcie };
    expect(validate(pcie, null)).toEqual([]);
    expect(validate(pcie, { configBytes: 1 }).join()).toMatch(/matches 0 of the oneOf/);
    expect(() => validate({ type: 'object', unevaluatedProperties: false }, {})).toThrow(/unsupported schema keyword/);
  });
});

describe('iommufd-probe on the host (no iommufd)', () => {
  it('the host really has no /dev/iommu (this suite is written for that)', () => {
    expect(existsSync('/dev/iommu')).toBe(false);
  });

  let report: ProbeReport;
  it('--json: exit 2, valid against the schema, and well under a second', () => {
    runBin(['--json']); // warm the page cache: the bound is for the probe, not for a cold disk
    const r = runBin(['--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(ProbeExit.NO_IOMMUFD);
    expect(r.ms).toBeLessThan(1000 * timeScale);
    report = JSON.parse(r.stdout);
    expect(validate(schema, report)).toEqual([]);
    expect(report.summary.exitCode).toBe(2);
    expect(report.durationMs).toBeLessThan(1000 * timeScale);
  });

  it('explains why there is no iommufd', () => {
    const f = report.iommufd;
    expect(f).toMatchObject({ path: '/dev/iommu', present: false, canOpen: false, mode: null });
    expect(f.reasonCode).not.toBeNull();
    expect(f.reason).toMatch(/iommufd|CONFIG_IOMMUFD/);
    const cfg = hostIommufdConfig();
    // The verdict follows the host's own config, read here without the probe's code.
    if (cfg === 'n') expect(f).toMatchObject({ reasonCode: 'not-configured', kernelConfig: { source: '/proc/config.gz', options: { IOMMUFD: 'n' } } });
    else if (cfg === 'm') expect(f.reasonCode).toMatch(/module-not-loaded|no-device-node/);
    else expect(['probably-not-configured', 'module-not-loaded', 'no-device-node', 'unknown']).toContain(f.reasonCode);
    expect(report.summary.text).toContain(f.reason);
    for (const x of Object.values(report.features)) expect(x.status).toBe('no');
  });

  it('lists every PCI device of the host with its verdict', () => {
    const sysfs = existsSync('/sys/bus/pci/devices') ? readdirSync('/sys/bus/pci/devices').sort() : [];
    expect(report.devices.map((d) => d.address)).toEqual(sysfs);
    for (const d of report.devices) {
      expect(d.vendorId).toBe(readFileSync(`/sys/bus/pci/devices/${d.address}/vendor`, 'utf8').trim().slice(2));
      expect(d.verdict.iopf).toBe('no');
      // No iommufd here, so every device says so among its reasons.
      expect(d.verdict.reasons.map((x) => x.code)).toContain('no-iommufd');
      expect(d.hwInfo).toBeNull();
    }
  });

  it('text by default: the reason, the result line, no colour on a pipe; colour on request', () => {
    const plain = runBin([]);
    expect(plain.status).toBe(2);
    expect(plain.stdout).toContain(`why: ${report.iommufd.reason}`);
    expect(plain.stdout).toMatch(/^Result: no iommufd: .* \(exit 2\)$/m);
    expect(plain.stdout).not.toContain('\x1b[');
    expect(runBin(['--color']).stdout).toContain('\x1b[31m');
    expect(runBin([], { FORCE_COLOR: '1' }).stdout).toContain('\x1b[');
    expect(runBin(['--color', '--no-color']).stdout).not.toContain('\x1b[');
  });

  it('usage errors exit 64; --help exits 0; --schema prints the schema', () => {
    const bad = runBin(['--frobnicate']);
    expect(bad.status).toBe(ProbeExit.USAGE);
    expect(bad.stderr).toMatch(/unknown argument "--frobnicate"[\s\S]*usage: iommufd-probe/);
    expect(bad.stdout).toBe('');
    const help = runBin(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Exit status: 0 IOPF available/);
    const printed = runBin(['--schema']);
    expect(printed.status).toBe(0);
    expect(JSON.parse(printed.stdout)).toEqual(schema);
  });

  it('--help lists every option docs/probe.md lists, and docs/probe.md every option --help lists', () => {
    // docs/probe.md has an "### Options" table whose first column names them.
    const readme = readFileSync(join(root, 'docs/probe.md'), 'utf8');
    const section = readme.slice(readme.indexOf('`iommufd-probe`'));
    const table = section.slice(section.indexOf('### Options'), section.indexOf('### Exit status'));
    const documented = [...table.matchAll(/^\| (.*?) \|/gm)].flatMap((m) => [...m[1].matchAll(/`(-[-\w]+)/g)].map((o) => o[1]));
    expect(documented).toContain('--json');
    const help = runBin(['--help']).stdout;
    const listed = [...help.matchAll(/^ {2}(-.*?)(?: {2,}|$)/gm)].flatMap((m) => [...m[1].matchAll(/(?:^|[ ,])(-[-\w]+)/g)].map((o) => o[1]));
    expect(listed).toContain('--help');
    expect([...new Set(listed)].sort()).toEqual([...new Set(documented)].sort());
    for (const option of documented) expect(help).toContain(option);
  });

  it('--device names another node: a missing one is reported as absent', () => {
    const r = runBin(['--json', '--device', '/nonexistent/iommu']);
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout).iommufd.path).toBe('/nonexistent/iommu');
  });

  it('a node this user may not open: exit 3, with the permissions in the reason', () => {
    // The host has no /dev/iommu, so a root-only file stands in for one, opened as nobody.
    if (process.getuid?.() !== 0) throw new Error('this test needs root, to run the probe as another user');
    // Give nobody what it runs: the private copy, readable and traversable by all whatever the
    // umask, in a temporary directory every user can reach.
    openToAll(work);
    for (let dir = dirname(work); dir !== dirname(dir); dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) throw new Error(`${dir} is not searchable by other users: point TMPDIR at a directory that is`);
    }
    const node = join(work, 'iommu-0600');
    writeFileSync(node, '');
    chmodSync(node, 0o600);
    const r = runBin(['--json', '--device', node], {}, { uid: 65534, gid: 65534 });
    expect(r.status).toBe(ProbeExit.NO_ACCESS);
    const rep = JSON.parse(r.stdout);
    expect(validate(schema, rep)).toEqual([]);
    expect(rep.iommufd).toMatchObject({ present: true, canOpen: false, openError: 'EACCES', mode: '0600', uid: 0, reasonCode: 'permission' });
    expect(rep.iommufd.reason).toMatch(/-rw------- owned by uid 0 .* this user \(uid 65534\) may not open it/);
    expect(rep.features.faultQueue.status).toBe('unknown');
    // Without root only 64 bytes of config space are readable: capabilities are unknown, not "no".
    for (const d of rep.devices) expect(d.pcie).toMatchObject({ configBytes: 64, pri: null });
  });

  it('in process: no file descriptor left open', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const r = await probe();
    expect(r.summary.exitCode).toBe(2);
    expect(fds()).toBe(before);
  });

  it('a node that is no iommufd (/dev/null opens, but knows no iommufd ioctl): exit 2, saying so', async () => {
    const out: string[] = [];
    const code = await main(['--json', '--device', '/dev/null'], { stdout: { write: (s: string) => out.push(s) }, stderr: { write: () => {} }, env: {} });
    const r = JSON.parse(out.join(''));
    expect(validate(schema, r)).toEqual([]);
    expect(code).toBe(ProbeExit.NO_IOMMUFD);
    expect(r.summary.exitCode).toBe(ProbeExit.NO_IOMMUFD);
    expect(r.iommufd).toMatchObject({ path: '/dev/null', present: true, canOpen: true, openError: null, reasonCode: 'not-iommufd' });
    expect(r.iommufd.reason).toBe('/dev/null opens but is not an iommufd: it knows no iommufd ioctl (IOMMU_DESTROY and IOMMU_IOAS_ALLOC answer ENOTTY)');
    expect(r.summary.text).toBe(`no iommufd: ${r.iommufd.reason}`);
    for (const x of Object.values(r.features) as { status: string; detail: string }[]) {
      expect(x).toMatchObject({ status: 'no', detail: 'not probed: /dev/null is not an iommufd' });
    }
    for (const d of r.devices) expect(d.verdict.reasons.map((x: { code: string }) => x.code)).toContain('no-iommufd');
    const text = runBin(['--device', '/dev/null']);
    expect(text.status).toBe(2);
    expect(text.stdout).toMatch(/^Result: no iommufd: \/dev\/null opens but is not an iommufd: .* \(exit 2\)$/m);
  });

  it('an iommufd-numbered ioctl on a node that is no iommufd answers ENOTTY', () => {
    const fd = binding.open('/dev/null');
    try {
      expect(iommufdIdentity(fd)).toMatchObject({ iommufd: false, errno: 'ENOTTY' });
    } finally {
      binding.close(fd);
    }
  });
});

describe('ioctlKnown and probeIoctl', () => {
  it('the ioctl numbers come from the addon (native/uapi.h), and are the kernel\'s', () => {
    // _IO(';', nr): numbers from the kernel's own headers, written down here independently.
    expect(binding.ioctls).toMatchObject({
      IOMMU_DESTROY: 0x3b80, IOMMU_IOAS_ALLOC: 0x3b81, IOMMU_HWPT_ALLOC: 0x3b89, IOMMU_FAULT_QUEUE_ALLOC: 0x3b8e,
      IOMMU_VEVENTQ_ALLOC: 0x3b93, IOMMU_TEST_CMD: 0x3ba0, VFIO_DEVICE_ATTACH_IOMMUFD_PT: 0x3b77,
    });
    expect(Object.isFrozen(binding.ioctls)).toBe(true);
    expect(binding.probeConstants).toEqual({ IOMMU_VEVENTQ_TYPE_SELFTEST: 0xbeefbeef, VFIO_DEVICE_ATTACH_PASID: 1 });
  });

  it('lib/ numbers no ioctl of its own', () => {
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
    for (const f of files(join(root, 'lib'))) {
      const text = readFileSync(f, 'utf8');
      expect(text, f).not.toMatch(/0x3b[0-9a-f]{2}\b|IOMMUFD_TYPE|<< 8\)/i);
    }
  });

  it('a file that knows no iommufd ioctl answers ENOTTY', () => {
    const fd = binding.open('/dev/null');
    try {
      expect(ioctlKnown(fd, binding.ioctls.IOMMU_FAULT_QUEUE_ALLOC)).toEqual({ known: 'no', errno: 'ENOTTY' });
      expect(binding.probeIoctl(fd, 0x3b8e, new Uint8Array(16))).toBe(-25);
      expect(() => binding.probeIoctl(fd, 0x3b8e, new Uint8Array(2))).toThrow(RangeError);
      expect(() => binding.probeIoctl(fd, 0x3b8e, new Uint16Array(8) as unknown as Uint8Array)).toThrow(TypeError);
    } finally {
      binding.close(fd);
    }
  });
});

describe('explainAbsent', () => {
  const base: Pick<IommufdReport, 'path' | 'kernelConfig' | 'moduleLoaded' | 'moduleFile' | 'miscMinor'> = {
    path: '/dev/iommu', kernelConfig: { source: null, options: {} }, moduleLoaded: false, moduleFile: null, miscMinor: null,
  };
  it('names the cause from the evidence', () => {
    expect(explainAbsent({ ...base, kernelConfig: { source: '/boot/config-x', options: { IOMMUFD: 'n' } } }))
      .toEqual({ reasonCode: 'not-configured', reason: 'this kernel was built without iommufd: CONFIG_IOMMUFD is not set (/boot/config-x)' });
    expect(explainAbsent({ ...base, kernelConfig: { source: '/proc/config.gz', options: { IOMMUFD: 'm' } } }).reasonCode).toBe('module-not-loaded');
    expect(explainAbsent({ ...base, moduleFile: '/lib/modules/x/kernel/drivers/iommu/iommufd/iommufd.ko.xz' }).reason).toMatch(/modprobe iommufd/);
    expect(explainAbsent({ ...base, miscMinor: 257 }).reason).toMatch(/mknod \/dev\/iommu c 10 257/);
    expect(explainAbsent(base).reasonCode).toBe('probably-not-configured');
  });

  it('parseKconfig reads y, m and "is not set"', () => {
    expect(parseKconfig('CONFIG_IOMMUFD=m\n# CONFIG_VFIO is not set\nCONFIG_PCI_PRI=y\nCONFIG_IOMMUFD_TESTX=y\n'))
      .toEqual({ IOMMUFD: 'm', VFIO: 'n', PCI_PRI: 'y' });
  });
});

describe('config space decoding', () => {
  // A PCIe device: capability list 0x40 (PCI Express), extended list ATS at 0x100 -> PRI at
  // 0x140 -> PASID at 0x180.
  function config({ express = true, ext = [0x0f, 0x13, 0x1b], size = 4096 } = {}): Uint8Array {
    const c = new Uint8Array(size);
    const v = new DataView(c.buffer);
    v.setUint16(0, 0x8086, true);
    c[0x06] = 0x10; // status: capability list
    c[0x34] = 0x40;
    c[0x40] = express ? 0x10 : 0x05;
    ext.forEach((id, i) => {
      const at = 0x100 + i * 0x40;
      const next = i + 1 < ext.length ? at + 0x40 : 0;
      if (at + 4 <= size) v.setUint32(at, id | (1 << 16) | (next << 20), true);
    });
    return c;
  }
  it('finds ATS, PRI and PASID', () => {
    expect(pcieCapsFrom(config())).toEqual({ configBytes: 4096, express: true, ats: true, pri: true, pasid: true });
    expect(pcieCapsFrom(config({ ext: [0x0f, 0x1b] }))).toMatchObject({ ats: true, pri: false, pasid: true });
  });
  it('conventional PCI has none; 64 readable bytes (no root) tell nothing', () => {
    expect(pcieCapsFrom(config({ express: false, size: 256 }))).toEqual({ configBytes: 256, express: false, ats: false, pri: false, pasid: false });
    expect(pcieCapsFrom(config().slice(0, 64))).toEqual({ configBytes: 64, express: null, ats: null, pri: null, pasid: null });
  });
});

describe('VT-d nesting from ecap', () => {
  it('yes with SMTS, NEST, FLTS and SLTS (the rig\'s x-nesting ecap); each one missing is named', () => {
    const { ecap } = decodeVtdHwInfo(vtdRegs(0x81d2008c222f0606n, 0xcd3aa4f00f4en));
    expect(ecap).toMatchObject({ smts: true, nest: true, flts: true, slts: true });
    expect(vtdNesting(ecap)).toEqual({ status: 'yes', detail: 'nesting yes (ecap SMTS, NEST, FLTS and SLTS)' });
    // Without x-nesting (the rig's --qemu iopf): NEST clear, and only the second stage.
    const plain = decodeVtdHwInfo(vtdRegs(0n, 0xcd3aa4f00f4en & ~(1n << 26n) & ~(1n << 47n))).ecap;
    expect(vtdNesting(plain)).toEqual({ status: 'no', detail: 'nesting no (ecap NEST=0, FLTS=0 (no first stage))' });
    expect(vtdNesting({ smts: false, nest: true, flts: true, slts: false }).detail).toBe('nesting no (ecap SMTS=0 (no scalable mode), SLTS=0 (no second stage))');
  });
});

function vtdRegs(cap: bigint, ecap: bigint): Uint8Array {
  const data = new Uint8Array(24);
  new DataView(data.buffer).setBigUint64(8, cap, true);
  new DataView(data.buffer).setBigUint64(16, ecap, true);
  return data;
}

describe('iopfVerdict', () => {
  const capable: VerdictInput = {
    pcie: { configBytes: 4096, express: true, ats: true, pri: true, pasid: true },
    iommuGroup: 3, iommuPageRequests: { status: 'yes', detail: 'VT-d ecap SMTS, PRS and PDS set' },
    driver: 'vfio-pci', vfioCdev: '/dev/vfio/devices/vfio0', iommufdUsable: true, vfioBusy: false,
    iopfAttach: { status: 'yes', detail: 'attached', errno: null },
  };
  it('yes when everything lines up and the kernel attached it', () => {
    expect(iopfVerdict(capable)).toEqual({ iopf: 'yes', summary: 'yes: the kernel enabled I/O page faults for it on attach', path: 'paging', paths: ['paging'], reasons: [] });
  });
  it('a device like edu: "no PRI" first, then the IOMMU and the driver', () => {
    const v = iopfVerdict({
      ...capable, pcie: { configBytes: 256, express: false, ats: false, pri: false, pasid: false }, driver: null, vfioCdev: null,
      iommuPageRequests: { status: 'no', detail: 'VT-d ecap PRS=0 (no page request support)' }, iopfAttach: null,
    });
    expect(v.iopf).toBe('no');
    expect(v.summary).toMatch(/^no PRI/);
    expect(v.reasons.map((r) => r.code)).toEqual(['no-pri', 'iommu-no-page-requests', 'not-vfio']);
  });
  it('PRI without ATS is no; the kernel refusing the attach is no', () => {
    expect(iopfVerdict({ ...capable, pcie: { ...capable.pcie!, ats: false } }).reasons.map((r) => r.code)).toEqual(['no-ats']);
    const refused = iopfVerdict({ ...capable, iopfAttach: { status: 'no', detail: 'ENODEV', errno: 'ENODEV' } });
    expect(refused).toMatchObject({ iopf: 'no', reasons: [{ code: 'attach-refused', kind: 'no' }] });
  });
  it('before 6.13 (no fault queue on a paging HWPT): no without IOMMU nesting, unknown with it', () => {
    const refusal = { status: 'no' as const, detail: 'IOMMU_HWPT_ALLOC refused a fault queue on a paging HWPT (EOPNOTSUPP)', errno: 'ENOTSUP' };
    const v = iopfVerdict({ ...capable, iopfAttach: null, pagingHwptFault: refusal, nesting: false });
    expect(v).toMatchObject({ iopf: 'no', reasons: [{ code: 'no-fault-hwpt', kind: 'no' }] });
    expect(v.summary).toMatch(/EOPNOTSUPP\); its IOMMU has no nested translation/);
    expect(iopfVerdict({ ...capable, iopfAttach: null, pagingHwptFault: refusal, nesting: true }))
      .toMatchObject({ iopf: 'unknown', reasons: [{ code: 'no-fault-hwpt', kind: 'unknown' }] });
    expect(iopfVerdict({ ...capable, iopfAttach: null, pagingHwptFault: refusal, nesting: null }).iopf).toBe('unknown');
  });
  describe('the nested path (an IOMMU with nesting: the probe builds NEST_PARENT + nested HWPT with a fault queue, attaches, reads ATS)', () => {
    const refusal = { status: 'no' as const, detail: 'IOMMU_HWPT_ALLOC refused a fault queue on a paging HWPT (EOPNOTSUPP)', errno: 'ENOTSUP' };
    const nestedYes = { status: 'yes' as const, detail: 'attached with ATS enabled', errno: null, step: null, atsEnabled: true };
    const atsOff = { status: 'no' as const, detail: 'the kernel attached the nested HWPT but left ATS disabled on the device', errno: null, step: 'ats' as const, atsEnabled: false };
    const pre613 = { ...capable, iopfAttach: null, pagingHwptFault: refusal, nesting: true };

    it('7.x: paging and nested both work: yes through paging, both paths listed', () => {
      expect(iopfVerdict({ ...capable, pagingHwptFault: { status: 'yes', detail: 'ok', errno: null }, nesting: true, nestedAttach: nestedYes }))
        .toEqual({ iopf: 'yes', summary: 'yes: the kernel enabled I/O page faults for it on attach', path: 'paging', paths: ['paging', 'nested'], reasons: [] });
    });
    it('7.x: paging works, nested does not: still yes through paging; the nested failure is no reason against', () => {
      expect(iopfVerdict({ ...capable, nesting: true, nestedAttach: atsOff })).toMatchObject({ iopf: 'yes', path: 'paging', paths: ['paging'], reasons: [] });
    });
    it('a kernel without paging fault queues whose nested path works: yes through nested, no-fault-hwpt gone', () => {
      const v = iopfVerdict({ ...pre613, nestedAttach: nestedYes });
      expect(v).toMatchObject({ iopf: 'yes', path: 'nested', paths: ['nested'], reasons: [] });
      expect(v.summary).toMatch(/^yes: the kernel attached it to a fault-capable nested HWPT with ATS on/);
    });
    it('6.12: the nested HWPT attaches but ATS is left off: no, nested-ats-off, saying both why paging and why nested fail', () => {
      const v = iopfVerdict({ ...pre613, nestedAttach: atsOff });
      expect(v).toMatchObject({ iopf: 'no', path: null, paths: [], reasons: [{ code: 'nested-ats-off', kind: 'no' }] });
      expect(v.summary).toMatch(/^IOMMU_HWPT_ALLOC refused a fault queue on a paging HWPT \(EOPNOTSUPP\); on the nested path the kernel attached the nested HWPT but left ATS disabled/);
      // Attached, but a device without an ATS capability: off all the same.
      expect(iopfVerdict({ ...pre613, nestedAttach: { ...atsOff, atsEnabled: null } }).reasons.map((r) => r.code)).toEqual(['nested-ats-off']);
    });
    it('a refusal on the nested path: no (EOPNOTSUPP, ENODEV) or unknown (any other errno), at the step it happened', () => {
      const attach = { status: 'no' as const, detail: 'attaching to the nested HWPT failed with ENODEV', errno: 'ENODEV', step: 'attach' as const, atsEnabled: null };
      expect(iopfVerdict({ ...pre613, nestedAttach: attach })).toMatchObject({ iopf: 'no', reasons: [{ code: 'nested-refused', kind: 'no' }] });
      expect(iopfVerdict({ ...pre613, nestedAttach: { ...attach, status: 'unknown', errno: 'EBUSY' } }))
        .toMatchObject({ iopf: 'unknown', reasons: [{ code: 'nested-untested', kind: 'unknown' }] });
    });
    it('the paging attach refused and the nested path refused too: both reasons', () => {
      const v = iopfVerdict({ ...capable, iopfAttach: { status: 'no', detail: 'ENODEV', errno: 'ENODEV' }, nesting: true,
        nestedAttach: { status: 'no', detail: 'ENODEV', errno: 'ENODEV', step: 'attach', atsEnabled: null } });
      expect(v.reasons.map((r) => r.code)).toEqual(['attach-refused', 'nested-refused']);
      expect(v.summary).toBe('ENODEV');
    });
    it('without a nested result the old reasons stand: no-fault-hwpt, no without nesting and unknown with it', () => {
      expect(iopfVerdict({ ...pre613, nesting: false, nestedAttach: null }).reasons).toMatchObject([{ code: 'no-fault-hwpt', kind: 'no' }]);
      expect(iopfVerdict({ ...pre613, nestedAttach: null }).reasons).toMatchObject([{ code: 'no-fault-hwpt', kind: 'unknown' }]);
    });
    it('a device that cannot do IOPF stays no whatever path the kernel attached (no-pri first)', () => {
      expect(iopfVerdict({ ...pre613, pcie: { ...capable.pcie!, pri: false }, nestedAttach: atsOff }).reasons.map((r) => r.code)).toEqual(['no-pri', 'nested-ats-off']);
    });
  });
  it('unknown, not yes, when something could not be checked', () => {
    const v = iopfVerdict({ ...capable, pcie: { configBytes: 64, express: null, ats: null, pri: null, pasid: null } });
    expect(v).toMatchObject({ iopf: 'unknown', reasons: [{ code: 'config-unreadable', kind: 'unknown' }] });
    expect(iopfVerdict({ ...capable, vfioBusy: true, iopfAttach: null }).iopf).toBe('unknown');
  });
  it('a capable device not on vfio-pci is no, saying so', () => {
    expect(iopfVerdict({ ...capable, driver: 'nvme', vfioCdev: null, iopfAttach: null }))
      .toMatchObject({ iopf: 'no', reasons: [{ code: 'not-vfio', text: expect.stringMatching(/bound to nvme, not vfio-pci/) }] });
  });
});
