// vEVENTQ: the layouts of its records, from native/uapi.h (the queue's allocation and reading come
// with issue 13). Exported so that lib/ decodes with the mirror's numbers, not copies of them.
#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

void InitVeventq(Napi::Env env, Napi::Object exports) {
  Napi::Object v = Napi::Object::New(env);
  v.Set("headerSize", sizeof(iommufd_vevent_header));
  v.Set("flagLostEvents", static_cast<uint32_t>(IOMMU_VEVENTQ_FLAG_LOST_EVENTS));
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
