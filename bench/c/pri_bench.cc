// The C reference client of the real-path benchmark (npm run bench:pri): the rig's PRI test device
// (iommufd-pri-testdev, --qemu nested or iopf) bound to vfio-pci, driven the way a C VMM's fault
// handler would do it, with nothing but native/uapi.h.
//
//   pri_bench rtt PCI_ADDRESS ITERS WARMUP          paging: a fault-capable HWPT on the IOAS
//   pri_bench rtt-nested PCI_ADDRESS ITERS WARMUP   nested: a nested HWPT (VT-d stage 1 owned here)
//   pri_bench rtt-thread PCI_ADDRESS ITERS WARMUP   paging, the handler on a thread of its own
//   pri_bench tput PCI_ADDRESS WAVES WARMUP_WAVES   paging, every slot busy: pages/s
//
// paging: attached by RID to a fault-capable paging HWPT of an empty IOAS. Per iteration, on a
// fresh unmapped IOVA page: write a 64-byte DMA read into the slot's registers (pwrite through the
// VFIO region), then, timed, start it (one pwrite), poll(2)+read(2) the fault fd, IOMMU_IOAS_MAP
// one page at the faulting address, write(2) the SUCCESS response, then pread(2) the slot's status
// until the device says done.
// nested: as test/guest/iopf/c/nested_check.cc does it: the IOAS maps one page at kY and this
// program's stage-1 tables (x86 4-level, in its memory) at kTables; the device is attached to a
// NEST_PARENT HWPT of the IOAS, then to a nested HWPT (IOMMU_HWPT_DATA_VTD_S1, FSPTPTR kTables) with
// the fault queue. Per iteration the DMA reads a fresh IOVA absent from stage 1; the handler writes
// the stage-1 leaf entry (IOVA -> kY; tables made on the way, as VtdStage1Table does), issues one
// IOMMU_HWPT_INVALIDATE (VTD_S1, that page) and writes SUCCESS.
// Both: a baseline (the same DMA again, no fault: the device and QEMU alone), and "iommu", the
// handler's one ioctl (IOMMU_IOAS_MAP, or IOMMU_HWPT_INVALIDATE). Prints one JSON object:
// per-iteration nanoseconds (CLOCK_MONOTONIC, Node's hrtime clock).
//
// rtt-thread: as rtt, but the fault handler (poll, read, map, write) runs on a thread of its own
// and the main thread only drives the device (GO, status reads): the design of serveInWorker() and
// the DemandPager, whose rows are compared with it.
// tput: as many slots as the PRI allocation (the kernel's grant, PRI_ALLOC: 4 here) start a
// 256 KiB DMA read (64 pages, one page request each) of fresh IOVAs, so the allocation is full
// whenever every slot waits for an answer, and no slot ever waits for a credit (that wait is a
// 200 us timer in the device model, not the handler's speed). The
// handler loop reads what is queued, maps each page and writes every answer of the read in one
// write(2), until all the wave's pages are answered; then the slots are waited for. A wave is
// that, from the first GO to the last slot done; pages/s per wave.
//
// Build: g++ -O2 -std=c++17 -I native bench/c/pri_bench.cc -o bench/build/pri_bench
#include "uapi.h"  // first: it refuses to follow <linux/iommufd.h>
#include "bench_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace iommufd::uapi;

namespace {

using bench::Die;
using bench::Ioctl;
using bench::Now;

// The device's registers (scripts/qemu/hw/iommufd-pri-testdev.c), slot 0.
constexpr uint64_t kSlot = 0x100;
constexpr uint64_t kIova = kSlot + 0x00, kBufOffset = kSlot + 0x08, kLen = kSlot + 0x0c, kFlags = kSlot + 0x10,
                   kPasid = kSlot + 0x14, kGo = kSlot + 0x18, kStatus = kSlot + 0x1c;
constexpr uint32_t kDone = 3, kError = 4;
constexpr uint64_t kPage = 4096;

// Nested: the addresses (as bench/pri_bench.mjs's Node side uses them) and the stage-1 entry bits
// VtdStage1Table writes (IA-32e paging: P, R/W, U/S, A, D).
constexpr uint64_t kTables = 0x8000'0000;   // IOAS address of the stage-1 tables
constexpr uint64_t kY = 0x2'0000'0000;      // the one page the IOAS maps: every stage-1 output
constexpr uint64_t kTablePages = 64;
constexpr uint64_t P = 1, RW = 2, US = 4, A = 1 << 5, D = 1 << 6;
constexpr uint64_t kAddrMask = ((1ull << 52) - 1) & ~(kPage - 1);

struct Device {
  int iommufd = -1, vfio = -1, fault = -1;
  __u32 dev_id = 0, ioas = 0, nested = 0;
  uint64_t bar0 = 0, config = 0;
  void* page = nullptr;
  uint64_t* tables = nullptr;  // nested: kTablePages pages, the root first
  uint64_t tables_used = 1;

  void Write32(uint64_t reg, uint32_t v) {
    if (pwrite(vfio, &v, 4, off_t(bar0 + reg)) != 4) Die("pwrite BAR0");
  }
  uint32_t Read32(uint64_t reg) {
    uint32_t v;
    if (pread(vfio, &v, 4, off_t(bar0 + reg)) != 4) Die("pread BAR0");
    return v;
  }
  uint64_t RegionOffset(__u32 index) {
    vfio_region_info info{};
    info.argsz = sizeof(info);
    info.index = index;
    Ioctl(vfio, VFIO_DEVICE_GET_REGION_INFO, &info, "VFIO_DEVICE_GET_REGION_INFO");
    return info.offset;
  }
  void Map(uint64_t iova, void* va = nullptr, uint64_t length = kPage) {
    iommu_ioas_map map{};
    map.size = sizeof(map);
    map.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
    map.ioas_id = ioas;
    map.user_va = uintptr_t(va ? va : page);
    map.length = length;
    map.iova = iova;
    Ioctl(iommufd, IOMMU_IOAS_MAP, &map, "IOMMU_IOAS_MAP");
  }
  // The stage-1 leaf entry of iova, making the tables on the way (the walk of VtdStage1Table#leaf).
  uint64_t* Leaf(uint64_t iova) {
    uint64_t* table = tables;
    for (int level = 3; level > 0; level--) {
      uint64_t& e = table[(iova >> (12 + 9 * level)) & 511];
      if (!(e & P)) {
        if (tables_used == kTablePages) { errno = ENOSPC; Die("stage-1 tables full"); }
        e = (kTables + tables_used++ * kPage) | P | RW | US | A;
      }
      table = tables + ((e & kAddrMask) - kTables) / 8;
    }
    return &table[(iova >> 12) & 511];
  }
  // IOMMU_HWPT_INVALIDATE of one page of the nested HWPT (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1).
  void Invalidate(uint64_t iova) {
    iommu_hwpt_vtd_s1_invalidate e{};
    e.addr = iova;
    e.npages = 1;
    iommu_hwpt_invalidate inv{};
    inv.size = sizeof(inv);
    inv.hwpt_id = nested;
    inv.data_uptr = uintptr_t(&e);
    inv.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1;
    inv.entry_len = sizeof(e);
    inv.entry_num = 1;
    Ioctl(iommufd, IOMMU_HWPT_INVALIDATE, &inv, "IOMMU_HWPT_INVALIDATE");
    if (inv.entry_num != 1) { errno = EPROTO; Die("IOMMU_HWPT_INVALIDATE did not do its entry"); }
  }
  void Prepare(uint64_t iova, int slot = 0, uint32_t length = 64) {
    const uint64_t at = 0x40 * slot;
    Write32(at + kIova, uint32_t(iova));
    Write32(at + kIova + 4, uint32_t(iova >> 32));
    Write32(at + kBufOffset, 0);
    Write32(at + kLen, length);
    Write32(at + kFlags, 0);
    Write32(at + kPasid, 0);
  }
  void Go(int slot = 0) { Write32(0x40 * slot + kGo, 1); }
  // Waits (bounded) for queued faults and reads them; returns the records read.
  size_t ReadFaults(iommu_hwpt_pgfault* rec, size_t max) {
    pollfd p{fault, POLLIN, 0};
    for (;;) {
      if (poll(&p, 1, 10000) <= 0) { errno = ETIMEDOUT; Die("no fault within 10 s"); }
      ssize_t n = read(fault, rec, max * sizeof(rec[0]));
      if (n > 0) return size_t(n) / sizeof(rec[0]);
      if (n < 0 && errno != EAGAIN) Die("read fault fd");
    }
  }
  // Bounded: the device fails a job whose response does not come within its TIMEOUT_MS (5 s), so
  // a slot still busy after 10 s is a device that lost the job.
  // napNs: a busy pause between reads (the handler-thread design, as the Node worker rows do):
  // reading back to back took the BQL from QEMU's device model and IOMMU for the whole round trip.
  void WaitDone(int slot = 0, uint64_t napNs = 0) {
    const uint64_t status = kStatus + 0x40 * slot, until = Now() + 10'000'000'000ull;
    for (uint64_t n = 0;; n++) {
      uint32_t s = Read32(status);
      if (s == kDone) return;
      if (s == kError) { errno = EIO; Die("the device failed the job"); }
      if ((n & 63) == 63 && Now() > until) { errno = ETIMEDOUT; Die("the job not done within 10 s"); }
      for (uint64_t end = Now() + napNs; napNs && Now() < end;) {}
    }
  }
};

void Attach(Device& d, __u32 pt_id) {
  vfio_device_attach_iommufd_pt at{};
  at.argsz = sizeof(at);
  at.pt_id = pt_id;
  Ioctl(d.vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at, "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
}

Device Open(const char* address, bool nested) {
  Device d;
  std::string dir = std::string("/sys/bus/pci/devices/") + address + "/vfio-dev";
  DIR* dd = opendir(dir.c_str());
  if (!dd) Die("no vfio-dev in sysfs (is the device bound to vfio-pci?)");
  std::string cdev;
  while (dirent* e = readdir(dd)) if (!strncmp(e->d_name, "vfio", 4)) cdev = std::string("/dev/vfio/devices/") + e->d_name;
  closedir(dd);
  if ((d.iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC)) < 0) Die("open /dev/iommu");
  if ((d.vfio = open(cdev.c_str(), O_RDWR | O_CLOEXEC)) < 0) Die("open the VFIO cdev");
  vfio_device_bind_iommufd bind{};
  bind.argsz = sizeof(bind);
  bind.iommufd = d.iommufd;
  Ioctl(d.vfio, VFIO_DEVICE_BIND_IOMMUFD, &bind, "VFIO_DEVICE_BIND_IOMMUFD");
  d.dev_id = bind.out_devid;
  iommu_ioas_alloc ioas{};
  ioas.size = sizeof(ioas);
  Ioctl(d.iommufd, IOMMU_IOAS_ALLOC, &ioas, "IOMMU_IOAS_ALLOC");
  d.ioas = ioas.out_ioas_id;
  iommu_fault_alloc fa{};
  fa.size = sizeof(fa);
  Ioctl(d.iommufd, IOMMU_FAULT_QUEUE_ALLOC, &fa, "IOMMU_FAULT_QUEUE_ALLOC");
  d.fault = int(fa.out_fault_fd);
  d.page = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (d.page == MAP_FAILED) Die("mmap");
  memset(d.page, 0x5a, kPage);
  if (!nested) {
    iommu_hwpt_alloc hw{};
    hw.size = sizeof(hw);
    hw.flags = IOMMU_HWPT_FAULT_ID_VALID;
    hw.dev_id = d.dev_id;
    hw.pt_id = d.ioas;
    hw.fault_id = fa.out_fault_id;
    Ioctl(d.iommufd, IOMMU_HWPT_ALLOC, &hw, "IOMMU_HWPT_ALLOC");
    Attach(d, hw.out_hwpt_id);
  } else {
    // The IOAS (stage 2): the page every stage-1 entry points at, and the stage-1 tables.
    d.Map(kY);
    d.tables = static_cast<uint64_t*>(mmap(nullptr, kTablePages * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (d.tables == MAP_FAILED) Die("mmap tables");
    d.Map(kTables, d.tables, kTablePages * kPage);
    iommu_hwpt_alloc parent{};
    parent.size = sizeof(parent);
    parent.flags = IOMMU_HWPT_ALLOC_NEST_PARENT;
    parent.dev_id = d.dev_id;
    parent.pt_id = d.ioas;
    Ioctl(d.iommufd, IOMMU_HWPT_ALLOC, &parent, "IOMMU_HWPT_ALLOC NEST_PARENT");
    // The parent first (as the Node side and examples/nested-stage1.mjs do; 6.12 needs it).
    Attach(d, parent.out_hwpt_id);
    iommu_hwpt_vtd_s1 s1{};
    s1.pgtbl_addr = kTables;
    s1.addr_width = 48;
    iommu_hwpt_alloc hw{};
    hw.size = sizeof(hw);
    hw.flags = IOMMU_HWPT_FAULT_ID_VALID;
    hw.dev_id = d.dev_id;
    hw.pt_id = parent.out_hwpt_id;
    hw.data_type = IOMMU_HWPT_DATA_VTD_S1;
    hw.data_len = sizeof(s1);
    hw.data_uptr = uintptr_t(&s1);
    hw.fault_id = fa.out_fault_id;
    Ioctl(d.iommufd, IOMMU_HWPT_ALLOC, &hw, "IOMMU_HWPT_ALLOC nested (VTD_S1)");
    d.nested = hw.out_hwpt_id;
    Attach(d, d.nested);
  }
  d.bar0 = d.RegionOffset(0);
  d.config = d.RegionOffset(7);
  uint16_t cmd;
  if (pread(d.vfio, &cmd, 2, off_t(d.config + 4)) != 2) Die("pread PCI_COMMAND");
  cmd |= 4;  // bus master: vfio-pci turns it off on open
  if (pwrite(d.vfio, &cmd, 2, off_t(d.config + 4)) != 2) Die("pwrite PCI_COMMAND");
  return d;
}

void PrintArray(const char* name, const std::vector<uint64_t>& v, bool last = false) {
  printf("\"%s\":[", name);
  for (size_t i = 0; i < v.size(); i++) printf("%s%llu", i ? "," : "", (unsigned long long)v[i]);
  printf("]%s", last ? "" : ",");
}

void PrintRtt(const std::vector<uint64_t>* v) {
  static const char* names[] = {"total", "delivered", "handler", "iommu", "completion", "baseline"};
  printf("{");
  for (int k = 0; k < 6; k++) PrintArray(names[k], v[k], k == 5);
  printf("}\n");
}

void Push(std::vector<uint64_t>* v, std::initializer_list<uint64_t> xs) {
  int k = 0;
  for (uint64_t x : xs) v[k++].push_back(x);
}

int Rtt(const char* address, size_t iters, size_t warmup, bool nested) {
  Device d = Open(address, nested);
  const uint64_t base = 0x1'0000'0000ull;  // a fresh page per iteration, never mapped before
  std::vector<uint64_t> v[6];  // total, delivered, handler, iommu, completion, baseline
  iommu_hwpt_pgfault rec[16];
  for (size_t i = 0; i < warmup + iters; i++) {
    uint64_t iova = base + i * kPage;
    d.Prepare(iova);
    uint64_t t0 = Now();
    d.Go();
    size_t n = d.ReadFaults(rec, 16);
    uint64_t t1 = Now();
    if (n != 1 || rec[0].addr != iova) { errno = EPROTO; Die("unexpected fault record"); }
    uint64_t ta, tb;
    if (!nested) {
      ta = Now();
      d.Map(rec[0].addr);
      tb = Now();
    } else {
      *d.Leaf(rec[0].addr) = kY | P | US | A | RW | D;
      ta = Now();
      d.Invalidate(rec[0].addr);
      tb = Now();
    }
    iommu_hwpt_page_response resp{rec[0].cookie, IOMMUFD_PAGE_RESP_SUCCESS};
    if (write(d.fault, &resp, sizeof(resp)) != sizeof(resp)) Die("write response");
    uint64_t t2 = Now();
    d.WaitDone();
    uint64_t t3 = Now();
    // The same DMA again, the page now mapped: the device and QEMU without a fault.
    d.Go();
    d.WaitDone();
    uint64_t t4 = Now();
    if (i >= warmup) Push(v, {t3 - t0, t1 - t0, t2 - t1, tb - ta, t3 - t2, t4 - t3});
  }
  PrintRtt(v);
  return 0;
}

// rtt with the handler on a thread of its own; it stamps each fault's delivery, map and answer.
// This thread pauses kNapNs between status reads, as the Node worker rows do.
constexpr uint64_t kNapNs = 50'000;
int RttThread(const char* address, size_t iters, size_t warmup) {
  Device d = Open(address, false);
  const uint64_t base = 0x1'0000'0000ull;
  const size_t total = warmup + iters;
  std::vector<uint64_t> t1(total), t2(total), op(total);
  std::atomic<size_t> handled{0};
  std::thread handler([&] {
    iommu_hwpt_pgfault rec[16];
    for (size_t k = 0; k < total; k++) {
      size_t n = d.ReadFaults(rec, 16);
      t1[k] = Now();
      if (n != 1 || rec[0].addr != base + k * kPage) { errno = EPROTO; Die("unexpected fault record"); }
      uint64_t ta = Now();
      d.Map(rec[0].addr);
      op[k] = Now() - ta;
      iommu_hwpt_page_response resp{rec[0].cookie, IOMMUFD_PAGE_RESP_SUCCESS};
      if (write(d.fault, &resp, sizeof(resp)) != sizeof(resp)) Die("write response");
      t2[k] = Now();
      handled.store(k + 1, std::memory_order_release);
    }
  });
  std::vector<uint64_t> v[6];
  for (size_t i = 0; i < total; i++) {
    d.Prepare(base + i * kPage);
    uint64_t t0 = Now();
    d.Go();
    d.WaitDone(0, kNapNs);
    uint64_t t3 = Now();
    // The handler stamps its times right after its write: it may not have yet.
    for (const uint64_t until = Now() + 5'000'000'000ull; handled.load(std::memory_order_acquire) != i + 1;)
      if (Now() > until) { errno = ETIMEDOUT; Die("the job done but the handler not finished within 5 s"); }
    d.Go();
    d.WaitDone();
    uint64_t t4 = Now();
    if (i >= warmup) Push(v, {t3 - t0, t1[i] - t0, t2[i] - t1[i], op[i], t3 - t2[i], t4 - t3});
  }
  handler.join();
  PrintRtt(v);
  return 0;
}

// Throughput: PRI_ALLOC slots (at most 8) read 64 fresh pages each per wave, one request a page.
constexpr uint64_t kPriAlloc = 0x028;
constexpr uint64_t kJobPages = 64, kTputBase = 0x4'0000'0000ull;

int Tput(const char* address, size_t waves, size_t warmup) {
  Device d = Open(address, false);
  const int kSlots = int(std::min<uint32_t>(8, d.Read32(kPriAlloc)));
  if (kSlots < 1) { errno = EPROTO; Die("no PRI allocation"); }
  std::vector<uint64_t> ns, maps;
  std::vector<iommu_hwpt_pgfault> rec(256);
  std::vector<iommu_hwpt_page_response> resp(256);
  for (size_t w = 0; w < warmup + waves; w++) {
    const uint64_t base = kTputBase + w * kSlots * kJobPages * kPage;
    for (int s = 0; s < kSlots; s++) d.Prepare(base + s * kJobPages * kPage, s, uint32_t(kJobPages * kPage));
    uint64_t t0 = Now(), mapNs = 0;
    for (int s = 0; s < kSlots; s++) d.Go(s);
    for (uint64_t answered = 0; answered < kSlots * kJobPages;) {
      size_t n = d.ReadFaults(rec.data(), rec.size()), k = 0;
      for (size_t r = 0; r < n; r++) {
        uint64_t ta = Now();
        d.Map(rec[r].addr);
        mapNs += Now() - ta;
        if (rec[r].flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) resp[k++] = {rec[r].cookie, IOMMUFD_PAGE_RESP_SUCCESS};
      }
      if (write(d.fault, resp.data(), k * sizeof(resp[0])) != ssize_t(k * sizeof(resp[0]))) Die("write responses");
      answered += n;
    }
    for (int s = 0; s < kSlots; s++) d.WaitDone(s);
    if (w >= warmup) {
      ns.push_back(Now() - t0);
      maps.push_back(mapNs);
    }
  }
  printf("{\"pages\":%llu,\"slots\":%d,", (unsigned long long)(kSlots * kJobPages), kSlots);
  PrintArray("ns", ns);
  PrintArray("mapNs", maps, true);
  printf("}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && (!strcmp(argv[1], "rtt") || !strcmp(argv[1], "rtt-nested")))
    return Rtt(argv[2], strtoul(argv[3], nullptr, 0), strtoul(argv[4], nullptr, 0), !strcmp(argv[1], "rtt-nested"));
  if (argc == 5 && !strcmp(argv[1], "rtt-thread")) return RttThread(argv[2], strtoul(argv[3], nullptr, 0), strtoul(argv[4], nullptr, 0));
  if (argc == 5 && !strcmp(argv[1], "tput")) return Tput(argv[2], strtoul(argv[3], nullptr, 0), strtoul(argv[4], nullptr, 0));
  fprintf(stderr, "usage: pri_bench rtt|rtt-nested|rtt-thread PCI_ADDRESS ITERS WARMUP | tput PCI_ADDRESS WAVES WARMUP_WAVES\n");
  return 2;
}
