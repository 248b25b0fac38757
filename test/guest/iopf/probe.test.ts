// Stage a: iommufd-probe on the rig's PRI test device. Its config space has ATS, PASID and PRI (with
// "PRG Response PASID Required"), the IOMMU offers page requests (VT-d ecap PRS + PDS, the project's
// QEMU patch), and on vfio-pci the kernel attaches it to a fault-capable HWPT where it has those
// (7.x): verdict IOPF yes, exit 0. On 6.12 the same device, the same verdict reasons as the kernel
// gives them: no fault queue on a paging HWPT.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { PCI_EXT_CAP_ID_ATS, PCI_EXT_CAP_ID_PASID, PCI_EXT_CAP_ID_PRI, pciExtendedCapabilities, readPciConfig } from '../../../lib/index.js';
import { probe, type DeviceReport, type ProbeReport } from '../../../lib/probe/index.js';
import { validate } from '../../json_schema.js';
import { ADDRESS, pagingFaultSupported, useVfioPci } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const schema = JSON.parse(readFileSync(join(root, 'schema/probe.schema.json'), 'utf8'));
const ecap = BigInt(`0x${readFileSync('/sys/class/iommu/dmar0/intel-iommu/ecap', 'utf8').trim()}`);
const ecapBit = (n: number) => ((ecap >> BigInt(n)) & 1n) === 1n;

useVfioPci();

function device(r: ProbeReport): DeviceReport {
  const d = r.devices.find((x) => x.address === ADDRESS);
  expect(d, 'the PRI test device is listed').toBeDefined();
  return d!;
}

describe('iommufd-probe and the PRI test device on vfio-pci', () => {
  let report: ProbeReport;
  beforeAll(async () => { report = await probe(); });

  it('the IOMMU takes page requests: ecap SMTS, PRS, PDS and PASID, and the probe says so', () => {
    expect([43, 29, 42, 40].map(ecapBit)).toEqual([true, true, true, true]);
    expect(report.iommus.find((m) => m.name === 'dmar0')).toMatchObject({ kind: 'intel-vtd', pageRequests: 'yes' });
    // No x-nesting in this boot (--qemu iopf): NEST clear, so the probe builds no nested path.
    expect(ecapBit(26)).toBe(false);
    expect(report.iommus.find((m) => m.name === 'dmar0')).toMatchObject({ nesting: 'no', detail: expect.stringMatching(/nesting no \(ecap NEST=0/) });
    expect(device(report).nestedAttach).toBeNull();
  });

  it('its config space has ATS, PASID and PRI (PRG Response PASID Required), read from sysfs', () => {
    const caps = pciExtendedCapabilities(readPciConfig(ADDRESS));
    expect(caps.map((c) => c.id)).toEqual(expect.arrayContaining([PCI_EXT_CAP_ID_ATS, PCI_EXT_CAP_ID_PASID, PCI_EXT_CAP_ID_PRI]));
    const config = readPciConfig(ADDRESS);
    const pri = caps.find((c) => c.id === PCI_EXT_CAP_ID_PRI)!;
    const status = config[pri.offset + 6] | (config[pri.offset + 7] << 8);
    expect(status & 0x8000, 'PRG Response PASID Required').toBe(0x8000);
    expect(device(report)).toMatchObject({
      vendorId: '1234', deviceId: '11e9', driver: 'vfio-pci', iommu: 'dmar0',
      pcie: { express: true, configBytes: 4096, ats: true, pri: true, pasid: true },
    });
  });

  it.runIf(pagingFaultSupported())('7.x: the kernel attaches it to a fault-capable HWPT; verdict IOPF yes; the bin exits 0 and lists it', () => {
    const d = device(report);
    expect(d.iopfAttach).toMatchObject({ status: 'yes' });
    expect(d.verdict).toMatchObject({ iopf: 'yes', path: 'paging', paths: ['paging'], reasons: [] });
    expect(report.summary).toMatchObject({ exitCode: 0, iopfDevices: [ADDRESS] });
    const json = spawnSync(process.execPath, [join(root, 'scripts/probe.mjs'), '--json'], { encoding: 'utf8' });
    expect(json.status).toBe(0);
    expect(validate(schema, JSON.parse(json.stdout))).toEqual([]);
    const text = spawnSync(process.execPath, [join(root, 'scripts/probe.mjs')], { encoding: 'utf8' });
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^  ${ADDRESS}  1234:11e9  vfio-pci .* yes\\s+yes\\s+yes\\s+yes\\s*$`, 'm'));
    expect(text.stdout).toContain('    fault path: paging (paging HWPT yes, nested HWPT -)\n');
    expect(text.stdout).toMatch(new RegExp(`^Result: I/O page faults available for ${ADDRESS} \\(exit 0\\)$`, 'm'));
  });

  it.runIf(!pagingFaultSupported())('6.12: the device has everything, the kernel takes no fault queue on a paging HWPT: not yes, and the reason says why', () => {
    const d = device(report);
    expect(report.features.pagingHwptFault).toMatchObject({ status: 'no', errno: 'ENOTSUP' });
    // QEMU's intel-iommu has no nesting (ecap NEST), so no HWPT at all can take the faults: no.
    expect(d.hwInfo?.vtd?.nest).toBe(false);
    expect(d.verdict).toMatchObject({ iopf: 'no', path: null, paths: [], reasons: [{ code: 'no-fault-hwpt', kind: 'no' }] });
    expect(d.verdict.summary).toMatch(/EOPNOTSUPP.*no nested translation/);
    expect(report.summary).toMatchObject({ exitCode: 1, iopfDevices: [] });
  });
});
