// Fault queue: IOMMU_FAULT_QUEUE_ALLOC, and the pump (event_pump.h) configured for its 40-byte
// fault records and 8-byte responses.
#include "event_pump.h"

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
  exports.Set("EventPump", EventPump::Class(env));
  // The pump's buffer limit, so that lib/ checks options against this one number.
  exports.Set("pumpMaxRecords", Napi::Number::New(env, EventPump::kMaxRecords));
  // The control block's layout (event_pump.h): i32 slot indexes, then f64 ones, and its size.
  Napi::Object c = Napi::Object::New(env);
  c.Set("answers", control::kAnswers);
  c.Set("notify", control::kNotify);
  c.Set("writes", control::kWrites);
  c.Set("stop", control::kStop);
  c.Set("answered", control::kAnswered);
  c.Set("refused", control::kRefused);
  c.Set("batches", control::kBatches);
  c.Set("delivered", control::kDelivered);
  c.Set("errors", control::kErrors);
  c.Set("bytes", control::kBytes);
  exports.Set("pumpControl", c);
  InitServeLoop(env, exports);
}

}  // namespace iommufd
