// The demand pager's map-and-answer step (lib/paging): run by a serve loop's pump between its
// read(2) and the call into JS, it serves the common fault itself (a page of the pager's window,
// absent, with mapping credit left), so that a page request is mapped and answered without
// entering JS. The policy stays in TypeScript: JS grants the credit (how many pages the step may
// map before JS has evicted to make room), turns the step off while the policy hook has groups
// waiting, and takes the step's log of what it mapped (into its eviction order, counters and
// latency histogram) on its next call. A group the step does not serve goes to JS as before.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace iommufd {

// The Float64 block JS and the step share (binding.mapStep gives JS these indexes): a header,
// then the log, kEntry slots per group the step answered.
namespace mapstep {
constexpr size_t kCredit = 0;     // pages the step may still map; < 0: off (JS serves every group)
constexpr size_t kLowWater = 1;   // the pump calls JS after a batch that left the credit below this
constexpr size_t kLogLength = 2;  // entries in the log (JS empties it)
constexpr size_t kHeader = 4;
// Entry: the first page mapped (-1: none, the group's pages were all mapped), pages mapped, the
// group's read-to-answer time (ns).
constexpr size_t kEntry = 3;
// The pager's counters the step counts in (JS passes their indexes: one layout, pager_core.ts).
enum Counter : unsigned { kServed, kFaults, kPages, kSuccess, kSpurious, kMappedPages, kAroundPages, kMappedNow, kPeak, kCounters };
// Page state bits (one byte per window page, JS-owned, shared with PagerCore).
constexpr uint8_t kMapped = 1;
constexpr uint8_t kFilled = 2;
constexpr uint8_t kFilling = 4;
}  // namespace mapstep

struct MapStep {
  uint32_t token;  // the IOAS handle (ioas_handle.cc) the pages are mapped through
  uint64_t iova;   // where the window starts
  uint32_t pages;  // the window's pages
  uint32_t pageSize;
  uint32_t faultAround;
  bool writable;
  bool policy;  // a page must be filled (kFilled) before its first mapping
  Napi::Reference<Napi::Value> stateRef, blockRef;
  uint8_t* state;
  double* block;
  Napi::Reference<Napi::Value> countersRef;
  double* counters;
  uint32_t slot[mapstep::kCounters];  // where each Counter is in `counters`
  size_t logCapacity;
  std::vector<uint32_t> scratch;

  // Serves what it can of `bytes` of fault records: its answers go to `answers` from index
  // *count on (*count grows), the records of the groups it leaves are moved to the front.
  // Returns their bytes; *wantJs: JS should run even if none are left (credit low, log full).
  size_t Run(uint8_t* records, size_t bytes, uint8_t* answers, size_t answersCapacity, int32_t* count, bool* wantJs);
  // The entries from `from` on were answered `ns` after their read.
  void Stamp(size_t from, double ns);

 private:
  bool Serve(const uint8_t* records, size_t first, size_t end);
  double& Counter(mapstep::Counter c) { return counters[slot[c]]; }
};

}  // namespace iommufd
