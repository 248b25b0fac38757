// Collector: every PCI device and VFIO cdev (sysfs, config space), and for devices already on
// vfio-pci what the kernel says about them through their VFIO cdev.
import { readFileSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { binding } from '../core/binding.js';
import type { DecodedHwInfo } from '../device/hw_info.js';
import { HWPT_FAULT_ID_VALID } from '../objects/hwpt.js';
import { Iommufd } from '../objects/iommufd.js';
import { pciCapabilities, pciExtendedCapabilities, PCI_CAP_ID_EXP, PCI_EXT_CAP_ID_ATS, PCI_EXT_CAP_ID_PASID, PCI_EXT_CAP_ID_PRI } from '../device/pci.js';
import { VfioDevice } from '../device/vfio_device.js';
import { pagingFaultRefusal } from './features.js';
import { vtdNesting } from './iommus.js';
import { probeNested } from './nested.js';
import type { DeviceReport, Finding, HwInfoReport, NestedFinding, PcieCaps } from './types.js';
import { codeOf, finding, link, list, read } from './util.js';

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
      flts: h.vtd.ecap.flts, slts: h.vtd.ecap.slts,
    } : null,
  };
}

export interface VfioResult {
  hwInfo: HwInfoReport | null;
  note: string;
  pasidAttach: Finding | null;
  pagingHwptFault: Finding | null;
  iopfAttach: Finding | null;
  /** The nested path (probeNested), where the device's IOMMU has nesting. */
  nestedAttach: NestedFinding | null;
  busy: boolean;
}

/**
 * Binds a device already on vfio-pci to a private iommufd and asks the kernel about it:
 * GET_HW_INFO, whether VFIO takes a PASID attach, whether a paging HWPT takes a fault queue and,
 * if it does, whether the device can be attached to one (the IOMMU driver turns on PRI for it),
 * and where its IOMMU has nesting (VT-d), the nested path as a VMM builds it (probeNested).
 * Everything is undone when the device and the iommufd are closed.
 */
export async function probeVfio(cdev: string, devicePath: string): Promise<VfioResult> {
  const out: VfioResult = { hwInfo: null, note: '', pasidAttach: null, pagingHwptFault: null, iopfAttach: null, nestedAttach: null, busy: false };
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
    probePaging(iommufd, dev, cdev, out);
    const vtd = out.hwInfo?.vtd;
    if (vtd && vtdNesting(vtd).status === 'yes') out.nestedAttach = probeNested(iommufd, dev, cdev);
    return out;
  } finally {
    dev?.close();
    await iommufd.close();
  }
}

/** A fault-capable paging HWPT for the device, and the device attached to it; undone after. */
function probePaging(iommufd: Iommufd, dev: VfioDevice, cdev: string, out: VfioResult): void {
  const ioas = iommufd.allocIoas();
  const fault = binding.faultQueueAlloc(iommufd.fd);
  try {
    let hwptId: number;
    try {
      hwptId = binding.hwptAlloc(iommufd.fd, { devId: dev.deviceId, ptId: ioas.id, flags: HWPT_FAULT_ID_VALID, faultId: fault.id });
      out.pagingHwptFault = finding('yes', `IOMMU_HWPT_ALLOC of a paging HWPT with a fault queue succeeded for ${cdev}`);
    } catch (e) {
      out.pagingHwptFault = pagingFaultRefusal(e, cdev);
      return;
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
    try {
      binding.destroy(iommufd.fd, hwptId);
      ioas.destroy();
    } catch {
      // still attached: the device's close and the iommufd's take it down
    }
  } finally {
    // Whatever is left (a HWPT still attached, say) goes with the caller's iommufd.
    binding.close(fault.fd);
  }
}

export function pciDevice(address: string): Omit<DeviceReport, 'hwInfo' | 'hwInfoNote' | 'iopfAttach' | 'nestedAttach' | 'verdict'> {
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
export function otherVfioDevices(pciAddresses: Set<string>): Omit<DeviceReport, 'hwInfo' | 'hwInfoNote' | 'iopfAttach' | 'nestedAttach' | 'verdict'>[] {
  const out: Omit<DeviceReport, 'hwInfo' | 'hwInfoNote' | 'iopfAttach' | 'nestedAttach' | 'verdict'>[] = [];
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
