// Collector: the kernel, its config and the iommufd node (/dev/iommu): present, permissions,
// whether this user can open it, whether it is an iommufd at all, and if it is missing, why.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { binding } from '../core/binding.js';
import type { AbsentReason, IommufdReport, KconfigValue } from './types.js';
import { iommufdIdentity } from './ioctl.js';
import { codeOf, list, read } from './util.js';

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

export function probeDevIommu(path: string): IommufdReport {
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
  let fd: number;
  try {
    fd = binding.open(path);
    report.canOpen = true;
  } catch (e) {
    report.openError = codeOf(e);
    report.reasonCode = report.openError === 'EACCES' || report.openError === 'EPERM' ? 'permission' : 'unknown';
    report.reason = report.reasonCode === 'permission'
      ? `${path} is ${modeString(st.mode)} owned by uid ${st.uid} gid ${st.gid}; this user (uid ${process.getuid?.()}) may not open it: run as root, or grant access with a udev rule or group`
      : `opening ${path} failed with ${report.openError}`;
    return report;
  }
  try {
    const identity = iommufdIdentity(fd);
    if (!identity.iommufd) {
      report.reasonCode = 'not-iommufd';
      report.reason = `${path} opens but is not an iommufd: ${identity.detail}`;
    }
  } finally {
    binding.close(fd);
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

export function iommuParameters(): string[] {
  const cmdline = read('/proc/cmdline') ?? '';
  return cmdline.split(/\s+/).filter((p) => /^(intel_iommu|amd_iommu|iommu|iommu\.[\w.]+|vfio[\w.-]*|vfio_pci\.[\w]+)(=|$)/.test(p));
}
