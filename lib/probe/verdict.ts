// The verdict: whether a device can take I/O page faults through iommufd, and every reason not.
import type { FaultPath, Finding, NestedFinding, PcieCaps, Reason, ReasonCode, Tri, Verdict } from './types.js';

export interface VerdictInput {
  pcie: PcieCaps | null;
  iommuGroup: number | null;
  iommuPageRequests: { status: Tri; detail: string };
  driver: string | null;
  vfioCdev: string | null;
  iommufdUsable: boolean;
  vfioBusy: boolean;
  iopfAttach: Finding | null;
  /** Whether the kernel made a fault-capable paging HWPT for this device (null: not tried). */
  pagingHwptFault?: Finding | null;
  /** Whether its IOMMU does nested translation (VT-d ecap NEST; null: unknown). */
  nesting?: boolean | null;
  /** The nested path as the probe built it (null: not tried). */
  nestedAttach?: NestedFinding | null;
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
  // The paths the kernel made work: a fault-capable paging HWPT attached, or a fault-capable
  // nested HWPT attached with ATS left on. One is enough; the reasons below are why neither is.
  const paths: FaultPath[] = [];
  if (i.iopfAttach?.status === 'yes') paths.push('paging');
  if (i.nestedAttach?.status === 'yes') paths.push('nested');
  const nested = i.nestedAttach ?? null;
  if (paths.length === 0) {
    // Before 6.13 a fault queue goes only on a nested HWPT: without nesting in the IOMMU there is
    // no HWPT that can take the device's faults, however capable the device. With nesting the
    // probe builds the nested path, and its outcome is the reason.
    if (i.pagingHwptFault?.status === 'no' && nested === null) {
      if (i.nesting === false) no('no-fault-hwpt', `${i.pagingHwptFault.detail}; its IOMMU has no nested translation (VT-d ecap NEST clear), so no HWPT can take its faults`);
      else unknown('no-fault-hwpt', `${i.pagingHwptFault.detail}; only a nested HWPT could take its faults, which the probe does not build`);
    }
    if (i.iopfAttach?.status === 'no') no('attach-refused', i.iopfAttach.detail);
    else if (i.iopfAttach?.status === 'unknown') unknown('attach-untested', i.iopfAttach.detail);
    if (nested !== null) {
      const text = i.pagingHwptFault?.status === 'no' ? `${i.pagingHwptFault.detail}; on the nested path ${nested.detail}` : `on the nested path ${nested.detail}`;
      if (nested.step === 'ats' && nested.status === 'no') no('nested-ats-off', text);
      else if (nested.status === 'no') no('nested-refused', text);
      else unknown('nested-untested', text);
    }
  }
  const first = reasons.find((r) => r.kind === 'no') ?? reasons[0];
  const iopf: Tri = reasons.some((r) => r.kind === 'no') ? 'no' : reasons.length > 0 ? 'unknown' : 'yes';
  const summary = first?.text
    ?? (paths[0] === 'paging' ? 'yes: the kernel enabled I/O page faults for it on attach'
      : paths[0] === 'nested' ? 'yes: the kernel attached it to a fault-capable nested HWPT with ATS on: its faults reach the nested HWPT\'s queue (the path of a VMM whose guest owns stage 1)'
        : 'yes: PRI and ATS present, its IOMMU takes page requests, bound to vfio-pci');
  return {
    iopf, summary, path: iopf === 'yes' ? paths[0] ?? null : null, paths,
    reasons: reasons.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'no' ? -1 : 1)),
  };
}
