// iommufd/testing: the kernel's iommufd test device (CONFIG_IOMMUFD_TEST), a mock device that can
// be attached to IOASes and HWPTs and made to raise I/O page faults, and a driver for the rig's
// PRI test device (a QEMU PCIe device that sends real page requests). Kept out of the main entry
// point so production code never loads it.
export {
  checkMockIotlb, HWPT_DATA_SELFTEST, IOMMU_TEST_IOTLB_DEFAULT, MOCK_IOTLB_NUM, MockDevice, selftestHwptData, type TriggerIopf, VIOMMU_TYPE_SELFTEST,
} from './testing/mock_device.js';
export { VEVENTQ_TYPE_SELFTEST } from './vevent/vevent.js';
export * from './testing/pri_testdev.js';
export { type Stage1Entry, VtdStage1Table, type VtdStage1TableOptions } from './testing/stage1.js';
