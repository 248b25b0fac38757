// The pump driven by libuv: a uv_poll on the event loop of the thread that made it. It reads every
// queued record into one reused buffer and crosses into JS once per buffer, never per record; the
// answers JS made during that call (and its microtasks) are written right after it, one write(2)
// per buffer, as a C handler would.
#include "event_pump.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace iommufd {

Napi::Function EventPump::Class(Napi::Env env) {
  return DefineClass(env, "EventPump",
                     {InstanceMethod<&EventPump::SetCallbacks>("setCallbacks"),
                      InstanceMethod<&EventPump::SetAnswers>("setAnswers"), InstanceMethod<&EventPump::Start>("start"),
                      InstanceMethod<&EventPump::Stop>("stop"), InstanceMethod<&EventPump::SetRef>("ref"),
                      InstanceMethod<&EventPump::ReadNow>("read"), InstanceMethod<&EventPump::Write>("write"),
                      InstanceMethod<&EventPump::WriteAnswersNow>("writeAnswers"),
                      InstanceMethod<&EventPump::Serve>("serve"), InstanceMethod<&EventPump::SetMapStep>("setMapStep"),
                      InstanceMethod<&EventPump::Close>("close")});
}

// EventPump(fd, bufferRecords?, borrowed?, veventDataSize?)
// Reads fault records, or with veventDataSize vEVENTs of that type. Owns the fd from construction
// on (also when the constructor throws) unless `borrowed` (a serve loop's pump in a worker, on the
// fd its owner keeps): close() stops polling, closes the uv handle and then the fd, in that order, so libuv never polls a closed (or reused) fd number.
//
// What keeps what alive: the pump holds its callbacks weakly (their owner, the queue object, holds
// them), so an abandoned queue can be garbage-collected while its fd is polled; and its uv handle
// is unref'd unless JS calls ref(), so an idle queue does not keep the process alive.
EventPump::EventPump(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EventPump>(info), env_(info.Env()) {
  const char* op = "EventPump";
  fd_ = ArgFd(info, 0, op);
  borrowed_ = info[2].ToBoolean();
  try {
    if (!info[3].IsUndefined()) veventData_ = ArgU32(info, 3, op, "veventDataSize");
    size_t records = info[1].IsUndefined() ? 1024 : ArgU32(info, 1, op, "bufferRecords");
    if (records < 1 || records > kMaxRecords)
      throw Napi::RangeError::New(env_, "EventPump: bufferRecords must be 1 to " + std::to_string(kMaxRecords));
    Allocate(records * RecordSize());
  } catch (...) {
    if (!borrowed_) ::close(fd_);
    fd_ = -1;
    throw;
  }
  async_ = std::make_unique<Napi::AsyncContext>(env_, faults() ? "iommufd:FaultQueue" : "iommufd:VeventQueue");
  napi_add_env_cleanup_hook(env_, CleanupHook, this);
}

EventPump::~EventPump() {
  Shutdown();
  napi_remove_env_cleanup_hook(env_, CleanupHook, this);
}

void EventPump::Allocate(size_t bytes) {
  auto ab = Napi::ArrayBuffer::New(env_, bytes);
  buffer_ = static_cast<uint8_t*>(ab.Data());
  capacity_ = bytes;
  view_ = Napi::Persistent(Napi::Uint8Array::New(env_, bytes, ab, 0));
}

void EventPump::CheckOpen(const char* op) {
  if (fd_ < 0) throw SystemError(env_, EBADF, op, "queue is closed");
}

// setCallbacks(onBatch(view: Uint8Array, byteLength), onError(err), onWritten?(failed)): held
// weakly, see above.
Napi::Value EventPump::SetCallbacks(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction() || !info[1].IsFunction() || !(info[2].IsUndefined() || info[2].IsFunction()))
    throw Napi::TypeError::New(env_, "EventPump.setCallbacks: onBatch, onError (and onWritten) must be functions");
  onBatch_ = Napi::Weak(info[0].As<Napi::Function>());
  onError_ = Napi::Weak(info[1].As<Napi::Function>());
  onWritten_ = info[2].IsFunction() ? Napi::Weak(info[2].As<Napi::Function>()) : Napi::FunctionReference();
  return env_.Undefined();
}

// setAnswers(answers: Uint8Array, control: Int32Array): where JS puts responses for the pump to
// write, and the control block (event_pump.h). JS calls it again when it grows the buffer.
Napi::Value EventPump::SetAnswers(const Napi::CallbackInfo& info) {
  const char* op = "EventPump.setAnswers";
  Memory answers = MemoryOf(info[0], op, "answers");
  Memory control = MemoryOf(info[1], op, "control");
  if (control.length < control::kBytes || reinterpret_cast<uintptr_t>(control.data) % 8)
    throw Napi::RangeError::New(env_, std::string(op) + ": control must be 8-byte aligned and at least " +
                                          std::to_string(control::kBytes) + " bytes");
  const bool deferring = deferRef_;
  if (deferring) DeferRef(false);  // a new block during the callback: what JS left applies now
  answersRef_ = Napi::Persistent(info[0]);
  controlRef_ = Napi::Persistent(info[1]);
  answers_ = answers.data;
  answersCapacity_ = answers.length / kResponse;
  control_ = control.data;
  if (deferring) DeferRef(true);
  return env_.Undefined();
}

// start(): poll for readable (the uv handle is made on first use: a serve loop's pump has none).
Napi::Value EventPump::Start(const Napi::CallbackInfo& info) {
  CheckOpen("start");
  if (serving_) throw SystemError(env_, EBUSY, "start", "the pump is in a serve loop");
  if (!poll_) {
    uv_loop_t* loop;
    if (napi_get_uv_event_loop(env_, &loop) != napi_ok) throw Napi::Error::New(env_, "EventPump: no event loop");
    auto* p = new uv_poll_t;
    int rc = uv_poll_init(loop, p, fd_);
    if (rc < 0) {
      delete p;
      throw SystemError(env_, -rc, "uv_poll_init");
    }
    p->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(p));
    poll_ = p;
  }
  if (!polling_) {
    int rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
    if (rc < 0) throw SystemError(env_, -rc, "uv_poll_start");
    polling_ = true;
  }
  return env_.Undefined();
}

// stop(): the backpressure switch. Faults stay queued in the kernel meanwhile.
Napi::Value EventPump::Stop(const Napi::CallbackInfo& info) {
  CheckOpen("stop");
  StopPolling();
  return env_.Undefined();
}

void EventPump::StopPolling() {
  if (!polling_) return;
  uv_poll_stop(poll_);
  polling_ = false;
}

// ref(bool): whether the poll handle keeps the event loop alive. (During the loop's callback JS
// leaves it in the control block instead: control::kDeferRef.)
Napi::Value EventPump::SetRef(const Napi::CallbackInfo& info) {
  SetRefNow(info[0].ToBoolean());
  return env_.Undefined();
}

// Around the loop's callback: JS's ref() goes to the control block, applied when it returns.
void EventPump::DeferRef(bool on) {
  deferRef_ = on;
  if (!control_) return;  // (none once JS closed the pump in the callback: its handle is gone too)
  int32_t* slots = Slots();
  if (on) {
    slots[control::kRef] = -1;
  } else if (slots[control::kRef] >= 0) {
    SetRefNow(slots[control::kRef] == 1);
  }
  slots[control::kDeferRef] = on;
}

void EventPump::SetRefNow(bool on) {
  if (!poll_) return;
  auto* h = reinterpret_cast<uv_handle_t*>(poll_);
  if (on) uv_ref(h);
  else uv_unref(h);
}

// read(): drain synchronously now (used by close to answer what is still queued).
Napi::Value EventPump::ReadNow(const Napi::CallbackInfo& info) {
  CheckOpen("read");
  Drain(false);  // an exception a callback threw stays pending and reaches the caller
  return env_.Undefined();
}

// Called by libuv, outside any JS frame. Uses the C API throughout: while a worker is being
// terminated every call into JS fails, and node-addon-api would turn that failure into an
// Error it cannot build there (a fatal error); here it just stops the pump.
void EventPump::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<EventPump*>(handle->data);
  napi_handle_scope scope;
  if (napi_open_handle_scope(self->env_, &scope) != napi_ok) {
    self->StopPolling();
    return;
  }
  self->DeferRef(true);
  if (status < 0) self->ReportError(SystemError(self->env_, -status, "poll", "fault fd").Value(), true);
  else self->Drain(true);
  self->DeferRef(false);
  napi_close_handle_scope(self->env_, scope);
}

// Calls `fn` (from the loop with async context and microtask checkpoint, else directly). Returns
// false when the call did not complete: the callback threw, or JS cannot run (environment
// teardown). From the loop, a throw becomes an uncaught exception, as an event listener's would.
bool EventPump::Call(const Napi::FunctionReference& fn, size_t argc, const napi_value* argv, bool fromLoop) {
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

// One batch to JS, then the answers it made (during the call and, from the loop, in the microtasks
// that ran before make_callback returned) to the kernel.
bool EventPump::Deliver(size_t bytes, bool fromLoop) {
  if (fd_ < 0) return false;  // closed by JS during an earlier callback of this drain
  napi_value args[2] = {view_.Value(), nullptr};
  napi_create_double(env_, static_cast<double>(bytes), &args[1]);
  // Counted first: from the loop, the microtasks make_callback runs may close the queue.
  if (control_ && bytes > 0) {
    Count(control::kBatches, 1);
    Count(control::kDelivered, static_cast<double>(faults() ? CountGroups(bytes) : CountVevents(bytes)));
  }
  if (mapStep_ && bytes > 0 && control_) {
    // The step answers what it can, and those answers are written before JS runs at all.
    const uint64_t t0 = uv_hrtime();
    const size_t logged = static_cast<size_t>(mapStep_->block[mapstep::kLogLength]);
    bool wantJs = false;
    bytes = mapStep_->Run(buffer_, bytes, answers_, answersCapacity_, &Slots()[control::kAnswers], &wantJs);
    std::vector<int32_t> failed;
    WriteAnswers(&failed);  // a refusal is counted (kRefused); the pager has no promise to settle
    mapStep_->Stamp(logged, static_cast<double>(uv_hrtime() - t0));
    if (!wantJs) return true;
    napi_create_double(env_, static_cast<double>(bytes), &args[1]);
  }
  bool ok = Call(onBatch_, 2, args, fromLoop);
  if (!ok && serving_) {  // the handler never returned (its env is going away): answer for it
    AnswerLeftInvalid(bytes);
    return false;
  }
  std::vector<int32_t> failed;
  if (!WriteAnswers(&failed) || !Slots()[control::kNotify]) return ok;
  Slots()[control::kNotify] = 0;
  napi_value arg = nullptr;
  if (!failed.empty()) {
    napi_value ab;
    void* data;
    if (napi_create_arraybuffer(env_, failed.size() * 4, &data, &ab) == napi_ok &&
        napi_create_typedarray(env_, napi_int32_array, failed.size(), ab, 0, &arg) == napi_ok)
      std::copy(failed.begin(), failed.end(), static_cast<int32_t*>(data));
  }
  if (!arg) napi_get_undefined(env_, &arg);
  return Call(onWritten_, 1, &arg, fromLoop) && ok;
}

void EventPump::ReportError(Napi::Value err, bool fromLoop) {
  StopPolling();
  napi_value arg = err;
  Call(onError_, 1, &arg, fromLoop);
}

// From the loop, a stop() or close() made by JS inside onBatch ends the drain at once; in a serve
// loop, a stop request does.
bool EventPump::Going(bool fromLoop) const {
  if (fd_ < 0) return false;
  if (serving_) return !(control_ && __atomic_load_n(&Slots()[control::kStop], __ATOMIC_ACQUIRE));
  return polling_ || !fromLoop;
}

// Read every queued group (from the loop or a serve loop, a turn's share: kTurnBatches), filling
// the buffer before each crossing into JS. The kernel returns whole groups only: 0 when the queue
// is empty, EINVAL when even the first group does not fit the space offered (then deliver what we
// have, or grow). Returns false when a callback did not complete (it threw, or JS cannot run).
bool EventPump::Drain(bool fromLoop) {
  const bool bounded = fromLoop || serving_;
  const uint64_t until = bounded ? uv_hrtime() + kTurnNs : 0;
  int batches = 0;
  // After each delivery: whether this wake-up has had its share (see kTurnBatches).
  auto turnOver = [&] { return bounded && (++batches >= kTurnBatches || uv_hrtime() >= until); };
  size_t used = 0;
  while (Going(fromLoop)) {
    ssize_t n = ::read(fd_, buffer_ + used, capacity_ - used);
    if (n > 0) {
      used += static_cast<size_t>(n);
      if (used == capacity_) {
        if (!Deliver(used, fromLoop)) return false;
        used = 0;
        if (turnOver()) return true;
      }
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EINVAL) {
      if (used > 0) {
        if (!Deliver(used, fromLoop)) return false;
        used = 0;
        if (turnOver()) return true;
        continue;
      }
      if (capacity_ * 2 > kMaxRecords * RecordSize()) {
        ReportError(SystemError(env_, EINVAL, "read", "record larger than the pump's buffer limit").Value(), fromLoop);
        return true;
      }
      Allocate(capacity_ * 2);
      continue;
    }
    if (errno == EAGAIN) break;
    int err = errno;
    if (used > 0 && !Deliver(used, fromLoop)) return false;
    if (fd_ >= 0) ReportError(SystemError(env_, err, "read", faults() ? "fault fd" : "vEVENTQ fd").Value(), fromLoop);
    return true;
  }
  return used == 0 || Deliver(used, fromLoop);
}

size_t EventPump::WriteResponses(const uint8_t* p, size_t len, std::vector<int32_t>* failed) {
  size_t off = 0;
  size_t refused = 0;
  while (off < len) {
    ssize_t n = ::write(fd_, p + off, len - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    int err = n < 0 ? errno : EIO;
    // EINVAL: that one response named a group the kernel no longer has; anything else ends it.
    size_t end = err == EINVAL ? off + kResponse : len;
    for (; off < end; off += kResponse, refused++) {
      failed->push_back(static_cast<int32_t>(off / kResponse));
      failed->push_back(err);
    }
  }
  return refused;
}

size_t EventPump::CountGroups(size_t bytes) const {
  size_t groups = 0;
  bool open = false;
  uint32_t cookie = 0;
  for (size_t off = 0; off + kRecord <= bytes; off += kRecord) {
    uapi::iommu_hwpt_pgfault r;
    memcpy(&r, buffer_ + off, sizeof r);
    if (!open || r.cookie != cookie) groups++;
    open = !(r.flags & uapi::IOMMU_PGFAULT_FLAGS_LAST_PAGE);
    cookie = r.cookie;
  }
  return groups;
}

size_t EventPump::CountVevents(size_t bytes) const {
  size_t events = 0;
  for (size_t off = 0; off + kVeventHeader <= bytes;) {
    uapi::iommufd_vevent_header h;
    memcpy(&h, buffer_ + off, sizeof h);
    if (h.flags & uapi::IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
      off += kVeventHeader;
      continue;
    }
    events++;
    off += kVeventHeader + veventData_;
  }
  return events;
}

void EventPump::Count(size_t slot, double n) {
  double v = Counters()[slot] + n;  // only the pump's thread writes its slots
  __atomic_store(&Counters()[slot], &v, __ATOMIC_RELEASE);
}

bool EventPump::WriteAnswers(std::vector<int32_t>* failed) {
  if (!control_ || fd_ < 0) return false;
  int32_t n = Slots()[control::kAnswers];
  if (n <= 0) return false;
  size_t count = std::min(static_cast<size_t>(n), answersCapacity_);
  size_t refused = WriteResponses(answers_, count * kResponse, failed);
  Slots()[control::kAnswers] = 0;
  Count(control::kAnswered, static_cast<double>(count - refused));
  Count(control::kRefused, static_cast<double>(refused));
  __atomic_fetch_add(&Slots()[control::kWrites], 1, __ATOMIC_RELEASE);
  return true;
}

// write(responses: Uint8Array of struct iommu_hwpt_page_response) -> undefined, or an Int32Array
// of [index, errno] pairs for the responses the kernel refused. The kernel stops at the first bad
// response and reports the bytes done before it; skip that one and carry on with the rest.
Napi::Value EventPump::Write(const Napi::CallbackInfo& info) {
  const char* op = "write";
  CheckOpen(op);
  Memory responses = MemoryOf(info[0], op, "responses");
  if (responses.length % kResponse) throw Napi::RangeError::New(env_, "write: length must be a multiple of 8");
  std::vector<int32_t> failed;
  WriteResponses(responses.data, responses.length, &failed);
  if (failed.empty()) return env_.Undefined();
  auto out = Napi::Int32Array::New(env_, failed.size());
  std::copy(failed.begin(), failed.end(), out.Data());
  return out;
}

// writeAnswers() -> as write(), for the responses waiting in the answer buffer (counted).
Napi::Value EventPump::WriteAnswersNow(const Napi::CallbackInfo& info) {
  CheckOpen("writeAnswers");
  std::vector<int32_t> failed;
  WriteAnswers(&failed);
  if (control_) Slots()[control::kNotify] = 0;
  if (failed.empty()) return env_.Undefined();
  auto out = Napi::Int32Array::New(env_, failed.size());
  std::copy(failed.begin(), failed.end(), out.Data());
  return out;
}

Napi::Value EventPump::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  return env_.Undefined();
}

// uv_poll_stop, uv_close, then close(2): uv_close takes the fd out of epoll synchronously, so the
// fd can be closed right after; the handle's memory is freed in the close callback. The buffers
// and callbacks are let go at once: a closed pump may live on in JS for a long time.
void EventPump::Shutdown() {
  if (fd_ < 0) return;
  if (poll_) {
    StopPolling();
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (!borrowed_) ::close(fd_);
  fd_ = -1;
  view_.Reset();
  buffer_ = nullptr;
  capacity_ = 0;
  if (control_) Slots()[control::kDeferRef] = 0;
  answersRef_.Reset();
  controlRef_.Reset();
  answers_ = control_ = nullptr;
  answersCapacity_ = 0;
  onBatch_.Reset();
  onError_.Reset();
  onWritten_.Reset();
  mapStep_.reset();
}

void EventPump::CleanupHook(void* arg) { static_cast<EventPump*>(arg)->Shutdown(); }

void InitEventPump(Napi::Env env, Napi::Object exports) {
  exports.Set("EventPump", EventPump::Class(env));
  // The pump's buffer limit, so that lib/ checks options against this one number.
  exports.Set("pumpMaxRecords", Napi::Number::New(env, EventPump::kMaxRecords));
  Napi::Object turn = Napi::Object::New(env);
  turn.Set("batches", Napi::Number::New(env, EventPump::kTurnBatches));
  turn.Set("ms", Napi::Number::New(env, EventPump::kTurnNs / 1e6));
  turn.Freeze();
  exports.Set("pumpTurn", turn);
  // The control block's layout (event_pump.h): i32 slot indexes, then f64 ones, and its size.
  Napi::Object c = Napi::Object::New(env);
  c.Set("answers", control::kAnswers);
  c.Set("notify", control::kNotify);
  c.Set("writes", control::kWrites);
  c.Set("stop", control::kStop);
  c.Set("deferRef", control::kDeferRef);
  c.Set("ref", control::kRef);
  c.Set("answered", control::kAnswered);
  c.Set("refused", control::kRefused);
  c.Set("batches", control::kBatches);
  c.Set("delivered", control::kDelivered);
  c.Set("errors", control::kErrors);
  c.Set("bytes", control::kBytes);
  exports.Set("pumpControl", c);
  InitServeLoop(env, exports);
  InitMapStep(env, exports);
}

}  // namespace iommufd
