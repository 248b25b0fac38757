// The serve loop: the pump driven by a blocking poll(2) on the calling thread instead of libuv. A
// handler that must answer in microseconds runs it on a thread of its own (a worker_threads
// Worker): each batch goes straight from read(2) to one synchronous JS call and its answers to
// write(2), with no event-loop turn, no MakeCallback and no microtask checkpoint in between.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "event_pump.h"

namespace iommufd {

// serve(wakeFd, idleMs) -> 'stopped' | 'closed'. Returns when the control block's stop slot is set
// (checked before every read), when wakeFd becomes readable (another thread's stop; its count is
// consumed), or when the pump is closed. Every idleMs without faults it calls onBatch with 0 bytes:
// when that call fails, JS cannot run here any more (the worker is being terminated), and the
// loop ends instead of keeping the thread (and process exit) waiting.
Napi::Value EventPump::Serve(const Napi::CallbackInfo& info) {
  const char* op = "serve";
  CheckOpen(op);
  int wake = ArgFd(info, 0, op);
  uint32_t idle = ArgU32(info, 1, op, "idleMs");
  if (polling_) throw SystemError(env_, EBUSY, op, "the pump is polled by the event loop");
  if (serving_) throw SystemError(env_, EBUSY, op, "already serving");
  if (!control_) throw Napi::TypeError::New(env_, "serve: setAnswers() first");
  if (!faults()) throw Napi::TypeError::New(env_, "serve: serve loops are for fault queues");
  serving_ = true;
  const char* why = "stopped";
  int err = 0;
  for (;;) {
    if (fd_ < 0) {
      why = "closed";
      break;
    }
    if (__atomic_exchange_n(&Slots()[control::kStop], 0, __ATOMIC_ACQ_REL)) break;
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake, POLLIN, 0}};
    int rc = ::poll(p, 2, static_cast<int>(std::min<uint32_t>(idle, INT32_MAX)));
    if (rc < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (p[1].revents) {
      uint64_t count;
      if (::read(wake, &count, sizeof count) < 0 && errno != EAGAIN) err = errno;
      break;
    }
    if (rc == 0) {
      if (!Deliver(0, false)) {
        why = nullptr;
        break;
      }
      continue;
    }
    if (p[0].revents & (POLLERR | POLLNVAL)) {
      err = p[0].revents & POLLNVAL ? EBADF : EIO;
      break;
    }
    if (!Drain(false)) {
      why = nullptr;
      break;
    }
  }
  serving_ = false;
  if (err) throw SystemError(env_, err, "poll", "serve loop");
  if (!why) return env_.Undefined();  // the exception the call left pending reaches the caller
  return Napi::String::New(env_, why);
}

// After a batch whose handler did not return (it threw past the loop's own catch, or JS cannot
// run any more): write the answers it made, then INVALID for every other group of the batch, so
// that no device waits on a group nobody will answer.
void EventPump::AnswerLeftInvalid(size_t bytes) {
  if (!control_ || fd_ < 0) return;
  std::vector<uint32_t> done;
  int32_t made = std::min<int32_t>(Slots()[control::kAnswers], static_cast<int32_t>(answersCapacity_));
  for (int32_t i = 0; i < made; i++) {
    uint32_t cookie;
    memcpy(&cookie, answers_ + i * kResponse, sizeof cookie);
    done.push_back(cookie);
  }
  std::vector<int32_t> failed;
  WriteAnswers(&failed);
  std::vector<uapi::iommu_hwpt_page_response> rest;
  for (size_t off = 0; off + kRecord <= bytes; off += kRecord) {
    uapi::iommu_hwpt_pgfault r;
    memcpy(&r, buffer_ + off, sizeof r);
    if (!rest.empty() && rest.back().cookie == r.cookie) continue;  // the group's next record
    if (std::find(done.begin(), done.end(), r.cookie) != done.end()) continue;
    rest.push_back({r.cookie, uapi::IOMMUFD_PAGE_RESP_INVALID});
  }
  failed.clear();
  size_t refused = WriteResponses(reinterpret_cast<const uint8_t*>(rest.data()), rest.size() * kResponse, &failed);
  Count(control::kAnswered, static_cast<double>(rest.size() - refused));
  Count(control::kRefused, static_cast<double>(refused));
  __atomic_fetch_add(&Slots()[control::kWrites], 1, __ATOMIC_RELEASE);
}

// eventfd() -> fd: the serve loop's wake-up, which any thread can signal (closed with close()).
static Napi::Value EventFd(const Napi::CallbackInfo& info) {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw SystemError(info.Env(), errno, "eventfd");
  info.Env().GetInstanceData<Instance>()->fds.insert(fd);
  return Napi::Number::New(info.Env(), fd);
}

// eventfdSignal(fd): wakes the serve loop polling it.
static Napi::Value EventFdSignal(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "eventfdSignal");
  uint64_t one = 1;
  ssize_t n;
  do n = ::write(fd, &one, sizeof one);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN) throw SystemError(info.Env(), errno, "write", "eventfd");
  return info.Env().Undefined();
}

void InitServeLoop(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("eventfdSignal", Napi::Function::New(env, EventFdSignal, "eventfdSignal"));
}

}  // namespace iommufd
