// The package's main entry point ('iommufd'): names handed on from the concerns, nothing defined.
// objects/: the iommufd and what it makes (IOAS, HWPT, vIOMMU, vDEVICE).
export { Iommufd } from './objects/iommufd.js';
export {
  allocPages, type AllocPagesOptions, Ioas, IOAS_MAP_FIXED_IOVA, IOAS_MAP_READABLE, IOAS_MAP_WRITEABLE, type IovaRange, type MapOptions,
} from './objects/ioas.js';
export { IoasHandle, IoasMapper, type IoasDescriptor, type MapperMapOptions } from './objects/ioas_handle.js';
export {
  Hwpt, HWPT_ALLOC_DIRTY_TRACKING, HWPT_ALLOC_NEST_PARENT, HWPT_ALLOC_PASID, HWPT_FAULT_ID_VALID, type HwptAllocOptions,
} from './objects/hwpt.js';
export {
  HWPT_DATA_NONE, HWPT_DATA_VTD_S1, type Invalidation, type SelftestInvalidation, type VtdS1Invalidation, type VtdStage1,
} from './objects/invalidate.js';
export { Vdevice, Viommu, VIOMMU_TYPE_ARM_SMMUV3, VIOMMU_TYPE_TEGRA241_CMDQV, type VdeviceAllocOptions, type ViommuAllocOptions } from './objects/viommu.js';
// fault/: fault queues, their records, groups, batches and serve loops.
export {
  FaultQueue, type BatchHandler, type CloseResult, type FaultQueueOptions, type FaultQueueStats,
} from './fault/fault_queue.js';
export { FaultBatch } from './fault/fault_batch.js';
export { FaultGroup } from './fault/fault_group.js';
export { FaultServer, type ServeHandler, type ServeInWorkerOptions, type ServeOptions, type ServeResult, type ServeStats } from './fault/serve.js';
export {
  decodeFaultGroups, decodeFaultRecord, FAULT_RECORD_SIZE, forEachFaultGroup, FAULT_RESPONSE_SIZE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS,
  PGFAULT_FLAGS_LAST_PAGE, PGFAULT_FLAGS_PASID_VALID, PGFAULT_PERM_EXEC, PGFAULT_PERM_PRIV, PGFAULT_PERM_READ,
  PGFAULT_PERM_WRITE, type FaultRecord, type ResponseCode,
} from './fault/fault.js';
// paging/: a guest-RAM window served on demand, within a budget of pinned memory.
export {
  DemandPager, type DemandPagerCloseOptions, type DemandPagerCloseResult, type DemandPagerOptions, type DemandPagerStats, type FaultErrorInfo,
  type PagePolicy, type PageRequest, type PolicyAnswer,
} from './paging/pager.js';
export type { LatencyPercentiles } from './paging/latency.js';
// vevent/: vIOMMU event queues, their batches and record decoders.
export {
  Vevent, VeventQueue, VEVENTQ_MAX_DEPTH, type VeventBatchHandler, type VeventLoss, type VeventQueueOptions, type VeventQueueStats,
} from './vevent/veventq.js';
export { VeventBatch } from './vevent/vevent_batch.js';
export {
  decodeArmSmmuv3Vevent, decodeVevent, VEVENT_HEADER_SIZE, VEVENTQ_FLAG_LOST_EVENTS, VEVENTQ_TYPE_ARM_SMMUV3, VEVENTQ_TYPE_TEGRA241_CMDQV,
  type ArmSmmuv3Vevent, type DecodedVevent, type SelftestVevent, type Tegra241CmdqvVevent,
} from './vevent/vevent.js';
// device/: VFIO cdev devices, PCI config space and sysfs, IOMMU hardware info.
export {
  VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_ROM_REGION_INDEX, VFIO_REGION_INFO_FLAG_CAPS, VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE, VfioDevice, type AccessWidth, type AttachTarget,
  type VfioDeviceInfo, type VfioRegionInfo,
} from './device/vfio_device.js';
export {
  decodeHwInfo, decodeVtdHwInfo, HW_CAP_DIRTY_TRACKING, HW_CAP_PCI_ATS_NOT_SUPPORTED, HW_CAP_PCI_PASID_EXEC,
  HW_CAP_PCI_PASID_PRIV, HW_INFO_TYPE_AMD, HW_INFO_TYPE_ARM_SMMUV3, HW_INFO_TYPE_INTEL_VTD, HW_INFO_TYPE_NONE,
  HW_INFO_TYPE_SELFTEST, HW_INFO_TYPE_TEGRA241_CMDQV, HW_INFO_VTD_ERRATA_772415_SPR17, type DecodedHwInfo,
  type VtdCapReg, type VtdEcapReg, type VtdHwInfo,
} from './device/hw_info.js';
export {
  bindVfioPci, findPciDevices, PCI_CAP_ID_EXP, PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_CAP_ID_PM,
  PCI_EXT_CAP_ID_ATS, PCI_EXT_CAP_ID_PASID, PCI_EXT_CAP_ID_PRI, pciCapabilities, pciDriver, pciExtendedCapabilities,
  pciIommuFeatures, readPciConfig, unbindVfioPci, type PciCapability, type PciExtendedCapability, type PciIommuFeatures,
} from './device/pci.js';
// core/: what every concern shares.
export { ErrorCodes, IommufdError } from './core/errors.js';
export type { HwInfo, IommufdContext } from './core/context.js';
export { MAX_BUFFER_RECORDS } from './core/queue_options.js';
