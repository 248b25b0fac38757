// drivers/iommu/iommufd/iommufd_test.h mirror (the iommufd selftest, CONFIG_IOMMUFD_TEST).
// Include "uapi.h", not this: it holds why the mirror exists, the extensibility rule, the
// 6.12 vs 7.2 differences and the guard against the system headers.
#pragma once

#include <linux/ioctl.h>
#include <linux/types.h>

#include <cstddef>

#include "iommufd.h"

namespace iommufd::uapi {

// ---------------------------------------------------------------------------------------------
// iommufd selftest (CONFIG_IOMMUFD_TEST; drivers/iommu/iommufd/iommufd_test.h). Not a stable
// uAPI: it follows the kernel it was built with, hence the per-version notes.
// ---------------------------------------------------------------------------------------------

// Same nr in 6.12 and 7.2: IOMMUFD_CMD_BASE + 32 = 0xa0.
constexpr unsigned long IOMMU_TEST_CMD = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32);

// Positional in the kernel enum (starting at ADD_RESERVED = 1), appended to only: 1..15 are the
// same in 6.12 and 7.2, 16 and up exist only after 6.12.
enum : __u32 {
  IOMMU_TEST_OP_MOCK_DOMAIN = 2,           // 6.12 has it
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10,  // 6.12 has it
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12,    // 6.12 has it
  IOMMU_TEST_OP_MD_CHECK_IOTLB = 14,       // 6.12 has it
  IOMMU_TEST_OP_TRIGGER_IOPF = 15,         // 6.12 has it
  IOMMU_TEST_OP_TRIGGER_VEVENT = 17,       // after 6.12 (16 is DEV_CHECK_CACHE)
};

// mock_domain_flags.dev_flags. 6.12 also had MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1 (gone in 7.2).
enum : __u32 {
  MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0,  // 6.12 has it
  MOCK_FLAGS_DEVICE_PASID = 1 << 2,     // after 6.12
};

// IOVA window of a mock domain; 6.12 has it (same values).
constexpr __u64 MOCK_APERTURE_START = 1UL << 24;
constexpr __u64 MOCK_APERTURE_LAST = (1UL << 31) - 1;

// Only the union members used here are mirrored; __union_size stands in for the rest so the
// union keeps its kernel size (48, set by the 'dirty' member) in both 6.12 and 7.2.
struct iommu_test_cmd {
  __u32 size;
  __u32 op;
  __u32 id;  // MOCK_DOMAIN*: in ioas/pt id, out stdev_id; MOCK_DOMAIN_REPLACE: in stdev_id
  __u32 __reserved;
  union {
    struct {
      __u32 out_stdev_id;
      __u32 out_hwpt_id;
      __u32 out_idev_id;  // the regular iommufd device id (dev_id elsewhere)
    } mock_domain;
    struct {
      __u32 out_stdev_id;
      __u32 out_hwpt_id;
      __u32 out_idev_id;
      __u32 dev_flags;
    } mock_domain_flags;
    struct {
      __u32 pt_id;
    } mock_domain_replace;
    struct {
      __u32 dev_id;
      __u32 pasid;
      __u32 grpid;
      __u32 perm;
      __u64 addr;
    } trigger_iopf;
    struct {
      __u32 id;     // which of the mock nested domain's IOTLB entries
      __u32 iotlb;  // the value it must hold (else EINVAL)
    } check_iotlb;
    struct {
      __u32 dev_id;
    } trigger_vevent;  // after 6.12
    __aligned_u64 __union_size[6];
  };
  __u32 last;
};

// GET_HW_INFO on a mock device. 6.12 has it.
constexpr __u32 IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
constexpr __u32 IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;
struct iommu_test_hw_info {
  __u32 flags;
  __u32 test_reg;
};

// HWPT_ALLOC data_type for a mock nested domain; not a value of enum iommu_hwpt_data_type.
constexpr __u32 IOMMU_HWPT_DATA_SELFTEST = 0xdead;  // 6.12 has it
constexpr __u32 IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;

// 6.12: {iotlb} only (4 bytes). Both kernels require just offsetofend(iotlb) = 4 as data_len.
struct iommu_hwpt_selftest {
  __u32 iotlb;
  __u32 pagetable_type;  // after 6.12; 0 = MOCK_IOMMUPT_DEFAULT
};

// The mock nested domain's IOTLB: MOCK_NESTED_DOMAIN_IOTLB_NUM entries (ids 0..3), each set to
// the HWPT data's iotlb at alloc and to 0 by an invalidation that names it. 6.12 has it all.
constexpr __u32 MOCK_NESTED_DOMAIN_IOTLB_NUM = 4;
constexpr __u32 IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
constexpr __u32 IOMMU_TEST_INVALIDATE_FLAG_ALL = 1 << 0;
struct iommu_hwpt_invalidate_selftest {
  __u32 flags;     // IOMMU_TEST_INVALIDATE_FLAG_ALL: every entry, iotlb_id ignored
  __u32 iotlb_id;  // > MOCK_NESTED_DOMAIN_IOTLB_NUM - 1: EINVAL
};

// vIOMMU / vEVENTQ types served by the mock driver (needed for TRIGGER_VEVENT). After 6.12.
constexpr __u32 IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
constexpr __u32 IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
struct iommu_viommu_event_selftest {
  __u32 virt_id;  // the vDEVICE virt_id of the device that raised the event
};

// ---------------------------------------------------------------------------------------------
// Layout checks: numbers computed by hand from the kernel definitions, then confirmed on x86-64
// against the real 7.2 drivers/iommu/iommufd/iommufd_test.h with a throwaway C program.
// ---------------------------------------------------------------------------------------------

static_assert(IOMMU_TEST_CMD == 0x3ba0);

static_assert(sizeof(iommu_test_cmd) == 72);
static_assert(offsetof(iommu_test_cmd, size) == 0);
static_assert(offsetof(iommu_test_cmd, op) == 4);
static_assert(offsetof(iommu_test_cmd, id) == 8);
static_assert(offsetof(iommu_test_cmd, __reserved) == 12);
static_assert(offsetof(iommu_test_cmd, mock_domain.out_stdev_id) == 16);
static_assert(offsetof(iommu_test_cmd, mock_domain.out_hwpt_id) == 20);
static_assert(offsetof(iommu_test_cmd, mock_domain.out_idev_id) == 24);
static_assert(offsetof(iommu_test_cmd, mock_domain_flags.out_stdev_id) == 16);
static_assert(offsetof(iommu_test_cmd, mock_domain_flags.out_hwpt_id) == 20);
static_assert(offsetof(iommu_test_cmd, mock_domain_flags.out_idev_id) == 24);
static_assert(offsetof(iommu_test_cmd, mock_domain_flags.dev_flags) == 28);
static_assert(offsetof(iommu_test_cmd, mock_domain_replace.pt_id) == 16);
static_assert(offsetof(iommu_test_cmd, trigger_iopf.dev_id) == 16);
static_assert(offsetof(iommu_test_cmd, trigger_iopf.pasid) == 20);
static_assert(offsetof(iommu_test_cmd, trigger_iopf.grpid) == 24);
static_assert(offsetof(iommu_test_cmd, trigger_iopf.perm) == 28);
static_assert(offsetof(iommu_test_cmd, trigger_iopf.addr) == 32);
static_assert(offsetof(iommu_test_cmd, check_iotlb.id) == 16);
static_assert(offsetof(iommu_test_cmd, check_iotlb.iotlb) == 20);
static_assert(offsetof(iommu_test_cmd, trigger_vevent.dev_id) == 16);
static_assert(offsetof(iommu_test_cmd, __union_size) == 16);
static_assert(offsetof(iommu_test_cmd, last) == 64);

static_assert(sizeof(iommu_test_hw_info) == 8);
static_assert(offsetof(iommu_test_hw_info, flags) == 0);
static_assert(offsetof(iommu_test_hw_info, test_reg) == 4);

static_assert(sizeof(iommu_hwpt_selftest) == 8);
static_assert(offsetof(iommu_hwpt_selftest, iotlb) == 0);
static_assert(offsetof(iommu_hwpt_selftest, pagetable_type) == 4);

static_assert(sizeof(iommu_hwpt_invalidate_selftest) == 8);
static_assert(offsetof(iommu_hwpt_invalidate_selftest, flags) == 0);
static_assert(offsetof(iommu_hwpt_invalidate_selftest, iotlb_id) == 4);

static_assert(sizeof(iommu_viommu_event_selftest) == 4);
static_assert(offsetof(iommu_viommu_event_selftest, virt_id) == 0);

}  // namespace iommufd::uapi
