// include/uapi/linux/vfio.h mirror, the VFIO device cdev part only.
// Include "uapi.h", not this: it holds why the mirror exists, the extensibility rule, the
// 6.12 vs 7.2 differences and the guard against the system headers.
#pragma once

#include <linux/ioctl.h>
#include <linux/types.h>

#include <cstddef>

namespace iommufd::uapi {

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
// against the real 7.2 include/uapi/linux/vfio.h with a throwaway C program.
// ---------------------------------------------------------------------------------------------

static_assert(VFIO_DEVICE_GET_INFO == 0x3b6b);
static_assert(VFIO_DEVICE_GET_REGION_INFO == 0x3b6c);
static_assert(VFIO_DEVICE_RESET == 0x3b6f);
static_assert(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76);
static_assert(VFIO_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77);
static_assert(VFIO_DEVICE_DETACH_IOMMUFD_PT == 0x3b78);

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
