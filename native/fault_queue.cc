// Fault queue: IOMMU_FAULT_QUEUE_ALLOC and the pump that moves fault records from the fault fd to
// JS and responses back. The pump is the only native code on the fault hot path: it reads every
// queued record into one reused buffer and crosses into JS once per buffer, never per record.
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>
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
constexpr size_t kMaxRecords = 1u << 18;

// FaultPump(faultFd, bufferRecords?)
// Owns the fault fd from construction on (also when the constructor throws): close() stops
// polling, closes the uv handle and then the fd, in that order, so libuv never polls a closed (or
// reused) fd number.
//
// What keeps what alive: the pump holds its callbacks weakly (their owner, the FaultQueue, holds
// them), so an abandoned queue can be garbage-collected while its fd is polled; and its uv handle
// is unref'd unless JS calls ref(), so an idle queue does not keep the process alive.
class FaultPump : public Napi::ObjectWrap<FaultPump> {
 public:
  static Napi::Function Class(Napi::Env env) {
    return DefineClass(env, "FaultPump",
                       {InstanceMethod<&FaultPump::SetCallbacks>("setCallbacks"),
                        InstanceMethod<&FaultPump::Start>("start"), InstanceMethod<&FaultPump::Stop>("stop"),
                        InstanceMethod<&FaultPump::SetRef>("ref"), InstanceMethod<&FaultPump::ReadNow>("read"),
                        InstanceMethod<&FaultPump::Write>("write"), InstanceMethod<&FaultPump::Close>("close")});
  }

  FaultPump(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FaultPump>(info), env_(info.Env()) {
    const char* op = "FaultPump";
    fd_ = ArgFd(info, 0, op);
    try {
      size_t records = info[1].IsUndefined() ? 1024 : ArgU32(info, 1, op, "bufferRecords");
      if (records < 1 || records > kMaxRecords)
        throw Napi::RangeError::New(env_, "FaultPump: bufferRecords must be 1 to " + std::to_string(kMaxRecords));
      Allocate(records * kRecord);
      uv_loop_t* loop;
      if (napi_get_uv_event_loop(env_, &loop) != napi_ok) throw Napi::Error::New(env_, "FaultPump: no event loop");
      poll_ = new uv_poll_t;
      int rc = uv_poll_init(loop, poll_, fd_);
      if (rc < 0) {
        delete poll_;
        poll_ = nullptr;
        throw SystemError(env_, -rc, "uv_poll_init");
      }
    } catch (...) {
      ::close(fd_);
      fd_ = -1;
      throw;
    }
    poll_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    async_ = std::make_unique<Napi::AsyncContext>(env_, "iommufd:FaultQueue");
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

  // setCallbacks(onBatch(view: Uint8Array, byteLength), onError(err)): held weakly, see above.
  Napi::Value SetCallbacks(const Napi::CallbackInfo& info) {
    if (!info[0].IsFunction() || !info[1].IsFunction())
      throw Napi::TypeError::New(env_, "FaultPump.setCallbacks: onBatch and onError must be functions");
    onBatch_ = Napi::Weak(info[0].As<Napi::Function>());
    onError_ = Napi::Weak(info[1].As<Napi::Function>());
    return env_.Undefined();
  }

  // start(): poll for readable.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    CheckOpen("start");
    if (!polling_) {
      int rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
      if (rc < 0) throw SystemError(env_, -rc, "uv_poll_start");
      polling_ = true;
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
  }

  // ref(bool): whether the poll handle keeps the event loop alive.
  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    if (poll_) {
      auto* h = reinterpret_cast<uv_handle_t*>(poll_);
      if (info[0].ToBoolean()) uv_ref(h);
      else uv_unref(h);
    }
    return env_.Undefined();
  }

  // read(): drain synchronously now (used by close to answer what is still queued).
  Napi::Value ReadNow(const Napi::CallbackInfo& info) {
    CheckOpen("read");
    Drain(false);  // an exception a callback threw stays pending and reaches the caller
    return env_.Undefined();
  }

  // Called by libuv, outside any JS frame. Uses the C API throughout: while a worker is being
  // terminated every call into JS fails, and node-addon-api would turn that failure into an
  // Error it cannot build there (a fatal error); here it just stops the pump.
  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<FaultPump*>(handle->data);
    napi_handle_scope scope;
    if (napi_open_handle_scope(self->env_, &scope) != napi_ok) {
      self->StopPolling();
      return;
    }
    if (status < 0) self->ReportError(SystemError(self->env_, -status, "poll", "fault fd").Value(), true);
    else self->Drain(true);
    napi_close_handle_scope(self->env_, scope);
  }

  // Calls `fn` (from the loop with async context and microtask checkpoint, else directly). Returns
  // false when the call did not complete: the callback threw, or JS cannot run (environment
  // teardown). From the loop, a throw becomes an uncaught exception, as an event listener's would.
  bool Call(const Napi::FunctionReference& fn, size_t argc, const napi_value* argv, bool fromLoop) {
    napi_value f = fn.IsEmpty() ? nullptr : static_cast<napi_value>(fn.Value());
    if (!f) {  // the owner was garbage-collected: nobody to deliver to
      StopPolling();
      return false;
    }
    // make_callback wants an object as `this`: the global one (the callbacks are arrow functions).
    napi_value recv;
    napi_get_global(env_, &recv);
    napi_status s = fromLoop ? napi_make_callback(env_, *async_, recv, f, argc, argv, nullptr)
                             : napi_call_function(env_, recv, f, argc, argv, nullptr);
    if (s == napi_ok) return true;
    bool pending = false;
    napi_is_exception_pending(env_, &pending);
    if (!pending) {  // JS cannot run here any more
      StopPolling();
      return false;
    }
    if (fromLoop) {
      napi_value e;
      if (napi_get_and_clear_last_exception(env_, &e) == napi_ok) napi_fatal_exception(env_, e);
    }
    return false;
  }

  bool Deliver(size_t bytes, bool fromLoop) {
    napi_value args[2] = {view_.Value(), nullptr};
    napi_create_double(env_, static_cast<double>(bytes), &args[1]);
    return Call(onBatch_, 2, args, fromLoop);
  }

  void ReportError(Napi::Value err, bool fromLoop) {
    StopPolling();
    napi_value arg = err;
    Call(onError_, 1, &arg, fromLoop);
  }

  // Read every queued group, filling the buffer before each crossing into JS. The kernel returns
  // whole groups only: 0 when the queue is empty, EINVAL when even the first group does not fit
  // the space offered (then deliver what we have, or grow). Returns false when a callback did not
  // complete (it threw, or JS cannot run).
  bool Drain(bool fromLoop) {
    size_t used = 0;
    // From the loop, a stop() or close() made by JS inside onBatch ends the drain at once.
    auto go_on = [&] { return poll_ && (polling_ || !fromLoop); };
    while (go_on()) {
      ssize_t n = ::read(fd_, buffer_ + used, capacity_ - used);
      if (n > 0) {
        used += static_cast<size_t>(n);
        if (used == capacity_) {
          if (!Deliver(used, fromLoop)) return false;
          used = 0;
        }
        continue;
      }
      if (n == 0) break;
      if (errno == EINTR) continue;
      if (errno == EINVAL) {
        if (used > 0) {
          if (!Deliver(used, fromLoop)) return false;
          used = 0;
          continue;
        }
        if (capacity_ * 2 > kMaxRecords * kRecord) {
          ReportError(SystemError(env_, EINVAL, "read", "fault group larger than the pump's buffer limit").Value(), fromLoop);
          return true;
        }
        Allocate(capacity_ * 2);
        continue;
      }
      if (errno == EAGAIN) break;
      int err = errno;
      if (used > 0 && !Deliver(used, fromLoop)) return false;
      if (poll_) ReportError(SystemError(env_, err, "read", "fault fd").Value(), fromLoop);
      return true;
    }
    return used == 0 || Deliver(used, fromLoop);
  }

  // write(responses: Uint8Array of struct iommu_hwpt_page_response) -> undefined, or an Int32Array
  // of [index, errno] pairs for the responses the kernel refused. The kernel stops at the first bad
  // response and reports the bytes done before it; skip that one and carry on with the rest.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    const char* op = "write";
    CheckOpen(op);
    Memory responses = MemoryOf(info[0], op, "responses");
    const uint8_t* p = responses.data;
    size_t len = responses.length;
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
  // fd can be closed right after; the handle's memory is freed in the close callback. The buffer
  // and callbacks are let go at once: a closed pump may live on in JS for a long time.
  void Shutdown() {
    if (!poll_) return;
    StopPolling();
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    ::close(fd_);
    fd_ = -1;
    view_.Reset();
    buffer_ = nullptr;
    capacity_ = 0;
    onBatch_.Reset();
    onError_.Reset();
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
  // The pump's buffer limit, so that lib/ checks options against this one number.
  exports.Set("faultPumpMaxRecords", Napi::Number::New(env, kMaxRecords));
}

}  // namespace iommufd
