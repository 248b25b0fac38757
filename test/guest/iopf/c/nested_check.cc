// nested_check: the x-nesting intel-iommu (scripts/qemu/patches/0002-intel-iommu-nesting.patch)
// driven from a guest with nothing but native/uapi.h, before the library has a nested API: the
// PRI test device (iommufd-pri-testdev) bound to vfio-pci and attached to a nested HWPT whose
// stage-1 tables (x86 4-level) this program builds in its own memory, mapped into the IOAS that
// the nest parent (the second stage) translates. What it checks, in order (docs/qemu-nesting-facts.md):
//   1 two-stage walk: IOVA X -> (stage 1) Y != X -> (IOAS) a buffer; bytes land there, both ways
//   2 IOVA absent from stage 1: a fault on the nested HWPT's queue (address, PASID, READ); install
//     the entry, IOMMU_HWPT_INVALIDATE (VTD_S1), SUCCESS: the job completes
//   3 read-only stage-1 entry, a write DMA: a WRITE fault; upgrade, invalidate, SUCCESS
//   4 a changed stage-1 entry is used only after IOMMU_HWPT_INVALIDATE (the IOTLB caches it)
//   5 a second-stage change (IOAS unmap + map) drops the nested translations that used it
//   6 stage 1 pointing at an address the IOAS does not map (the output, then a table): the
//     device's job fails at once (ERROR 8, no page request), no fault on the queue, nothing hangs
//   7 INVALID ends the job
//   8 (7.2 only: 6.12 nested domains take no flags) the nested HWPT attached at PASID 1 too: a
//     fault carries PASID 1, and bytes move through the same stage-1 tables
//  10 a 16-page job with the GROUP flag (the FLAGS register's bit 1): page request
//     groups of several pages, each answered after its entries are installed and invalidated
//     with one IOMMU_HWPT_INVALIDATE; every page faults once, the bytes arrive
//   9 untranslated DMA (no ATS): QEMU's edu device on a nested HWPT of its own over the same
//     parent and stage-1 tables; bytes go both ways through the two stages; a stage-1 miss is a
//     recorded fault (the guest log's DMAR line), the bytes do not move
// On 6.12 the nested attach leaves ATS disabled (docs/qemu-nesting-facts.md, "The 6.12 stop"):
// the device can neither translate nor send page requests, so 1-8 and 10 are replaced by one
// check that its job ends with ERROR 7 (OFF); 9 runs on both kernels.
// Exit status 0 if every check passed.
//
// Build: g++ -O2 -std=c++17 -I native test/guest/iopf/c/nested_check.cc -o bench/build/nested_check
// Run:   node scripts/rig.mjs --qemu nested --kernel newest -- bench/build/nested_check
//        (and --kernel 6.12; the guest sees the host's files, but not its /tmp)
#include "uapi.h"  // first: it refuses to follow <linux/iommufd.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>

using namespace iommufd::uapi;

namespace {

[[noreturn]] void Die(const char* what) {
  fprintf(stderr, "nested_check: %s: %s\n", what, strerror(errno));
  exit(2);
}

int failures = 0;
void Check(bool ok, const char* what) {
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  fflush(stdout);
  if (!ok) failures++;
}

template <typename T>
int Ioctl(int fd, unsigned long req, T* arg) {
  int rc;
  do rc = ioctl(fd, req, arg);
  while (rc < 0 && errno == EINTR);
  return rc < 0 ? -errno : 0;
}
template <typename T>
void MustIoctl(int fd, unsigned long req, T* arg, const char* what) {
  if (int rc = Ioctl(fd, req, arg)) { errno = -rc; Die(what); }
}

void WriteFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY);
  if (fd < 0) return;
  if (write(fd, text.data(), text.size()) < 0) {}
  close(fd);
}
std::string ReadFile(const std::string& path) {
  char buf[256] = {};
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return "";
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? std::string(buf, size_t(n)) : "";
}

// The PRI test device (docs/pri-testdev.md): 1234:11e9; slot registers at 0x100 + 0x40 * n.
constexpr uint64_t kPage = 4096;
constexpr uint32_t kDone = 3, kError = 4, kErrInvalid = 1, kErrXlate = 8;

std::string FindDevice() {
  DIR* d = opendir("/sys/bus/pci/devices");
  if (!d) Die("opendir /sys/bus/pci/devices");
  std::string found;
  while (dirent* e = readdir(d)) {
    std::string base = std::string("/sys/bus/pci/devices/") + e->d_name;
    if (ReadFile(base + "/vendor").rfind("0x1234", 0) == 0 && ReadFile(base + "/device").rfind("0x11e9", 0) == 0)
      found = e->d_name;
  }
  closedir(d);
  if (found.empty()) { errno = ENODEV; Die("no PRI test device (1234:11e9): boot with --qemu iopf"); }
  return found;
}

// As bindVfioPci: driver_override first, then unbind, then probe.
std::string BindVfio(const std::string& address) {
  std::string base = "/sys/bus/pci/devices/" + address;
  WriteFile(base + "/driver_override", "vfio-pci");
  char link[256] = {};
  if (readlink((base + "/driver").c_str(), link, sizeof(link) - 1) > 0 && !strstr(link, "/vfio-pci"))
    WriteFile(base + "/driver/unbind", address);
  WriteFile("/sys/bus/pci/drivers_probe", address);
  DIR* dd = opendir((base + "/vfio-dev").c_str());
  if (!dd) Die("no vfio-dev in sysfs (is vfio-pci there?)");
  std::string cdev;
  while (dirent* e = readdir(dd)) if (!strncmp(e->d_name, "vfio", 4)) cdev = std::string("/dev/vfio/devices/") + e->d_name;
  closedir(dd);
  return cdev;
}

struct Rig {
  int iommufd = -1, vfio = -1, fault = -1;
  __u32 dev_id = 0, ioas = 0, parent = 0, nested = 0, fault_id = 0;
  uint64_t bar0 = 0, bar2 = 0, config = 0;
  bool k72 = false;  // 7.x: PASID attach, IOMMU_HWPT_ALLOC_PASID

  void W32(uint64_t reg, uint32_t v) { if (pwrite(vfio, &v, 4, off_t(bar0 + reg)) != 4) Die("pwrite BAR0"); }
  uint32_t R32(uint64_t reg) {
    uint32_t v;
    if (pread(vfio, &v, 4, off_t(bar0 + reg)) != 4) Die("pread BAR0");
    return v;
  }
  void MemWrite(uint64_t off, const void* p, size_t n) { if (pwrite(vfio, p, n, off_t(bar2 + off)) != ssize_t(n)) Die("pwrite BAR2"); }
  void MemRead(uint64_t off, void* p, size_t n) { if (pread(vfio, p, n, off_t(bar2 + off)) != ssize_t(n)) Die("pread BAR2"); }
  uint64_t Region(__u32 index) {
    vfio_region_info info{};
    info.argsz = sizeof(info);
    info.index = index;
    MustIoctl(vfio, VFIO_DEVICE_GET_REGION_INFO, &info, "VFIO_DEVICE_GET_REGION_INFO");
    return info.offset;
  }
  // A job on slot n: device memory [off, off+len) <-> IOVA.
  void Start(int n, uint64_t iova, uint32_t off, uint32_t len, bool write, uint32_t pasid = 0) {
    uint64_t s = 0x100 + 0x40 * uint64_t(n);
    W32(s + 0x00, uint32_t(iova));
    W32(s + 0x04, uint32_t(iova >> 32));
    W32(s + 0x08, off);
    W32(s + 0x0c, len);
    W32(s + 0x10, write ? 1 : 0);
    W32(s + 0x14, pasid);
    W32(s + 0x18, 1);
  }
  // Waits for slot n to finish (bounded); returns STATUS, with ERROR in *err.
  uint32_t Wait(int n, uint32_t* err, int ms = 15000) {
    uint64_t s = 0x100 + 0x40 * uint64_t(n);
    for (int i = 0; i < ms; i++) {
      uint32_t st = R32(s + 0x1c);
      if (st == kDone || st == kError) { *err = R32(s + 0x20); return st; }
      usleep(1000);
    }
    *err = 0xffffffff;
    return R32(s + 0x1c);
  }
  uint32_t PrSent(int n) { return R32(0x100 + 0x40 * uint64_t(n) + 0x24); }
  // One fault group from the queue within ms; returns the record count (0: none).
  int ReadFaults(iommu_hwpt_pgfault* rec, int max, int ms) {
    pollfd p{fault, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return 0;
    ssize_t n = read(fault, rec, sizeof(*rec) * size_t(max));
    if (n < 0) { if (errno == EAGAIN) return 0; Die("read fault fd"); }
    return int(size_t(n) / sizeof(*rec));
  }
  void Respond(__u32 cookie, __u32 code) {
    iommu_hwpt_page_response r{cookie, code};
    if (write(fault, &r, sizeof(r)) != sizeof(r)) Die("write page response");
  }
  int Map(uint64_t iova, void* va, uint64_t len) {
    iommu_ioas_map m{};
    m.size = sizeof(m);
    m.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
    m.ioas_id = ioas;
    m.user_va = uintptr_t(va);
    m.length = len;
    m.iova = iova;
    return Ioctl(iommufd, IOMMU_IOAS_MAP, &m);
  }
  int Unmap(uint64_t iova, uint64_t len) {
    iommu_ioas_unmap u{};
    u.size = sizeof(u);
    u.ioas_id = ioas;
    u.iova = iova;
    u.length = len;
    return Ioctl(iommufd, IOMMU_IOAS_UNMAP, &u);
  }
  // IOMMU_HWPT_INVALIDATE with one VTD_S1 entry; returns the ioctl's result, entries done in *done.
  int Invalidate(uint64_t addr, uint64_t npages, __u32* done = nullptr) {
    iommu_hwpt_vtd_s1_invalidate e{};
    e.addr = addr;
    e.npages = npages;
    iommu_hwpt_invalidate inv{};
    inv.size = sizeof(inv);
    inv.hwpt_id = nested;
    inv.data_uptr = uintptr_t(&e);
    inv.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1;
    inv.entry_len = sizeof(e);
    inv.entry_num = 1;
    int rc = Ioctl(iommufd, IOMMU_HWPT_INVALIDATE, &inv);
    if (done) *done = inv.entry_num;
    return rc;
  }
};

// Stage-1 tables (x86 4-level, the guest's side): 16 pages of this process's memory, mapped into
// the IOAS at kTables; the PASID entry's FSPTPTR is kTables (an IOAS address, i.e. translated by
// the second stage). Page 0 PML4, 1 PDPT, 2 PD, 3.. PTs.
constexpr uint64_t kTables = 0x4000'0000;  // IOAS address of the tables
constexpr uint64_t kX = 0x1000'0000;       // the device's addresses (stage-1 input)
constexpr uint64_t kY = 0x8000'0000;       // intermediate (stage-1 output, IOAS input), != kX
constexpr uint64_t kZ = 0xc000'0000;       // an IOAS address nothing maps
constexpr uint64_t P = 1, RW = 2, US = 4;
uint64_t* tables;

constexpr uint64_t kE = 0x0800'0000;       // edu's addresses (it masks DMA addresses to 28 bits)
uint64_t* Pte(uint64_t iova) {
  // PML4[0] -> PDPT[0] -> PD[128] (kX) -> PT page 3, PD[64] (kE) -> PT page 5
  uint64_t pd = (iova >> 21) & 511;
  return &tables[(pd == 64 ? 5 : 3) * 512 + ((iova >> 12) & 511)];
}
void BuildTables() {
  memset(tables, 0, 16 * kPage);
  tables[0] = (kTables + 1 * kPage) | P | RW | US;            // PML4[0] -> PDPT
  tables[512 + 0] = (kTables + 2 * kPage) | P | RW | US;      // PDPT[0] -> PD
  tables[1024 + 128] = (kTables + 3 * kPage) | P | RW | US;   // PD[128] (kX) -> PT 3
  tables[1024 + 129] = (kZ + 0x10'0000) | P | RW | US;        // PD[129] -> a table the IOAS lacks
  tables[1024 + 64] = (kTables + 5 * kPage) | P | RW | US;    // PD[64] (kE) -> PT 5
  __sync_synchronize();
}

bool Same(const uint8_t* a, const uint8_t* b, size_t n) { return !memcmp(a, b, n); }
void Fill(uint8_t* p, size_t n, int seed) { for (size_t i = 0; i < n; i++) p[i] = uint8_t(i * 131 + seed * 17 + (i >> 12)); }

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  utsname u;
  uname(&u);
  Rig r;
  r.k72 = u.release[0] >= '7';
  printf("kernel %s\n", u.release);

  std::string address = FindDevice();
  std::string cdev = BindVfio(address);
  if ((r.iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC)) < 0) Die("open /dev/iommu");
  if ((r.vfio = open(cdev.c_str(), O_RDWR | O_CLOEXEC)) < 0) Die("open the VFIO cdev");
  vfio_device_bind_iommufd bind{};
  bind.argsz = sizeof(bind);
  bind.iommufd = r.iommufd;
  MustIoctl(r.vfio, VFIO_DEVICE_BIND_IOMMUFD, &bind, "VFIO_DEVICE_BIND_IOMMUFD");
  r.dev_id = bind.out_devid;

  // ECAP.NEST through IOMMU_GET_HW_INFO: what the guest kernel saw.
  iommu_hw_info_vtd vtd{};
  iommu_hw_info hi{};
  hi.size = sizeof(hi);
  hi.dev_id = r.dev_id;
  hi.data_len = sizeof(vtd);
  hi.data_uptr = uintptr_t(&vtd);
  MustIoctl(r.iommufd, IOMMU_GET_HW_INFO, &hi, "IOMMU_GET_HW_INFO");
  printf("cap 0x%llx ecap 0x%llx flags 0x%x\n", (unsigned long long)vtd.cap_reg, (unsigned long long)vtd.ecap_reg, vtd.flags);
  Check((vtd.ecap_reg >> 26) & 1, "ECAP.NEST (bit 26) is set");
  Check(((vtd.ecap_reg >> 46) & 3) == 3, "ECAP.SLTS and ECAP.FLTS are both set");

  iommu_ioas_alloc ia{};
  ia.size = sizeof(ia);
  MustIoctl(r.iommufd, IOMMU_IOAS_ALLOC, &ia, "IOMMU_IOAS_ALLOC");
  r.ioas = ia.out_ioas_id;

  // Memory: the tables, buffer B (what kY maps to, 16 pages), buffer C (a replacement page).
  tables = static_cast<uint64_t*>(mmap(nullptr, 16 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  auto* B = static_cast<uint8_t*>(mmap(nullptr, 16 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  auto* C = static_cast<uint8_t*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (tables == MAP_FAILED || B == MAP_FAILED || C == MAP_FAILED) Die("mmap");
  BuildTables();
  memset(B, 0, 16 * kPage);
  memset(C, 0, kPage);
  if (r.Map(kTables, tables, 16 * kPage)) Die("IOMMU_IOAS_MAP tables");
  // Page by page: iommufd unmaps whole mappings only (check 5 replaces one page).
  for (uint64_t i = 0; i < 16; i++) if (r.Map(kY + i * kPage, B + i * kPage, kPage)) Die("IOMMU_IOAS_MAP buffer");

  // The nest parent (second stage) over the IOAS, then the nested HWPT with a fault queue.
  iommu_hwpt_alloc ph{};
  ph.size = sizeof(ph);
  ph.flags = IOMMU_HWPT_ALLOC_NEST_PARENT;
  ph.dev_id = r.dev_id;
  ph.pt_id = r.ioas;
  int rc = Ioctl(r.iommufd, IOMMU_HWPT_ALLOC, &ph);
  Check(rc == 0, "IOMMU_HWPT_ALLOC NEST_PARENT on the IOAS");
  if (rc) { errno = -rc; Die("nest parent"); }
  r.parent = ph.out_hwpt_id;

  iommu_fault_alloc fa{};
  fa.size = sizeof(fa);
  MustIoctl(r.iommufd, IOMMU_FAULT_QUEUE_ALLOC, &fa, "IOMMU_FAULT_QUEUE_ALLOC");
  r.fault = int(fa.out_fault_fd);
  r.fault_id = fa.out_fault_id;
  fcntl(r.fault, F_SETFL, fcntl(r.fault, F_GETFL) | O_NONBLOCK);

  iommu_hwpt_vtd_s1 s1{};
  s1.pgtbl_addr = kTables;
  s1.addr_width = 48;
  iommu_hwpt_alloc nh{};
  nh.size = sizeof(nh);
  nh.flags = IOMMU_HWPT_FAULT_ID_VALID | (r.k72 ? __u32(IOMMU_HWPT_ALLOC_PASID) : 0u);
  nh.dev_id = r.dev_id;
  nh.pt_id = r.parent;
  nh.data_type = IOMMU_HWPT_DATA_VTD_S1;
  nh.data_len = sizeof(s1);
  nh.data_uptr = uintptr_t(&s1);
  nh.fault_id = r.fault_id;
  rc = Ioctl(r.iommufd, IOMMU_HWPT_ALLOC, &nh);
  Check(rc == 0, "IOMMU_HWPT_ALLOC nested (VTD_S1, 4-level) with a fault queue");
  if (rc) { errno = -rc; Die("nested HWPT"); }
  r.nested = nh.out_hwpt_id;

  // Refusals the kernel derives from the capabilities: 5-level needs CAP.FL5LP, EAFE needs ECAP.EAFS.
  struct Bad { __u32 width; __u64 flags; const char* what; };
  for (const Bad& bad_case : {Bad{57, 0, "addr_width 57 (no FL5LP)"}, Bad{48, IOMMU_VTD_S1_EAFE, "IOMMU_VTD_S1_EAFE (no EAFS)"}}) {
    auto [width, flags, what] = bad_case;
    iommu_hwpt_vtd_s1 bad = s1;
    bad.addr_width = width;
    bad.flags = flags;
    iommu_hwpt_alloc b = nh;
    b.data_uptr = uintptr_t(&bad);
    b.flags = r.k72 ? __u32(IOMMU_HWPT_ALLOC_PASID) : 0u;
    int brc = Ioctl(r.iommufd, IOMMU_HWPT_ALLOC, &b);
    // Checked at attach (intel_pasid_setup_nested), not at allocation.
    if (brc == 0) {
      vfio_device_attach_iommufd_pt at{};
      at.argsz = sizeof(at);
      at.pt_id = b.out_hwpt_id;
      brc = Ioctl(r.vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at);
      iommu_destroy d{sizeof(d), b.out_hwpt_id};
      if (brc) Ioctl(r.iommufd, IOMMU_DESTROY, &d);
      else printf("     (attached?)\n");
    }
    char line[128];
    snprintf(line, sizeof(line), "%s refused (%s)", what, strerror(-brc));
    Check(brc == -EINVAL, line);
  }

  vfio_device_attach_iommufd_pt at{};
  at.argsz = sizeof(at);
  if (!r.k72) {
    // 6.12 enables IOPF (intel_iommu_enable_iopf) before the attach, and it needs ATS enabled,
    // which a blocked device has not: attach the parent first, then replace it.
    at.pt_id = r.parent;
    rc = Ioctl(r.vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at);
    Check(rc == 0, "(6.12) the device attached to the parent first");
  }
  at.pt_id = r.nested;
  rc = Ioctl(r.vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at);
  Check(rc == 0, "the device attached (by RID) to the nested HWPT");
  if (rc) { errno = -rc; Die("attach"); }
  r.bar0 = r.Region(0);
  r.bar2 = r.Region(2);
  r.config = r.Region(7);
  uint16_t cmd;
  if (pread(r.vfio, &cmd, 2, off_t(r.config + 4)) != 2) Die("pread PCI_COMMAND");
  cmd |= 4;  // bus master
  if (pwrite(r.vfio, &cmd, 2, off_t(r.config + 4)) != 2) Die("pwrite PCI_COMMAND");
  r.W32(0x0c, 3000);  // TIMEOUT_MS: a lost response fails in 3 s

  uint8_t pat[kPage], got[kPage];
  uint32_t err;
  iommu_hwpt_pgfault rec[16];

  // The ATS capability (0x100; control at +6, bit 15 enable) as the kernel left it.
  uint16_t ats = 0;
  if (pread(r.vfio, &ats, 2, off_t(r.config + 0x106)) != 2) Die("pread ATS control");
  printf("     ATS control 0x%04x (enable %d)\n", ats, ats >> 15);
  bool stop612 = false;
  if (!r.k72 && !(ats & 0x8000)) {
    // 6.12: intel_nested_attach_dev() blocks translation first (device_block_translation ->
    // iommu_disable_pci_caps -> pci_disable_ats) and nothing enables ATS again for a nested
    // domain (only dmar_domain_attach_device and the identity attach do): the device cannot send
    // a translation request, nor a page request. Sections 1-8 need ATS: a kernel stop.
    *Pte(kX) = kY | P | RW | US;
    r.Start(0, kX, 0, 64, false);
    uint32_t st0 = r.Wait(0, &err);
    printf("STOP 6.12 leaves ATS disabled under a nested domain: a job ends with status %u error %u (7: ATS off)\n", st0, err);
    Check(st0 == kError && err == 7, "(6.12) the PRI device's job ends with OFF (7): no ATS, so no page request either");
    stop612 = true;
  }
  if (!stop612) {

  // 1. Two stages: X -> Y (stage 1) -> B (IOAS). Device memory -> IOVA, then IOVA -> device memory.
  *Pte(kX) = (kY + 0 * kPage) | P | RW | US;
  *Pte(kX + kPage) = (kY + 1 * kPage) | P | RW | US;
  __sync_synchronize();
  Fill(pat, kPage, 1);
  r.MemWrite(0, pat, kPage);
  r.Start(0, kX, 0, kPage, true);
  uint32_t st = r.Wait(0, &err);
  Check(st == kDone && Same(B, pat, kPage), "1 write DMA to X lands in the buffer Y maps to (two-stage walk)");
  Check(r.PrSent(0) == 0, "1 no page request for a mapped page");
  Fill(B + kPage, kPage, 2);
  r.Start(1, kX + kPage, kPage, kPage, false);
  st = r.Wait(1, &err);
  r.MemRead(kPage, got, kPage);
  Check(st == kDone && Same(got, B + kPage, kPage), "1 read DMA from X+4K brings the buffer's bytes");
  Check((*Pte(kX) & (1 << 5)) && (*Pte(kX) & (1 << 6)), "1 the walk set A and D in the written page's stage-1 entry");

  // 2. Absent from stage 1: a fault, install, invalidate, SUCCESS.
  uint64_t x2 = kX + 2 * kPage;
  Fill(B + 2 * kPage, kPage, 3);
  r.Start(2, x2, 2 * kPage, kPage, false);
  int nrec = r.ReadFaults(rec, 16, 5000);
  Check(nrec == 1, "2 one fault record on the nested HWPT's queue");
  if (nrec >= 1) {
    printf("     fault: addr 0x%llx pasid %u flags 0x%x perm 0x%x dev %u\n", (unsigned long long)rec[0].addr, rec[0].pasid,
           rec[0].flags, rec[0].perm, rec[0].dev_id);
    Check(rec[0].addr == x2 && rec[0].dev_id == r.dev_id, "2 the fault's address is the stage-1 input address, its device ours");
    Check((rec[0].flags & IOMMU_PGFAULT_FLAGS_PASID_VALID) && rec[0].pasid == 0, "2 PASID valid and 0 (the RID's domain)");
    Check(rec[0].perm == IOMMU_PGFAULT_PERM_READ, "2 perm READ");
    *Pte(x2) = (kY + 2 * kPage) | P | RW | US;
    __sync_synchronize();
    __u32 done = 0;
    rc = r.Invalidate(x2, 1, &done);
    Check(rc == 0 && done == 1, "2 IOMMU_HWPT_INVALIDATE (VTD_S1, one entry) done");
    r.Respond(rec[nrec - 1].cookie, IOMMUFD_PAGE_RESP_SUCCESS);
  }
  st = r.Wait(2, &err);
  r.MemRead(2 * kPage, got, kPage);
  Check(st == kDone && Same(got, B + 2 * kPage, kPage), "2 after SUCCESS the job completes with the buffer's bytes");

  // 3. Read-only stage-1 entry, a read DMA (cached read-only), then a write DMA: a WRITE fault.
  uint64_t x3 = kX + 3 * kPage;
  *Pte(x3) = (kY + 3 * kPage) | P | US;
  __sync_synchronize();
  r.Start(3, x3, 3 * kPage, kPage, false);
  st = r.Wait(3, &err);
  Check(st == kDone && r.PrSent(3) == 0, "3 a read through a read-only stage-1 entry needs no page request");
  Fill(pat, kPage, 4);
  r.MemWrite(3 * kPage, pat, kPage);
  r.Start(3, x3, 3 * kPage, kPage, true);
  nrec = r.ReadFaults(rec, 16, 5000);
  Check(nrec == 1 && rec[0].addr == x3 && (rec[0].perm & IOMMU_PGFAULT_PERM_WRITE), "3 a write to it faults with WRITE permission");
  if (nrec >= 1) {
    printf("     fault: addr 0x%llx pasid %u flags 0x%x perm 0x%x\n", (unsigned long long)rec[0].addr, rec[0].pasid, rec[0].flags,
           rec[0].perm);
    *Pte(x3) |= RW;
    __sync_synchronize();
    rc = r.Invalidate(x3, 1);
    Check(rc == 0, "3 upgraded and invalidated");
    r.Respond(rec[nrec - 1].cookie, IOMMUFD_PAGE_RESP_SUCCESS);
  }
  st = r.Wait(3, &err);
  Check(st == kDone && Same(B + 3 * kPage, pat, kPage), "3 after SUCCESS the write lands");

  // 4. A changed stage-1 entry: cached until IOMMU_HWPT_INVALIDATE.
  uint64_t x4 = kX + 4 * kPage;
  *Pte(x4) = (kY + 4 * kPage) | P | RW | US;
  __sync_synchronize();
  Fill(pat, kPage, 5);
  r.MemWrite(4 * kPage, pat, kPage);
  r.Start(4, x4, 4 * kPage, 64, true);
  r.Wait(4, &err);
  *Pte(x4) = (kY + 5 * kPage) | P | RW | US;  // no invalidation yet
  __sync_synchronize();
  memset(B + 4 * kPage, 0, kPage);
  r.Start(4, x4, 4 * kPage, kPage, true);
  st = r.Wait(4, &err);
  bool stale = Same(B + 4 * kPage, pat, kPage) && !Same(B + 5 * kPage, pat, kPage);
  Check(st == kDone && stale, "4 without invalidation the old translation is still used (the IOTLB caches nested entries)");
  rc = r.Invalidate(x4, 1);
  memset(B + 4 * kPage, 0, kPage);
  r.Start(4, x4, 4 * kPage, kPage, true);
  st = r.Wait(4, &err);
  Check(rc == 0 && st == kDone && Same(B + 5 * kPage, pat, kPage) && !Same(B + 4 * kPage, pat, kPage),
        "4 after IOMMU_HWPT_INVALIDATE the new one is");

  // 5. A second-stage change drops the nested translations built on it.
  uint64_t x6 = kX + 6 * kPage;
  *Pte(x6) = (kY + 6 * kPage) | P | RW | US;
  __sync_synchronize();
  Fill(pat, kPage, 6);
  r.MemWrite(5 * kPage, pat, kPage);
  r.Start(5, x6, 5 * kPage, kPage, true);
  st = r.Wait(5, &err);
  Check(st == kDone && Same(B + 6 * kPage, pat, kPage), "5 a DMA through X+6 lands in B (cached)");
  rc = r.Unmap(kY + 6 * kPage, kPage);
  int rc2 = r.Map(kY + 6 * kPage, C, kPage);
  memset(B + 6 * kPage, 0, kPage);
  r.Start(5, x6, 5 * kPage, kPage, true);
  st = r.Wait(5, &err);
  printf("     unmap %d map %d status %u error %u\n", rc, rc2, st, err);
  Check(rc == 0 && rc2 == 0 && st == kDone && Same(C, pat, kPage) && !Same(B + 6 * kPage, pat, kPage),
        "5 after IOAS unmap + map of Y+6 the same IOVA lands in the new page");

  // 6. Stage 1 points where the IOAS maps nothing: non-recoverable, at once.
  uint64_t x7 = kX + 7 * kPage;
  *Pte(x7) = kZ | P | RW | US;
  __sync_synchronize();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  r.Start(6, x7, 6 * kPage, kPage, true);
  st = r.Wait(6, &err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("     status %u error %u after %.1f ms, page requests %u\n", st, err, ms, r.PrSent(6));
  Check(st == kError && err == kErrXlate && r.PrSent(6) == 0, "6 output outside the IOAS: the job fails (ERROR 8), no page request");
  Check(ms < 2000, "6 ... at once (not a timeout)");
  Check(r.ReadFaults(rec, 16, 300) == 0, "6 ... and nothing on the fault queue");
  uint64_t x8 = kX + 0x20'0000;  // PD[129]: its page table is at kZ + 1 MiB, not in the IOAS
  r.Start(6, x8, 6 * kPage, kPage, false);
  st = r.Wait(6, &err);
  Check(st == kError && err == kErrXlate && r.PrSent(6) == 0, "6 a stage-1 table outside the IOAS: the job fails (ERROR 8)");
  Check(r.ReadFaults(rec, 16, 300) == 0, "6 ... nothing on the fault queue");

  // 7. INVALID ends the job.
  uint64_t x9 = kX + 9 * kPage;
  r.Start(7, x9, 7 * kPage, kPage, false);
  nrec = r.ReadFaults(rec, 16, 5000);
  Check(nrec == 1 && rec[0].addr == x9, "7 a fault for X+9");
  if (nrec >= 1) r.Respond(rec[nrec - 1].cookie, IOMMUFD_PAGE_RESP_INVALID);
  st = r.Wait(7, &err);
  Check(st == kError && err == kErrInvalid, "7 INVALID ends the job (ERROR 1)");

  // 8. The same nested HWPT at PASID 1 (7.x).
  if (r.k72) {
    vfio_device_attach_iommufd_pt pa{};
    pa.argsz = sizeof(pa);
    pa.flags = VFIO_DEVICE_ATTACH_PASID;
    pa.pt_id = r.nested;
    pa.pasid = 1;
    rc = Ioctl(r.vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &pa);
    Check(rc == 0, "8 the nested HWPT attached at PASID 1");
    uint64_t xa = kX + 10 * kPage;
    Fill(B + 10 * kPage, kPage, 7);
    r.Start(0, xa, 0, kPage, false, 1);
    nrec = r.ReadFaults(rec, 16, 5000);
    Check(nrec == 1 && rec[0].addr == xa && rec[0].pasid == 1 && (rec[0].flags & IOMMU_PGFAULT_FLAGS_PASID_VALID),
          "8 a fault on PASID 1 carries PASID 1");
    if (nrec >= 1) {
      printf("     fault: addr 0x%llx pasid %u flags 0x%x perm 0x%x\n", (unsigned long long)rec[0].addr, rec[0].pasid,
             rec[0].flags, rec[0].perm);
      *Pte(xa) = (kY + 10 * kPage) | P | RW | US;
      __sync_synchronize();
      r.Invalidate(xa, 1);
      r.Respond(rec[nrec - 1].cookie, IOMMUFD_PAGE_RESP_SUCCESS);
    }
    st = r.Wait(0, &err);
    r.MemRead(0, got, kPage);
    Check(st == kDone && Same(got, B + 10 * kPage, kPage), "8 the PASID 1 job completes through the same stage-1 tables");
    vfio_device_detach_iommufd_pt dp{};
    dp.argsz = sizeof(dp);
    dp.flags = VFIO_DEVICE_DETACH_PASID;
    dp.pasid = 1;
    Check(Ioctl(r.vfio, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dp) == 0, "8 detached from PASID 1");
  } else {
    printf("skip 8 (PASID attach of a nested HWPT: not on %s)\n", u.release);
  }

  // 10. Groups: a 16-page read, missing pages requested in groups (FLAGS bit 1).
  {
    uint64_t xg = kX + 0x10'0000;  // PT 3, entries 256..271 -> kY pages 0..15 (read only)
    for (int i = 0; i < 16; i++) Fill(B + i * kPage, kPage, 20 + i);
    Fill(C, kPage, 40);  // what kY + 6 pages maps to since check 5
    uint64_t s = 0x100 + 0x40 * 1;
    r.W32(s + 0x00, uint32_t(xg));
    r.W32(s + 0x04, 0);
    r.W32(s + 0x08, 0);
    r.W32(s + 0x0c, 16 * kPage);
    r.W32(s + 0x10, 2);  // read, GROUP
    r.W32(s + 0x14, 0);
    r.W32(s + 0x18, 1);
    int groups = 0, pages = 0, twice = 0;
    bool seen[16] = {};
    for (;;) {
      int n = r.ReadFaults(rec, 16, 3000);
      if (n == 0) break;
      groups++;
      uint64_t lo = ~0ull, hi = 0;
      for (int i = 0; i < n; i++) {
        uint64_t k = (rec[i].addr - xg) / kPage;
        if (k < 16) { twice += seen[k]; seen[k] = true; }
        pages++;
        *Pte(rec[i].addr) = (kY + k * kPage) | P | US;
        lo = rec[i].addr < lo ? rec[i].addr : lo;
        hi = rec[i].addr > hi ? rec[i].addr : hi;
      }
      __sync_synchronize();
      r.Invalidate(lo, (hi - lo) / kPage + 1);
      r.Respond(rec[n - 1].cookie, IOMMUFD_PAGE_RESP_SUCCESS);
      if (r.R32(s + 0x1c) == kDone) break;
    }
    st = r.Wait(1, &err);
    bool bytes = true;
    for (int i = 0; i < 16 && bytes; i++) {
      r.MemRead(uint64_t(i) * kPage, got, kPage);
      bytes = Same(got, i == 6 ? C : B + i * kPage, kPage);
    }
    printf("     %d groups, %d page faults, %d twice; status %u error %u\n", groups, pages, twice, st, err);
    Check(st == kDone && pages == 16 && twice == 0 && groups < 16 && bytes,
          "10 a 16-page job in page request groups: every page faulted once, all bytes arrive");
  }
  }  // !stop612

  // 9. Untranslated DMA through a nested entry: edu (no ATS), its own nested HWPT (no fault queue).
  {
    std::string edu;
    DIR* d = opendir("/sys/bus/pci/devices");
    while (dirent* e = d ? readdir(d) : nullptr) {
      std::string base = std::string("/sys/bus/pci/devices/") + e->d_name;
      if (ReadFile(base + "/vendor").rfind("0x1234", 0) == 0 && ReadFile(base + "/device").rfind("0x11e8", 0) == 0) edu = e->d_name;
    }
    if (d) closedir(d);
    if (edu.empty()) {
      printf("skip 9 (no edu device)\n");
    } else {
      std::string ecdev = BindVfio(edu);
      int efd = open(ecdev.c_str(), O_RDWR | O_CLOEXEC);
      if (efd < 0) Die("open edu's VFIO cdev");
      vfio_device_bind_iommufd eb{};
      eb.argsz = sizeof(eb);
      eb.iommufd = r.iommufd;
      MustIoctl(efd, VFIO_DEVICE_BIND_IOMMUFD, &eb, "VFIO_DEVICE_BIND_IOMMUFD edu");
      iommu_hwpt_alloc en{};
      en.size = sizeof(en);
      en.dev_id = eb.out_devid;
      en.pt_id = r.parent;
      en.data_type = IOMMU_HWPT_DATA_VTD_S1;
      en.data_len = sizeof(s1);
      en.data_uptr = uintptr_t(&s1);
      rc = Ioctl(r.iommufd, IOMMU_HWPT_ALLOC, &en);
      vfio_device_attach_iommufd_pt ea{};
      ea.argsz = sizeof(ea);
      ea.pt_id = en.out_hwpt_id;
      int arc = rc ? rc : Ioctl(efd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &ea);
      Check(rc == 0 && arc == 0, "9 edu attached to a nested HWPT over the same parent and stage-1 tables");
      vfio_region_info ri{};
      ri.argsz = sizeof(ri);
      ri.index = 0;
      MustIoctl(efd, VFIO_DEVICE_GET_REGION_INFO, &ri, "edu BAR0");
      vfio_region_info rc7{};
      rc7.argsz = sizeof(rc7);
      rc7.index = 7;
      MustIoctl(efd, VFIO_DEVICE_GET_REGION_INFO, &rc7, "edu config");
      uint16_t ecmd;
      if (pread(efd, &ecmd, 2, off_t(rc7.offset + 4)) != 2) Die("pread edu PCI_COMMAND");
      ecmd |= 4;
      if (pwrite(efd, &ecmd, 2, off_t(rc7.offset + 4)) != 2) Die("pwrite edu PCI_COMMAND");
      auto ew = [&](uint64_t reg, uint32_t v) { if (pwrite(efd, &v, 4, off_t(ri.offset + reg)) != 4) Die("pwrite edu"); };
      auto er = [&](uint64_t reg) { uint32_t v = 0; if (pread(efd, &v, 4, off_t(ri.offset + reg)) != 4) Die("pread edu"); return v; };
      // edu: 0x80 src, 0x88 dst, 0x90 count, 0x98 cmd (bit 0 run, clears when done; bit 1: edu -> RAM)
      auto dma = [&](uint64_t src, uint64_t dst, uint32_t len, bool to_ram) {
        ew(0x80, uint32_t(src));
        ew(0x84, uint32_t(src >> 32));
        ew(0x88, uint32_t(dst));
        ew(0x8c, uint32_t(dst >> 32));
        ew(0x90, len);
        ew(0x98, 1 | (to_ram ? 2 : 0));
        for (int i = 0; i < 5000 && (er(0x98) & 1); i++) usleep(1000);
        return !(er(0x98) & 1);
      };
      *Pte(kE) = (kY + 11 * kPage) | P | RW | US;
      *Pte(kE + kPage) = (kY + 12 * kPage) | P | RW | US;
      __sync_synchronize();
      Fill(B + 11 * kPage, kPage, 9);
      memset(B + 12 * kPage, 0, kPage);
      bool ok1 = dma(kE, 0x40000, kPage, false);              // RAM (through both stages) -> edu
      bool ok2 = dma(0x40000, kE + kPage, kPage, true);       // edu -> RAM
      Check(ok1 && ok2 && Same(B + 12 * kPage, B + 11 * kPage, kPage),
            "9 edu's untranslated DMA reads X'->Y+11 and writes X'+4K->Y+12 through both stages");
      // A stage-1 miss on an untranslated request: a recorded fault, the write goes nowhere.
      memset(B + 13 * kPage, 0, kPage);
      bool ok3 = dma(0x40000, kE + 2 * kPage, kPage, true);   // kE+8K: absent from stage 1
      uint8_t zero[kPage] = {};
      Check(ok3 && Same(B + 13 * kPage, zero, kPage), "9 a stage-1 miss of an untranslated write: nothing written (fault recorded)");
      vfio_device_detach_iommufd_pt ed{};
      ed.argsz = sizeof(ed);
      Ioctl(efd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &ed);
      iommu_destroy de{sizeof(iommu_destroy), en.out_hwpt_id};
      Ioctl(r.iommufd, IOMMU_DESTROY, &de);
      close(efd);
    }
  }

  // Teardown in the kernel's order of dependence: detach, nested, parent, fault, IOAS.
  vfio_device_detach_iommufd_pt dt{};
  dt.argsz = sizeof(dt);
  Check(Ioctl(r.vfio, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt) == 0, "detach");
  iommu_destroy d1{sizeof(iommu_destroy), r.nested}, d2{sizeof(iommu_destroy), r.parent};
  Check(Ioctl(r.iommufd, IOMMU_DESTROY, &d1) == 0 && Ioctl(r.iommufd, IOMMU_DESTROY, &d2) == 0, "destroy nested, then parent");
  close(r.fault);
  close(r.vfio);
  close(r.iommufd);
  printf("%s: %d failure%s\n", failures ? "FAILED" : "passed", failures, failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
