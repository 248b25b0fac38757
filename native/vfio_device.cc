// VFIO device cdev (/dev/vfio/devices/vfioN): binding to an iommufd, attaching to an IOAS or HWPT
// (per PASID too), device and region info, reset and region access. The fd itself is opened and
// closed with the generic open/close.
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

// vfioBindIommufd(fd, iommufd) -> devId
static Napi::Value BindIommufd(const Napi::CallbackInfo& info) {
  const char* op = "VFIO_DEVICE_BIND_IOMMUFD";
  vfio_device_bind_iommufd cmd{};
  cmd.argsz = sizeof(cmd);
  cmd.iommufd = ArgFd(info, 1, op);
  Ioctl(info.Env(), ArgFd(info, 0, op), VFIO_DEVICE_BIND_IOMMUFD, op, &cmd);
  return Napi::Number::New(info.Env(), cmd.out_devid);
}

// vfioAttachPt(fd, ptId, pasid?) -> the HWPT id the kernel attached (an IOAS gets a HWPT made for
// it). Attaching an attached device (or PASID) replaces its HWPT.
static Napi::Value AttachPt(const Napi::CallbackInfo& info) {
  const char* op = "VFIO_DEVICE_ATTACH_IOMMUFD_PT";
  vfio_device_attach_iommufd_pt cmd{};
  cmd.argsz = sizeof(cmd);
  cmd.pt_id = ArgU32(info, 1, op, "ptId");
  if (!info[2].IsUndefined()) {
    cmd.flags = VFIO_DEVICE_ATTACH_PASID;
    cmd.pasid = ArgU32(info, 2, op, "pasid");
  }
  Ioctl(info.Env(), ArgFd(info, 0, op), VFIO_DEVICE_ATTACH_IOMMUFD_PT, op, &cmd);
  return Napi::Number::New(info.Env(), cmd.pt_id);
}

// vfioDetachPt(fd, pasid?): back to blocking DMA (for the PASID, or the whole device).
static Napi::Value DetachPt(const Napi::CallbackInfo& info) {
  const char* op = "VFIO_DEVICE_DETACH_IOMMUFD_PT";
  vfio_device_detach_iommufd_pt cmd{};
  cmd.argsz = sizeof(cmd);
  if (!info[1].IsUndefined()) {
    cmd.flags = VFIO_DEVICE_DETACH_PASID;
    cmd.pasid = ArgU32(info, 1, op, "pasid");
  }
  Ioctl(info.Env(), ArgFd(info, 0, op), VFIO_DEVICE_DETACH_IOMMUFD_PT, op, &cmd);
  return info.Env().Undefined();
}

// vfioGetInfo(fd) -> {flags, numRegions, numIrqs}
static Napi::Value GetInfo(const Napi::CallbackInfo& info) {
  const char* op = "VFIO_DEVICE_GET_INFO";
  vfio_device_info cmd{};
  cmd.argsz = sizeof(cmd);
  Ioctl(info.Env(), ArgFd(info, 0, op), VFIO_DEVICE_GET_INFO, op, &cmd);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("flags", cmd.flags);
  out.Set("numRegions", cmd.num_regions);
  out.Set("numIrqs", cmd.num_irqs);
  return out;
}

// vfioRegionInfo(fd, index) -> {flags, size, offset}; offset is where the region sits in the fd.
// The capability chain (sparse mmap areas, ...) is not read.
static Napi::Value RegionInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "VFIO_DEVICE_GET_REGION_INFO";
  vfio_region_info cmd{};
  cmd.argsz = sizeof(cmd);
  cmd.index = ArgU32(info, 1, op, "index");
  Ioctl(env, ArgFd(info, 0, op), VFIO_DEVICE_GET_REGION_INFO, op, &cmd);
  Napi::Object out = Napi::Object::New(env);
  out.Set("flags", cmd.flags);
  out.Set("size", Napi::BigInt::New(env, static_cast<uint64_t>(cmd.size)));
  out.Set("offset", Napi::BigInt::New(env, static_cast<uint64_t>(cmd.offset)));
  return out;
}

static Napi::Value Reset(const Napi::CallbackInfo& info) {
  const char* op = "VFIO_DEVICE_RESET";
  int fd = ArgFd(info, 0, op);
  int rc;
  do rc = ::ioctl(fd, VFIO_DEVICE_RESET);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) throw SystemError(info.Env(), errno, op);
  return info.Env().Undefined();
}

static Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": data must be a Uint8Array");
  return info[i].As<Napi::Uint8Array>();
}

// vfioRead(fd, offset, into: Uint8Array) -> bytes read; vfioWrite(fd, offset, data) -> bytes
// written. One pread/pwrite: vfio-pci turns an aligned 1/2/4/8-byte access into one access of that
// width on the device, which MMIO registers need (an mmap'd BAR gives no such promise from JS).
template <typename Syscall>
static Napi::Value RegionIo(const Napi::CallbackInfo& info, const char* op, Syscall syscall) {
  int fd = ArgFd(info, 0, op);
  uint64_t offset = ValueU64(info[1], op, "offset");
  Napi::Uint8Array bytes = ArgBytes(info, 2, op);
  ssize_t n;
  do n = syscall(fd, bytes.Data(), bytes.ByteLength(), static_cast<off_t>(offset));
  while (n < 0 && errno == EINTR);
  if (n < 0) throw SystemError(info.Env(), errno, op);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

static Napi::Value Read(const Napi::CallbackInfo& info) { return RegionIo(info, "pread", ::pread); }
static Napi::Value Write(const Napi::CallbackInfo& info) { return RegionIo(info, "pwrite", ::pwrite); }

// allocPages(length, mode = 0, align = 0) -> ArrayBuffer over fresh anonymous pages, unmapped
// when collected. IOAS_MAP needs page-aligned memory, which no JS allocation promises. mode 1:
// MAP_HUGETLB (the default huge page size; length a multiple of it); mode 2: THP, the range aligned
// to `align` (the PMD size) so whole huge pages fit, then madvise(MADV_HUGEPAGE). The caller
// checks length and align; errors are a SystemError of mmap or madvise.
static Napi::Value AllocPages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "mmap";
  uint32_t length = ArgU32(info, 0, op, "length");
  uint32_t mode = info.Length() > 1 ? ArgU32(info, 1, op, "mode") : 0;
  uint32_t align = info.Length() > 2 ? ArgU32(info, 2, op, "align") : 0;
  long page = ::sysconf(_SC_PAGESIZE);
  if (length == 0 || length % page != 0 || mode > 2 || (mode == 2 && (align == 0 || align % page != 0)))
    throw Napi::RangeError::New(env, std::string(op) + ": length must be a non-zero multiple of the page size");
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (mode == 1 ? MAP_HUGETLB : 0);
  size_t span = mode == 2 ? size_t(length) + align : length;
  void* p = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) throw SystemError(env, errno, op);
  if (mode == 2) {
    // Trim the over-allocation to an aligned range: a THP needs a PMD-aligned virtual range.
    uintptr_t start = reinterpret_cast<uintptr_t>(p);
    uintptr_t aligned = (start + align - 1) / align * align;
    if (aligned > start) ::munmap(p, aligned - start);
    uintptr_t end = start + span;
    if (end > aligned + length) ::munmap(reinterpret_cast<void*>(aligned + length), end - aligned - length);
    p = reinterpret_cast<void*>(aligned);
    if (::madvise(p, length, MADV_HUGEPAGE) != 0) {
      int err = errno;
      ::munmap(p, length);
      throw SystemError(env, err, "madvise");
    }
  }
  return Napi::ArrayBuffer::New(env, p, length, [length](Napi::Env, void* data) { ::munmap(data, length); });
}

void InitVfioDevice(Napi::Env env, Napi::Object exports) {
  exports.Set("vfioBindIommufd", Napi::Function::New(env, BindIommufd, "vfioBindIommufd"));
  exports.Set("vfioAttachPt", Napi::Function::New(env, AttachPt, "vfioAttachPt"));
  exports.Set("vfioDetachPt", Napi::Function::New(env, DetachPt, "vfioDetachPt"));
  exports.Set("vfioGetInfo", Napi::Function::New(env, GetInfo, "vfioGetInfo"));
  exports.Set("vfioRegionInfo", Napi::Function::New(env, RegionInfo, "vfioRegionInfo"));
  exports.Set("vfioReset", Napi::Function::New(env, Reset, "vfioReset"));
  exports.Set("vfioRead", Napi::Function::New(env, Read, "vfioRead"));
  exports.Set("vfioWrite", Napi::Function::New(env, Write, "vfioWrite"));
  exports.Set("allocPages", Napi::Function::New(env, AllocPages, "allocPages"));
}

}  // namespace iommufd
