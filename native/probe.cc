// Feature probing for iommufd-probe: issue one ioctl with a caller-built argument and report the
// kernel's answer as a value instead of an exception. iommufd answers ENOTTY for a command number
// it does not know and E2BIG for non-zero bytes past the struct it knows, which is how the probe
// tells "absent" from "present" without creating anything.
#include "addon.h"

namespace iommufd {

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

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probeIoctl", Napi::Function::New(env, ProbeIoctl, "probeIoctl"));
}

}  // namespace iommufd
