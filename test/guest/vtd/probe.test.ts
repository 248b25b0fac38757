// iommufd-probe in the rig (intel-iommu on): the edu device listed with its capabilities and the
// verdict "no PRI", the uAPI features as each kernel really has them, and --json valid against
// its schema. Run twice per boot: edu on no driver (what the probe finds on a fresh guest), then
// edu on vfio-pci, where the probe can ask the kernel about the device itself.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindVfioPci, findPciDevices, Iommufd, pciDriver, VfioDevice } from '../../../lib/index.js';
import { probe, type DeviceReport, type ProbeReport } from '../../../lib/probe/index.js';
import { validate } from '../../json_schema.js';
import { kernelVersion, rig } from '../rig.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const schema = JSON.parse(readFileSync(join(root, 'schema/probe.schema.json'), 'utf8'));
const EDU = findPciDevices(0x1234, 0x11e8)[0];
const [major, minor] = kernelVersion();
// Expectations are written for the two kernels the rig builds.
const newest = major >= 7;
if (!newest && !(major === 6 && minor === 12)) throw new Error(`probe.test.ts expects a 7.x or 6.12 kernel, not ${major}.${minor}`);

// The IOMMU's own answer, read from sysfs here rather than through the probe.
const ecap = BigInt(`0x${readFileSync('/sys/class/iommu/dmar0/intel-iommu/ecap', 'utf8').trim()}`);
const ecapBit = (n: number) => ((ecap >> BigInt(n)) & 1n) === 1n;
const iommuPageRequests = ecapBit(43) && ecapBit(29) && ecapBit(42); // SMTS, PRS, PDS

function unbind(address: string): void {
  const dir = `/sys/bus/pci/devices/${address}`;
  if (pciDriver(address) !== undefined) writeFileSync(`${dir}/driver/unbind`, address);
  writeFileSync(`${dir}/driver_override`, '\n');
}

const fds = () => readdirSync('/proc/self/fd').length;

function runBin(args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'scripts/probe.mjs'), ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function edu(r: ProbeReport): DeviceReport {
  const d = r.devices.find((x) => x.vendorId === '1234' && x.deviceId === '11e8');
  expect(d, 'edu (1234:11e8) is listed').toBeDefined();
  return d!;
}

let initialDriver: string | undefined;
beforeAll(() => {
  expect(rig.inGuest && rig.intelIommu, 'runs in the rig with intel_iommu=on').toBe(true);
  expect(existsSync(join(root, 'dist/esm/probe/cli.js')), 'the bin runs from dist/: node scripts/build-ts.mjs first').toBe(true);
  expect(EDU).toMatch(/^0000:/);
  initialDriver = pciDriver(EDU);
});
afterAll(() => {
  if (initialDriver === 'vfio-pci') bindVfioPci(EDU);
  else unbind(EDU);
});

function checkEdu(d: DeviceReport): void {
  expect(d).toMatchObject({
    bus: 'pci', address: EDU, vendorId: '1234', deviceId: '11e8', classCode: '00ff00', iommu: 'dmar0',
    // edu is conventional PCI: 256 bytes of config space, no PCI Express capability, so no ATS/PRI/PASID.
    pcie: { configBytes: 256, express: false, ats: false, pri: false, pasid: false },
  });
  expect(d.iommuGroup).toBe(Number(readdirSync('/sys/kernel/iommu_groups').find((g) => readdirSync(`/sys/kernel/iommu_groups/${g}/devices`).includes(EDU))));
  expect(d.verdict.iopf).toBe('no');
  expect(d.verdict.summary).toMatch(/^no PRI/);
  expect(d.verdict.reasons[0]).toMatchObject({ code: 'no-pri', kind: 'no' });
  const codes = d.verdict.reasons.map((x) => x.code);
  if (iommuPageRequests) expect(codes).not.toContain('iommu-no-page-requests');
  else expect(codes).toContain('iommu-no-page-requests');
}

function checkCommonFeatures(r: ProbeReport): void {
  expect(r.iommufd).toMatchObject({ present: true, canOpen: true, reasonCode: null, miscMinor: expect.any(Number), moduleLoaded: true });
  expect(r.features.faultQueue).toMatchObject({ status: 'yes' });
  expect(r.features.veventq).toEqual(newest
    ? { status: 'yes', errno: 'ENOENT', detail: expect.stringMatching(/IOMMU_VEVENTQ_ALLOC/) }
    : { status: 'no', errno: 'ENOTTY', detail: expect.stringMatching(/unknown to this kernel/) });
  expect(r.features.testDevice).toMatchObject({ status: 'yes', errno: 'E2BIG', attach: newest ? 'yes' : 'no', vevent: newest ? 'yes' : 'no' });
  expect(r.features.testDevice.veventDetail).toMatch(newest ? /vEVENT arrived through a VeventQueue: sequence 0, virt_id 0x99/ : /no vEVENTQ in this kernel/);
  // 6.12 refuses the test device beside an active intel-iommu: said honestly, not hidden.
  if (!newest) expect(r.features.testDevice.attachDetail).toMatch(/test device present but cannot attach: IOMMU_TEST_OP_MOCK_DOMAIN failed with EINVAL/);
  expect(r.iommus.find((m) => m.name === 'dmar0')).toMatchObject({ kind: 'intel-vtd', pageRequests: iommuPageRequests ? 'yes' : 'no' });
  expect(r.summary).toMatchObject({ exitCode: 1, iopfDevices: [] });
}

describe('edu on no driver', () => {
  let report: ProbeReport;
  beforeAll(async () => {
    unbind(EDU);
    expect(pciDriver(EDU)).toBeUndefined();
    const before = fds();
    report = await probe();
    expect(fds(), 'no fd left open').toBe(before);
  });

  it('lists edu with its capabilities and the verdict "no PRI"; it is not on vfio-pci', () => {
    const d = edu(report);
    checkEdu(d);
    expect(d).toMatchObject({ driver: null, vfioCdev: null, hwInfo: null, iopfAttach: null });
    expect(d.verdict.reasons.map((x) => x.code)).toContain('not-vfio');
  });

  it('features per kernel; without a usable device, paging-HWPT faults and PASID attach are what they are', () => {
    checkCommonFeatures(report);
    if (newest) expect(report.features.pagingHwptFault).toMatchObject({ status: 'yes', detail: expect.stringMatching(/kernel test device/) });
    else expect(report.features.pagingHwptFault).toMatchObject({ status: 'unknown', detail: expect.stringMatching(/^no device to probe with: the kernel test device is present but cannot attach/) });
    expect(report.features.pasidAttach).toMatchObject({ status: 'unknown', detail: expect.stringMatching(/^no device to probe with/) });
  });

  it('the bin: --json validates against the schema, exit 1, and tells the same about edu', () => {
    const r = runBin(['--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(1);
    const json = JSON.parse(r.stdout);
    expect(validate(schema, json)).toEqual([]);
    expect(edu(json)).toEqual(edu(report));
    const text = runBin([]);
    expect(text.status).toBe(1);
    expect(text.stdout).toMatch(new RegExp(`^  ${EDU}  1234:11e8  -  .* no\\s*$`, 'm'));
    expect(text.stdout).toMatch(/^Result: iommufd is usable, but no device can take I\/O page faults \(exit 1\)$/m);
  });
});

describe('edu on vfio-pci', () => {
  let report: ProbeReport;
  beforeAll(async () => {
    bindVfioPci(EDU);
    const before = fds();
    report = await probe();
    expect(fds(), 'no fd left open').toBe(before);
  });

  it('asks the kernel about edu through its VFIO cdev: GET_HW_INFO, and the fault-HWPT attach where the kernel has one', () => {
    const d = edu(report);
    checkEdu(d);
    expect(d.driver).toBe('vfio-pci');
    expect(d.vfioCdev).toMatch(/^\/dev\/vfio\/devices\/vfio\d+$/);
    expect(d.verdict.reasons.map((x) => x.code)).not.toContain('not-vfio');
    expect(d.hwInfo).toMatchObject({ type: 1, typeName: 'INTEL_VTD', maxPasidLog2: 0, vtd: { ecapReg: `0x${ecap.toString(16)}`, prs: ecapBit(29) } });
    if (newest) {
      // 7.x takes a fault queue on a paging HWPT; attaching edu to one is refused: no PRI.
      expect(d.iopfAttach).toMatchObject({ status: 'no', errno: 'ENODEV' });
      expect(d.verdict.reasons.map((x) => x.code)).toContain('attach-refused');
    } else {
      expect(d.iopfAttach).toBeNull();
    }
  });

  it('features per kernel, now probed with edu as well', () => {
    checkCommonFeatures(report);
    if (newest) {
      expect(report.features.pagingHwptFault).toMatchObject({ status: 'yes', detail: expect.stringMatching(/kernel test device/) });
      expect(report.features.pasidAttach).toMatchObject({ status: 'yes', errno: 'ENOENT' });
    } else {
      expect(report.features.pagingHwptFault).toMatchObject({ status: 'no', errno: 'ENOTSUP', detail: expect.stringMatching(/only on nested HWPTs/) });
      expect(report.features.pasidAttach).toMatchObject({ status: 'no', errno: 'EINVAL' });
    }
  });

  it('leaves edu free: it binds to a new iommufd afterwards', async () => {
    const iommufd = Iommufd.open();
    try {
      const dev = VfioDevice.openPci(EDU);
      try {
        expect(dev.bind(iommufd)).toBeGreaterThan(0);
      } finally {
        dev.close();
      }
    } finally {
      await iommufd.close();
    }
  });

  it('the bin: --json validates against the schema and exits 1', () => {
    const r = runBin(['--json']);
    expect(r.status).toBe(1);
    const json = JSON.parse(r.stdout);
    expect(validate(schema, json)).toEqual([]);
    expect(edu(json).hwInfo).toEqual(edu(report).hwInfo);
    expect(edu(json).verdict).toEqual(edu(report).verdict);
  });
});
