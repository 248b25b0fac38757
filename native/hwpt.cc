// HWPT: a hardware page table (IOMMU domain), paging on an IOAS or nested on a parent HWPT,
// optionally delivering its I/O page faults to a fault queue.
#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

// hwptAlloc(fd, {devId, ptId, flags, faultId?, dataType, data?: Uint8Array}) -> hwptId
static Napi::Value HwptAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_HWPT_ALLOC";
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, std::string(op) + ": options object required");
  Napi::Object o = info[1].As<Napi::Object>();
  iommu_hwpt_alloc cmd{};
  cmd.size = sizeof(cmd);
  cmd.dev_id = FieldU32(o, "devId", 0, op);
  cmd.pt_id = FieldU32(o, "ptId", 0, op);
  cmd.flags = FieldU32(o, "flags", 0, op);
  cmd.data_type = FieldU32(o, "dataType", IOMMU_HWPT_DATA_NONE, op);
  if (!o.Get("faultId").IsUndefined()) {
    cmd.fault_id = FieldU32(o, "faultId", 0, op);
    cmd.flags |= IOMMU_HWPT_FAULT_ID_VALID;
  }
  Napi::Value data = o.Get("data");
  if (!data.IsUndefined()) {
    Memory bytes = MemoryOf(data, op, "data");
    cmd.data_uptr = reinterpret_cast<uintptr_t>(bytes.data);
    cmd.data_len = bytes.length;
  }
  Ioctl(env, ArgFd(info, 0, op), IOMMU_HWPT_ALLOC, op, &cmd);
  return Napi::Number::New(env, cmd.out_hwpt_id);
}

void InitHwpt(Napi::Env env, Napi::Object exports) {
  exports.Set("hwptAlloc", Napi::Function::New(env, HwptAlloc, "hwptAlloc"));
}

}  // namespace iommufd
