#include "addon.h"

#include <uv.h>

#include <cctype>
#include <cstring>
#include <string>

namespace iommufd {

Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  auto* inst = env.GetInstanceData<Instance>();
  const char* code = uv_err_name(-err);
  // glibc's text, lower-cased as Node prints it (libuv's says "on socket" for EOPNOTSUPP).
  char buf[128];
  std::string text = strerror_r(err, buf, sizeof buf);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  std::string message = std::string(code) + ": " + text + ", " + syscall;
  if (!detail.empty()) message += " (" + detail + ")";
  Napi::Object error;
  if (inst && !inst->errorClass.IsEmpty()) {
    error = inst->errorClass.New({Napi::String::New(env, message), Napi::String::New(env, code),
                                  Napi::Number::New(env, -err), Napi::String::New(env, syscall)});
  } else {
    error = Napi::Error::New(env, message).Value();
    error.Set("code", code);
    error.Set("errno", -err);
    error.Set("syscall", syscall);
  }
  return Napi::Error(env, error);
}

static std::string Where(const char* op, const char* what) {
  return std::string(op) + ": " + what;
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), Where(op, what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= UINT32_MAX) || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(info.Env(), Where(op, what) + " must be an unsigned 32-bit integer");
  return static_cast<uint32_t>(d);
}

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* op) {
  uint32_t fd = ArgU32(info, i, op, "fd");
  if (fd > INT32_MAX) throw Napi::RangeError::New(info.Env(), Where(op, "fd") + " is out of range");
  return static_cast<int>(fd);
}

Memory MemoryOf(Napi::Value v, const char* op, const char* what) {
  napi_env env = v.Env();
  void* data = nullptr;
  size_t length = 0;
  napi_status s = napi_invalid_arg;
  if (v.IsArrayBuffer()) {
    s = napi_get_arraybuffer_info(env, v, &data, &length);
  } else if (v.IsTypedArray()) {
    napi_typedarray_type type;
    size_t count;
    s = napi_get_typedarray_info(env, v, &type, &count, &data, nullptr, nullptr);
    length = v.As<Napi::TypedArray>().ByteLength();
  } else if (v.IsDataView()) {
    s = napi_get_dataview_info(env, v, &length, &data, nullptr, nullptr);
  }
  if (s != napi_ok)
    throw Napi::TypeError::New(env, Where(op, what) + " must be an ArrayBuffer, a typed array or a DataView");
  return {static_cast<uint8_t*>(data), length};
}

uint64_t ValueU64(Napi::Value v, const char* op, const char* what) {
  Napi::Env env = v.Env();
  if (v.IsBigInt()) {
    bool lossless;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, Where(op, what) + " must fit in 64 unsigned bits");
    return x;
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
      throw Napi::RangeError::New(env, Where(op, what) + " must be a non-negative safe integer or a bigint");
    return static_cast<uint64_t>(d);
  }
  throw Napi::TypeError::New(env, Where(op, what) + " must be a bigint or a number");
}

uint32_t FieldU32(Napi::Object o, const char* key, uint32_t fallback, const char* op) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  uint64_t x = ValueU64(v, op, key);
  if (x > UINT32_MAX) throw Napi::RangeError::New(o.Env(), Where(op, key) + " must fit in 32 bits");
  return static_cast<uint32_t>(x);
}

uint64_t FieldU64(Napi::Object o, const char* key, uint64_t fallback, const char* op) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : ValueU64(v, op, key);
}

static Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass: a class is required");
  info.Env().GetInstanceData<Instance>()->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new Instance());
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  InitIommufd(env, exports);
  InitIoas(env, exports);
  InitHwpt(env, exports);
  InitFaultQueue(env, exports);
  InitEventPump(env, exports);
  InitSelftest(env, exports);
  InitVfioDevice(env, exports);
  InitProbe(env, exports);
  InitViommu(env, exports);
  InitVeventq(env, exports);
  InitIoasHandle(env, exports);
  return exports;
}

}  // namespace iommufd

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return iommufd::Init(env, exports); }
NODE_API_MODULE(iommufd, InitAddon)
