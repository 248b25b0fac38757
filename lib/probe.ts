// iommufd-probe: what this machine can do with iommufd, found by asking the running kernel rather
// than guessing from its version. probe() gathers a report (its JSON form is described by
// schema/probe.schema.json), formatText() renders it for people, main() is the CLI.
//
// The probe never changes the system: it does not load modules or rebind drivers. It opens
// /dev/iommu, creates and destroys a few objects in its own iommufd context, and opens VFIO cdevs
// of devices that are already bound to vfio-pci (binding them to its iommufd until it closes them).
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { constants, machine, release, version } from 'node:os';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { binding } from './binding.js';
import { IommufdError } from './errors.js';
import { decodeVtdHwInfo, type DecodedHwInfo } from './hw_info.js';
import { HWPT_FAULT_ID_VALID } from './hwpt.js';
import { Iommufd } from './iommufd.js';
import { pciCapabilities, pciExtendedCapabilities, PCI_CAP_ID_EXP, PCI_EXT_CAP_ID_ATS, PCI_EXT_CAP_ID_PASID, PCI_EXT_CAP_ID_PRI } from './pci.js';
import { MockDevice } from './testing.js';
import { VfioDevice } from './vfio_device.js';

export const PROBE_SCHEMA_VERSION = 1;

/** Exit codes of iommufd-probe. */
export const ProbeExit = {
  /** At least one device can take I/O page faults through iommufd now. */
  IOPF_AVAILABLE: 0,
  /** iommufd is usable, but no device can take I/O page faults (each device says why). */
  NO_IOPF_DEVICE: 1,
  /** No /dev/iommu (the report says why). */
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
}

export interface Features {
  faultQueue: Finding;
  pagingHwptFault: Finding;
  veventq: Finding;
  pasidAttach: Finding;
  testDevice: TestDeviceFinding;
}

export type KconfigValue = 'y' | 'm' | 'n';

export type AbsentReason = 'not-configured' | 'probably-not-configured' | 'module-not-loaded' | 'no-device-node' | 'permission' | 'unknown';

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
  /** Why /dev/iommu is missing or cannot be opened; null when it opens. */
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
  vtd: { capReg: string; ecapReg: string; smts: boolean; pasid: boolean; prs: boolean; pds: boolean; devIotlb: boolean; nest: boolean } | null;
}

export type ReasonCode =
  | 'no-pri' | 'no-ats' | 'no-iommu' | 'iommu-no-page-requests' | 'not-vfio' | 'no-vfio-cdev' | 'no-iommufd'
  | 'attach-refused' | 'config-unreadable' | 'iommu-unknown' | 'vfio-busy' | 'attach-untested' | 'not-pci';

export interface Reason {
  code: ReasonCode;
  /** 'no': this rules IOPF out; 'unknown': this could not be checked. */
  kind: 'no' | 'unknown';
  text: string;
}

export interface Verdict {
  iopf: Tri;
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

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);
// Name 95 the way libuv (and so every IommufdError) does.
errnoNames.set(constants.errno.ENOTSUP, 'ENOTSUP');

export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

function codeOf(e: unknown): string {
  const code = e instanceof IommufdError ? e.code : e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

function link(path: string): string | null {
  try {
    return basename(readlinkSync(path));
  } catch {
    return null;
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const finding = (status: Tri, detail: string, errno: string | null = null): Finding => ({ status, detail, errno });

const IOMMUFD_TYPE = 0x3b;
/** _IO(';', nr): every iommufd ioctl, and VFIO's too, is numbered this way. */
const io = (nr: number) => (IOMMUFD_TYPE << 8) | nr;
const IOMMU_FAULT_QUEUE_ALLOC = io(0x8e);
const IOMMU_VEVENTQ_ALLOC = io(0x93);
const IOMMU_TEST_CMD = io(0xa0);
const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;

/**
 * Whether the iommufd behind `fd` knows ioctl `request`, without running it: a 4 KiB argument
 * whose last byte is not zero. A command the kernel knows copies its struct (far smaller) and
 * refuses the non-zero tail with E2BIG before doing anything; an unknown one answers ENOTTY.
 * Returns E2BIG's / ENOTTY's name, or another errno name if the kernel said something else.
 */
export function ioctlKnown(fd: number, request: number): { known: Tri; errno: string } {
  const arg = new Uint8Array(4096);
  new DataView(arg.buffer).setUint32(0, arg.length, true);
  arg[arg.length - 1] = 1;
  const rc = binding.probeIoctl(fd, request, arg);
  const errno = rc < 0 ? errnoName(rc) : 'OK';
  return { known: errno === 'E2BIG' ? 'yes' : errno === 'ENOTTY' ? 'no' : 'unknown', errno };
}

// ---------------------------------------------------------------------------------------------
// The kernel, its config and /dev/iommu
// ---------------------------------------------------------------------------------------------

const CONFIG_OPTIONS = [
  'IOMMUFD', 'IOMMUFD_TEST', 'IOMMU_IOPF', 'VFIO', 'VFIO_DEVICE_CDEV', 'VFIO_PCI', 'PCI_ATS', 'PCI_PRI', 'PCI_PASID',
  'INTEL_IOMMU', 'INTEL_IOMMU_SVM', 'AMD_IOMMU', 'ARM_SMMU_V3', 'ARM_SMMU_V3_SVA',
];

/** The kernel's config from /proc/config.gz or /boot/config-<release>, if either is readable. */
export function readKernelConfig(rel = release()): { source: string | null; options: Record<string, KconfigValue> } {
  let text: string | null = null;
  let source: string | null = null;
  try {
    text = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
    source = '/proc/config.gz';
  } catch {
    const boot = `/boot/config-${rel}`;
    text = read(boot);
    if (text !== null) source = boot;
  }
  return { source, options: text === null ? {} : parseKconfig(text) };
}

export function parseKconfig(text: string): Record<string, KconfigValue> {
  const options: Record<string, KconfigValue> = {};
  for (const name of CONFIG_OPTIONS) {
    const set = new RegExp(`^CONFIG_${name}=([ym])$`, 'm').exec(text);
    if (set) options[name] = set[1] as KconfigValue;
    else if (new RegExp(`^# CONFIG_${name} is not set$`, 'm').test(text)) options[name] = 'n';
  }
  return options;
}

function miscMinor(name: string): number | null {
  const misc = read('/proc/misc') ?? '';
  const m = new RegExp(`^\\s*(\\d+)\\s+${name}$`, 'm').exec(misc);
  return m ? Number(m[1]) : null;
}

function probeDevIommu(path: string): IommufdReport {
  const rel = release();
  const kernelConfig = readKernelConfig(rel);
  const moduleLoaded = existsSync('/sys/module/iommufd');
  const moduleDir = `/lib/modules/${rel}/kernel/drivers/iommu/iommufd`;
  const moduleFile = list(moduleDir).find((f) => /^iommufd\.ko(\.(xz|zst|gz))?$/.test(f));
  const report: IommufdReport = {
    path, present: false, mode: null, uid: null, gid: null, canOpen: false, openError: null, kernelConfig,
    moduleLoaded, moduleFile: moduleFile ? `${moduleDir}/${moduleFile}` : null, miscMinor: miscMinor('iommu'),
    reasonCode: null, reason: null,
  };
  let st;
  try {
    st = statSync(path);
  } catch {
    st = null;
  }
  if (st === null) {
    Object.assign(report, explainAbsent(report));
    return report;
  }
  report.present = true;
  report.mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  report.uid = st.uid;
  report.gid = st.gid;
  try {
    binding.close(binding.open(path));
    report.canOpen = true;
  } catch (e) {
    report.openError = codeOf(e);
    report.reasonCode = report.openError === 'EACCES' || report.openError === 'EPERM' ? 'permission' : 'unknown';
    report.reason = report.reasonCode === 'permission'
      ? `${path} is ${modeString(st.mode)} owned by uid ${st.uid} gid ${st.gid}; this user (uid ${process.getuid?.()}) may not open it: run as root, or grant access with a udev rule or group`
      : `opening ${path} failed with ${report.openError}`;
  }
  return report;
}

function modeString(mode: number): string {
  const bits = 'rwxrwxrwx';
  let s = (mode & 0o170000) === 0o020000 ? 'c' : '-';
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? bits[i] : '-';
  return s;
}

/** Why /dev/iommu is missing, from the kernel config, /sys/module, /proc/misc and the module tree. */
export function explainAbsent(r: Pick<IommufdReport, 'path' | 'kernelConfig' | 'moduleLoaded' | 'moduleFile' | 'miscMinor'>): { reasonCode: AbsentReason; reason: string } {
  const cfg = r.kernelConfig.options.IOMMUFD;
  const src = r.kernelConfig.source;
  if (r.miscMinor !== null) {
    return {
      reasonCode: 'no-device-node',
      reason: `the kernel registered the iommu misc device (char 10:${r.miscMinor}) but ${r.path} does not exist: devtmpfs is not mounted on /dev or something removed the node (mknod ${r.path} c 10 ${r.miscMinor})`,
    };
  }
  if (cfg === 'n') return { reasonCode: 'not-configured', reason: `this kernel was built without iommufd: CONFIG_IOMMUFD is not set (${src})` };
  if (cfg === 'm' || (cfg === undefined && r.moduleFile !== null)) {
    return {
      reasonCode: 'module-not-loaded',
      reason: `iommufd is built as a module${cfg === 'm' ? ` (CONFIG_IOMMUFD=m in ${src})` : ` (${r.moduleFile})`} that is not loaded: modprobe iommufd`,
    };
  }
  if (cfg === 'y' || r.moduleLoaded) {
    return { reasonCode: 'unknown', reason: `iommufd is built in${cfg === 'y' ? ` (CONFIG_IOMMUFD=y in ${src})` : ''} but registered no iommu misc device` };
  }
  return {
    reasonCode: 'probably-not-configured',
    reason: 'no iommu misc device, no iommufd module loaded or installed: this kernel was most likely built without CONFIG_IOMMUFD (no readable kernel config to confirm: /proc/config.gz and /boot/config-<release> are missing)',
  };
}

function iommuParameters(): string[] {
  const cmdline = read('/proc/cmdline') ?? '';
  return cmdline.split(/\s+/).filter((p) => /^(intel_iommu|amd_iommu|iommu|iommu\.[\w.]+|vfio[\w.-]*|vfio_pci\.[\w]+)(=|$)/.test(p));
}

// ---------------------------------------------------------------------------------------------
// IOMMUs (sysfs)
// ---------------------------------------------------------------------------------------------

function hex64(s: string): bigint | null {
  return /^(0x)?[0-9a-f]+$/i.test(s) ? BigInt(s.startsWith('0x') ? s : `0x${s}`) : null;
}

function vtdFromRegs(cap: bigint, ecap: bigint) {
  const data = new Uint8Array(24);
  const view = new DataView(data.buffer);
  view.setBigUint64(8, cap, true);
  view.setBigUint64(16, ecap, true);
  return decodeVtdHwInfo(data);
}

/** Page requests on VT-d need scalable mode (SMTS), page request support (PRS) and drain (PDS). */
function vtdPageRequests(e: { smts: boolean; prs: boolean; pds: boolean }): { status: Tri; detail: string } {
  const missing = [!e.smts && 'SMTS=0 (no scalable mode)', !e.prs && 'PRS=0 (no page request support)', !e.pds && 'PDS=0 (no page-request drain)'].filter(Boolean);
  return missing.length === 0
    ? { status: 'yes', detail: 'VT-d ecap SMTS, PRS and PDS set' }
    : { status: 'no', detail: `VT-d ecap ${missing.join(', ')}` };
}

export function probeIommus(): IommuReport[] {
  return list('/sys/class/iommu').sort().map((name): IommuReport => {
    const dir = `/sys/class/iommu/${name}`;
    if (existsSync(`${dir}/intel-iommu`)) {
      const capS = read(`${dir}/intel-iommu/cap`) ?? '';
      const ecapS = read(`${dir}/intel-iommu/ecap`) ?? '';
      const cap = hex64(capS);
      const ecap = hex64(ecapS);
      const registers = { cap: `0x${capS}`, ecap: `0x${ecapS}` };
      if (cap === null || ecap === null) return { name, kind: 'intel-vtd', pageRequests: 'unknown', pasid: 'unknown', detail: 'VT-d capability registers unreadable', registers: {} };
      const { ecap: e } = vtdFromRegs(cap, ecap);
      const pr = vtdPageRequests(e);
      return { name, kind: 'intel-vtd', pageRequests: pr.status, pasid: e.pasid && e.smts ? 'yes' : 'no', detail: `${pr.detail}; PASID ${e.pasid ? `yes (${e.pss + 1} bits)` : 'no'}; device-TLB (ATS) ${e.devIotlb ? 'yes' : 'no'}`, registers };
    }
    if (existsSync(`${dir}/amd-iommu`)) {
      const features = read(`${dir}/amd-iommu/features`) ?? '';
      const efr = hex64(features.split(':')[0] ?? '');
      if (efr === null) return { name, kind: 'amd-vi', pageRequests: 'unknown', pasid: 'unknown', detail: 'AMD-Vi feature register unreadable', registers: {} };
      const ppr = (efr & 2n) !== 0n;
      const gt = (efr & 16n) !== 0n;
      return { name, kind: 'amd-vi', pageRequests: ppr ? 'yes' : 'no', pasid: gt ? 'yes' : 'no', detail: `AMD-Vi EFR PPRSup=${ppr ? 1 : 0} GTSup=${gt ? 1 : 0}`, registers: { features } };
    }
    if (name.startsWith('iommufd_selftest')) {
      return { name, kind: 'selftest', pageRequests: 'yes', pasid: 'yes', detail: "the kernel's iommufd test device IOMMU (CONFIG_IOMMUFD_TEST); raises faults only on request", registers: {} };
    }
    const kind = /smmu/i.test(name) || /smmu/i.test(link(`${dir}/device/driver`) ?? '') ? 'arm-smmu' : 'other';
    return { name, kind, pageRequests: 'unknown', pasid: 'unknown', detail: 'page-request support of this IOMMU is not decoded by the probe', registers: {} };
  });
}

// ---------------------------------------------------------------------------------------------
// Devices (sysfs, config space, VFIO)
// ---------------------------------------------------------------------------------------------

function stripHex(s: string | null): string | null {
  return s === null ? null : s.replace(/^0x/, '');
}

/** ATS, PRI and PASID from config space as this user can read it; null where it cannot tell. */
export function pcieCapsFrom(config: Uint8Array): PcieCaps {
  if (config.length <= 64) return { configBytes: config.length, express: null, ats: null, pri: null, pasid: null };
  const express = pciCapabilities(config).some((c) => c.id === PCI_CAP_ID_EXP);
  // Extended capabilities live past 256 bytes; a device whose extended space the kernel cannot
  // reach (conventional PCI, or PCIe behind a conventional bridge) has none as far as Linux goes.
  const ext = new Set(pciExtendedCapabilities(config).map((c) => c.id));
  return { configBytes: config.length, express, ats: ext.has(PCI_EXT_CAP_ID_ATS), pri: ext.has(PCI_EXT_CAP_ID_PRI), pasid: ext.has(PCI_EXT_CAP_ID_PASID) };
}

function hwInfoReport(h: DecodedHwInfo): HwInfoReport {
  const hex = (v: bigint) => `0x${v.toString(16)}`;
  return {
    type: h.type, typeName: h.typeName, maxPasidLog2: h.maxPasidLog2, capabilities: h.capabilities,
    vtd: h.vtd ? {
      capReg: hex(h.vtd.capReg), ecapReg: hex(h.vtd.ecapReg), smts: h.vtd.ecap.smts, pasid: h.vtd.ecap.pasid,
      prs: h.vtd.ecap.prs, pds: h.vtd.ecap.pds, devIotlb: h.vtd.ecap.devIotlb, nest: h.vtd.ecap.nest,
    } : null,
  };
}

interface VfioResult {
  hwInfo: HwInfoReport | null;
  note: string;
  pasidAttach: Finding | null;
  pagingHwptFault: Finding | null;
  iopfAttach: Finding | null;
  busy: boolean;
}

/**
 * Binds a device already on vfio-pci to a private iommufd and asks the kernel about it:
 * GET_HW_INFO, whether VFIO takes a PASID attach, whether a paging HWPT takes a fault queue and,
 * if it does, whether the device can be attached to one (the IOMMU driver turns on PRI for it).
 * Everything is undone when the device and the iommufd are closed.
 */
async function probeVfio(cdev: string, devicePath: string): Promise<VfioResult> {
  const out: VfioResult = { hwInfo: null, note: '', pasidAttach: null, pagingHwptFault: null, iopfAttach: null, busy: false };
  const iommufd = Iommufd.open(devicePath);
  let dev: VfioDevice | undefined;
  try {
    try {
      dev = VfioDevice.open(cdev);
      dev.bind(iommufd);
    } catch (e) {
      out.busy = true;
      out.note = `could not bind ${cdev} to an iommufd (${codeOf(e)}): in use by another process?`;
      return out;
    }
    try {
      out.hwInfo = hwInfoReport(dev.hwInfo());
      out.note = `IOMMU_GET_HW_INFO through ${cdev}`;
    } catch (e) {
      out.note = `IOMMU_GET_HW_INFO through ${cdev} failed with ${codeOf(e)}`;
    }
    // PASID attach to object 0, which never exists: a kernel with VFIO_DEVICE_ATTACH_PASID looks
    // the id up (ENOENT) and changes nothing; without it the flag is EINVAL; a VFIO driver
    // without PASID support answers EOPNOTSUPP.
    try {
      binding.vfioAttachPt(dev.fd, 0, 1);
      out.pasidAttach = finding('yes', `VFIO_DEVICE_ATTACH_IOMMUFD_PT with VFIO_DEVICE_ATTACH_PASID succeeded on ${cdev}`);
    } catch (e) {
      const code = codeOf(e);
      out.pasidAttach = code === 'ENOENT'
        ? finding('yes', `VFIO_DEVICE_ATTACH_IOMMUFD_PT with VFIO_DEVICE_ATTACH_PASID on ${cdev} looked up the (missing) page table: the flag is known`, code)
        : code === 'EINVAL'
          ? finding('no', `VFIO_DEVICE_ATTACH_IOMMUFD_PT rejected VFIO_DEVICE_ATTACH_PASID on ${cdev}: this kernel has no PASID attach`, code)
          : code === 'ENOTSUP'
            ? finding('no', `the VFIO driver of ${cdev} has no PASID attach`, code)
            : finding('unknown', `VFIO_DEVICE_ATTACH_IOMMUFD_PT with VFIO_DEVICE_ATTACH_PASID on ${cdev}: ${code}`, code);
    }
    const ioas = iommufd.allocIoas();
    const fault = binding.faultQueueAlloc(iommufd.fd);
    try {
      let hwptId: number;
      try {
        hwptId = binding.hwptAlloc(iommufd.fd, { devId: dev.deviceId, ptId: ioas.id, flags: HWPT_FAULT_ID_VALID, faultId: fault.id });
        out.pagingHwptFault = finding('yes', `IOMMU_HWPT_ALLOC of a paging HWPT with a fault queue succeeded for ${cdev}`);
      } catch (e) {
        out.pagingHwptFault = pagingFaultRefusal(e, cdev);
        return out;
      }
      try {
        binding.vfioAttachPt(dev.fd, hwptId);
        out.iopfAttach = finding('yes', 'the kernel attached the device to a fault-capable paging HWPT: the IOMMU driver enabled I/O page faults for it');
        binding.vfioDetachPt(dev.fd);
      } catch (e) {
        const code = codeOf(e);
        out.iopfAttach = code === 'ENODEV'
          ? finding('no', 'the kernel refused to attach the device to a fault-capable HWPT (ENODEV): the IOMMU driver cannot enable I/O page faults for it', code)
          : finding('unknown', `attaching the device to a fault-capable HWPT failed with ${code}`, code);
      }
    } finally {
      binding.close(fault.fd);
    }
    return out;
  } finally {
    dev?.close();
    await iommufd.close();
  }
}

function pagingFaultRefusal(e: unknown, what: string): Finding {
  const code = codeOf(e);
  return code === 'ENOTSUP'
    ? finding('no', `IOMMU_HWPT_ALLOC refused a fault queue on a paging HWPT for ${what} (EOPNOTSUPP): this kernel takes fault queues only on nested HWPTs (paging HWPTs take them from Linux 6.13)`, code)
    : finding('unknown', `IOMMU_HWPT_ALLOC of a paging HWPT with a fault queue for ${what} failed with ${code}`, code);
}

export interface VerdictInput {
  pcie: PcieCaps | null;
  iommuGroup: number | null;
  iommuPageRequests: { status: Tri; detail: string };
  driver: string | null;
  vfioCdev: string | null;
  iommufdUsable: boolean;
  vfioBusy: boolean;
  iopfAttach: Finding | null;
}

/** Whether the device can take I/O page faults through iommufd, and every reason it cannot. */
export function iopfVerdict(i: VerdictInput): Verdict {
  const reasons: Reason[] = [];
  const no = (code: ReasonCode, text: string) => reasons.push({ code, kind: 'no', text });
  const unknown = (code: ReasonCode, text: string) => reasons.push({ code, kind: 'unknown', text });
  const p = i.pcie;
  if (p === null) unknown('not-pci', 'not a PCI device: no PRI; whether its IOMMU can stall its DMA on a fault is not checked');
  else if (p.pri === null) unknown('config-unreadable', `only ${p.configBytes} bytes of config space are readable (root is needed to see ATS/PRI/PASID)`);
  else {
    if (!p.pri) no('no-pri', p.express ? 'no PRI (Page Request Interface) capability in its config space' : 'no PRI: conventional PCI device (no PCI Express capability, so no PRI capability)');
    if (p.express && !p.ats) no('no-ats', 'no ATS capability (the IOMMU enables PRI only together with ATS)');
  }
  if (i.iommuGroup === null) no('no-iommu', 'not behind an IOMMU (no IOMMU group)');
  else if (i.iommuPageRequests.status === 'no') no('iommu-no-page-requests', `its IOMMU lacks page requests: ${i.iommuPageRequests.detail}`);
  else if (i.iommuPageRequests.status === 'unknown') unknown('iommu-unknown', `page-request support of its IOMMU unknown: ${i.iommuPageRequests.detail}`);
  if (i.driver !== 'vfio-pci') no('not-vfio', `bound to ${i.driver ?? 'no driver'}, not vfio-pci: iommufd reaches a device only through its VFIO cdev`);
  else if (i.vfioCdev === null) no('no-vfio-cdev', 'on vfio-pci but without a VFIO cdev (/dev/vfio/devices): the kernel lacks CONFIG_VFIO_DEVICE_CDEV');
  if (!i.iommufdUsable) no('no-iommufd', 'iommufd (/dev/iommu) is not usable here');
  if (i.vfioBusy) unknown('vfio-busy', 'its VFIO cdev could not be bound to an iommufd (in use?)');
  if (i.iopfAttach?.status === 'no') no('attach-refused', i.iopfAttach.detail);
  else if (i.iopfAttach?.status === 'unknown') unknown('attach-untested', i.iopfAttach.detail);
  const first = reasons.find((r) => r.kind === 'no') ?? reasons[0];
  const iopf: Tri = reasons.some((r) => r.kind === 'no') ? 'no' : reasons.length > 0 ? 'unknown' : 'yes';
  const summary = first?.text
    ?? (i.iopfAttach?.status === 'yes' ? 'yes: the kernel enabled I/O page faults for it on attach' : 'yes: PRI and ATS present, its IOMMU takes page requests, bound to vfio-pci');
  return { iopf, summary, reasons: reasons.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'no' ? -1 : 1)) };
}

function pciDevice(address: string): Omit<DeviceReport, 'hwInfo' | 'hwInfoNote' | 'iopfAttach' | 'verdict'> {
  const dir = `/sys/bus/pci/devices/${address}`;
  const group = link(`${dir}/iommu_group`);
  const cdevs = list(`${dir}/vfio-dev`).filter((n) => /^vfio\d+$/.test(n));
  let pcie: PcieCaps | null;
  try {
    pcie = pcieCapsFrom(new Uint8Array(readFileSync(`${dir}/config`)));
  } catch {
    pcie = { configBytes: 0, express: null, ats: null, pri: null, pasid: null };
  }
  return {
    bus: 'pci', address,
    vendorId: stripHex(read(`${dir}/vendor`)), deviceId: stripHex(read(`${dir}/device`)), classCode: stripHex(read(`${dir}/class`)),
    driver: link(`${dir}/driver`),
    iommuGroup: group !== null && /^\d+$/.test(group) ? Number(group) : null,
    iommuGroupType: group !== null ? read(`/sys/kernel/iommu_groups/${group}/type`) : null,
    iommu: link(`${dir}/iommu`),
    vfioCdev: cdevs.length === 1 ? `/dev/vfio/devices/${cdevs[0]}` : null,
    pcie,
  };
}

/** VFIO cdevs whose device is not on the PCI bus (vfio-platform, mdev, ...). */
function otherVfioDevices(pciAddresses: Set<string>): Omit<DeviceReport, 'hwInfo' | 'hwInfoNote' | 'iopfAttach' | 'verdict'>[] {
  const out: Omit<DeviceReport, 'hwInfo' | 'hwInfoNote' | 'iopfAttach' | 'verdict'>[] = [];
  for (const name of list('/sys/class/vfio-dev').filter((n) => /^vfio\d+$/.test(n)).sort()) {
    let devDir: string;
    try {
      devDir = realpathSync(`/sys/class/vfio-dev/${name}/device`);
    } catch {
      continue;
    }
    const address = basename(devDir);
    if (pciAddresses.has(address)) continue;
    const group = link(`${devDir}/iommu_group`);
    out.push({
      bus: link(`${devDir}/subsystem`) ?? 'unknown', address, vendorId: null, deviceId: null, classCode: null,
      driver: link(`${devDir}/driver`),
      iommuGroup: group !== null && /^\d+$/.test(group) ? Number(group) : null,
      iommuGroupType: group !== null ? read(`/sys/kernel/iommu_groups/${group}/type`) : null,
      iommu: link(`${devDir}/iommu`), vfioCdev: `/dev/vfio/devices/${name}`, pcie: null,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// uAPI features
// ---------------------------------------------------------------------------------------------

function unprobed(status: Tri, detail: string): Features {
  return {
    faultQueue: finding(status, detail), pagingHwptFault: finding(status, detail), veventq: finding(status, detail),
    pasidAttach: finding(status, detail), testDevice: { ...finding(status, detail), attach: status, attachDetail: detail },
  };
}

async function probeFeatures(devicePath: string): Promise<Features & { mockPagingFault: Finding | null }> {
  const iommufd = Iommufd.open(devicePath);
  try {
    const fd = iommufd.fd;
    // Fault queues: allocate one for real, then destroy it.
    let faultQueue: Finding;
    const fqKnown = ioctlKnown(fd, IOMMU_FAULT_QUEUE_ALLOC);
    if (fqKnown.known === 'no') faultQueue = finding('no', 'IOMMU_FAULT_QUEUE_ALLOC is unknown to this kernel (ENOTTY)', 'ENOTTY');
    else {
      try {
        const q = binding.faultQueueAlloc(fd);
        binding.close(q.fd);
        binding.destroy(fd, q.id);
        faultQueue = finding('yes', `IOMMU_FAULT_QUEUE_ALLOC created fault object ${q.id} (destroyed again)`);
      } catch (e) {
        faultQueue = finding('unknown', `IOMMU_FAULT_QUEUE_ALLOC failed with ${codeOf(e)}`, codeOf(e));
      }
    }

    // vEVENTQ: ask for one on a vIOMMU that does not exist. A kernel with the ioctl looks the id
    // up (ENOENT) or checks the arguments first (EINVAL/EOPNOTSUPP); one without it says ENOTTY.
    let veventq: Finding;
    {
      const arg = new Uint8Array(32);
      const v = new DataView(arg.buffer);
      v.setUint32(0, 32, true); // size
      v.setUint32(8, 0xfffffffe, true); // viommu_id: never allocated
      v.setUint32(12, IOMMU_VEVENTQ_TYPE_SELFTEST, true); // type: any but DEFAULT
      v.setUint32(16, 1, true); // veventq_depth
      const rc = binding.probeIoctl(fd, IOMMU_VEVENTQ_ALLOC, arg);
      const code = rc < 0 ? errnoName(rc) : 'OK';
      if (rc >= 0) {
        // Cannot happen with an id that was never handed out; clean up all the same.
        binding.close(v.getUint32(24, true));
        binding.destroy(fd, v.getUint32(20, true));
        veventq = finding('yes', 'IOMMU_VEVENTQ_ALLOC succeeded');
      } else if (code === 'ENOTTY') veventq = finding('no', 'IOMMU_VEVENTQ_ALLOC is unknown to this kernel (ENOTTY)', code);
      else if (code === 'ENOENT' || code === 'EINVAL' || code === 'ENOTSUP') veventq = finding('yes', `IOMMU_VEVENTQ_ALLOC on a vIOMMU that does not exist answered ${code}: the ioctl is known`, code);
      else veventq = finding('unknown', `IOMMU_VEVENTQ_ALLOC on a vIOMMU that does not exist answered ${code}`, code);
    }

    // The kernel's test device: IOMMU_TEST_CMD known? Then does a mock device attach, and does a
    // paging HWPT with a fault queue take it?
    let testDevice: TestDeviceFinding;
    let mockPagingFault: Finding | null = null;
    const tKnown = ioctlKnown(fd, IOMMU_TEST_CMD);
    if (tKnown.known === 'no') {
      testDevice = { ...finding('no', 'IOMMU_TEST_CMD is unknown to this kernel (ENOTTY): built without CONFIG_IOMMUFD_TEST', 'ENOTTY'), attach: 'no', attachDetail: 'no test device' };
    } else if (tKnown.known === 'unknown') {
      testDevice = { ...finding('unknown', `IOMMU_TEST_CMD with an oversized argument answered ${tKnown.errno}`, tKnown.errno), attach: 'unknown', attachDetail: 'not tried' };
    } else {
      const ioas = iommufd.allocIoas();
      let mock: MockDevice | undefined;
      let attach: Tri;
      let attachDetail: string;
      try {
        mock = MockDevice.create(iommufd, ioas.id);
        attach = 'yes';
        attachDetail = `a mock device attached to an IOAS (iommufd device ${mock.deviceId})`;
      } catch (e) {
        attach = 'no';
        attachDetail = `test device present but cannot attach: IOMMU_TEST_OP_MOCK_DOMAIN failed with ${codeOf(e)}${codeOf(e) === 'EINVAL' ? ' (older kernels refuse it while an IOMMU driver such as intel-iommu is active)' : ''}`;
      }
      testDevice = { ...finding('yes', 'IOMMU_TEST_CMD is known (E2BIG for an oversized argument): CONFIG_IOMMUFD_TEST', 'E2BIG'), attach, attachDetail };
      if (mock) {
        const q = binding.faultQueueAlloc(fd);
        try {
          const hwpt = binding.hwptAlloc(fd, { devId: mock.deviceId, ptId: ioas.id, flags: HWPT_FAULT_ID_VALID, faultId: q.id });
          binding.destroy(fd, hwpt);
          mockPagingFault = finding('yes', 'IOMMU_HWPT_ALLOC of a paging HWPT with a fault queue succeeded for the kernel test device');
        } catch (e) {
          mockPagingFault = pagingFaultRefusal(e, 'the kernel test device');
        } finally {
          binding.close(q.fd);
          mock.destroy();
        }
      }
    }
    return {
      faultQueue, veventq, testDevice, mockPagingFault,
      pagingHwptFault: mockPagingFault ?? finding('unknown', 'no device to probe with'),
      pasidAttach: finding('unknown', 'no device to probe with: needs a device bound to vfio-pci'),
    };
  } finally {
    await iommufd.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

export async function probe(options: ProbeOptions = {}): Promise<ProbeReport> {
  const started = performance.now();
  const devicePath = options.devicePath ?? '/dev/iommu';
  const iommufd = probeDevIommu(devicePath);
  const usable = iommufd.present && iommufd.canOpen;
  const iommus = probeIommus();

  let features: Features;
  let mockPagingFault: Finding | null = null;
  if (!iommufd.present) features = unprobed('no', `not probed: no ${devicePath}`);
  else if (!iommufd.canOpen) features = unprobed('unknown', `not probed: cannot open ${devicePath} (${iommufd.openError})`);
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
      verdict: iopfVerdict({
        pcie: d.pcie, iommuGroup: d.iommuGroup, iommuPageRequests: pageRequests, driver: d.driver, vfioCdev: d.vfioCdev,
        iommufdUsable: usable, vfioBusy: vfio?.busy ?? false, iopfAttach: vfio?.iopfAttach ?? null,
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
  const exitCode = !iommufd.present ? ProbeExit.NO_IOMMUFD
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

// ---------------------------------------------------------------------------------------------
// Text output
// ---------------------------------------------------------------------------------------------

export function formatText(r: ProbeReport, { color = false }: { color?: boolean } = {}): string {
  const paint = (code: number) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const green = paint(32);
  const red = paint(31);
  const yellow = paint(33);
  const bold = paint(1);
  const dim = paint(2);
  const tri = (t: Tri | boolean | null, width = 0) => {
    const s = t === true ? 'yes' : t === false ? 'no' : t === null ? '?' : t;
    const padded = s.padEnd(width);
    return s === 'yes' ? green(padded) : s === 'no' ? red(padded) : yellow(padded);
  };
  const lines: string[] = [];
  const out = (s = '') => lines.push(s);
  out(bold(`iommufd-probe ${r.tool.version}: Linux ${r.kernel.release} (${r.kernel.machine}), uid ${r.user.uid}`));
  if (r.kernel.iommuParameters.length) out(`  kernel parameters: ${r.kernel.iommuParameters.join(' ')}`);
  out();
  out(bold('iommufd'));
  const f = r.iommufd;
  if (f.present) {
    out(`  ${f.path}: present, ${f.mode} uid ${f.uid} gid ${f.gid}, opens for this user: ${tri(f.canOpen)}${f.openError ? ` (${f.openError})` : ''}`);
  } else out(`  ${f.path}: ${red('absent')}`);
  if (f.reason) out(`  why: ${f.reason}`);
  const cfg = Object.entries(f.kernelConfig.options).map(([k, v]) => `${k}=${v}`).join(' ');
  out(`  kernel config: ${f.kernelConfig.source ? `${f.kernelConfig.source}: ${cfg || '(none of the relevant options)'}` : 'not readable'}`);
  out(`  module: ${f.moduleLoaded ? 'iommufd in /sys/module' : 'no /sys/module/iommufd'}${f.moduleFile ? `, ${f.moduleFile}` : ''}; misc device: ${f.miscMinor === null ? 'not registered' : `10:${f.miscMinor}`}`);
  out();
  out(bold('IOMMUs'));
  if (r.iommus.length === 0) out('  none in /sys/class/iommu (no IOMMU enabled: firmware setting, or intel_iommu=/amd_iommu= on the kernel command line)');
  const nameWidth = Math.max(0, ...r.iommus.map((m) => m.name.length));
  for (const m of r.iommus) {
    out(`  ${m.name.padEnd(nameWidth)}  ${m.kind.padEnd(9)}  page requests ${tri(m.pageRequests, 7)}  PASID ${tri(m.pasid, 7)}`);
    out(`    ${dim(m.detail)}`);
  }
  out();
  out(bold('uAPI features (probed)'));
  const feat: [string, Finding][] = [
    ['fault queues', r.features.faultQueue],
    ['fault on paging HWPTs', r.features.pagingHwptFault],
    ['vEVENTQ', r.features.veventq],
    ['PASID attach', r.features.pasidAttach],
    ['kernel test device', r.features.testDevice],
  ];
  for (const [name, x] of feat) out(`  ${name.padEnd(22)} ${tri(x.status, 7)} ${dim(x.detail)}`);
  if (r.features.testDevice.status === 'yes') out(`  ${''.padEnd(22)} ${'attach'.padEnd(7)} ${tri(r.features.testDevice.attach)}: ${dim(r.features.testDevice.attachDetail)}`);
  out();
  out(bold('Devices'));
  if (r.devices.length === 0) out('  no PCI devices and no VFIO cdevs');
  else {
    const head = ['ADDRESS', 'ID', 'DRIVER', 'GROUP', 'IOMMU', 'ATS', 'PRI', 'PASID', 'IOPF'];
    const rows = r.devices.map((d) => [
      d.address, d.vendorId ? `${d.vendorId}:${d.deviceId}` : d.bus, d.driver ?? '-', d.iommuGroup === null ? '-' : String(d.iommuGroup),
      d.iommu ?? '-', yn(d.pcie?.ats), yn(d.pcie?.pri), yn(d.pcie?.pasid), d.verdict.iopf,
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    out(`  ${head.map((h, i) => h.padEnd(widths[i])).join('  ')}`);
    r.devices.forEach((d, n) => {
      const row = rows[n];
      const cells = row.map((c, i) => (i === row.length - 1 ? tri(d.verdict.iopf, widths[i]) : c.padEnd(widths[i])));
      out(`  ${cells.join('  ')}`);
      out(`    ${dim(d.verdict.summary)}`);
      if (d.hwInfo) out(`    ${dim(`hw info: ${d.hwInfo.typeName}, max PASID bits ${d.hwInfo.maxPasidLog2}`)}`);
    });
  }
  out();
  const s = r.summary;
  const mark = s.exitCode === 0 ? green : s.exitCode === 1 ? yellow : red;
  out(`${bold('Result:')} ${mark(s.text)} (exit ${s.exitCode})`);
  return `${lines.join('\n')}\n`;
}

function yn(b: boolean | null | undefined): string {
  return b === true ? 'yes' : b === false ? 'no' : '?';
}

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

export const USAGE = `usage: iommufd-probe [--json] [--color|--no-color] [--device PATH]

Reports what this machine can do with iommufd: /dev/iommu and why it is missing, uAPI features
found by probing the running kernel, and for every PCI device and VFIO cdev whether it can take
I/O page faults (IOPF), with the reason when not.
  --json        the report as JSON (schema: schema/probe.schema.json in the package)
  --color       colour the text output even when stdout is not a terminal
  --no-color    never colour (NO_COLOR in the environment does the same)
  --device PATH the iommufd device node (default /dev/iommu)
  -h, --help    this text
Exit status: 0 IOPF available for at least one device; 1 iommufd usable but no IOPF-capable
device; 2 no iommufd; 3 /dev/iommu present but this user cannot open it; 64 usage error;
70 the probe itself failed.`;

export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
  env: Record<string, string | undefined>;
  version?: string;
}

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  let json = false;
  let color: boolean | undefined;
  let devicePath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if (a === '--color') color = true;
    else if (a === '--no-color') color = false;
    else if (a === '--device' && i + 1 < argv.length) devicePath = argv[++i];
    else if (a.startsWith('--device=')) devicePath = a.slice('--device='.length);
    else if (a === '-h' || a === '--help') {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    } else {
      io.stderr.write(`iommufd-probe: unknown argument ${JSON.stringify(a)}\n${USAGE}\n`);
      return ProbeExit.USAGE;
    }
  }
  let report: ProbeReport;
  try {
    report = await probe({ devicePath, toolVersion: io.version });
  } catch (e) {
    io.stderr.write(`iommufd-probe: the probe failed: ${(e as Error)?.stack ?? String(e)}\n`);
    return ProbeExit.INTERNAL;
  }
  if (json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const env = io.env;
    const useColor = color ?? (env.NO_COLOR !== undefined && env.NO_COLOR !== '' ? false
      : env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' ? true : io.stdout.isTTY === true);
    io.stdout.write(formatText(report, { color: useColor }));
  }
  return report.summary.exitCode;
}
