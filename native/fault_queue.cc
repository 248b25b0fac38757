// Fault queue: IOMMU_FAULT_QUEUE_ALLOC and the pump that moves fault records from the fault fd to
// JS and responses back. The pump is the only native code on the fault hot path: it reads every
// queued record into one reused buffer and crosses into JS once per buffer, never per record.
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "addon.h"
#include "uapi.h"

namespace iommufd {
using namespace uapi;

static Napi::Value FaultQueueAlloc(const Napi::CallbackInfo& info) {
  const char* op = "IOMMU_FAULT_QUEUE_ALLOC";
  iommu_fault_alloc cmd{};
  cmd.size = sizeof(cmd);
  Ioctl(info.Env(), ArgFd(info, 0, op), IOMMU_FAULT_QUEUE_ALLOC, op, &cmd);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("id", cmd.out_fault_id);
  out.Set("fd", cmd.out_fault_fd);
  return out;
}

constexpr size_t kRecord = sizeof(iommu_hwpt_pgfault);
constexpr size_t kResponse = sizeof(iommu_hwpt_page_response);
// A group bigger than this is not something PRI can produce; stop growing and report it.
constexpr size_t kMaxBuffer = kRecord * (1u << 18);

// FaultPump(faultFd, onBatch(view: Uint8Array, byteLength), onError(err), bufferRecords)
// Owns the fault fd from construction on: close() stops polling, closes the uv handle and then
// the fd, in that order, so libuv never polls a closed (or reused) fd number.
class FaultPump : public Napi::ObjectWrap<FaultPump> {
 public:
  static Napi::Function Class(Napi::Env env) {
    return DefineClass(env, "FaultPump",
                       {InstanceMethod<&FaultPump::Start>("start"), InstanceMethod<&FaultPump::Stop>("stop"),
                        InstanceMethod<&FaultPump::ReadNow>("read"), InstanceMethod<&FaultPump::Write>("write"),
                        InstanceMethod<&FaultPump::Close>("close")});
  }

  FaultPump(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FaultPump>(info), env_(info.Env()) {
    const char* op = "FaultPump";
    fd_ = ArgFd(info, 0, op);
    if (!info[1].IsFunction() || !info[2].IsFunction())
      throw Napi::TypeError::New(env_, "FaultPump: onBatch and onError callbacks are required");
    onBatch_ = Napi::Persistent(info[1].As<Napi::Function>());
    onError_ = Napi::Persistent(info[2].As<Napi::Function>());
    size_t records = info[3].IsUndefined() ? 1024 : ArgU32(info, 3, op, "bufferRecords");
    Allocate(std::max<size_t>(records, 1) * kRecord);
    async_ = std::make_unique<Napi::AsyncContext>(env_, "iommufd:FaultQueue", Value());
    uv_loop_t* loop;
    if (napi_get_uv_event_loop(env_, &loop) != napi_ok) throw Napi::Error::New(env_, "FaultPump: no event loop");
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc < 0) {
      delete poll_;
      poll_ = nullptr;
      ::close(fd_);
      throw SystemError(env_, -rc, "uv_poll_init");
    }
    poll_->data = this;
    napi_add_env_cleanup_hook(env_, CleanupHook, this);
  }

  ~FaultPump() override {
    Shutdown();
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  }

 private:
  void Allocate(size_t bytes) {
    auto ab = Napi::ArrayBuffer::New(env_, bytes);
    buffer_ = static_cast<uint8_t*>(ab.Data());
    capacity_ = bytes;
    view_ = Napi::Persistent(Napi::Uint8Array::New(env_, bytes, ab, 0));
  }

  void CheckOpen(const char* op) {
    if (!poll_) throw SystemError(env_, EBADF, op, "fault queue is closed");
  }

  // start(): poll for readable; while polling, the JS object is kept alive by a reference.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    CheckOpen("start");
    if (!polling_) {
      int rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
      if (rc < 0) throw SystemError(env_, -rc, "uv_poll_start");
      polling_ = true;
      Ref();
    }
    return env_.Undefined();
  }

  // stop(): the backpressure switch. Faults stay queued in the kernel meanwhile.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    CheckOpen("stop");
    StopPolling();
    return env_.Undefined();
  }

  void StopPolling() {
    if (!polling_) return;
    uv_poll_stop(poll_);
    polling_ = false;
    Unref();
  }

  // read(): drain synchronously now (used by close to answer what is still queued).
  Napi::Value ReadNow(const Napi::CallbackInfo& info) {
    CheckOpen("read");
    Drain(false);
    return env_.Undefined();
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<FaultPump*>(handle->data);
    Napi::HandleScope scope(self->env_);
    try {
      if (status < 0) {
        self->ReportError(SystemError(self->env_, -status, "poll", "fault fd").Value(), true);
        return;
      }
      self->Drain(true);
    } catch (const Napi::Error& e) {
      // A throwing JS callback has no caller to return to here: make it an uncaught exception,
      // exactly as an exception thrown by an event listener would be.
      napi_fatal_exception(self->env_, e.Value());
    }
  }

  void Deliver(size_t bytes, bool fromLoop) {
    Napi::Value args[] = {view_.Value(), Napi::Number::New(env_, static_cast<double>(bytes))};
    if (fromLoop)
      onBatch_.MakeCallback(Value(), {args[0], args[1]}, *async_);
    else
      onBatch_.Call(Value(), {args[0], args[1]});
  }

  void ReportError(Napi::Value err, bool fromLoop) {
    StopPolling();
    if (fromLoop)
      onError_.MakeCallback(Value(), {err}, *async_);
    else
      onError_.Call(Value(), {err});
  }

  // Read every queued group, filling the buffer before each crossing into JS. The kernel returns
  // whole groups only: 0 when the queue is empty, EINVAL when even the first group does not fit
  // the space offered (then deliver what we have, or grow).
  void Drain(bool fromLoop) {
    size_t used = 0;
    // From the loop, a stop() or close() made by JS inside onBatch ends the drain at once.
    auto go_on = [&] { return poll_ && (polling_ || !fromLoop); };
    while (go_on()) {
      ssize_t n = ::read(fd_, buffer_ + used, capacity_ - used);
      if (n > 0) {
        used += static_cast<size_t>(n);
        if (used == capacity_) {
          Deliver(used, fromLoop);
          used = 0;
        }
        continue;
      }
      if (n == 0) break;
      if (errno == EINTR) continue;
      if (errno == EINVAL) {
        if (used > 0) {
          Deliver(used, fromLoop);
          used = 0;
          continue;
        }
        if (capacity_ * 2 > kMaxBuffer) {
          ReportError(SystemError(env_, EINVAL, "read", "fault group larger than the pump's buffer limit").Value(), fromLoop);
          return;
        }
        Allocate(capacity_ * 2);
        continue;
      }
      if (errno == EAGAIN) break;
      int err = errno;
      if (used > 0) Deliver(used, fromLoop);
      if (poll_) ReportError(SystemError(env_, err, "read", "fault fd").Value(), fromLoop);
      return;
    }
    if (used > 0) Deliver(used, fromLoop);
  }

  // write(responses: Uint8Array of struct iommu_hwpt_page_response) -> undefined, or an Int32Array
  // of [index, errno] pairs for the responses the kernel refused. The kernel stops at the first bad
  // response and reports the bytes done before it; skip that one and carry on with the rest.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    const char* op = "write";
    CheckOpen(op);
    if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env_, "write: responses must be a Uint8Array");
    auto view = info[0].As<Napi::TypedArray>();
    const uint8_t* p = ViewData(view);
    size_t len = view.ByteLength();
    if (len % kResponse) throw Napi::RangeError::New(env_, "write: length must be a multiple of 8");
    std::vector<int32_t> failed;
    size_t off = 0;
    while (off < len) {
      ssize_t n = ::write(fd_, p + off, len - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL) {
        failed.push_back(static_cast<int32_t>(off / kResponse));
        failed.push_back(EINVAL);
        off += kResponse;
        continue;
      }
      int err = n < 0 ? errno : EIO;
      for (; off < len; off += kResponse) {
        failed.push_back(static_cast<int32_t>(off / kResponse));
        failed.push_back(err);
      }
    }
    if (failed.empty()) return env_.Undefined();
    auto out = Napi::Int32Array::New(env_, failed.size());
    std::copy(failed.begin(), failed.end(), out.Data());
    return out;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return env_.Undefined();
  }

  // uv_poll_stop, uv_close, then close(2): uv_close takes the fd out of epoll synchronously, so the
  // fd can be closed right after; the handle's memory is freed in the close callback.
  void Shutdown() {
    if (!poll_) return;
    StopPolling();
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    ::close(fd_);
    fd_ = -1;
  }

  static void CleanupHook(void* arg) { static_cast<FaultPump*>(arg)->Shutdown(); }

  Napi::Env env_;
  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  bool polling_ = false;
  uint8_t* buffer_ = nullptr;
  size_t capacity_ = 0;
  Napi::Reference<Napi::Uint8Array> view_;
  Napi::FunctionReference onBatch_, onError_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

void InitFaultQueue(Napi::Env env, Napi::Object exports) {
  exports.Set("faultQueueAlloc", Napi::Function::New(env, FaultQueueAlloc, "faultQueueAlloc"));
  exports.Set("FaultPump", FaultPump::Class(env));
}

}  // namespace iommufd
