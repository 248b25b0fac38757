// vEVENTQ: IOMMU_VEVENTQ_ALLOC on a vIOMMU, read by the one pump (event_pump.h) configured for
// vEVENT records; and their layouts from native/uapi.h, so that lib/ decodes with the mirror's
// numbers, not copies of them.
#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

// veventqAlloc(fd, viommuId, type, depth) -> {id, fd}
static Napi::Value VeventqAlloc(const Napi::CallbackInfo& info) {
  const char* op = "IOMMU_VEVENTQ_ALLOC";
  iommu_veventq_alloc cmd{};
  cmd.size = sizeof(cmd);
  cmd.viommu_id = ArgU32(info, 1, op, "viommuId");
  cmd.type = ArgU32(info, 2, op, "type");
  cmd.veventq_depth = ArgU32(info, 3, op, "depth");
  Ioctl(info.Env(), ArgFd(info, 0, op), IOMMU_VEVENTQ_ALLOC, op, &cmd);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("id", cmd.out_veventq_id);
  out.Set("fd", cmd.out_veventq_fd);
  return out;
}

void InitVeventq(Napi::Env env, Napi::Object exports) {
  exports.Set("veventqAlloc", Napi::Function::New(env, VeventqAlloc, "veventqAlloc"));
  Napi::Object v = Napi::Object::New(env);
  v.Set("headerSize", sizeof(iommufd_vevent_header));
  v.Set("flagLostEvents", static_cast<uint32_t>(IOMMU_VEVENTQ_FLAG_LOST_EVENTS));
  v.Set("maxDepth", VEVENTQ_MAX_DEPTH);
  // Data bytes after each header, by vEVENTQ type.
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set(Napi::Number::New(env, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3), sizeof(iommu_vevent_arm_smmuv3));
  sizes.Set(Napi::Number::New(env, IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV), sizeof(iommu_vevent_tegra241_cmdqv));
  sizes.Set(Napi::Number::New(env, IOMMU_VEVENTQ_TYPE_SELFTEST), sizeof(iommu_viommu_event_selftest));
  v.Set("dataSize", sizes);
  Napi::Object types = Napi::Object::New(env);
  types.Set("armSmmuv3", static_cast<uint32_t>(IOMMU_VEVENTQ_TYPE_ARM_SMMUV3));
  types.Set("tegra241Cmdqv", static_cast<uint32_t>(IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV));
  types.Set("selftest", IOMMU_VEVENTQ_TYPE_SELFTEST);
  v.Set("types", types);
  exports.Set("vevent", v);
}

}  // namespace iommufd
