// Per-environment state and the pieces every kernel-object file shares.
#pragma once
#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <sys/ioctl.h>

namespace iommufd {

// One per Node environment (main thread or worker), so nothing here is shared across threads.
struct Instance {
  // The TypeScript IommufdError class; errors are built through it so `instanceof` holds in JS.
  Napi::FunctionReference errorClass;
};

// A Node-style system error: code ("EINVAL"), errno (negative, as Node's), syscall (the ioctl or
// syscall name) and an optional detail that says which object the call was about.
Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& detail = "");

// The one ioctl helper: retries EINTR and throws a SystemError named after the ioctl.
template <typename T>
void Ioctl(Napi::Env env, int fd, unsigned long request, const char* name, T* arg) {
  int rc;
  do rc = ::ioctl(fd, request, arg);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) throw SystemError(env, errno, name);
}

// The first byte a typed array or DataView looks at.
inline uint8_t* ViewData(const Napi::TypedArray& view) {
  return static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
}

// Argument readers that throw TypeError naming the operation and the field.
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what);
int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* op);
uint32_t FieldU32(Napi::Object o, const char* key, uint32_t fallback, const char* op);
uint64_t FieldU64(Napi::Object o, const char* key, uint64_t fallback, const char* op);
uint64_t ValueU64(Napi::Value v, const char* op, const char* what);

void InitIommufd(Napi::Env env, Napi::Object exports);
void InitIoas(Napi::Env env, Napi::Object exports);
void InitHwpt(Napi::Env env, Napi::Object exports);
void InitFaultQueue(Napi::Env env, Napi::Object exports);
void InitSelftest(Napi::Env env, Napi::Object exports);
void InitVfioDevice(Napi::Env env, Napi::Object exports);
void InitProbe(Napi::Env env, Napi::Object exports);

}  // namespace iommufd
