// The demand pager's map-and-answer step (map_step.h): what it serves, and the pump's setMapStep().
#include "map_step.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "event_pump.h"

namespace iommufd {
using namespace mapstep;

size_t MapStep::Run(uint8_t* records, size_t bytes, uint8_t* answers, size_t answersCapacity, int32_t* count, bool* wantJs) {
  constexpr size_t kRecord = EventPump::kRecord;
  size_t keep = 0;
  if (block[kCredit] >= 0) {
    size_t n = bytes / kRecord;
    for (size_t first = 0; first < n;) {
      // The group: to its LAST_PAGE record, or to where the cookie changes (as CountGroups).
      size_t end = first;
      uapi::iommu_hwpt_pgfault r;
      uint32_t cookie = 0;
      do {
        memcpy(&r, records + end * kRecord, sizeof r);
        if (end > first && r.cookie != cookie) break;
        cookie = r.cookie;
        end++;
      } while (!(r.flags & uapi::IOMMU_PGFAULT_FLAGS_LAST_PAGE) && end < n);
      if (static_cast<size_t>(*count) < answersCapacity && Serve(records, first, end)) {
        uapi::iommu_hwpt_page_response a{cookie, uapi::IOMMUFD_PAGE_RESP_SUCCESS};
        memcpy(answers + static_cast<size_t>(*count) * sizeof a, &a, sizeof a);
        ++*count;
      } else {
        memmove(records + keep, records + first * kRecord, (end - first) * kRecord);
        keep += (end - first) * kRecord;
      }
      first = end;
    }
  } else {
    keep = bytes;
  }
  *wantJs = keep > 0 || block[kCredit] < block[kLowWater] || block[kLogLength] * 2 >= static_cast<double>(logCapacity);
  return keep;
}

// One group, records [first, end): true when it is served (its pages mapped now) and must be
// answered SUCCESS. Anything else is JS's: a page outside the window or being filled, a write to a
// read-only window, a page not yet filled (with a policy), missing pages that are not one run,
// too little credit, a full log, a map the kernel refused (JS maps again and reports the error).
bool MapStep::Serve(const uint8_t* records, size_t first, size_t end) {
  scratch.clear();
  const uint64_t window = static_cast<uint64_t>(pages) * pageSize;
  for (size_t k = first; k < end; k++) {
    uapi::iommu_hwpt_pgfault r;
    memcpy(&r, records + k * EventPump::kRecord, sizeof r);
    if (r.addr < iova || r.addr - iova >= window) return false;
    if ((r.perm & uapi::IOMMU_PGFAULT_PERM_WRITE) && !writable) return false;
    scratch.push_back(static_cast<uint32_t>((r.addr - iova) / pageSize));
  }
  std::sort(scratch.begin(), scratch.end());
  scratch.erase(std::unique(scratch.begin(), scratch.end()), scratch.end());
  auto absent = [this](uint32_t p) {
    uint8_t s = state[p];
    return !(s & (kMapped | kFilling)) && (!policy || (s & kFilled));
  };
  uint32_t runFirst = 0, missing = 0;
  for (uint32_t p : scratch) {
    uint8_t s = state[p];
    if (s & kMapped) continue;
    if (!absent(p)) return false;
    if (missing == 0) runFirst = p;
    else if (p != runFirst + missing) return false;
    missing++;
  }
  double credit = block[kCredit];
  size_t at = static_cast<size_t>(block[kLogLength]);
  if (missing > credit || at >= logCapacity) return false;
  // Fault-around: the absent pages after the group's last one, within the credit.
  const uint32_t last = scratch.back();
  uint32_t around = 0;
  while (around < faultAround && last + 1 + around < pages && missing + around < credit && absent(last + 1 + around)) around++;
  if (missing > 0 && runFirst + missing != last + 1) around = 0;  // its run would be a second map: not worth one
  if (missing == 0 && around > 0) runFirst = last + 1;
  uint32_t runCount = missing + around;
  if (runCount > 0) {
    uint32_t flags = uapi::IOMMU_IOAS_MAP_READABLE;
    if (writable) flags |= uapi::IOMMU_IOAS_MAP_WRITEABLE;
    if (IoasHandleMapFixed(token, static_cast<uint64_t>(runFirst) * pageSize, static_cast<uint64_t>(runCount) * pageSize,
                           iova + static_cast<uint64_t>(runFirst) * pageSize, flags) != 0)
      return false;
    for (uint32_t p = runFirst; p < runFirst + runCount; p++) state[p] |= kMapped;
    block[kCredit] = credit - runCount;
  }
  double* e = block + kHeader + at * kEntry;
  e[0] = runCount > 0 ? static_cast<double>(runFirst) : -1.0;
  e[1] = runCount;
  e[2] = 0;
  block[kLogLength] = static_cast<double>(at + 1);
  Counter(kServed)++;
  Counter(kFaults)++;
  Counter(kPages) += static_cast<double>(end - first);
  Counter(kSuccess)++;
  if (missing == 0) Counter(kSpurious)++;
  Counter(kMappedPages) += runCount;
  Counter(kAroundPages) += around;
  double now = Counter(kMappedNow) += runCount;
  if (now > Counter(kPeak)) Counter(kPeak) = now;
  return true;
}

void MapStep::Stamp(size_t from, double ns) {
  size_t n = static_cast<size_t>(block[kLogLength]);
  for (size_t k = from; k < n; k++) block[kHeader + k * kEntry + 2] = ns;
}

// setMapStep({token, iova, pages, pageSize, faultAround, writable, policy, state, block, counters,
// slots}) turns the step on for this pump's serve loop (fault queues only); setMapStep() turns it off.
Napi::Value EventPump::SetMapStep(const Napi::CallbackInfo& info) {
  const char* op = "EventPump.setMapStep";
  CheckOpen(op);
  if (info[0].IsUndefined()) {
    mapStep_.reset();
    return env_.Undefined();
  }
  if (!faults()) throw Napi::TypeError::New(env_, std::string(op) + ": the step is for fault queues");
  if (!info[0].IsObject()) throw Napi::TypeError::New(env_, std::string(op) + ": an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto step = std::make_unique<MapStep>();
  step->token = FieldU32(o, "token", 0, op);
  step->iova = FieldU64(o, "iova", 0, op);
  step->pages = FieldU32(o, "pages", 0, op);
  step->pageSize = FieldU32(o, "pageSize", 0, op);
  step->faultAround = FieldU32(o, "faultAround", 0, op);
  step->writable = o.Get("writable").ToBoolean();
  step->policy = o.Get("policy").ToBoolean();
  Memory state = MemoryOf(o.Get("state"), op, "state");
  Memory block = MemoryOf(o.Get("block"), op, "block");
  if (step->pageSize == 0 || step->pages == 0 || state.length < step->pages)
    throw Napi::RangeError::New(env_, std::string(op) + ": state must have a byte per page of the window");
  if (block.length < (kHeader + kEntry) * 8 || reinterpret_cast<uintptr_t>(block.data) % 8)
    throw Napi::RangeError::New(env_, std::string(op) + ": block must be 8-byte aligned and hold a header and an entry");
  Memory counters = MemoryOf(o.Get("counters"), op, "counters");
  if (!o.Get("slots").IsObject()) throw Napi::TypeError::New(env_, std::string(op) + ": slots: an object");
  Napi::Object slots = o.Get("slots").As<Napi::Object>();
  static const char* const kNames[kCounters] = {"served", "faults", "pages", "success", "spurious", "mappedPages", "aroundPages", "mappedNow", "peak"};
  for (unsigned c = 0; c < kCounters; c++) {
    step->slot[c] = FieldU32(slots, kNames[c], UINT32_MAX, op);
    if ((static_cast<uint64_t>(step->slot[c]) + 1) * 8 > counters.length) throw Napi::RangeError::New(env_, std::string(op) + ": slots." + kNames[c] + " is outside counters");
  }
  if (reinterpret_cast<uintptr_t>(counters.data) % 8) throw Napi::RangeError::New(env_, std::string(op) + ": counters must be 8-byte aligned");
  step->stateRef = Napi::Persistent(o.Get("state"));
  step->blockRef = Napi::Persistent(o.Get("block"));
  step->countersRef = Napi::Persistent(o.Get("counters"));
  step->state = state.data;
  step->block = reinterpret_cast<double*>(block.data);
  step->counters = reinterpret_cast<double*>(counters.data);
  step->logCapacity = (block.length / 8 - kHeader) / kEntry;
  mapStep_ = std::move(step);
  return env_.Undefined();
}

void InitMapStep(Napi::Env env, Napi::Object exports) {
  Napi::Object m = Napi::Object::New(env);
  m.Set("credit", kCredit);
  m.Set("lowWater", kLowWater);
  m.Set("logLength", kLogLength);
  m.Set("header", kHeader);
  m.Set("entry", kEntry);
  m.Set("mapped", kMapped);
  m.Set("filled", kFilled);
  m.Set("filling", kFilling);
  m.Freeze();
  exports.Set("mapStep", m);
}

}  // namespace iommufd
