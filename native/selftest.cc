// The kernel's iommufd test device (CONFIG_IOMMUFD_TEST): the only I/O page fault source QEMU can
// give today. Exposed through the separate `iommufd/testing` entry point, never the main one.
#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

static iommu_test_cmd TestCmd(__u32 op, __u32 id) {
  iommu_test_cmd cmd{};
  cmd.size = sizeof(cmd);
  cmd.op = op;
  cmd.id = id;
  return cmd;
}

// mockDomain(fd, ptId) -> {stdevId, hwptId, idevId}: a mock device attached to an IOAS or HWPT.
static Napi::Value MockDomain(const Napi::CallbackInfo& info) {
  const char* op = "IOMMU_TEST_OP_MOCK_DOMAIN";
  auto cmd = TestCmd(IOMMU_TEST_OP_MOCK_DOMAIN, ArgU32(info, 1, op, "ptId"));
  Ioctl(info.Env(), ArgFd(info, 0, op), IOMMU_TEST_CMD, op, &cmd);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("stdevId", cmd.mock_domain.out_stdev_id);
  out.Set("hwptId", cmd.mock_domain.out_hwpt_id);
  out.Set("idevId", cmd.mock_domain.out_idev_id);
  return out;
}

// mockDomainReplace(fd, stdevId, ptId): re-attach the mock device; the kernel auto-answers INVALID
// the faults still pending on the HWPT it leaves.
static Napi::Value MockDomainReplace(const Napi::CallbackInfo& info) {
  const char* op = "IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE";
  auto cmd = TestCmd(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, ArgU32(info, 1, op, "stdevId"));
  cmd.mock_domain_replace.pt_id = ArgU32(info, 2, op, "ptId");
  Ioctl(info.Env(), ArgFd(info, 0, op), IOMMU_TEST_CMD, op, &cmd);
  return info.Env().Undefined();
}

// triggerIopf(fd, {devId, pasid, grpid, perm, addr}, count = 1): inject `count` single-record
// fault groups, grpid counting up from the given one. Looping here keeps a JS call per fault out
// of the benchmarks' producer.
static Napi::Value TriggerIopf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_TEST_OP_TRIGGER_IOPF";
  int fd = ArgFd(info, 0, op);
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, std::string(op) + ": fault object required");
  Napi::Object o = info[1].As<Napi::Object>();
  uint32_t count = info[2].IsUndefined() ? 1 : ArgU32(info, 2, op, "count");
  auto cmd = TestCmd(IOMMU_TEST_OP_TRIGGER_IOPF, 0);
  cmd.trigger_iopf.dev_id = FieldU32(o, "devId", 0, op);
  cmd.trigger_iopf.pasid = FieldU32(o, "pasid", 0, op);
  cmd.trigger_iopf.grpid = FieldU32(o, "grpid", 0, op);
  cmd.trigger_iopf.perm = FieldU32(o, "perm", 0, op);
  cmd.trigger_iopf.addr = FieldU64(o, "addr", 0, op);
  for (uint32_t i = 0; i < count; i++) {
    Ioctl(env, fd, IOMMU_TEST_CMD, op, &cmd);
    cmd.trigger_iopf.grpid++;
  }
  return env.Undefined();
}

// triggerVevent(fd, devId, count = 1): IOMMU_TEST_OP_TRIGGER_VEVENT `count` times: the mock
// device's vDEVICE reports one selftest vEVENT (its virt_id) each time. The loop is native for the
// overflow tests and the benchmark's producer.
static Napi::Value TriggerVevent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_TEST_OP_TRIGGER_VEVENT";
  int fd = ArgFd(info, 0, op);
  auto cmd = TestCmd(IOMMU_TEST_OP_TRIGGER_VEVENT, 0);
  cmd.trigger_vevent.dev_id = ArgU32(info, 1, op, "devId");
  uint32_t count = info[2].IsUndefined() ? 1 : ArgU32(info, 2, op, "count");
  for (uint32_t i = 0; i < count; i++) Ioctl(env, fd, IOMMU_TEST_CMD, op, &cmd);
  return env.Undefined();
}

// mockCheckIotlb(fd, hwptId, iotlbId, value) -> whether entry iotlbId of the mock nested domain
// holds value (IOMMU_TEST_OP_MD_CHECK_IOTLB answers EINVAL when it does not).
static Napi::Value MockCheckIotlb(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_TEST_OP_MD_CHECK_IOTLB";
  auto cmd = TestCmd(IOMMU_TEST_OP_MD_CHECK_IOTLB, ArgU32(info, 1, op, "hwptId"));
  cmd.check_iotlb.id = ArgU32(info, 2, op, "iotlbId");
  cmd.check_iotlb.iotlb = ArgU32(info, 3, op, "value");
  int rc;
  do rc = ::ioctl(ArgFd(info, 0, op), IOMMU_TEST_CMD, &cmd);
  while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EINVAL) throw SystemError(env, errno, op);
  return Napi::Boolean::New(env, rc == 0);
}

void InitSelftest(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("mockCheckIotlb", Napi::Function::New(env, MockCheckIotlb, "mockCheckIotlb"));
  t.Set("iotlbNum", Napi::Number::New(env, MOCK_NESTED_DOMAIN_IOTLB_NUM));
  t.Set("mockDomain", Napi::Function::New(env, MockDomain, "mockDomain"));
  t.Set("mockDomainReplace", Napi::Function::New(env, MockDomainReplace, "mockDomainReplace"));
  t.Set("triggerIopf", Napi::Function::New(env, TriggerIopf, "triggerIopf"));
  t.Set("triggerVevent", Napi::Function::New(env, TriggerVevent, "triggerVevent"));
  exports.Set("selftest", t);
}

}  // namespace iommufd
