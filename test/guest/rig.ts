// What the rig tells a guest test about the boot it runs in (set by scripts/rig.mjs).
import { release } from 'node:os';

export const rig = {
  inGuest: process.env.IOMMUFD_RIG === '1',
  /** 'newest', '6.12' or a bzImage path, as given to iommufd-rig --kernel. */
  kernel: process.env.IOMMUFD_RIG_KERNEL ?? '',
  /** Upstream version of the Debian source the image was built from, e.g. '7.2.13'. */
  kernelRelease: process.env.IOMMUFD_RIG_KERNEL_RELEASE ?? '',
  /** The kernel image's cache directory (build-kernel.sh leaves config and selftests/ there). */
  kernelDir: process.env.IOMMUFD_RIG_KERNEL_DIR ?? '',
  intelIommu: process.env.IOMMUFD_RIG_INTEL_IOMMU === 'on',
  /** 'iopf' when booted with --qemu iopf (QEMU 10.2 with the PRI test device), 'nested' with
   *  --qemu nested (the same with x-nesting: VT-d nested translation), else 'system'. */
  qemu: process.env.IOMMUFD_RIG_QEMU ?? 'system',
};

/** The running kernel as [major, minor]. */
export function kernelVersion(): [number, number] {
  const [major, minor] = release().split('.').map(Number);
  return [major, minor];
}

/** Paging HWPTs accept a fault queue from 6.13; before, only nested ones do. */
export function pagingFaultSupported(): boolean {
  const [major, minor] = kernelVersion();
  return major > 6 || (major === 6 && minor >= 13);
}
