// IOMMU_GET_HW_INFO decoded: the IOMMU type, the generic capability bits and, for Intel VT-d, the
// capability registers (struct iommu_hw_info_vtd) with the fields a VMM asks about decoded.
import { checkOptions, checkU32, checkU64, checkUint8Array, outOfRange } from '../core/args.js';
import type { HwInfo } from '../core/context.js';

/** enum iommu_hw_info_type */
export const HW_INFO_TYPE_NONE = 0;
export const HW_INFO_TYPE_INTEL_VTD = 1;
export const HW_INFO_TYPE_ARM_SMMUV3 = 2;
export const HW_INFO_TYPE_TEGRA241_CMDQV = 3;
export const HW_INFO_TYPE_AMD = 4;
/** The kernel's iommufd test device (IOMMU_HW_INFO_TYPE_SELFTEST). */
export const HW_INFO_TYPE_SELFTEST = 0xfeedbeef;

const typeNames = new Map<number, string>([
  [HW_INFO_TYPE_NONE, 'NONE'],
  [HW_INFO_TYPE_INTEL_VTD, 'INTEL_VTD'],
  [HW_INFO_TYPE_ARM_SMMUV3, 'ARM_SMMUV3'],
  [HW_INFO_TYPE_TEGRA241_CMDQV, 'TEGRA241_CMDQV'],
  [HW_INFO_TYPE_AMD, 'AMD'],
  [HW_INFO_TYPE_SELFTEST, 'SELFTEST'],
]);

/** enum iommufd_hw_capabilities */
export const HW_CAP_DIRTY_TRACKING = 1n << 0n;
export const HW_CAP_PCI_PASID_EXEC = 1n << 1n;
export const HW_CAP_PCI_PASID_PRIV = 1n << 2n;
export const HW_CAP_PCI_ATS_NOT_SUPPORTED = 1n << 3n;

/** enum iommu_hw_info_vtd_flags */
export const HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

export interface VtdCapReg {
  /** Maximum guest address width in bits (MGAW + 1). */
  mgaw: number;
  /** Supported adjusted guest address widths (SAGAW bitmap: bit 1 = 39-bit, bit 2 = 48-bit, bit 3 = 57-bit). */
  sagaw: number;
  /** Caching mode: the IOMMU is emulated and wants invalidations for non-present entries too. */
  cachingMode: boolean;
  /** First-stage 1 GiB pages. */
  fl1gp: boolean;
  /** First-stage 5-level paging. */
  fl5lp: boolean;
}

export interface VtdEcapReg {
  /** Scalable mode translation: needed for PASIDs, nesting and page requests. */
  smts: boolean;
  /** PASID support. */
  pasid: boolean;
  /** PASID size supported: PASIDs have pss + 1 bits. */
  pss: number;
  /** Page request support: the IOMMU takes PCIe page requests (PRI). */
  prs: boolean;
  /** Page-request drain support; the kernel needs it with prs for I/O page faults. */
  pds: boolean;
  /** Nested translation: a nest-parent HWPT with nested HWPTs on it. */
  nest: boolean;
  /** First-stage translation. */
  flts: boolean;
  /** Second-stage translation. */
  slts: boolean;
  /** Second-stage accessed/dirty bits: dirty tracking. */
  slads: boolean;
  /** Supervisor request support (a VT-d stage 1 with `sre`). */
  srs: boolean;
  /** Extended accessed flag support (a VT-d stage 1 with `eafe`). */
  eafs: boolean;
  /** Device-TLB (ATS) support. */
  devIotlb: boolean;
}

export interface VtdHwInfo {
  /** HW_INFO_VTD_* flags. */
  flags: number;
  /** The errata that rules out read-only mappings on a nest parent. */
  errata772415Spr17: boolean;
  capReg: bigint;
  ecapReg: bigint;
  cap: VtdCapReg;
  ecap: VtdEcapReg;
}

export interface DecodedHwInfo {
  type: number;
  /** The kernel's name for the type: 'INTEL_VTD', 'ARM_SMMUV3', ...; 'UNKNOWN' for a newer one. */
  typeName: string;
  capabilities: {
    dirtyTracking: boolean;
    /** PASID execute permission (meaningless when maxPasidLog2 is 0). */
    pasidExec: boolean;
    /** PASID privileged mode (meaningless when maxPasidLog2 is 0). */
    pasidPriv: boolean;
    /** ATS cannot be used on this device (the bit exists after 6.12). */
    atsNotSupported: boolean;
  };
  /** PASID width the device can use here; 0: no PASID support. */
  maxPasidLog2: number;
  /** For HW_INFO_TYPE_INTEL_VTD: struct iommu_hw_info_vtd. */
  vtd?: VtdHwInfo;
}

const bit = (reg: bigint, n: number) => ((reg >> BigInt(n)) & 1n) === 1n;
const field = (reg: bigint, n: number, mask: number) => Number((reg >> BigInt(n)) & BigInt(mask));

/** Decodes struct iommu_hw_info_vtd (24 bytes); bit positions as the kernel's cap_ and ecap_ macros. */
export function decodeVtdHwInfo(data: Uint8Array): VtdHwInfo {
  return vtd('decodeVtdHwInfo', 'data', data);
}

function vtd(call: string, name: string, data: Uint8Array): VtdHwInfo {
  checkUint8Array(call, name, data);
  if (data.length < 24) throw outOfRange(call, `${name}.length`, 'at least 24 (struct iommu_hw_info_vtd)', data.length);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const flags = view.getUint32(0, true);
  const capReg = view.getBigUint64(8, true);
  const ecapReg = view.getBigUint64(16, true);
  return {
    flags,
    errata772415Spr17: (flags & HW_INFO_VTD_ERRATA_772415_SPR17) !== 0,
    capReg,
    ecapReg,
    cap: {
      mgaw: field(capReg, 16, 0x3f) + 1,
      sagaw: field(capReg, 8, 0x1f),
      cachingMode: bit(capReg, 7),
      fl1gp: bit(capReg, 56),
      fl5lp: bit(capReg, 60),
    },
    ecap: {
      smts: bit(ecapReg, 43),
      pasid: bit(ecapReg, 40),
      pss: field(ecapReg, 35, 0x1f),
      prs: bit(ecapReg, 29),
      pds: bit(ecapReg, 42),
      nest: bit(ecapReg, 26),
      flts: bit(ecapReg, 47),
      slts: bit(ecapReg, 46),
      slads: bit(ecapReg, 45),
      srs: bit(ecapReg, 31),
      eafs: bit(ecapReg, 34),
      devIotlb: bit(ecapReg, 2),
    },
  };
}

/** Decodes what Iommufd.getHwInfo() returns. */
export function decodeHwInfo(info: HwInfo): DecodedHwInfo {
  const call = 'decodeHwInfo';
  checkOptions(call, info, false, 'info');
  checkU32(call, 'info.type', info.type);
  const caps = checkU64(call, 'info.capabilities', info.capabilities);
  checkU32(call, 'info.maxPasidLog2', info.maxPasidLog2);
  checkUint8Array(call, 'info.data', info.data);
  return {
    type: info.type,
    typeName: typeNames.get(info.type) ?? 'UNKNOWN',
    capabilities: {
      dirtyTracking: (caps & HW_CAP_DIRTY_TRACKING) !== 0n,
      pasidExec: (caps & HW_CAP_PCI_PASID_EXEC) !== 0n,
      pasidPriv: (caps & HW_CAP_PCI_PASID_PRIV) !== 0n,
      atsNotSupported: (caps & HW_CAP_PCI_ATS_NOT_SUPPORTED) !== 0n,
    },
    maxPasidLog2: info.maxPasidLog2,
    ...(info.type === HW_INFO_TYPE_INTEL_VTD ? { vtd: vtd(call, 'info.data', info.data) } : {}),
  };
}
