// The one pump that moves records from an iommufd event fd (fault queue, vEVENTQ) to JS and, for
// faults, answers back. Two drivers
// share it: libuv (event_pump.cc: a uv_poll on the caller's event loop) and a blocking serve loop
// on the caller's own thread (serve_loop.cc: poll(2) on the fd and a wake-up eventfd, no libuv).
#pragma once
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "addon.h"
#include "map_step.h"
#include "uapi.h"

namespace iommufd {

// The control block JS and the pump share (an ArrayBuffer, or a SharedArrayBuffer when another
// thread reads the counters): int32 slots first, then float64 counters. JS gets these indexes
// from the addon (binding.pumpControl), so this is the one place they are defined.
namespace control {
constexpr size_t kAnswers = 0;   // i32: responses waiting in the answer buffer (JS adds, the pump writes)
constexpr size_t kNotify = 1;    // i32: JS wants onWritten() after the pump writes them (promises wait)
constexpr size_t kWrites = 2;    // i32: +1 after every write(2) of answers (wraps): another thread can watch it
constexpr size_t kStop = 3;      // i32: the serve loop returns before its next read when set
// While the loop's callback runs (with its microtasks) the pump sets kDeferRef, and JS leaves its
// ref() in kRef (-1: none) for the pump to apply after: a consumer handed a group that waits again
// in those microtasks (for await) then costs no addon call, where it cost two (unref, ref).
constexpr size_t kDeferRef = 14; // i32: 1 while the loop's callback runs
constexpr size_t kRef = 15;      // i32: the ref() JS asked for meanwhile (1, 0), or -1
constexpr size_t kAnswered = 2;  // f64: responses the kernel accepted
constexpr size_t kRefused = 3;   // f64: responses the kernel refused (EINVAL)
constexpr size_t kBatches = 4;   // f64: deliveries to JS
constexpr size_t kDelivered = 5; // f64: fault groups delivered to JS
constexpr size_t kErrors = 6;    // f64: handler errors a serve loop caught (JS counts them)
constexpr size_t kBytes = 8 * 8;
static_assert(kDeferRef * 4 >= (kErrors + 1) * 8 && (kRef + 1) * 4 <= kBytes, "i32 slots after the counters");
}  // namespace control

// The records a pump reads: fault records (fixed size, answered in groups), or vEVENTs (a header
// and the type's data, or a LOST_EVENTS header alone; nothing to answer).
class EventPump : public Napi::ObjectWrap<EventPump> {
 public:
  static Napi::Function Class(Napi::Env env);
  EventPump(const Napi::CallbackInfo& info);
  ~EventPump() override;

  static constexpr size_t kRecord = sizeof(uapi::iommu_hwpt_pgfault);
  static constexpr size_t kVeventHeader = sizeof(uapi::iommufd_vevent_header);
  static constexpr size_t kResponse = sizeof(uapi::iommu_hwpt_page_response);
  // A group bigger than this is not something PRI can produce; stop growing and report it.
  // (A vEVENT always fits the first buffer.)
  static constexpr size_t kMaxRecords = 1u << 18;
  // Fairness: a wake-up of the event loop's pump (or a serve loop's drain) delivers at most
  // kTurnBatches batches or for kTurnNs, whichever ends first, then yields; the fd is still
  // readable, so libuv (level-triggered) comes back to it on its next turn, after timers and
  // other I/O, and a serve loop checks its stop request and wake-up fd first. close()'s final
  // read is not bounded: it must see everything.
  static constexpr int kTurnBatches = 64;
  static constexpr uint64_t kTurnNs = 2'000'000;

 private:
  void Allocate(size_t bytes);
  void CheckOpen(const char* op);
  Napi::Value SetCallbacks(const Napi::CallbackInfo& info);
  Napi::Value SetAnswers(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value SetRef(const Napi::CallbackInfo& info);
  Napi::Value ReadNow(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteAnswersNow(const Napi::CallbackInfo& info);
  Napi::Value Serve(const Napi::CallbackInfo& info);  // serve_loop.cc
  Napi::Value SetMapStep(const Napi::CallbackInfo& info);  // map_step.cc
  Napi::Value Close(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  void DeferRef(bool on);
  void SetRefNow(bool on);
  void StopPolling();
  bool Call(const Napi::FunctionReference& fn, size_t argc, const napi_value* argv, bool fromLoop);
  bool Deliver(size_t bytes, bool fromLoop);
  void ReportError(Napi::Value err, bool fromLoop);
  bool Drain(bool fromLoop);
  bool Going(bool fromLoop) const;
  // write(2) of len bytes of responses; the kernel stops at the first bad one: skip it, go on.
  size_t WriteResponses(const uint8_t* p, size_t len, std::vector<int32_t>* failed);
  // Writes the responses JS put in the answer buffer; counts them; false if none were waiting.
  bool WriteAnswers(std::vector<int32_t>* failed);
  // After a serve-loop batch whose handler never returned: INVALID to every group it left.
  void AnswerLeftInvalid(size_t bytes);
  int32_t* Slots() const { return reinterpret_cast<int32_t*>(control_); }
  double* Counters() const { return reinterpret_cast<double*>(control_); }
  void Count(size_t slot, double n);
  // Groups in `bytes` of fault records: a group ends at LAST_PAGE or where the cookie changes.
  size_t CountGroups(size_t bytes) const;
  // Events in `bytes` of vEVENTs, LOST_EVENTS headers not counted.
  size_t CountVevents(size_t bytes) const;
  bool faults() const { return veventData_ < 0; }
  size_t RecordSize() const { return faults() ? kRecord : kVeventHeader + veventData_; }
  void Shutdown();
  static void CleanupHook(void* arg);

  Napi::Env env_;
  int fd_ = -1;
  bool borrowed_ = false;  // a serve loop's pump on another thread's fd: never closes it
  long veventData_ = -1;   // vEVENT data bytes after each header; -1: fault records
  uv_poll_t* poll_ = nullptr;
  bool polling_ = false;
  bool serving_ = false;
  bool deferRef_ = false;  // in the loop's callback: see control::kDeferRef
  uint8_t* buffer_ = nullptr;
  size_t capacity_ = 0;
  Napi::Reference<Napi::Uint8Array> view_;
  // The answer buffer and control block, JS-owned (set by setAnswers).
  Napi::Reference<Napi::Value> answersRef_, controlRef_;
  uint8_t* answers_ = nullptr;
  size_t answersCapacity_ = 0;
  uint8_t* control_ = nullptr;
  Napi::FunctionReference onBatch_, onError_, onWritten_;
  std::unique_ptr<Napi::AsyncContext> async_;
  // The demand pager's map-and-answer step, run before each delivery (setMapStep).
  std::unique_ptr<MapStep> mapStep_;
};

void InitServeLoop(Napi::Env env, Napi::Object exports);  // called by InitEventPump
void InitMapStep(Napi::Env env, Napi::Object exports);    // called by InitEventPump

}  // namespace iommufd
