// vIOMMU and vDEVICE (IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC): the virtual IOMMU a VMM shows its
// guest, over a nesting parent HWPT, and the devices it presents with their virtual ids. Their
// vEVENTQs are in veventq.cc.
#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

// viommuAlloc(fd, {devId, hwptId, type, data?: Uint8Array}) -> viommuId
static Napi::Value ViommuAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_VIOMMU_ALLOC";
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, std::string(op) + ": options object required");
  Napi::Object o = info[1].As<Napi::Object>();
  iommu_viommu_alloc cmd{};
  cmd.size = sizeof(cmd);
  cmd.type = FieldU32(o, "type", 0, op);
  cmd.dev_id = FieldU32(o, "devId", 0, op);
  cmd.hwpt_id = FieldU32(o, "hwptId", 0, op);
  Napi::Value data = o.Get("data");
  if (!data.IsUndefined()) {
    Memory bytes = MemoryOf(data, op, "data");
    cmd.data_uptr = reinterpret_cast<uintptr_t>(bytes.data);
    cmd.data_len = bytes.length;
  }
  Ioctl(env, ArgFd(info, 0, op), IOMMU_VIOMMU_ALLOC, op, &cmd);
  return Napi::Number::New(env, cmd.out_viommu_id);
}

// vdeviceAlloc(fd, viommuId, devId, virtId: bigint) -> vdeviceId
static Napi::Value VdeviceAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_VDEVICE_ALLOC";
  iommu_vdevice_alloc cmd{};
  cmd.size = sizeof(cmd);
  cmd.viommu_id = ArgU32(info, 1, op, "viommuId");
  cmd.dev_id = ArgU32(info, 2, op, "devId");
  if (!info[3].IsBigInt()) throw Napi::TypeError::New(env, std::string(op) + ": virtId must be a bigint");
  bool lossless;
  cmd.virt_id = info[3].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(env, std::string(op) + ": virtId must fit in 64 bits");
  Ioctl(env, ArgFd(info, 0, op), IOMMU_VDEVICE_ALLOC, op, &cmd);
  return Napi::Number::New(env, cmd.out_vdevice_id);
}

void InitViommu(Napi::Env env, Napi::Object exports) {
  exports.Set("viommuAlloc", Napi::Function::New(env, ViommuAlloc, "viommuAlloc"));
  exports.Set("vdeviceAlloc", Napi::Function::New(env, VdeviceAlloc, "vdeviceAlloc"));
  Napi::Object types = Napi::Object::New(env);
  types.Set("armSmmuv3", static_cast<uint32_t>(IOMMU_VIOMMU_TYPE_ARM_SMMUV3));
  types.Set("tegra241Cmdqv", static_cast<uint32_t>(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV));
  types.Set("selftest", IOMMU_VIOMMU_TYPE_SELFTEST);
  exports.Set("viommuTypes", types);
}

}  // namespace iommufd
