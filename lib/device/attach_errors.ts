// Why the kernel refused to attach a device to a HWPT, for the attach error's message: what
// VfioDevice.attach() adds to a bare ENODEV (a fault-capable HWPT) or EINVAL (a VT-d stage-1 HWPT).
// Best effort: what cannot be read (config space without root, say) just goes unmentioned.
import type { VtdStage1 } from '../objects/invalidate.js';
import type { VtdHwInfo } from './hw_info.js';
import { pciIommuFeatures } from './pci.js';

function tryRead<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** ENODEV on attaching a fault-capable HWPT: why the device cannot take I/O page faults. */
export function noPageFaults(pciAddress: string | undefined, vtd: () => VtdHwInfo | undefined): string {
  const reasons: string[] = [];
  const dev = pciAddress === undefined ? undefined : tryRead(() => pciIommuFeatures(pciAddress));
  if (dev && !dev.express) reasons.push('it is conventional PCI: no PCI Express capability, so no PRI capability in its config space');
  else if (dev && !dev.pri) reasons.push('it has no PRI (Page Request Interface) capability in its config space');
  else if (dev && !dev.ats) reasons.push('it has no ATS capability, which the IOMMU needs before it enables PRI');
  const iommu = tryRead(vtd);
  if (iommu && !iommu.ecap.prs) reasons.push('the IOMMU has no page request support (VT-d ecap PRS=0)');
  else if (iommu && !iommu.ecap.pds) reasons.push('the IOMMU has no page-request drain support (VT-d ecap PDS=0)');
  if (iommu && !iommu.ecap.devIotlb) reasons.push('the IOMMU has no device-TLB (ATS) support (VT-d ecap DT=0)');
  if (reasons.length === 0) reasons.push('the IOMMU driver could not enable I/O page faults for it');
  return reasons.join('; ');
}

/** What intel-iommu checks of a stage-1 HWPT's data when it attaches it (Linux 6.12 and 7.x). */
const STAGE1_RULES = 'the kernel checks a VT-d stage-1 HWPT\'s data when a device is attached to it, not when it is allocated ' +
  '(intel_pasid_setup_nested): stage1.addrWidth 48, or 57 only where the IOMMU has 5-level first-stage paging (VT-d ' +
  'CAP.FL5LP); stage1.sre only with supervisor request support (ECAP.SRS); stage1.eafe only with the extended accessed ' +
  'flag (ECAP.EAFS)';

/** Which of a stage-1 HWPT's settings this IOMMU (its cap and ecap) lacks; empty when none, or unreadable. */
export function stage1Lacks(stage1: Readonly<VtdStage1>, vtd: () => VtdHwInfo | undefined): string[] {
  const iommu = tryRead(vtd);
  const lacks: string[] = [];
  if (!iommu) return lacks;
  if (stage1.addrWidth === 57 && !iommu.cap.fl5lp) {
    lacks.push('stage1.addrWidth is 57 (5-level tables), and this IOMMU has no 5-level first-stage paging (VT-d CAP.FL5LP=0)');
  }
  if (stage1.sre && !iommu.ecap.srs) lacks.push('stage1.sre is set, and this IOMMU has no supervisor request support (VT-d ECAP.SRS=0)');
  if (stage1.eafe && !iommu.ecap.eafs) lacks.push('stage1.eafe is set, and this IOMMU has no extended accessed flag (VT-d ECAP.EAFS=0)');
  return lacks;
}

/**
 * EINVAL on attaching a VT-d stage-1 HWPT: which of its settings this IOMMU lacks, then the rules.
 * intel_pasid_setup_nested refuses a width of 57 without CAP.FL5LP, SRE without ECAP.SRS and EAFE
 * without ECAP.EAFS with EINVAL (drivers/iommu/intel/pasid.c, 6.12 and 7.x alike).
 */
export function stage1Refused(stage1: Readonly<VtdStage1>, vtd: () => VtdHwInfo | undefined): string {
  const lacks = stage1Lacks(stage1, vtd);
  if (lacks.length === 0 && tryRead(vtd)) {
    lacks.push(`stage1 (addrWidth ${stage1.addrWidth ?? 48}${stage1.sre ? ', sre' : ''}${stage1.eafe ? ', eafe' : ''}) suits this IOMMU, ` +
      'so the kernel refused something else: the parent HWPT (stage 2) must suit this device\'s IOMMU too');
  }
  if (lacks.length === 0) return STAGE1_RULES;
  return `${lacks.join('; ')}. ${STAGE1_RULES[0].toUpperCase()}${STAGE1_RULES.slice(1)}`;
}
