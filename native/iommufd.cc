// The iommufd context: /dev/iommu itself, object destruction and device hardware info.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

static Napi::Value Open(const Napi::CallbackInfo& info) {
  std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "/dev/iommu";
  int fd;
  do fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) throw SystemError(info.Env(), errno, "open", path);
  info.Env().GetInstanceData<Instance>()->fds.insert(fd);
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "close");
  info.Env().GetInstanceData<Instance>()->fds.erase(fd);
  InvalidateIoasHandlesOfFd(info.Env(), fd);  // before the number can name another file
  // close(2) releases the fd even when it reports EINTR; never retry it.
  if (::close(fd) < 0 && errno != EINTR) throw SystemError(info.Env(), errno, "close");
  return info.Env().Undefined();
}

static Napi::Value Destroy(const Napi::CallbackInfo& info) {
  iommu_destroy cmd{};
  cmd.size = sizeof(cmd);
  cmd.id = ArgU32(info, 1, "IOMMU_DESTROY", "id");
  int fd = ArgFd(info, 0, "IOMMU_DESTROY");
  Ioctl(info.Env(), fd, IOMMU_DESTROY, "IOMMU_DESTROY", &cmd);
  InvalidateIoasHandlesOfObject(info.Env(), fd, cmd.id);  // before the id can name a newer object
  return info.Env().Undefined();
}

// getHwInfo(fd, devId, dataLen) -> {type, flags, capabilities, maxPasidLog2, data}
static Napi::Value GetHwInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_GET_HW_INFO";
  uint32_t dataLen = info[2].IsUndefined() ? 256 : ArgU32(info, 2, op, "dataLen");
  Napi::Uint8Array data = Napi::Uint8Array::New(env, dataLen);
  iommu_hw_info cmd{};
  cmd.size = sizeof(cmd);
  cmd.dev_id = ArgU32(info, 1, op, "devId");
  cmd.data_len = dataLen;
  cmd.data_uptr = reinterpret_cast<uintptr_t>(data.Data());
  Ioctl(env, ArgFd(info, 0, op), IOMMU_GET_HW_INFO, op, &cmd);
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", cmd.out_data_type);
  out.Set("capabilities", Napi::BigInt::New(env, static_cast<uint64_t>(cmd.out_capabilities)));
  out.Set("maxPasidLog2", cmd.out_max_pasid_log2);
  // data_len comes back as the length the kernel has, which may exceed what we asked for.
  out.Set("data", Napi::Uint8Array::New(env, std::min(cmd.data_len, dataLen), data.ArrayBuffer(), 0));
  return out;
}

void InitIommufd(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("destroy", Napi::Function::New(env, Destroy, "destroy"));
  exports.Set("getHwInfo", Napi::Function::New(env, GetHwInfo, "getHwInfo"));
}

}  // namespace iommufd
