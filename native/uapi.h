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
//
// The mirror is split by the kernel header each part mirrors; each part ends with its "Layout
// checks" (compile-time checks of every number, size and offset):
//  - uapi/iommufd.h, uapi/iommufd_events.h: include/uapi/linux/iommufd.h (two parts, for size)
//  - uapi/iommufd_test.h: drivers/iommu/iommufd/iommufd_test.h
//  - uapi/vfio.h: include/uapi/linux/vfio.h, the device cdev part
// Every source includes this file, never a part on its own.
#pragma once

#if defined(_IOMMUFD_H) || defined(_UAPI_IOMMUFD_H) || defined(VFIO_H) || defined(_UAPIVFIO_H)
#error "uapi.h mirrors <linux/iommufd.h> and <linux/vfio.h>; their macros would clobber its names"
#endif

#include <linux/ioctl.h>
#include <linux/types.h>

#include <cstddef>

// In dependency order: the other parts use iommufd.h's IOMMUFD_TYPE and command numbers.
#include "uapi/iommufd.h"
#include "uapi/iommufd_events.h"
#include "uapi/iommufd_test.h"
#include "uapi/vfio.h"
