// iommufd-probe with nesting (--qemu nested: the intel-iommu with x-nesting, ecap NEST, both
// stages): the probe reports nesting per IOMMU, builds the nested path for the PRI test device as
// a VMM would (NEST_PARENT on an IOAS, a fault queue, a nested HWPT with a VT-d stage 1, the
// device attached to the parent then to the nested HWPT), reads the device's ATS enable bit and
// says which path takes the faults. 7.x: paging (and nested works too), exit 0. 6.12: no paging
// fault queue, and the nested attach leaves ATS off (intel/nested.c:30), so no fault can arrive:
// IOPF no with nested-ats-off, exit 1.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Iommufd, PCI_EXT_CAP_ID_ATS, pciExtendedCapabilities, readPciConfig, VfioDevice } from '../../../lib/index.js';
import { probe, ProbeExit, type DeviceReport, type ProbeReport } from '../../../lib/probe/index.js';
import { validate } from '../../json_schema.js';
import { ADDRESS } from '../iopf/helpers.js';
import { rig } from '../rig.js';
import { k7, useVfioPci } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const schema = JSON.parse(readFileSync(join(root, 'schema/probe.schema.json'), 'utf8'));
const fds = () => readdirSync('/proc/self/fd').length;

useVfioPci();

/** The device's ATS control register as the kernel left it, read from sysfs (not through the probe). */
function atsControl(): number {
  const config = readPciConfig(ADDRESS);
  const ats = pciExtendedCapabilities(config).find((c) => c.id === PCI_EXT_CAP_ID_ATS)!;
  return config[ats.offset + 6] | (config[ats.offset + 7] << 8);
}

function device(r: ProbeReport): DeviceReport {
  const d = r.devices.find((x) => x.address === ADDRESS);
  expect(d, 'the PRI test device is listed').toBeDefined();
  return d!;
}

function runBin(args: string[]) {
  return spawnSync(process.execPath, [join(root, 'scripts/probe.mjs'), ...args], { encoding: 'utf8' });
}

describe('iommufd-probe with nested translation (x-nesting)', () => {
  let report: ProbeReport;
  let atsBefore: number;
  beforeAll(async () => {
    expect(rig.qemu, 'runs in a rig booted with --qemu nested').toBe('nested');
    atsBefore = atsControl();
    const before = fds();
    report = await probe();
    expect(fds(), 'no fd left open').toBe(before);
  });

  it('dmar0: nesting yes (ecap SMTS, NEST, FLTS, SLTS), from sysfs and through the device (GET_HW_INFO)', () => {
    expect(report.iommus.find((m) => m.name === 'dmar0')).toMatchObject({
      kind: 'intel-vtd', pageRequests: 'yes', nesting: 'yes', firstStage: 'yes', secondStage: 'yes',
      detail: expect.stringMatching(/; nesting yes \(ecap SMTS, NEST, FLTS and SLTS\)$/),
    });
    expect(device(report).hwInfo?.vtd).toMatchObject({ smts: true, nest: true, flts: true, slts: true });
  });

  it.runIf(k7)('7.x: the paging path takes the faults, and the nested path works too (attached, ATS on); IOPF yes, exit 0', () => {
    const d = device(report);
    expect(d.iopfAttach).toMatchObject({ status: 'yes' });
    expect(d.nestedAttach).toEqual({ status: 'yes', errno: null, step: null, atsEnabled: true, detail: expect.stringMatching(/with ATS enabled \(ATS control at 0x106 reads 0x8000\)/) });
    expect(d.verdict).toEqual({ iopf: 'yes', summary: 'yes: the kernel enabled I/O page faults for it on attach', path: 'paging', paths: ['paging', 'nested'], reasons: [] });
    expect(report.summary).toMatchObject({ exitCode: ProbeExit.IOPF_AVAILABLE, iopfDevices: [ADDRESS] });
  });

  it.runIf(!k7)('6.12: no fault queue on a paging HWPT, and the nested attach leaves ATS off: IOPF no (nested-ats-off), exit 1', () => {
    const d = device(report);
    expect(report.features.pagingHwptFault).toMatchObject({ status: 'no', errno: 'ENOTSUP' });
    expect(d.iopfAttach).toBeNull();
    expect(d.nestedAttach).toMatchObject({ status: 'no', errno: null, step: 'ats', atsEnabled: false });
    expect(d.nestedAttach!.detail).toMatch(/^the kernel attached the nested HWPT but left ATS disabled on the device \(ATS control at 0x106 reads 0x0000; Linux 6\.12: .*nested\.c:30.*\), so the device cannot send page requests$/);
    expect(d.verdict).toMatchObject({ iopf: 'no', path: null, paths: [], reasons: [{ code: 'nested-ats-off', kind: 'no' }] });
    expect(d.verdict.summary).toMatch(/EOPNOTSUPP.*; on the nested path the kernel attached the nested HWPT but left ATS disabled/);
    expect(report.summary).toMatchObject({ exitCode: ProbeExit.NO_IOPF_DEVICE, iopfDevices: [] });
  });

  it('the bin: --json valid against the schema and the same verdict; the text names the path; the exit status the verdict gives', () => {
    const exit = k7 ? 0 : 1;
    const json = runBin(['--json']);
    expect(json.stderr).toBe('');
    expect(json.status).toBe(exit);
    const r = JSON.parse(json.stdout);
    expect(validate(schema, r)).toEqual([]);
    expect(device(r).verdict).toEqual(device(report).verdict);
    expect(device(r).nestedAttach).toEqual(device(report).nestedAttach);
    const text = runBin([]);
    expect(text.status).toBe(exit);
    expect(text.stdout).toMatch(/^ {2}dmar0\s+intel-vtd {2}page requests yes\s+PASID yes\s+nesting yes\s*$/m);
    expect(text.stdout).toContain(k7 ? '    fault path: paging (paging HWPT yes, nested HWPT yes)\n' : '    fault path: none (paging HWPT -, nested HWPT no)\n');
    expect(text.stdout).toMatch(k7 ? new RegExp(`^Result: I/O page faults available for ${ADDRESS} \\(exit 0\\)$`, 'm')
      : /^Result: iommufd is usable, but no device can take I\/O page faults \(exit 1\)$/m);
  });

  it('leaves the device as it found it: ATS control unchanged, and it binds to a new iommufd', async () => {
    expect(atsControl()).toBe(atsBefore);
    const iommufd = Iommufd.open();
    try {
      const dev = VfioDevice.openPci(ADDRESS);
      try {
        expect(dev.bind(iommufd)).toBeGreaterThan(0);
      } finally {
        dev.close();
      }
    } finally {
      await iommufd.close();
    }
  });

  it('the guest kernel logged no warning, BUG or oops', () => {
    const log = execFileSync('dmesg', { encoding: 'utf8' });
    expect(log.split('\n').filter((l) => /WARNING:|BUG:|Oops|Call Trace|refcount_t:/.test(l))).toEqual([]);
  });
});
