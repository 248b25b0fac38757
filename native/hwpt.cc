// HWPT: a hardware page table (IOMMU domain), paging on an IOAS or nested on a parent HWPT,
// optionally delivering its I/O page faults to a fault queue.
#include <string>
#include <vector>

#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

// hwptAlloc(fd, {devId, ptId, flags, faultId?, dataType, data?: bytes, vtdS1?}) -> hwptId
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
  // vtdS1: {pgtblAddr, addrWidth, sre, eafe, wpe}: struct iommu_hwpt_vtd_s1, built here so its
  // numbers stay in uapi.h; kept alive on this frame for the ioctl.
  iommu_hwpt_vtd_s1 vtd{};
  Napi::Value s1 = o.Get("vtdS1");
  Napi::Value data = o.Get("data");
  if (s1.IsObject()) {
    Napi::Object v = s1.As<Napi::Object>();
    vtd.pgtbl_addr = FieldU64(v, "pgtblAddr", 0, op);
    vtd.addr_width = FieldU32(v, "addrWidth", 48, op);
    auto bit = [&](const char* key, __u64 flag) -> __u64 { return v.Get(key).ToBoolean() ? flag : 0; };
    vtd.flags = bit("sre", IOMMU_VTD_S1_SRE) | bit("eafe", IOMMU_VTD_S1_EAFE) | bit("wpe", IOMMU_VTD_S1_WPE);
    cmd.data_type = IOMMU_HWPT_DATA_VTD_S1;
    cmd.data_uptr = reinterpret_cast<uintptr_t>(&vtd);
    cmd.data_len = sizeof(vtd);
  } else if (!data.IsUndefined()) {
    Memory bytes = MemoryOf(data, op, "data");
    cmd.data_uptr = reinterpret_cast<uintptr_t>(bytes.data);
    cmd.data_len = bytes.length;
  }
  Ioctl(env, ArgFd(info, 0, op), IOMMU_HWPT_ALLOC, op, &cmd);
  return Napi::Number::New(env, cmd.out_hwpt_id);
}

// hwptInvalidate(fd, hwptId, kind: 'vtd-s1' | 'selftest', entries) -> entries done.
// IOMMU_HWPT_INVALIDATE of every entry in one ioctl: vtd-s1 entries {addr, npages, leaf},
// selftest ones {iotlbId, all, flags}. The kernel stops at the first entry it refuses and writes
// back how many it processed, also on failure: the thrown error carries that count as `done`.
static Napi::Value HwptInvalidate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_HWPT_INVALIDATE";
  int fd = ArgFd(info, 0, op);
  iommu_hwpt_invalidate cmd{};
  cmd.size = sizeof(cmd);
  cmd.hwpt_id = ArgU32(info, 1, op, "hwptId");
  std::string kind = info[2].ToString();
  if (!info[3].IsArray()) throw Napi::TypeError::New(env, std::string(op) + ": entries array required");
  Napi::Array list = info[3].As<Napi::Array>();
  uint32_t n = list.Length();
  std::vector<iommu_hwpt_vtd_s1_invalidate> vtd;
  std::vector<iommu_hwpt_invalidate_selftest> mock;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value e = list.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(env, std::string(op) + ": entries must be objects");
    Napi::Object o = e.As<Napi::Object>();
    if (kind == "vtd-s1") {
      vtd.push_back({FieldU64(o, "addr", 0, op), FieldU64(o, "npages", 0, op),
                     o.Get("leaf").ToBoolean() ? IOMMU_VTD_INV_FLAGS_LEAF : 0u, 0});
    } else if (kind == "selftest") {
      mock.push_back({FieldU32(o, "flags", 0, op) | (o.Get("all").ToBoolean() ? IOMMU_TEST_INVALIDATE_FLAG_ALL : 0u),
                      FieldU32(o, "iotlbId", 0, op)});
    } else {
      throw Napi::TypeError::New(env, std::string(op) + ": kind must be 'vtd-s1' or 'selftest'");
    }
  }
  if (kind == "vtd-s1") {
    cmd.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1;
    cmd.entry_len = sizeof(iommu_hwpt_vtd_s1_invalidate);
    cmd.data_uptr = reinterpret_cast<uintptr_t>(vtd.data());
  } else {
    cmd.data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
    cmd.entry_len = sizeof(iommu_hwpt_invalidate_selftest);
    cmd.data_uptr = reinterpret_cast<uintptr_t>(mock.data());
  }
  cmd.entry_num = n;
  int rc;
  do rc = ::ioctl(fd, IOMMU_HWPT_INVALIDATE, &cmd);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    Napi::Error err = SystemError(env, errno, op);
    err.Set("done", Napi::Number::New(env, cmd.entry_num));
    throw err;
  }
  return Napi::Number::New(env, cmd.entry_num);
}

void InitHwpt(Napi::Env env, Napi::Object exports) {
  exports.Set("hwptAlloc", Napi::Function::New(env, HwptAlloc, "hwptAlloc"));
  exports.Set("hwptInvalidate", Napi::Function::New(env, HwptInvalidate, "hwptInvalidate"));
  Napi::Object types = Napi::Object::New(env);  // enum iommu_hwpt_data_type, and the mock's own
  types.Set("none", Napi::Number::New(env, IOMMU_HWPT_DATA_NONE));
  types.Set("vtdS1", Napi::Number::New(env, IOMMU_HWPT_DATA_VTD_S1));
  types.Set("selftest", Napi::Number::New(env, IOMMU_HWPT_DATA_SELFTEST));
  types.Freeze();
  exports.Set("hwptDataTypes", types);
}

}  // namespace iommufd
