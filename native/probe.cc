// Feature probing for iommufd-probe: issue one ioctl with a caller-built argument and report the
// kernel's answer as a value instead of an exception. iommufd answers ENOTTY for a command number
// it does not know and E2BIG for non-zero bytes past the struct it knows, which is how the probe
// tells "absent" from "present" without creating anything.
#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

// probeIoctl(fd, request, arg: Uint8Array) -> the ioctl's return value (>= 0), or -errno.
// `arg` is passed in place, so what the kernel writes back (out_ fields) lands in it.
static Napi::Value ProbeIoctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "probeIoctl";
  int fd = ArgFd(info, 0, op);
  uint32_t request = ArgU32(info, 1, op, "request");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "probeIoctl: arg must be a Uint8Array");
  auto view = info[2].As<Napi::Uint8Array>();
  // Every iommufd and VFIO argument starts with its u32 size; less than that is a caller bug.
  if (view.ByteLength() < 4) throw Napi::RangeError::New(env, "probeIoctl: arg must be at least 4 bytes");
  int rc;
  do rc = ::ioctl(fd, request, view.Data());
  while (rc < 0 && errno == EINTR);
  return Napi::Number::New(env, rc < 0 ? -errno : rc);
}

// The ioctl request numbers of uapi.h, by name, so that lib/ numbers no ioctl of its own: the
// probe issues some of them through probeIoctl, and tests check requests against them.
static Napi::Object Ioctls(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* name, unsigned long request) { o.Set(name, Napi::Number::New(env, static_cast<double>(request))); };
#define IOCTL(name) set(#name, name)
  IOCTL(IOMMU_DESTROY);
  IOCTL(IOMMU_IOAS_ALLOC);
  IOCTL(IOMMU_IOAS_ALLOW_IOVAS);
  IOCTL(IOMMU_IOAS_COPY);
  IOCTL(IOMMU_IOAS_IOVA_RANGES);
  IOCTL(IOMMU_IOAS_MAP);
  IOCTL(IOMMU_IOAS_UNMAP);
  IOCTL(IOMMU_OPTION);
  IOCTL(IOMMU_VFIO_IOAS);
  IOCTL(IOMMU_HWPT_ALLOC);
  IOCTL(IOMMU_GET_HW_INFO);
  IOCTL(IOMMU_HWPT_SET_DIRTY_TRACKING);
  IOCTL(IOMMU_HWPT_GET_DIRTY_BITMAP);
  IOCTL(IOMMU_HWPT_INVALIDATE);
  IOCTL(IOMMU_FAULT_QUEUE_ALLOC);
  IOCTL(IOMMU_VIOMMU_ALLOC);
  IOCTL(IOMMU_VDEVICE_ALLOC);
  IOCTL(IOMMU_VEVENTQ_ALLOC);
  IOCTL(IOMMU_TEST_CMD);
  IOCTL(VFIO_DEVICE_GET_INFO);
  IOCTL(VFIO_DEVICE_GET_REGION_INFO);
  IOCTL(VFIO_DEVICE_RESET);
  IOCTL(VFIO_DEVICE_BIND_IOMMUFD);
  IOCTL(VFIO_DEVICE_ATTACH_IOMMUFD_PT);
  IOCTL(VFIO_DEVICE_DETACH_IOMMUFD_PT);
#undef IOCTL
  o.Freeze();
  return o;
}

// The few argument values the probe puts in a hand-built ioctl argument.
static Napi::Object ProbeConstants(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("IOMMU_VEVENTQ_TYPE_SELFTEST", Napi::Number::New(env, IOMMU_VEVENTQ_TYPE_SELFTEST));
  o.Set("VFIO_DEVICE_ATTACH_PASID", Napi::Number::New(env, VFIO_DEVICE_ATTACH_PASID));
  o.Freeze();
  return o;
}

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probeIoctl", Napi::Function::New(env, ProbeIoctl, "probeIoctl"));
  exports.Set("ioctls", Ioctls(env));
  exports.Set("probeConstants", ProbeConstants(env));
}

}  // namespace iommufd
