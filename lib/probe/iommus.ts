// Collector: the IOMMUs in /sys/class/iommu, and whether each takes PCIe page requests.
import { existsSync } from 'node:fs';
import { decodeVtdHwInfo } from '../device/hw_info.js';
import type { IommuReport, Tri } from './types.js';
import { link, list, read } from './util.js';

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
export function vtdPageRequests(e: { smts: boolean; prs: boolean; pds: boolean }): { status: Tri; detail: string } {
  const missing = [!e.smts && 'SMTS=0 (no scalable mode)', !e.prs && 'PRS=0 (no page request support)', !e.pds && 'PDS=0 (no page-request drain)'].filter(Boolean);
  return missing.length === 0
    ? { status: 'yes', detail: 'VT-d ecap SMTS, PRS and PDS set' }
    : { status: 'no', detail: `VT-d ecap ${missing.join(', ')}` };
}

/**
 * Nested translation on VT-d: Linux offers it where scalable mode and ECAP.NEST are set
 * (nested_supported()); the NEST_PARENT is a second-stage table (SLTS) and the stage 1 a nested
 * HWPT's owner writes is a first-stage one (FLTS; the spec has NEST imply both).
 */
export function vtdNesting(e: { smts: boolean; nest: boolean; flts: boolean; slts: boolean }): { status: Tri; detail: string } {
  const missing = [!e.smts && 'SMTS=0 (no scalable mode)', !e.nest && 'NEST=0', !e.flts && 'FLTS=0 (no first stage)', !e.slts && 'SLTS=0 (no second stage)'].filter(Boolean);
  return missing.length === 0
    ? { status: 'yes', detail: 'nesting yes (ecap SMTS, NEST, FLTS and SLTS)' }
    : { status: 'no', detail: `nesting no (ecap ${missing.join(', ')})` };
}

const tri = (b: boolean): Tri => (b ? 'yes' : 'no');
const unknownCaps = { pageRequests: 'unknown', pasid: 'unknown', nesting: 'unknown', firstStage: 'unknown', secondStage: 'unknown' } as const;

export function probeIommus(): IommuReport[] {
  return list('/sys/class/iommu').sort().map((name): IommuReport => {
    const dir = `/sys/class/iommu/${name}`;
    if (existsSync(`${dir}/intel-iommu`)) {
      const capS = read(`${dir}/intel-iommu/cap`) ?? '';
      const ecapS = read(`${dir}/intel-iommu/ecap`) ?? '';
      const cap = hex64(capS);
      const ecap = hex64(ecapS);
      const registers = { cap: `0x${capS}`, ecap: `0x${ecapS}` };
      if (cap === null || ecap === null) return { name, kind: 'intel-vtd', ...unknownCaps, detail: 'VT-d capability registers unreadable', registers: {} };
      const { ecap: e } = vtdFromRegs(cap, ecap);
      const pr = vtdPageRequests(e);
      const nest = vtdNesting(e);
      return {
        name, kind: 'intel-vtd', pageRequests: pr.status, pasid: e.pasid && e.smts ? 'yes' : 'no',
        nesting: nest.status, firstStage: tri(e.flts), secondStage: tri(e.slts),
        detail: `${pr.detail}; PASID ${e.pasid ? `yes (${e.pss + 1} bits)` : 'no'}; device-TLB (ATS) ${e.devIotlb ? 'yes' : 'no'}; ${nest.detail}`, registers,
      };
    }
    if (existsSync(`${dir}/amd-iommu`)) {
      const features = read(`${dir}/amd-iommu/features`) ?? '';
      const efr = hex64(features.split(':')[0] ?? '');
      if (efr === null) return { name, kind: 'amd-vi', ...unknownCaps, detail: 'AMD-Vi feature register unreadable', registers: {} };
      const ppr = (efr & 2n) !== 0n;
      const gt = (efr & 16n) !== 0n;
      return {
        name, kind: 'amd-vi', pageRequests: ppr ? 'yes' : 'no', pasid: gt ? 'yes' : 'no', nesting: 'unknown', firstStage: 'unknown', secondStage: 'unknown',
        detail: `AMD-Vi EFR PPRSup=${ppr ? 1 : 0} GTSup=${gt ? 1 : 0}; nesting not decoded by the probe`, registers: { features },
      };
    }
    if (name.startsWith('iommufd_selftest')) {
      return {
        name, kind: 'selftest', pageRequests: 'yes', pasid: 'yes', nesting: 'yes', firstStage: 'unknown', secondStage: 'unknown',
        detail: "the kernel's iommufd test device IOMMU (CONFIG_IOMMUFD_TEST); raises faults only on request; nests its own mock stage 1 (HWPT_DATA_SELFTEST)", registers: {},
      };
    }
    const kind = /smmu/i.test(name) || /smmu/i.test(link(`${dir}/device/driver`) ?? '') ? 'arm-smmu' : 'other';
    return { name, kind, ...unknownCaps, detail: 'page-request and nesting support of this IOMMU are not decoded by the probe', registers: {} };
  });
}
