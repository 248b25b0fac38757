// include/uapi/linux/iommufd.h mirror, part 1: the command numbers, DESTROY, IOAS, OPTION,
// VFIO_IOAS, HWPT_ALLOC, GET_HW_INFO, dirty tracking and HWPT_INVALIDATE. Part 2 (fault queue,
// vIOMMU, vDEVICE, vEVENTQ and their records) is iommufd_events.h, split off only to keep each
// file under ~500 lines. Include "uapi.h", not this: it holds why the mirror exists, the
// extensibility rule, the 6.12 vs 7.2 differences and the guard against the system headers.
#pragma once

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

// ---------------------------------------------------------------------------------------------
// Layout checks: numbers computed by hand from the kernel definitions, then confirmed on x86-64
// against the real 7.2 include/uapi/linux/iommufd.h with a throwaway C program.
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

}  // namespace iommufd::uapi
