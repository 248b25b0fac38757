// Fault queue: IOMMU_FAULT_QUEUE_ALLOC. Its fd is read by the one pump (event_pump.h) configured
// for fault records and answered with 8-byte responses.
#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

static Napi::Value FaultQueueAlloc(const Napi::CallbackInfo& info) {
  const char* op = "IOMMU_FAULT_QUEUE_ALLOC";
  iommu_fault_alloc cmd{};
  cmd.size = sizeof(cmd);
  Ioctl(info.Env(), ArgFd(info, 0, op), IOMMU_FAULT_QUEUE_ALLOC, op, &cmd);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("id", cmd.out_fault_id);
  out.Set("fd", cmd.out_fault_fd);
  return out;
}

void InitFaultQueue(Napi::Env env, Napi::Object exports) {
  exports.Set("faultQueueAlloc", Napi::Function::New(env, FaultQueueAlloc, "faultQueueAlloc"));
}

}  // namespace iommufd
