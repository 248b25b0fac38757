// IOAS handles: an IOAS made usable from any thread of the process (a worker) for mapping one
// block of memory that the thread which made the handle owns.
//
// The kernel takes IOMMU_IOAS_MAP's memory as a user virtual address and pins it in the
// process's mm, which every thread shares: a worker can map memory that lives in the main
// thread's heap, and an fd number means the same file on every thread. What can go wrong is
// lifetime: the memory freed (and its addresses reused by the allocator) while a thread still maps
// by its address, or the fd (or the IOAS id) closed and reused for another file (object) while a
// thread still issues ioctls by its number. So no address or fd crosses threads. A handle is a
// token in this process-wide registry; the entry holds the address, length, fd and IOAS id, and
// the thread that made it holds a strong reference to the memory. Every ioctl by token runs under
// the entry's lock (shared), and every way the entry can end takes the lock exclusively first, so
// it waits for the ioctl in flight and after it no thread can reach the memory or the fd again:
//   ioasHandleClose(token)          the owner's close() (or the GC of the handle)
//   InvalidateObject(fd, id)        IOMMU_DESTROY of the IOAS succeeded (destroy(), iommufd.cc)
//   InvalidateFd(fd)                close(fd) of the iommufd, before the fd is released
//   the owner environment's cleanup (a worker or the main thread going away), before its
//   ArrayBuffers are freed.
// Only then is the reference to the memory dropped (on the owner's thread). Mappings made through
// the handle may outlive it: the kernel keeps their pages pinned, and lib/ keeps the memory
// referenced from the Ioas until they are unmapped (ioas_handle.ts).
#include <sys/ioctl.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

namespace {

struct Region {
  std::shared_mutex lock;
  bool alive = true;
  int fd;
  uint32_t ioas;
  uint8_t* base;
  size_t length;
  napi_env owner;
  // Bytes ever mapped through the handle (atomic: maps run under the shared lock).
  uint64_t mapped = 0;
};

std::mutex registryLock;
std::unordered_map<uint32_t, std::shared_ptr<Region>> registry;
uint32_t nextToken = 1;

// The references to pinned memory, per owner environment (only that thread may drop them).
struct Pins {
  std::map<uint32_t, Napi::Reference<Napi::Value>> refs;
};
std::mutex pinsLock;
std::unordered_map<napi_env, Pins*> pinsByEnv;

std::shared_ptr<Region> Find(uint32_t token) {
  std::lock_guard<std::mutex> g(registryLock);
  auto it = registry.find(token);
  return it == registry.end() ? nullptr : it->second;
}

// Ends the entries `match` selects: each one's lock taken exclusively (waiting for its ioctl in
// flight), marked dead, removed. Returns them (their owners drop the memory references).
template <typename Match>
std::vector<std::pair<uint32_t, std::shared_ptr<Region>>> EndWhere(Match match) {
  std::vector<std::pair<uint32_t, std::shared_ptr<Region>>> ended;
  {
    std::lock_guard<std::mutex> g(registryLock);
    for (auto it = registry.begin(); it != registry.end();) {
      if (match(it->first, *it->second)) {
        ended.emplace_back(it->first, it->second);
        it = registry.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [token, r] : ended) {
    std::unique_lock<std::shared_mutex> w(r->lock);
    r->alive = false;
  }
  return ended;
}

// Drops the memory references of ended entries this environment owns (the others' owners drop
// theirs when their handles close or their environments end).
void Release(napi_env env, const std::vector<std::pair<uint32_t, std::shared_ptr<Region>>>& ended) {
  std::lock_guard<std::mutex> g(pinsLock);
  auto it = pinsByEnv.find(env);
  if (it == pinsByEnv.end()) return;
  for (auto& [token, r] : ended)
    if (r->owner == env) it->second->refs.erase(token);
}

void CleanupEnv(void* arg) {
  napi_env env = static_cast<napi_env>(arg);
  EndWhere([env](uint32_t, const Region& r) { return r.owner == env; });
  Pins* pins = nullptr;
  {
    std::lock_guard<std::mutex> g(pinsLock);
    auto it = pinsByEnv.find(env);
    if (it != pinsByEnv.end()) {
      pins = it->second;
      pinsByEnv.erase(it);
    }
  }
  if (pins) {
    for (auto& [token, ref] : pins->refs) ref.SuppressDestruct();  // the environment frees them
    delete pins;
  }
}

Napi::Error Closed(Napi::Env env, const char* op) {
  auto* inst = env.GetInstanceData<Instance>();
  std::string message = std::string(op) + ": the IOAS handle is closed (by its owner, or its IOAS was destroyed or its iommufd closed)";
  if (inst && !inst->errorClass.IsEmpty())
    return Napi::Error(env, inst->errorClass.New({Napi::String::New(env, message), Napi::String::New(env, "ERR_IOMMUFD_CLOSED")}));
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", "ERR_IOMMUFD_CLOSED");
  return e;
}

}  // namespace

void InvalidateIoasHandlesOfFd(napi_env env, int fd) {
  Release(env, EndWhere([fd](uint32_t, const Region& r) { return r.fd == fd; }));
}

void InvalidateIoasHandlesOfObject(napi_env env, int fd, uint32_t id) {
  Release(env, EndWhere([fd, id](uint32_t, const Region& r) { return r.fd == fd && r.ioas == id; }));
}

// ioasHandleOpen(fd, ioasId, memory) -> {token, pageOffset}. The caller's thread owns the entry;
// `memory` (an ArrayBuffer, a SharedArrayBuffer or a view of one) is referenced until the entry
// ends. pageOffset: where the memory starts within its page (0: page aligned).
static Napi::Value HandleOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "ioasHandleOpen";
  int fd = ArgFd(info, 0, op);
  uint32_t ioas = ArgU32(info, 1, op, "ioasId");
  Memory memory = MemoryOf(info[2], op, "memory");
  auto r = std::make_shared<Region>();
  r->fd = fd;
  r->ioas = ioas;
  r->base = memory.data;
  r->length = memory.length;
  r->owner = env;
  uint32_t token;
  {
    std::lock_guard<std::mutex> g(pinsLock);
    Pins*& pins = pinsByEnv[env];
    if (!pins) {
      pins = new Pins();
      napi_add_env_cleanup_hook(env, CleanupEnv, env);
    }
    std::lock_guard<std::mutex> g2(registryLock);
    token = nextToken++;
    if (nextToken == 0) nextToken = 1;
    registry.emplace(token, r);
    pins->refs.emplace(token, Napi::Persistent(info[2]));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("token", Napi::Number::New(env, token));
  out.Set("pageOffset", Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(memory.data) % ::sysconf(_SC_PAGESIZE))));
  return out;
}

// ioasHandleClose(token) -> the bytes ever mapped through it (a bigint; 0 when it had ended
// already). The owner's thread only.
static Napi::Value HandleClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t token = ArgU32(info, 0, "ioasHandleClose", "token");
  auto ended = EndWhere([token](uint32_t t, const Region&) { return t == token; });
  uint64_t mapped = ended.empty() ? 0 : ended[0].second->mapped;
  Release(env, ended);
  return Napi::BigInt::New(env, mapped);
}

// IOMMU_IOAS_MAP of [offset, offset + length) of the handle's memory (cmd: length, flags, iova
// set), under the entry's lock; any thread, no JS. 0, the kernel's errno, or kHandleEnded /
// kOutsideHandle (negative: no errno can be mistaken for them).
static int MapThrough(uint32_t token, uint64_t offset, iommu_ioas_map* cmd) {
  auto r = Find(token);
  if (!r) return kHandleEnded;
  std::shared_lock<std::shared_mutex> g(r->lock);
  if (!r->alive) return kHandleEnded;
  if (offset > r->length || cmd->length > r->length - offset) return kOutsideHandle;
  cmd->size = sizeof(*cmd);
  cmd->ioas_id = r->ioas;
  cmd->user_va = reinterpret_cast<uintptr_t>(r->base + offset);
  int rc;
  do rc = ::ioctl(r->fd, IOMMU_IOAS_MAP, cmd);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return errno;
  __atomic_add_fetch(&r->mapped, cmd->length, __ATOMIC_RELAXED);
  return 0;
}

int IoasHandleMapFixed(uint32_t token, uint64_t offset, uint64_t length, uint64_t iova, uint32_t flags) {
  iommu_ioas_map cmd{};
  cmd.length = length;
  cmd.flags = flags | IOMMU_IOAS_MAP_FIXED_IOVA;
  cmd.iova = iova;
  return MapThrough(token, offset, &cmd);
}

// ioasHandleMap(token, offset, length, iova, flags) -> iova. Any thread. Maps [offset, offset +
// length) of the handle's memory at iova (fixed when given as a number or bigint, else the
// kernel's choice).
static Napi::Value HandleMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_IOAS_MAP";
  uint32_t token = ArgU32(info, 0, op, "token");
  uint64_t offset = ValueU64(info[1], op, "offset");
  iommu_ioas_map cmd{};
  cmd.length = ValueU64(info[2], op, "length");
  cmd.flags = ArgU32(info, 4, op, "flags");
  if (!info[3].IsUndefined()) {
    cmd.iova = ValueU64(info[3], op, "iova");
    cmd.flags |= IOMMU_IOAS_MAP_FIXED_IOVA;
  }
  int err = MapThrough(token, offset, &cmd);
  if (err == kHandleEnded) throw Closed(env, "map");
  if (err == kOutsideHandle) throw Napi::RangeError::New(env, "map: the range is outside the handle's memory");
  if (err) throw SystemError(env, err, op);
  if (info[3].IsNumber()) return Napi::Number::New(env, static_cast<double>(cmd.iova));
  return Napi::BigInt::New(env, static_cast<uint64_t>(cmd.iova));
}

// ioasHandleUnmap(token, iova, length) -> bytes unmapped (a number when iova was one). Any thread.
static Napi::Value HandleUnmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "IOMMU_IOAS_UNMAP";
  uint32_t token = ArgU32(info, 0, op, "token");
  iommu_ioas_unmap cmd{};
  cmd.size = sizeof(cmd);
  cmd.iova = ValueU64(info[1], op, "iova");
  cmd.length = ValueU64(info[2], op, "length");
  auto r = Find(token);
  if (!r) throw Closed(env, "unmap");
  std::shared_lock<std::shared_mutex> g(r->lock);
  if (!r->alive) throw Closed(env, "unmap");
  cmd.ioas_id = r->ioas;
  int rc;
  do rc = ::ioctl(r->fd, IOMMU_IOAS_UNMAP, &cmd);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) throw SystemError(env, errno, op);
  if (info[1].IsNumber()) return Napi::Number::New(env, static_cast<double>(cmd.length));
  return Napi::BigInt::New(env, static_cast<uint64_t>(cmd.length));
}

void InitIoasHandle(Napi::Env env, Napi::Object exports) {
  exports.Set("ioasHandleOpen", Napi::Function::New(env, HandleOpen, "ioasHandleOpen"));
  exports.Set("ioasHandleClose", Napi::Function::New(env, HandleClose, "ioasHandleClose"));
  exports.Set("ioasHandleMap", Napi::Function::New(env, HandleMap, "ioasHandleMap"));
  exports.Set("ioasHandleUnmap", Napi::Function::New(env, HandleUnmap, "ioasHandleUnmap"));
}

}  // namespace iommufd
