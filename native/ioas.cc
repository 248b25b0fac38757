// IOAS: an I/O address space that user memory is mapped into.
#include <vector>

#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

static Napi::Value IoasAlloc(const Napi::CallbackInfo& info) {
  iommu_ioas_alloc cmd{};
  cmd.size = sizeof(cmd);
  Ioctl(info.Env(), ArgFd(info, 0, "IOMMU_IOAS_ALLOC"), IOMMU_IOAS_ALLOC, "IOMMU_IOAS_ALLOC", &cmd);
  return Napi::Number::New(info.Env(), cmd.out_ioas_id);
}

// ioasIovaRanges(fd, ioasId) -> {ranges: [{start, last}], alignment}
static Napi::Value IoasIovaRanges(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_IOAS_IOVA_RANGES";
  int fd = ArgFd(info, 0, op);
  std::vector<iommu_iova_range> ranges(8);
  iommu_ioas_iova_ranges cmd{};
  for (;;) {
    cmd.size = sizeof(cmd);
    cmd.ioas_id = ArgU32(info, 1, op, "ioasId");
    cmd.num_iovas = ranges.size();
    cmd.allowed_iovas = reinterpret_cast<uintptr_t>(ranges.data());
    int rc;
    do rc = ::ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd);
    while (rc < 0 && errno == EINTR);
    // EMSGSIZE: num_iovas now says how many there are; retry with room for them.
    if (rc < 0 && errno == EMSGSIZE && cmd.num_iovas > ranges.size()) {
      ranges.resize(cmd.num_iovas);
      continue;
    }
    if (rc < 0) throw SystemError(env, errno, op);
    break;
  }
  Napi::Array out = Napi::Array::New(env, cmd.num_iovas);
  for (uint32_t i = 0; i < cmd.num_iovas; i++) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("start", Napi::BigInt::New(env, static_cast<uint64_t>(ranges[i].start)));
    r.Set("last", Napi::BigInt::New(env, static_cast<uint64_t>(ranges[i].last)));
    out.Set(i, r);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("ranges", out);
  result.Set("alignment", Napi::BigInt::New(env, static_cast<uint64_t>(cmd.out_iova_alignment)));
  return result;
}

// ioasMap(fd, ioasId, memory: ArrayBuffer | ArrayBufferView, iova?: bigint, flags) -> iova
// The caller keeps `memory` alive while mapped; the kernel pins its pages.
static Napi::Value IoasMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_IOAS_MAP";
  iommu_ioas_map cmd{};
  cmd.size = sizeof(cmd);
  cmd.ioas_id = ArgU32(info, 1, op, "ioasId");
  Memory memory = MemoryOf(info[2], op, "memory");
  cmd.user_va = reinterpret_cast<uintptr_t>(memory.data);
  cmd.length = memory.length;
  cmd.flags = ArgU32(info, 4, op, "flags");
  if (!info[3].IsUndefined()) {
    cmd.iova = ValueU64(info[3], op, "iova");
    cmd.flags |= IOMMU_IOAS_MAP_FIXED_IOVA;
  }
  Ioctl(env, ArgFd(info, 0, op), IOMMU_IOAS_MAP, op, &cmd);
  return Napi::BigInt::New(env, static_cast<uint64_t>(cmd.iova));
}

// ioasUnmap(fd, ioasId, iova, length) -> bytes unmapped. iova 0 + length 0 unmaps everything.
static Napi::Value IoasUnmap(const Napi::CallbackInfo& info) {
  const char* op = "IOMMU_IOAS_UNMAP";
  iommu_ioas_unmap cmd{};
  cmd.size = sizeof(cmd);
  cmd.ioas_id = ArgU32(info, 1, op, "ioasId");
  cmd.iova = ValueU64(info[2], op, "iova");
  cmd.length = ValueU64(info[3], op, "length");
  Ioctl(info.Env(), ArgFd(info, 0, op), IOMMU_IOAS_UNMAP, op, &cmd);
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(cmd.length));
}

void InitIoas(Napi::Env env, Napi::Object exports) {
  exports.Set("ioasAlloc", Napi::Function::New(env, IoasAlloc, "ioasAlloc"));
  exports.Set("ioasIovaRanges", Napi::Function::New(env, IoasIovaRanges, "ioasIovaRanges"));
  exports.Set("ioasMap", Napi::Function::New(env, IoasMap, "ioasMap"));
  exports.Set("ioasUnmap", Napi::Function::New(env, IoasUnmap, "ioasUnmap"));
}

}  // namespace iommufd
