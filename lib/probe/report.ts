// probe(): runs the collectors and assembles the report, its verdicts and its exit code.
import { machine, release, version } from 'node:os';
import { probeDevIommu, iommuParameters } from './kernel.js';
import { otherVfioDevices, pciDevice, probeVfio, type VfioResult } from './devices.js';
import { probeFeatures, unprobed } from './features.js';
import { probeIommus, vtdPageRequests } from './iommus.js';
import { PROBE_SCHEMA_VERSION, ProbeExit, type DeviceReport, type Features, type Finding, type ProbeOptions, type ProbeReport, type Tri } from './types.js';
import { finding, list } from './util.js';
import { iopfVerdict } from './verdict.js';

export async function probe(options: ProbeOptions = {}): Promise<ProbeReport> {
  const started = performance.now();
  const devicePath = options.devicePath ?? '/dev/iommu';
  const iommufd = probeDevIommu(devicePath);
  const isIommufd = iommufd.reasonCode !== 'not-iommufd';
  const usable = iommufd.present && iommufd.canOpen && isIommufd;
  const iommus = probeIommus();

  let features: Features;
  let mockPagingFault: Finding | null = null;
  if (!iommufd.present) features = unprobed('no', `not probed: no ${devicePath}`);
  else if (!iommufd.canOpen) features = unprobed('unknown', `not probed: cannot open ${devicePath} (${iommufd.openError})`);
  else if (!isIommufd) features = unprobed('no', `not probed: ${devicePath} is not an iommufd`);
  else ({ mockPagingFault, ...features } = await probeFeatures(devicePath));

  const pciAddresses = list('/sys/bus/pci/devices').sort();
  const base = [...pciAddresses.map(pciDevice), ...otherVfioDevices(new Set(pciAddresses))];
  const devices: DeviceReport[] = [];
  let firstVfio: VfioResult | undefined;
  for (const d of base) {
    let vfio: VfioResult | undefined;
    let hwInfoNote: string;
    if (d.driver !== 'vfio-pci' && d.vfioCdev === null) hwInfoNote = 'not bound to vfio-pci (the probe does not rebind drivers)';
    else if (d.vfioCdev === null) hwInfoNote = 'on vfio-pci but without a VFIO cdev';
    else if (!usable) hwInfoNote = `${devicePath} is not usable`;
    else {
      vfio = await probeVfio(d.vfioCdev, devicePath);
      hwInfoNote = vfio.note;
      if (!vfio.busy && firstVfio === undefined) firstVfio = vfio;
    }
    const iommu = iommus.find((m) => m.name === d.iommu);
    let pageRequests: { status: Tri; detail: string } = iommu
      ? { status: iommu.pageRequests, detail: `${iommu.name}: ${iommu.detail}` }
      : { status: 'unknown', detail: d.iommu === null ? 'no IOMMU link in sysfs' : `${d.iommu} not decoded` };
    if (vfio?.hwInfo?.vtd) pageRequests = vtdPageRequests(vfio.hwInfo.vtd);
    devices.push({
      ...d,
      hwInfo: vfio?.hwInfo ?? null,
      hwInfoNote,
      iopfAttach: vfio?.iopfAttach ?? null,
      nestedAttach: vfio?.nestedAttach ?? null,
      verdict: iopfVerdict({
        pcie: d.pcie, iommuGroup: d.iommuGroup, iommuPageRequests: pageRequests, driver: d.driver, vfioCdev: d.vfioCdev,
        iommufdUsable: usable, vfioBusy: vfio?.busy ?? false, iopfAttach: vfio?.iopfAttach ?? null,
        pagingHwptFault: vfio?.pagingHwptFault ?? null, nesting: vfio?.hwInfo?.vtd?.nest ?? null, nestedAttach: vfio?.nestedAttach ?? null,
      }),
    });
  }
  if (firstVfio !== undefined) {
    if (firstVfio.pasidAttach) features.pasidAttach = firstVfio.pasidAttach;
    if (mockPagingFault === null && firstVfio.pagingHwptFault) features.pagingHwptFault = firstVfio.pagingHwptFault;
  }
  if (mockPagingFault === null && firstVfio === undefined && features.testDevice.status === 'yes') {
    features.pagingHwptFault = finding('unknown', 'no device to probe with: the kernel test device is present but cannot attach, and no device is bound to vfio-pci');
  }

  const iopfDevices = devices.filter((d) => d.verdict.iopf === 'yes').map((d) => d.address);
  const exitCode = !iommufd.present || !isIommufd ? ProbeExit.NO_IOMMUFD
    : !iommufd.canOpen ? ProbeExit.NO_ACCESS
      : iopfDevices.length > 0 ? ProbeExit.IOPF_AVAILABLE : ProbeExit.NO_IOPF_DEVICE;
  const text = exitCode === ProbeExit.NO_IOMMUFD ? `no iommufd: ${iommufd.reason}`
    : exitCode === ProbeExit.NO_ACCESS ? `iommufd present but not usable: ${iommufd.reason}`
      : exitCode === ProbeExit.IOPF_AVAILABLE ? `I/O page faults available for ${iopfDevices.join(', ')}`
        : 'iommufd is usable, but no device can take I/O page faults';
  return {
    schemaVersion: PROBE_SCHEMA_VERSION,
    tool: { name: 'iommufd-probe', version: options.toolVersion ?? '0.0.0' },
    kernel: { release: release(), version: version(), machine: machine(), iommuParameters: iommuParameters() },
    user: { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 },
    iommufd, iommus, features, devices,
    summary: { exitCode, text, iopfDevices },
    durationMs: Math.round(performance.now() - started),
  };
}
