// The C reference client of the real-path benchmark (npm run bench:pri): the rig's PRI test device
// (iommufd-pri-testdev, --qemu iopf) bound to vfio-pci, attached by RID to a fault-capable HWPT,
// driven the way a C VMM's demand-paging handler would do it, with nothing but native/uapi.h.
//
//   pri_bench rtt PCI_ADDRESS ITERS WARMUP
//
// Per iteration, on a fresh unmapped IOVA page: write a 64-byte DMA read into the slot's registers
// (pwrite through the VFIO region), then, timed, start it (one pwrite), poll(2)+read(2) the fault fd, IOMMU_IOAS_MAP one page at
// the faulting address, write(2) the SUCCESS response, then pread(2) the slot's status until the
// device says done. Also a baseline: the same DMA on an already mapped page (no fault). Prints
// one JSON object: per-iteration nanoseconds (CLOCK_MONOTONIC, Node's hrtime clock).
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

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
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

struct Device {
  int iommufd = -1, vfio = -1, fault = -1;
  __u32 dev_id = 0, ioas = 0;
  uint64_t bar0 = 0, config = 0;
  void* page = nullptr;

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
  void Map(uint64_t iova) {
    iommu_ioas_map map{};
    map.size = sizeof(map);
    map.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
    map.ioas_id = ioas;
    map.user_va = uintptr_t(page);
    map.length = kPage;
    map.iova = iova;
    Ioctl(iommufd, IOMMU_IOAS_MAP, &map, "IOMMU_IOAS_MAP");
  }
  void Prepare(uint64_t iova) {
    Write32(kIova, uint32_t(iova));
    Write32(kIova + 4, uint32_t(iova >> 32));
    Write32(kBufOffset, 0);
    Write32(kLen, 64);
    Write32(kFlags, 0);
    Write32(kPasid, 0);
  }
  void Go() { Write32(kGo, 1); }
  void WaitDone() {
    for (;;) {
      uint32_t s = Read32(kStatus);
      if (s == kDone) return;
      if (s == kError) { errno = EIO; Die("the device failed the job"); }
    }
  }
};

Device Open(const char* address) {
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
  iommu_hwpt_alloc hw{};
  hw.size = sizeof(hw);
  hw.flags = IOMMU_HWPT_FAULT_ID_VALID;
  hw.dev_id = d.dev_id;
  hw.pt_id = d.ioas;
  hw.fault_id = fa.out_fault_id;
  Ioctl(d.iommufd, IOMMU_HWPT_ALLOC, &hw, "IOMMU_HWPT_ALLOC");
  vfio_device_attach_iommufd_pt at{};
  at.argsz = sizeof(at);
  at.pt_id = hw.out_hwpt_id;
  Ioctl(d.vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at, "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
  d.bar0 = d.RegionOffset(0);
  d.config = d.RegionOffset(7);
  uint16_t cmd;
  if (pread(d.vfio, &cmd, 2, off_t(d.config + 4)) != 2) Die("pread PCI_COMMAND");
  cmd |= 4;  // bus master: vfio-pci turns it off on open
  if (pwrite(d.vfio, &cmd, 2, off_t(d.config + 4)) != 2) Die("pwrite PCI_COMMAND");
  d.page = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (d.page == MAP_FAILED) Die("mmap");
  memset(d.page, 0x5a, kPage);
  return d;
}

void PrintArray(const char* name, const std::vector<uint64_t>& v, bool last = false) {
  printf("\"%s\":[", name);
  for (size_t i = 0; i < v.size(); i++) printf("%s%llu", i ? "," : "", (unsigned long long)v[i]);
  printf("]%s", last ? "" : ",");
}

int Rtt(const char* address, size_t iters, size_t warmup) {
  Device d = Open(address);
  const uint64_t base = 0x1'0000'0000ull;  // a fresh page per iteration, never mapped before
  std::vector<uint64_t> total, delivered, handler, completion, baseline;
  iommu_hwpt_pgfault rec[16];
  for (size_t i = 0; i < warmup + iters; i++) {
    uint64_t iova = base + i * kPage;
    d.Prepare(iova);
    uint64_t t0 = Now();
    d.Go();
    pollfd p{d.fault, POLLIN, 0};
    ssize_t n;
    for (;;) {
      if (poll(&p, 1, 10000) <= 0) { errno = ETIMEDOUT; Die("no fault within 10 s"); }
      n = read(d.fault, rec, sizeof(rec));
      if (n > 0) break;
      if (n < 0 && errno != EAGAIN) Die("read fault fd");
    }
    uint64_t t1 = Now();
    if (size_t(n) != sizeof(rec[0]) || rec[0].addr != iova) { errno = EPROTO; Die("unexpected fault record"); }
    d.Map(rec[0].addr);
    iommu_hwpt_page_response resp{rec[0].cookie, IOMMUFD_PAGE_RESP_SUCCESS};
    if (write(d.fault, &resp, sizeof(resp)) != sizeof(resp)) Die("write response");
    uint64_t t2 = Now();
    d.WaitDone();
    uint64_t t3 = Now();
    // The same DMA again, the page now mapped: the device and QEMU without a fault.
    d.Go();
    d.WaitDone();
    uint64_t t4 = Now();
    if (i < warmup) continue;
    total.push_back(t3 - t0);
    delivered.push_back(t1 - t0);
    handler.push_back(t2 - t1);
    completion.push_back(t3 - t2);
    baseline.push_back(t4 - t3);
  }
  printf("{");
  PrintArray("total", total);
  PrintArray("delivered", delivered);
  PrintArray("handler", handler);
  PrintArray("completion", completion);
  PrintArray("baseline", baseline, true);
  printf("}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && !strcmp(argv[1], "rtt")) return Rtt(argv[2], strtoul(argv[3], nullptr, 0), strtoul(argv[4], nullptr, 0));
  fprintf(stderr, "usage: pri_bench rtt PCI_ADDRESS ITERS WARMUP\n");
  return 2;
}
