// Per-environment state and the pieces every kernel-object file shares.
#pragma once
#include <napi.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <set>
#include <sys/ioctl.h>

namespace iommufd {

// One per Node environment (main thread or worker), so nothing here is shared across threads.
struct Instance {
  // The TypeScript IommufdError class; errors are built through it so `instanceof` holds in JS.
  Napi::FunctionReference errorClass;
  // Fds opened by open() and not yet close()d: a terminated worker never runs its close(), so
  // they are closed with the environment (fault fds are closed by their pump's own hook).
  std::set<int> fds;
  ~Instance() {
    for (int fd : fds) ::close(fd);
  }
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

// The bytes an ArrayBuffer, typed array or DataView looks at (a view of a SharedArrayBuffer
// included); anything else is a TypeError naming the operation and the argument.
struct Memory {
  uint8_t* data;
  size_t length;
};
Memory MemoryOf(Napi::Value v, const char* op, const char* what);

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
void InitEventPump(Napi::Env env, Napi::Object exports);
void InitSelftest(Napi::Env env, Napi::Object exports);
void InitVfioDevice(Napi::Env env, Napi::Object exports);
void InitProbe(Napi::Env env, Napi::Object exports);
void InitViommu(Napi::Env env, Napi::Object exports);
void InitVeventq(Napi::Env env, Napi::Object exports);
void InitIoasHandle(Napi::Env env, Napi::Object exports);

// IOAS handles (ioas_handle.cc) of an iommufd fd that is being closed, or of an IOAS just
// destroyed, end: no thread can reach that fd number or object id through them again.
void InvalidateIoasHandlesOfFd(napi_env env, int fd);
void InvalidateIoasHandlesOfObject(napi_env env, int fd, uint32_t id);
// IOMMU_IOAS_MAP through a handle at a fixed IOVA, from native code on any thread: 0, the kernel's
// errno, or one of these.
constexpr int kHandleEnded = -1;
constexpr int kOutsideHandle = -2;
int IoasHandleMapFixed(uint32_t token, uint64_t offset, uint64_t length, uint64_t iova, uint32_t flags);

}  // namespace iommufd
