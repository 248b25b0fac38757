// The probe's report: every type of the --json output (schema/probe.schema.json describes the
// same), the exit codes, and the options of probe().
import type { DecodedHwInfo } from '../device/hw_info.js';

export const PROBE_SCHEMA_VERSION = 1;

/** Exit codes of iommufd-probe. */
export const ProbeExit = {
  /** At least one device can take I/O page faults through iommufd now. */
  IOPF_AVAILABLE: 0,
  /** iommufd is usable, but no device can take I/O page faults (each device says why). */
  NO_IOPF_DEVICE: 1,
  /** No iommufd: no /dev/iommu, or a node that is not an iommufd (the report says why). */
  NO_IOMMUFD: 2,
  /** /dev/iommu exists but this user cannot open it. */
  NO_ACCESS: 3,
  /** Bad command line (EX_USAGE). */
  USAGE: 64,
  /** The probe itself failed (EX_SOFTWARE). */
  INTERNAL: 70,
} as const;

export type Tri = 'yes' | 'no' | 'unknown';

/** One answer of the kernel: yes / no / unknown, what was done to find out, and the errno seen. */
export interface Finding {
  status: Tri;
  detail: string;
  /** The errno name that decided it ('ENOTTY', 'ENOENT', ...), when an ioctl's failure did. */
  errno: string | null;
}

export interface TestDeviceFinding extends Finding {
  /** Whether a mock device attaches to an IOAS (IOMMU_TEST_OP_MOCK_DOMAIN). */
  attach: Tri;
  attachDetail: string;
  /** Whether a vEVENT from the test device arrives through a VeventQueue. */
  vevent: Tri;
  veventDetail: string;
}

export interface Features {
  faultQueue: Finding;
  pagingHwptFault: Finding;
  veventq: Finding;
  pasidAttach: Finding;
  testDevice: TestDeviceFinding;
}

export type KconfigValue = 'y' | 'm' | 'n';

export type AbsentReason =
  | 'not-configured' | 'probably-not-configured' | 'module-not-loaded' | 'no-device-node' | 'permission' | 'not-iommufd' | 'unknown';

export interface IommufdReport {
  path: string;
  present: boolean;
  /** Permission bits as octal ('0660'), owner and group; null when absent. */
  mode: string | null;
  uid: number | null;
  gid: number | null;
  canOpen: boolean;
  openError: string | null;
  /** Where the kernel config was read from, and the options that matter here. */
  kernelConfig: { source: string | null; options: Record<string, KconfigValue> };
  /** /sys/module/iommufd exists (loaded module, or built in). */
  moduleLoaded: boolean;
  /** iommufd.ko under /lib/modules/<release>, if installed as a module. */
  moduleFile: string | null;
  /** Minor of the 'iommu' misc device in /proc/misc (registered by iommufd). */
  miscMinor: number | null;
  /** Why /dev/iommu is missing, cannot be opened, or is not an iommufd ('not-iommufd'); null when it is usable. */
  reasonCode: AbsentReason | null;
  reason: string | null;
}

export interface IommuReport {
  name: string;
  kind: 'intel-vtd' | 'amd-vi' | 'arm-smmu' | 'selftest' | 'other';
  /** Can this IOMMU take PCIe page requests (VT-d: ecap SMTS, PRS and PDS; AMD: EFR PPRSup). */
  pageRequests: Tri;
  pasid: Tri;
  detail: string;
  /** Nested translation: a NEST_PARENT HWPT with nested HWPTs on it whose stage 1 user space
   *  owns (VT-d: ecap SMTS, NEST, FLTS and SLTS; the kernel's test device: its mock nesting). */
  nesting: Tri;
  /** First-stage translation (VT-d ecap FLTS): the stage a nested HWPT's owner writes. */
  firstStage: Tri;
  /** Second-stage translation (VT-d ecap SLTS): the NEST_PARENT's stage. */
  secondStage: Tri;
  /** Raw capability registers from sysfs, hex. */
  registers: Record<string, string>;
}

export interface PcieCaps {
  /** Bytes of config space this user could read (64 without root, 256 conventional PCI, 4096 PCIe). */
  configBytes: number;
  express: boolean | null;
  ats: boolean | null;
  pri: boolean | null;
  pasid: boolean | null;
}

export interface HwInfoReport {
  type: number;
  typeName: string;
  maxPasidLog2: number;
  capabilities: DecodedHwInfo['capabilities'];
  vtd: { capReg: string; ecapReg: string; smts: boolean; pasid: boolean; prs: boolean; pds: boolean; devIotlb: boolean; nest: boolean;
    flts: boolean; slts: boolean } | null;
}

export type ReasonCode =
  | 'no-pri' | 'no-ats' | 'no-iommu' | 'iommu-no-page-requests' | 'not-vfio' | 'no-vfio-cdev' | 'no-iommufd'
  | 'attach-refused' | 'config-unreadable' | 'iommu-unknown' | 'vfio-busy' | 'attach-untested' | 'not-pci'
  | 'no-fault-hwpt' | 'nested-ats-off' | 'nested-refused' | 'nested-untested';

/** How a device's I/O page faults reach a fault queue: a paging HWPT over an IOAS (Linux 6.13+),
 *  or a nested HWPT (a stage 1 user space owns, over a NEST_PARENT HWPT). */
export type FaultPath = 'paging' | 'nested';

/** The step of the nested path a NestedFinding ended at. */
export type NestedStep = 'fault-queue' | 'nest-parent' | 'nested-hwpt' | 'attach' | 'ats';

/**
 * The nested path tried the way a VMM builds it: an IOAS with one zeroed page (an empty stage-1
 * table), a NEST_PARENT HWPT on it, a fault queue, a nested HWPT with VT-d stage-1 data and the
 * queue, the device attached to the parent and then to the nested HWPT, and the ATS enable bit
 * of the device read back through VFIO while it is attached. yes: attached with ATS on.
 */
export interface NestedFinding extends Finding {
  /** The step that decided a no or unknown; null for a yes. */
  step: NestedStep | null;
  /** The ATS Enable bit of the device's ATS control register while on the nested HWPT; null when
   *  not read (not attached, or no ATS capability). */
  atsEnabled: boolean | null;
}

export interface Reason {
  code: ReasonCode;
  /** 'no': this rules IOPF out; 'unknown': this could not be checked. */
  kind: 'no' | 'unknown';
  text: string;
}

export interface Verdict {
  iopf: Tri;
  /** The path its faults take when iopf is yes: 'paging' when the kernel made that work, else
   *  'nested'; null otherwise (or when yes rests on capabilities alone). */
  path: FaultPath | null;
  /** Every path the kernel made work for it (paging first). */
  paths: FaultPath[];
  /** The first reason, or what makes it a yes. */
  summary: string;
  reasons: Reason[];
}

export interface DeviceReport {
  bus: string;
  /** PCI address ('0000:00:01.0') or the sysfs device name for other buses. */
  address: string;
  vendorId: string | null;
  deviceId: string | null;
  classCode: string | null;
  driver: string | null;
  iommuGroup: number | null;
  iommuGroupType: string | null;
  iommu: string | null;
  vfioCdev: string | null;
  pcie: PcieCaps | null;
  /** IOMMU_GET_HW_INFO through the device's VFIO cdev (only for devices already on vfio-pci). */
  hwInfo: HwInfoReport | null;
  hwInfoNote: string;
  /** The kernel's answer to attaching a fault-capable paging HWPT (devices on vfio-pci only). */
  iopfAttach: Finding | null;
  /** The nested path (NestedFinding); null when not tried: not on vfio-pci, or its IOMMU has no
   *  nesting the probe can build (VT-d with NEST, FLTS and SLTS). */
  nestedAttach: NestedFinding | null;
  verdict: Verdict;
}

export interface ProbeReport {
  schemaVersion: typeof PROBE_SCHEMA_VERSION;
  tool: { name: 'iommufd-probe'; version: string };
  kernel: { release: string; version: string; machine: string; iommuParameters: string[] };
  user: { uid: number; gid: number };
  iommufd: IommufdReport;
  iommus: IommuReport[];
  features: Features;
  devices: DeviceReport[];
  summary: { exitCode: number; text: string; iopfDevices: string[] };
  durationMs: number;
}

export interface ProbeOptions {
  /** Defaults to /dev/iommu. */
  devicePath?: string;
  /** Reported as tool.version (the bin passes the package's). */
  toolVersion?: string;
}
