// Self-contained mirror of the Linux iommufd / VFIO-cdev uAPI.
//
// Why: the build host ships Linux 6.1 uAPI headers, which have no <linux/iommufd.h> at all and a
// <linux/vfio.h> without the cdev ioctls, while the guest kernels we drive are 6.12 (LTS) and 7.x.
// Transcribed from Debian linux-source 7.2.13 and 6.12.117: include/uapi/linux/iommufd.h,
// include/uapi/linux/vfio.h and drivers/iommu/iommufd/iommufd_test.h. Struct layouts follow 7.2;
// each item notes "6.12 has it" or "after 6.12" (from diffing the two trees).
//
// Extensibility rule the layouts rely on: iommufd takes the struct size from the first u32 and
// accepts any size >= offsetofend(last field it requires); bytes beyond what the running kernel
// knows must be zero (else E2BIG). So the 7.2 layouts below also work on 6.12 as long as fields
// added after 6.12 are left 0.
//
// IMPORTANT, 6.12 vs 7.2 differences that change sizes or numbers:
//  - IOMMU_TEST_OP_*: ops 1..15 have the same values in both; 16+ exist only after 6.12, and
//    IOMMU_TEST_OP_TRIGGER_VEVENT is 17 in 7.2 (absent in 6.12).
//  - sizeof(iommu_test_cmd) is 72 in both (kernel minimum: offsetofend(last) = 68).
//  - iommu_hwpt_selftest: 4 bytes in 6.12 ({iotlb}), 8 in 7.2 (+pagetable_type).
//  - vfio_device_bind_iommufd 16 -> 24 (+token_uuid_ptr), vfio_device_attach_iommufd_pt 12 -> 16
//    (+pasid), vfio_device_detach_iommufd_pt 8 -> 12 (+pasid). 6.12 reads only its minimum and
//    ignores extra argsz, so passing the 7.2 sizes is fine there with flags == 0.
//  - MOCK_FLAGS_DEVICE_HUGE_IOVA (1 << 1) exists only in 6.12; MOCK_FLAGS_DEVICE_PASID only after.
//
// Everything is in namespace iommufd::uapi and nothing is a macro, so the kernel's names cannot
// collide with a system header's macros; the system headers must not be in the same TU before us.
#pragma once

#if defined(_IOMMUFD_H) || defined(_UAPI_IOMMUFD_H) || defined(VFIO_H) || defined(_UAPIVFIO_H)
#error "uapi.h mirrors <linux/iommufd.h> and <linux/vfio.h>; their macros would clobber its names"
#endif

#include <linux/ioctl.h>
#include <linux/types.h>

#include <cstddef>

namespace iommufd::uapi {

// ---------------------------------------------------------------------------------------------
// iommufd (/dev/iommu). All ioctls are _IO(';', nr): the size travels in the struct, not the nr.
// ---------------------------------------------------------------------------------------------

constexpr unsigned int IOMMUFD_TYPE = ';';

// Command numbers (6.12 has 0x80..0x8e; 0x8f..0x94 are after 6.12). IOAS_MAP_FILE 0x8f,
// IOAS_CHANGE_PROCESS 0x92 and HW_QUEUE_ALLOC 0x94 are not mirrored: nothing here uses them.
enum : unsigned int {
  IOMMUFD_CMD_BASE = 0x80,
  IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
  IOMMUFD_CMD_IOAS_ALLOC = 0x81,
  IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82,
  IOMMUFD_CMD_IOAS_COPY = 0x83,
  IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
  IOMMUFD_CMD_IOAS_MAP = 0x85,
  IOMMUFD_CMD_IOAS_UNMAP = 0x86,
  IOMMUFD_CMD_OPTION = 0x87,
  IOMMUFD_CMD_VFIO_IOAS = 0x88,
  IOMMUFD_CMD_HWPT_ALLOC = 0x89,
  IOMMUFD_CMD_GET_HW_INFO = 0x8a,
  IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b,
  IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c,
  IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d,
  IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e,
  IOMMUFD_CMD_VIOMMU_ALLOC = 0x90,   // after 6.12
  IOMMUFD_CMD_VDEVICE_ALLOC = 0x91,  // after 6.12
  IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93,  // after 6.12
};

// IOMMU_DESTROY: 6.12 has it.
struct iommu_destroy {
  __u32 size;
  __u32 id;
};
constexpr unsigned long IOMMU_DESTROY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY);

// IOMMU_IOAS_ALLOC: 6.12 has it.
struct iommu_ioas_alloc {
  __u32 size;
  __u32 flags;
  __u32 out_ioas_id;
};
constexpr unsigned long IOMMU_IOAS_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC);

// Inclusive IOVA interval; element of the IOVA_RANGES / ALLOW_IOVAS arrays. 6.12 has it.
struct iommu_iova_range {
  __aligned_u64 start;
  __aligned_u64 last;
};

// IOMMU_IOAS_IOVA_RANGES: 6.12 has it. EMSGSIZE + updated num_iovas when the array is too small.
struct iommu_ioas_iova_ranges {
  __u32 size;
  __u32 ioas_id;
  __u32 num_iovas;
  __u32 __reserved;
  __aligned_u64 allowed_iovas;
  __aligned_u64 out_iova_alignment;
};
constexpr unsigned long IOMMU_IOAS_IOVA_RANGES = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES);

// IOMMU_IOAS_ALLOW_IOVAS: 6.12 has it.
struct iommu_ioas_allow_iovas {
  __u32 size;
  __u32 ioas_id;
  __u32 num_iovas;
  __u32 __reserved;
  __aligned_u64 allowed_iovas;
};
constexpr unsigned long IOMMU_IOAS_ALLOW_IOVAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS);

// Flags for IOAS_MAP and IOAS_COPY. 6.12 has them.
enum iommufd_ioas_map_flags : __u32 {
  IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
  IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
  IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

// IOMMU_IOAS_MAP: 6.12 has it.
struct iommu_ioas_map {
  __u32 size;
  __u32 flags;
  __u32 ioas_id;
  __u32 __reserved;
  __aligned_u64 user_va;
  __aligned_u64 length;
  __aligned_u64 iova;
};
constexpr unsigned long IOMMU_IOAS_MAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP);

// IOMMU_IOAS_COPY: 6.12 has it.
struct iommu_ioas_copy {
  __u32 size;
  __u32 flags;
  __u32 dst_ioas_id;
  __u32 src_ioas_id;
  __aligned_u64 length;
  __aligned_u64 dst_iova;
  __aligned_u64 src_iova;
};
constexpr unsigned long IOMMU_IOAS_COPY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY);

// IOMMU_IOAS_UNMAP: 6.12 has it. iova 0 / length UINT64_MAX unmaps everything.
struct iommu_ioas_unmap {
  __u32 size;
  __u32 ioas_id;
  __aligned_u64 iova;
  __aligned_u64 length;
};
constexpr unsigned long IOMMU_IOAS_UNMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP);

// IOMMU_OPTION: 6.12 has it.
enum iommufd_option : __u32 {
  IOMMU_OPTION_RLIMIT_MODE = 0,  // global, object_id 0, needs privilege
  IOMMU_OPTION_HUGE_PAGES = 1,   // per IOAS
};
enum iommufd_option_ops : __u16 {
  IOMMU_OPTION_OP_SET = 0,
  IOMMU_OPTION_OP_GET = 1,
};
struct iommu_option {
  __u32 size;
  __u32 option_id;
  __u16 op;
  __u16 __reserved;
  __u32 object_id;
  __aligned_u64 val64;
};
constexpr unsigned long IOMMU_OPTION = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION);

// IOMMU_VFIO_IOAS: 6.12 has it.
enum iommufd_vfio_ioas_op : __u16 {
  IOMMU_VFIO_IOAS_GET = 0,
  IOMMU_VFIO_IOAS_SET = 1,
  IOMMU_VFIO_IOAS_CLEAR = 2,
};
struct iommu_vfio_ioas {
  __u32 size;
  __u32 ioas_id;
  __u16 op;
  __u16 __reserved;
};
constexpr unsigned long IOMMU_VFIO_IOAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS);

// IOMMU_HWPT_ALLOC: 6.12 has it (including fault_id).
enum iommufd_hwpt_alloc_flags : __u32 {
  IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,     // 6.12 has it
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,  // 6.12 has it
  IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,        // 6.12 has it
  IOMMU_HWPT_ALLOC_PASID = 1 << 3,           // after 6.12
};

enum iommu_hwpt_data_type : __u32 {
  IOMMU_HWPT_DATA_NONE = 0,        // 6.12 has it
  IOMMU_HWPT_DATA_VTD_S1 = 1,      // 6.12 has it
  IOMMU_HWPT_DATA_ARM_SMMUV3 = 2,  // after 6.12
  IOMMU_HWPT_DATA_AMD_GUEST = 3,   // after 6.12
};

// Intel VT-d stage-1 page table (IOMMU_HWPT_DATA_VTD_S1). 6.12 has it.
enum iommu_hwpt_vtd_s1_flags : __u64 {
  IOMMU_VTD_S1_SRE = 1 << 0,
  IOMMU_VTD_S1_EAFE = 1 << 1,
  IOMMU_VTD_S1_WPE = 1 << 2,
};
struct iommu_hwpt_vtd_s1 {
  __aligned_u64 flags;
  __aligned_u64 pgtbl_addr;
  __u32 addr_width;
  __u32 __reserved;
};

struct iommu_hwpt_alloc {
  __u32 size;
  __u32 flags;
  __u32 dev_id;
  __u32 pt_id;
  __u32 out_hwpt_id;
  __u32 __reserved;
  __u32 data_type;
  __u32 data_len;
  __aligned_u64 data_uptr;
  __u32 fault_id;
  __u32 __reserved2;
};
constexpr unsigned long IOMMU_HWPT_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC);

// IOMMU_GET_HW_INFO: 6.12 has it, including out_max_pasid_log2 and the PASID_EXEC/PRIV caps.
enum iommu_hw_info_type : __u32 {
  IOMMU_HW_INFO_TYPE_NONE = 0,              // 6.12 has it
  IOMMU_HW_INFO_TYPE_DEFAULT = 0,           // after 6.12 (input side of in_data_type)
  IOMMU_HW_INFO_TYPE_INTEL_VTD = 1,         // 6.12 has it
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2,        // after 6.12
  IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3,    // after 6.12
  IOMMU_HW_INFO_TYPE_AMD = 4,               // after 6.12
};

enum iommufd_hw_capabilities : __u64 {
  IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0,         // 6.12 has it
  IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1,         // 6.12 has it; ignore if out_max_pasid_log2 == 0
  IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2,         // 6.12 has it; ignore if out_max_pasid_log2 == 0
  IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3,  // after 6.12
};

// After 6.12; 6.12 requires flags == 0.
enum iommufd_hw_info_flags : __u32 {
  IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0,  // in_data_type selects the info type to return
};

// IOMMU_HW_INFO_TYPE_INTEL_VTD payload. 6.12 has it.
enum iommu_hw_info_vtd_flags : __u32 {
  IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0,  // no read-only maps on a nest parent
};
struct iommu_hw_info_vtd {
  __u32 flags;
  __u32 __reserved;
  __aligned_u64 cap_reg;
  __aligned_u64 ecap_reg;
};

struct iommu_hw_info {
  __u32 size;
  __u32 flags;
  __u32 dev_id;
  __u32 data_len;
  __aligned_u64 data_uptr;
  union {
    __u32 in_data_type;  // after 6.12 (6.12 only has out_data_type at this offset)
    __u32 out_data_type;
  };
  __u8 out_max_pasid_log2;  // 0: no PASID support
  __u8 __reserved[3];
  __aligned_u64 out_capabilities;
};
constexpr unsigned long IOMMU_GET_HW_INFO = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO);

// IOMMU_HWPT_SET_DIRTY_TRACKING: 6.12 has it.
enum iommufd_hwpt_set_dirty_tracking_flags : __u32 {
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1,
};
struct iommu_hwpt_set_dirty_tracking {
  __u32 size;
  __u32 flags;
  __u32 hwpt_id;
  __u32 __reserved;
};
constexpr unsigned long IOMMU_HWPT_SET_DIRTY_TRACKING =
    _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING);

// IOMMU_HWPT_GET_DIRTY_BITMAP: 6.12 has it.
enum iommufd_hwpt_get_dirty_bitmap_flags : __u32 {
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1,
};
struct iommu_hwpt_get_dirty_bitmap {
  __u32 size;
  __u32 hwpt_id;
  __u32 flags;
  __u32 __reserved;
  __aligned_u64 iova;
  __aligned_u64 length;
  __aligned_u64 page_size;
  __aligned_u64 data;
};
constexpr unsigned long IOMMU_HWPT_GET_DIRTY_BITMAP =
    _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP);

// IOMMU_HWPT_INVALIDATE: 6.12 has it.
enum iommu_hwpt_invalidate_data_type : __u32 {
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0,        // 6.12 has it
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1,  // after 6.12
};
enum iommu_hwpt_vtd_s1_invalidate_flags : __u32 {
  IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0,
};
struct iommu_hwpt_vtd_s1_invalidate {
  __aligned_u64 addr;
  __aligned_u64 npages;
  __u32 flags;
  __u32 __reserved;
};
struct iommu_hwpt_invalidate {
  __u32 size;
  __u32 hwpt_id;
  __aligned_u64 data_uptr;
  __u32 data_type;
  __u32 entry_len;
  __u32 entry_num;  // in: requests in the array; out: requests handled
  __u32 __reserved;
};
constexpr unsigned long IOMMU_HWPT_INVALIDATE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE);

// Fault queue (IOPF): 6.12 has all of it. read() on out_fault_fd returns whole fault groups of
// iommu_hwpt_pgfault; write() takes iommu_hwpt_page_response records. Both counts must be a
// multiple of the record size.
enum iommu_hwpt_pgfault_flags : __u32 {
  IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1,  // last fault of its group: answer with its cookie
};
enum iommu_hwpt_pgfault_perm : __u32 {
  IOMMU_PGFAULT_PERM_READ = 1 << 0,
  IOMMU_PGFAULT_PERM_WRITE = 1 << 1,
  IOMMU_PGFAULT_PERM_EXEC = 1 << 2,
  IOMMU_PGFAULT_PERM_PRIV = 1 << 3,
};
struct iommu_hwpt_pgfault {
  __u32 flags;
  __u32 dev_id;
  __u32 pasid;
  __u32 grpid;
  __u32 perm;
  __u32 __reserved;
  __aligned_u64 addr;
  __u32 length;
  __u32 cookie;
};

enum iommufd_page_response_code : __u32 {
  IOMMUFD_PAGE_RESP_SUCCESS = 0,
  IOMMUFD_PAGE_RESP_INVALID = 1,
};
struct iommu_hwpt_page_response {
  __u32 cookie;
  __u32 code;
};

struct iommu_fault_alloc {
  __u32 size;
  __u32 flags;
  __u32 out_fault_id;
  __u32 out_fault_fd;
};
constexpr unsigned long IOMMU_FAULT_QUEUE_ALLOC =
    _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC);

// IOMMU_VIOMMU_ALLOC: after 6.12.
enum iommu_viommu_type : __u32 {
  IOMMU_VIOMMU_TYPE_DEFAULT = 0,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1,
  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2,
};
struct iommu_viommu_alloc {
  __u32 size;
  __u32 flags;
  __u32 type;
  __u32 dev_id;
  __u32 hwpt_id;  // nesting parent HWPT
  __u32 out_viommu_id;
  __u32 data_len;
  __u32 __reserved;
  __aligned_u64 data_uptr;
};
constexpr unsigned long IOMMU_VIOMMU_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC);

// IOMMU_VDEVICE_ALLOC: after 6.12.
struct iommu_vdevice_alloc {
  __u32 size;
  __u32 viommu_id;
  __u32 dev_id;
  __u32 out_vdevice_id;
  __aligned_u64 virt_id;
};
constexpr unsigned long IOMMU_VDEVICE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC);

// IOMMU_VEVENTQ_ALLOC: after 6.12. read() on out_veventq_fd yields iommufd_vevent_header, each
// followed by type-specific data, except a trailing LOST_EVENTS header which carries none.
enum iommu_veventq_flag : __u32 {
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1U << 0,
};
struct iommufd_vevent_header {
  __u32 flags;
  __u32 sequence;  // 0..INT_MAX, wraps to 0; a gap > 1 means events were lost. A LOST_EVENTS
                   // header carries the last lost event's number.
};
enum iommu_veventq_type : __u32 {
  IOMMU_VEVENTQ_TYPE_DEFAULT = 0,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1,
  IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2,
};
struct iommu_veventq_alloc {
  __u32 size;
  __u32 flags;
  __u32 viommu_id;
  __u32 type;
  __u32 veventq_depth;
  __u32 out_veventq_id;
  __u32 out_veventq_fd;
  __u32 __reserved;
};
constexpr unsigned long IOMMU_VEVENTQ_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VEVENTQ_ALLOC);
// veventq_depth's upper bound: not uAPI (eventq.c's VEVENTQ_MAX_DEPTH, 7.2), EINVAL above it.
constexpr __u32 VEVENTQ_MAX_DEPTH = 1U << 19;
// The data after a header, by vEVENTQ type (the header has no length: the type gives it).
struct iommu_vevent_arm_smmuv3 {
  __u64 evt[4];  // the SMMUv3 event record, little-endian, StreamID replaced by the vSID
};
struct iommu_vevent_tegra241_cmdqv {
  __u64 lvcmdq_err_map[2];
};

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

// vIOMMU / vEVENTQ types served by the mock driver (needed for TRIGGER_VEVENT). After 6.12.
constexpr __u32 IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
constexpr __u32 IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
struct iommu_viommu_event_selftest {
  __u32 virt_id;  // the vDEVICE virt_id of the device that raised the event
};

// ---------------------------------------------------------------------------------------------
// VFIO device cdev (/dev/vfio/devices/vfioN). The cdev ioctls exist since 6.6 (6.12 has them).
// ---------------------------------------------------------------------------------------------

constexpr unsigned int VFIO_TYPE = ';';
constexpr unsigned int VFIO_BASE = 100;

// VFIO_DEVICE_GET_INFO: long-standing.
constexpr __u32 VFIO_DEVICE_FLAGS_RESET = 1 << 0;
constexpr __u32 VFIO_DEVICE_FLAGS_PCI = 1 << 1;
constexpr __u32 VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
struct vfio_device_info {
  __u32 argsz;
  __u32 flags;
  __u32 num_regions;
  __u32 num_irqs;
  __u32 cap_offset;
  __u32 pad;
};
constexpr unsigned long VFIO_DEVICE_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 7);

// VFIO_DEVICE_GET_REGION_INFO: long-standing. offset is the pread/pwrite/mmap offset on the fd.
constexpr __u32 VFIO_REGION_INFO_FLAG_READ = 1 << 0;
constexpr __u32 VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
constexpr __u32 VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
constexpr __u32 VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;
struct vfio_region_info {
  __u32 argsz;
  __u32 flags;
  __u32 index;
  __u32 cap_offset;
  __aligned_u64 size;
  __aligned_u64 offset;
};
constexpr unsigned long VFIO_DEVICE_GET_REGION_INFO = _IO(VFIO_TYPE, VFIO_BASE + 8);

// VFIO_DEVICE_RESET: long-standing, no argument.
constexpr unsigned long VFIO_DEVICE_RESET = _IO(VFIO_TYPE, VFIO_BASE + 11);

// Fixed vfio-pci region indexes (user ABI).
enum : __u32 {
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_BAR1_REGION_INDEX,
  VFIO_PCI_BAR2_REGION_INDEX,
  VFIO_PCI_BAR3_REGION_INDEX,
  VFIO_PCI_BAR4_REGION_INDEX,
  VFIO_PCI_BAR5_REGION_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  VFIO_PCI_NUM_REGIONS = 9,
};

// VFIO_DEVICE_BIND_IOMMUFD: 6.12 has it (16 bytes, flags must be 0); token_uuid_ptr and
// VFIO_DEVICE_BIND_FLAG_TOKEN are after 6.12 (7.2 rejects non-zero bytes past the struct).
constexpr __u32 VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0;
struct vfio_device_bind_iommufd {
  __u32 argsz;
  __u32 flags;
  __s32 iommufd;
  __u32 out_devid;  // iommufd dev_id for HWPT_ALLOC, GET_HW_INFO, ...
  __aligned_u64 token_uuid_ptr;
};
constexpr unsigned long VFIO_DEVICE_BIND_IOMMUFD = _IO(VFIO_TYPE, VFIO_BASE + 18);

// VFIO_DEVICE_ATTACH_IOMMUFD_PT: 6.12 has it (12 bytes, flags must be 0); pasid and
// VFIO_DEVICE_ATTACH_PASID are after 6.12. Attaching again replaces the current HWPT.
constexpr __u32 VFIO_DEVICE_ATTACH_PASID = 1 << 0;
struct vfio_device_attach_iommufd_pt {
  __u32 argsz;
  __u32 flags;
  __u32 pt_id;  // in: IOAS or HWPT id; out: the HWPT actually attached
  __u32 pasid;
};
constexpr unsigned long VFIO_DEVICE_ATTACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 19);

// VFIO_DEVICE_DETACH_IOMMUFD_PT: 6.12 has it (8 bytes, flags must be 0); pasid and
// VFIO_DEVICE_DETACH_PASID are after 6.12.
constexpr __u32 VFIO_DEVICE_DETACH_PASID = 1 << 0;
struct vfio_device_detach_iommufd_pt {
  __u32 argsz;
  __u32 flags;
  __u32 pasid;
};
constexpr unsigned long VFIO_DEVICE_DETACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 20);

// ---------------------------------------------------------------------------------------------
// Layout checks: numbers computed by hand from the kernel definitions, then confirmed on x86-64
// against the real 7.2 headers (iommufd.h, vfio.h, iommufd_test.h) with a throwaway C program.
// ---------------------------------------------------------------------------------------------

static_assert(IOMMU_DESTROY == 0x3b80);
static_assert(IOMMU_IOAS_ALLOC == 0x3b81);
static_assert(IOMMU_IOAS_ALLOW_IOVAS == 0x3b82);
static_assert(IOMMU_IOAS_COPY == 0x3b83);
static_assert(IOMMU_IOAS_IOVA_RANGES == 0x3b84);
static_assert(IOMMU_IOAS_MAP == 0x3b85);
static_assert(IOMMU_IOAS_UNMAP == 0x3b86);
static_assert(IOMMU_OPTION == 0x3b87);
static_assert(IOMMU_VFIO_IOAS == 0x3b88);
static_assert(IOMMU_HWPT_ALLOC == 0x3b89);
static_assert(IOMMU_GET_HW_INFO == 0x3b8a);
static_assert(IOMMU_HWPT_SET_DIRTY_TRACKING == 0x3b8b);
static_assert(IOMMU_HWPT_GET_DIRTY_BITMAP == 0x3b8c);
static_assert(IOMMU_HWPT_INVALIDATE == 0x3b8d);
static_assert(IOMMU_FAULT_QUEUE_ALLOC == 0x3b8e);
static_assert(IOMMU_VIOMMU_ALLOC == 0x3b90);
static_assert(IOMMU_VDEVICE_ALLOC == 0x3b91);
static_assert(IOMMU_VEVENTQ_ALLOC == 0x3b93);
static_assert(IOMMU_TEST_CMD == 0x3ba0);
static_assert(VFIO_DEVICE_GET_INFO == 0x3b6b);
static_assert(VFIO_DEVICE_GET_REGION_INFO == 0x3b6c);
static_assert(VFIO_DEVICE_RESET == 0x3b6f);
static_assert(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76);
static_assert(VFIO_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77);
static_assert(VFIO_DEVICE_DETACH_IOMMUFD_PT == 0x3b78);

static_assert(sizeof(iommu_destroy) == 8);
static_assert(offsetof(iommu_destroy, size) == 0);
static_assert(offsetof(iommu_destroy, id) == 4);

static_assert(sizeof(iommu_ioas_alloc) == 12);
static_assert(offsetof(iommu_ioas_alloc, size) == 0);
static_assert(offsetof(iommu_ioas_alloc, flags) == 4);
static_assert(offsetof(iommu_ioas_alloc, out_ioas_id) == 8);

static_assert(sizeof(iommu_iova_range) == 16);
static_assert(offsetof(iommu_iova_range, start) == 0);
static_assert(offsetof(iommu_iova_range, last) == 8);

static_assert(sizeof(iommu_ioas_iova_ranges) == 32);
static_assert(offsetof(iommu_ioas_iova_ranges, size) == 0);
static_assert(offsetof(iommu_ioas_iova_ranges, ioas_id) == 4);
static_assert(offsetof(iommu_ioas_iova_ranges, num_iovas) == 8);
static_assert(offsetof(iommu_ioas_iova_ranges, __reserved) == 12);
static_assert(offsetof(iommu_ioas_iova_ranges, allowed_iovas) == 16);
static_assert(offsetof(iommu_ioas_iova_ranges, out_iova_alignment) == 24);

static_assert(sizeof(iommu_ioas_allow_iovas) == 24);
static_assert(offsetof(iommu_ioas_allow_iovas, size) == 0);
static_assert(offsetof(iommu_ioas_allow_iovas, ioas_id) == 4);
static_assert(offsetof(iommu_ioas_allow_iovas, num_iovas) == 8);
static_assert(offsetof(iommu_ioas_allow_iovas, __reserved) == 12);
static_assert(offsetof(iommu_ioas_allow_iovas, allowed_iovas) == 16);

static_assert(sizeof(iommu_ioas_map) == 40);
static_assert(offsetof(iommu_ioas_map, size) == 0);
static_assert(offsetof(iommu_ioas_map, flags) == 4);
static_assert(offsetof(iommu_ioas_map, ioas_id) == 8);
static_assert(offsetof(iommu_ioas_map, __reserved) == 12);
static_assert(offsetof(iommu_ioas_map, user_va) == 16);
static_assert(offsetof(iommu_ioas_map, length) == 24);
static_assert(offsetof(iommu_ioas_map, iova) == 32);

static_assert(sizeof(iommu_ioas_copy) == 40);
static_assert(offsetof(iommu_ioas_copy, size) == 0);
static_assert(offsetof(iommu_ioas_copy, flags) == 4);
static_assert(offsetof(iommu_ioas_copy, dst_ioas_id) == 8);
static_assert(offsetof(iommu_ioas_copy, src_ioas_id) == 12);
static_assert(offsetof(iommu_ioas_copy, length) == 16);
static_assert(offsetof(iommu_ioas_copy, dst_iova) == 24);
static_assert(offsetof(iommu_ioas_copy, src_iova) == 32);

static_assert(sizeof(iommu_ioas_unmap) == 24);
static_assert(offsetof(iommu_ioas_unmap, size) == 0);
static_assert(offsetof(iommu_ioas_unmap, ioas_id) == 4);
static_assert(offsetof(iommu_ioas_unmap, iova) == 8);
static_assert(offsetof(iommu_ioas_unmap, length) == 16);

static_assert(sizeof(iommu_option) == 24);
static_assert(offsetof(iommu_option, size) == 0);
static_assert(offsetof(iommu_option, option_id) == 4);
static_assert(offsetof(iommu_option, op) == 8);
static_assert(offsetof(iommu_option, __reserved) == 10);
static_assert(offsetof(iommu_option, object_id) == 12);
static_assert(offsetof(iommu_option, val64) == 16);

static_assert(sizeof(iommu_vfio_ioas) == 12);
static_assert(offsetof(iommu_vfio_ioas, size) == 0);
static_assert(offsetof(iommu_vfio_ioas, ioas_id) == 4);
static_assert(offsetof(iommu_vfio_ioas, op) == 8);
static_assert(offsetof(iommu_vfio_ioas, __reserved) == 10);

static_assert(sizeof(iommu_hwpt_vtd_s1) == 24);
static_assert(offsetof(iommu_hwpt_vtd_s1, flags) == 0);
static_assert(offsetof(iommu_hwpt_vtd_s1, pgtbl_addr) == 8);
static_assert(offsetof(iommu_hwpt_vtd_s1, addr_width) == 16);
static_assert(offsetof(iommu_hwpt_vtd_s1, __reserved) == 20);

static_assert(sizeof(iommu_hwpt_alloc) == 48);
static_assert(offsetof(iommu_hwpt_alloc, size) == 0);
static_assert(offsetof(iommu_hwpt_alloc, flags) == 4);
static_assert(offsetof(iommu_hwpt_alloc, dev_id) == 8);
static_assert(offsetof(iommu_hwpt_alloc, pt_id) == 12);
static_assert(offsetof(iommu_hwpt_alloc, out_hwpt_id) == 16);
static_assert(offsetof(iommu_hwpt_alloc, __reserved) == 20);
static_assert(offsetof(iommu_hwpt_alloc, data_type) == 24);
static_assert(offsetof(iommu_hwpt_alloc, data_len) == 28);
static_assert(offsetof(iommu_hwpt_alloc, data_uptr) == 32);
static_assert(offsetof(iommu_hwpt_alloc, fault_id) == 40);
static_assert(offsetof(iommu_hwpt_alloc, __reserved2) == 44);

static_assert(sizeof(iommu_hw_info_vtd) == 24);
static_assert(offsetof(iommu_hw_info_vtd, flags) == 0);
static_assert(offsetof(iommu_hw_info_vtd, __reserved) == 4);
static_assert(offsetof(iommu_hw_info_vtd, cap_reg) == 8);
static_assert(offsetof(iommu_hw_info_vtd, ecap_reg) == 16);

static_assert(sizeof(iommu_hw_info) == 40);
static_assert(offsetof(iommu_hw_info, size) == 0);
static_assert(offsetof(iommu_hw_info, flags) == 4);
static_assert(offsetof(iommu_hw_info, dev_id) == 8);
static_assert(offsetof(iommu_hw_info, data_len) == 12);
static_assert(offsetof(iommu_hw_info, data_uptr) == 16);
static_assert(offsetof(iommu_hw_info, in_data_type) == 24);
static_assert(offsetof(iommu_hw_info, out_data_type) == 24);
static_assert(offsetof(iommu_hw_info, out_max_pasid_log2) == 28);
static_assert(offsetof(iommu_hw_info, __reserved) == 29);
static_assert(offsetof(iommu_hw_info, out_capabilities) == 32);

static_assert(sizeof(iommu_hwpt_set_dirty_tracking) == 16);
static_assert(offsetof(iommu_hwpt_set_dirty_tracking, size) == 0);
static_assert(offsetof(iommu_hwpt_set_dirty_tracking, flags) == 4);
static_assert(offsetof(iommu_hwpt_set_dirty_tracking, hwpt_id) == 8);
static_assert(offsetof(iommu_hwpt_set_dirty_tracking, __reserved) == 12);

static_assert(sizeof(iommu_hwpt_get_dirty_bitmap) == 48);
static_assert(offsetof(iommu_hwpt_get_dirty_bitmap, size) == 0);
static_assert(offsetof(iommu_hwpt_get_dirty_bitmap, hwpt_id) == 4);
static_assert(offsetof(iommu_hwpt_get_dirty_bitmap, flags) == 8);
static_assert(offsetof(iommu_hwpt_get_dirty_bitmap, __reserved) == 12);
static_assert(offsetof(iommu_hwpt_get_dirty_bitmap, iova) == 16);
static_assert(offsetof(iommu_hwpt_get_dirty_bitmap, length) == 24);
static_assert(offsetof(iommu_hwpt_get_dirty_bitmap, page_size) == 32);
static_assert(offsetof(iommu_hwpt_get_dirty_bitmap, data) == 40);

static_assert(sizeof(iommu_hwpt_vtd_s1_invalidate) == 24);
static_assert(offsetof(iommu_hwpt_vtd_s1_invalidate, addr) == 0);
static_assert(offsetof(iommu_hwpt_vtd_s1_invalidate, npages) == 8);
static_assert(offsetof(iommu_hwpt_vtd_s1_invalidate, flags) == 16);
static_assert(offsetof(iommu_hwpt_vtd_s1_invalidate, __reserved) == 20);

static_assert(sizeof(iommu_hwpt_invalidate) == 32);
static_assert(offsetof(iommu_hwpt_invalidate, size) == 0);
static_assert(offsetof(iommu_hwpt_invalidate, hwpt_id) == 4);
static_assert(offsetof(iommu_hwpt_invalidate, data_uptr) == 8);
static_assert(offsetof(iommu_hwpt_invalidate, data_type) == 16);
static_assert(offsetof(iommu_hwpt_invalidate, entry_len) == 20);
static_assert(offsetof(iommu_hwpt_invalidate, entry_num) == 24);
static_assert(offsetof(iommu_hwpt_invalidate, __reserved) == 28);

static_assert(sizeof(iommu_hwpt_pgfault) == 40);
static_assert(offsetof(iommu_hwpt_pgfault, flags) == 0);
static_assert(offsetof(iommu_hwpt_pgfault, dev_id) == 4);
static_assert(offsetof(iommu_hwpt_pgfault, pasid) == 8);
static_assert(offsetof(iommu_hwpt_pgfault, grpid) == 12);
static_assert(offsetof(iommu_hwpt_pgfault, perm) == 16);
static_assert(offsetof(iommu_hwpt_pgfault, __reserved) == 20);
static_assert(offsetof(iommu_hwpt_pgfault, addr) == 24);
static_assert(offsetof(iommu_hwpt_pgfault, length) == 32);
static_assert(offsetof(iommu_hwpt_pgfault, cookie) == 36);

static_assert(sizeof(iommu_hwpt_page_response) == 8);
static_assert(offsetof(iommu_hwpt_page_response, cookie) == 0);
static_assert(offsetof(iommu_hwpt_page_response, code) == 4);

static_assert(sizeof(iommu_fault_alloc) == 16);
static_assert(offsetof(iommu_fault_alloc, size) == 0);
static_assert(offsetof(iommu_fault_alloc, flags) == 4);
static_assert(offsetof(iommu_fault_alloc, out_fault_id) == 8);
static_assert(offsetof(iommu_fault_alloc, out_fault_fd) == 12);

static_assert(sizeof(iommu_viommu_alloc) == 40);
static_assert(offsetof(iommu_viommu_alloc, size) == 0);
static_assert(offsetof(iommu_viommu_alloc, flags) == 4);
static_assert(offsetof(iommu_viommu_alloc, type) == 8);
static_assert(offsetof(iommu_viommu_alloc, dev_id) == 12);
static_assert(offsetof(iommu_viommu_alloc, hwpt_id) == 16);
static_assert(offsetof(iommu_viommu_alloc, out_viommu_id) == 20);
static_assert(offsetof(iommu_viommu_alloc, data_len) == 24);
static_assert(offsetof(iommu_viommu_alloc, __reserved) == 28);
static_assert(offsetof(iommu_viommu_alloc, data_uptr) == 32);

static_assert(sizeof(iommu_vdevice_alloc) == 24);
static_assert(offsetof(iommu_vdevice_alloc, size) == 0);
static_assert(offsetof(iommu_vdevice_alloc, viommu_id) == 4);
static_assert(offsetof(iommu_vdevice_alloc, dev_id) == 8);
static_assert(offsetof(iommu_vdevice_alloc, out_vdevice_id) == 12);
static_assert(offsetof(iommu_vdevice_alloc, virt_id) == 16);

static_assert(sizeof(iommufd_vevent_header) == 8);
static_assert(offsetof(iommufd_vevent_header, flags) == 0);
static_assert(offsetof(iommufd_vevent_header, sequence) == 4);

static_assert(sizeof(iommu_vevent_arm_smmuv3) == 32);
static_assert(sizeof(iommu_vevent_tegra241_cmdqv) == 16);
static_assert(sizeof(iommu_viommu_event_selftest) == 4);
static_assert(sizeof(iommu_veventq_alloc) == 32);
static_assert(offsetof(iommu_veventq_alloc, size) == 0);
static_assert(offsetof(iommu_veventq_alloc, flags) == 4);
static_assert(offsetof(iommu_veventq_alloc, viommu_id) == 8);
static_assert(offsetof(iommu_veventq_alloc, type) == 12);
static_assert(offsetof(iommu_veventq_alloc, veventq_depth) == 16);
static_assert(offsetof(iommu_veventq_alloc, out_veventq_id) == 20);
static_assert(offsetof(iommu_veventq_alloc, out_veventq_fd) == 24);
static_assert(offsetof(iommu_veventq_alloc, __reserved) == 28);

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
static_assert(offsetof(iommu_test_cmd, trigger_vevent.dev_id) == 16);
static_assert(offsetof(iommu_test_cmd, __union_size) == 16);
static_assert(offsetof(iommu_test_cmd, last) == 64);

static_assert(sizeof(iommu_test_hw_info) == 8);
static_assert(offsetof(iommu_test_hw_info, flags) == 0);
static_assert(offsetof(iommu_test_hw_info, test_reg) == 4);

static_assert(sizeof(iommu_hwpt_selftest) == 8);
static_assert(offsetof(iommu_hwpt_selftest, iotlb) == 0);
static_assert(offsetof(iommu_hwpt_selftest, pagetable_type) == 4);

static_assert(sizeof(iommu_viommu_event_selftest) == 4);
static_assert(offsetof(iommu_viommu_event_selftest, virt_id) == 0);

static_assert(sizeof(vfio_device_info) == 24);
static_assert(offsetof(vfio_device_info, argsz) == 0);
static_assert(offsetof(vfio_device_info, flags) == 4);
static_assert(offsetof(vfio_device_info, num_regions) == 8);
static_assert(offsetof(vfio_device_info, num_irqs) == 12);
static_assert(offsetof(vfio_device_info, cap_offset) == 16);
static_assert(offsetof(vfio_device_info, pad) == 20);

static_assert(sizeof(vfio_region_info) == 32);
static_assert(offsetof(vfio_region_info, argsz) == 0);
static_assert(offsetof(vfio_region_info, flags) == 4);
static_assert(offsetof(vfio_region_info, index) == 8);
static_assert(offsetof(vfio_region_info, cap_offset) == 12);
static_assert(offsetof(vfio_region_info, size) == 16);
static_assert(offsetof(vfio_region_info, offset) == 24);

static_assert(sizeof(vfio_device_bind_iommufd) == 24);
static_assert(offsetof(vfio_device_bind_iommufd, argsz) == 0);
static_assert(offsetof(vfio_device_bind_iommufd, flags) == 4);
static_assert(offsetof(vfio_device_bind_iommufd, iommufd) == 8);
static_assert(offsetof(vfio_device_bind_iommufd, out_devid) == 12);
static_assert(offsetof(vfio_device_bind_iommufd, token_uuid_ptr) == 16);

static_assert(sizeof(vfio_device_attach_iommufd_pt) == 16);
static_assert(offsetof(vfio_device_attach_iommufd_pt, argsz) == 0);
static_assert(offsetof(vfio_device_attach_iommufd_pt, flags) == 4);
static_assert(offsetof(vfio_device_attach_iommufd_pt, pt_id) == 8);
static_assert(offsetof(vfio_device_attach_iommufd_pt, pasid) == 12);

static_assert(sizeof(vfio_device_detach_iommufd_pt) == 12);
static_assert(offsetof(vfio_device_detach_iommufd_pt, argsz) == 0);
static_assert(offsetof(vfio_device_detach_iommufd_pt, flags) == 4);
static_assert(offsetof(vfio_device_detach_iommufd_pt, pasid) == 8);

}  // namespace iommufd::uapi
