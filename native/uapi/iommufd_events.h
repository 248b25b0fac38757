// include/uapi/linux/iommufd.h mirror, part 2: the fault queue (IOPF), vIOMMU, vDEVICE, vEVENTQ
// and the records read() and write() on their fds. Part 1 (command numbers, IOAS, HWPT, ...) is
// iommufd.h. Include "uapi.h", not this: it holds why the mirror exists, the extensibility rule,
// the 6.12 vs 7.2 differences and the guard against the system headers.
#pragma once

#include <linux/ioctl.h>
#include <linux/types.h>

#include <cstddef>

#include "iommufd.h"

namespace iommufd::uapi {

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
// Layout checks: numbers computed by hand from the kernel definitions, then confirmed on x86-64
// against the real 7.2 include/uapi/linux/iommufd.h with a throwaway C program.
// ---------------------------------------------------------------------------------------------

static_assert(IOMMU_FAULT_QUEUE_ALLOC == 0x3b8e);
static_assert(IOMMU_VIOMMU_ALLOC == 0x3b90);
static_assert(IOMMU_VDEVICE_ALLOC == 0x3b91);
static_assert(IOMMU_VEVENTQ_ALLOC == 0x3b93);

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
static_assert(sizeof(iommu_veventq_alloc) == 32);
static_assert(offsetof(iommu_veventq_alloc, size) == 0);
static_assert(offsetof(iommu_veventq_alloc, flags) == 4);
static_assert(offsetof(iommu_veventq_alloc, viommu_id) == 8);
static_assert(offsetof(iommu_veventq_alloc, type) == 12);
static_assert(offsetof(iommu_veventq_alloc, veventq_depth) == 16);
static_assert(offsetof(iommu_veventq_alloc, out_veventq_id) == 20);
static_assert(offsetof(iommu_veventq_alloc, out_veventq_fd) == 24);
static_assert(offsetof(iommu_veventq_alloc, __reserved) == 28);

}  // namespace iommufd::uapi
