// The C reference client of the fault benchmark (npm run bench): the same work the Node path does,
// written the way a C VMM would do it, with nothing but the uAPI mirror in native/uapi.h.
//
//   fault_bench drain N WARMUP REPS  WARMUP faults drained first, then REPS times: N pre-queued,
//                                    drained and answered
//   fault_bench rtt ITERS WARMUP     trigger -> delivered -> answered, one fault at a time
//   fault_bench rtt-thread ITERS WARMUP  the same, the consumer on a thread of its own
//   fault_bench drain-uring N WARMUP REPS, rtt-uring ITERS WARMUP
//                                    the same, and the same JSON, with the io_uring consumer
//   fault_bench pipe N               a producer process triggers N faults while we consume
//   fault_bench mem N CHUNK          N faults in chunks of CHUNK (trigger chunk, drain it): RSS
//   fault_bench produce FD DEVID N   the producer: N TRIGGER_IOPF ioctls on the inherited iommufd FD
//   fault_bench calib REPS           no kernel: the per-record loop alone, to compare host and guest
//   fault_bench vevent-drain N WARMUP REPS  the vEVENTQ counterpart of drain: WARMUP vEVENTs drained
//                                    first, then REPS times N pre-queued (TRIGGER_VEVENT) and read;
//                                    prints {"skipped": why} instead on a kernel without vEVENTQs
//
// The consumer loop is: poll(POLLIN) on the fault fd, read() into one 1024-record buffer until the
// kernel has nothing left, and after every read answer all its groups with one write(); the uring
// modes do the same through io_uring (UringConsumer). Every mode prints one JSON object on stdout.
// Timestamps are CLOCK_MONOTONIC nanoseconds, the clock Node's process.hrtime uses, so the Node
// side can compare them with its own.
//
// Build: g++ -O2 -std=c++17 -pthread -I native bench/c/fault_bench.cc -o bench/build/fault_bench
#include "uapi.h"  // first: it refuses to follow <linux/iommufd.h>
#include "bench_util.h"
#include "uring.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
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

iommu_test_cmd TestCmd(__u32 op, __u32 id) {
  iommu_test_cmd cmd{};
  cmd.size = sizeof(cmd);
  cmd.op = op;
  cmd.id = id;
  return cmd;
}

// One fault of the mock device: a single-record group, as MockDevice.triggerIopf makes them.
void Trigger(int iommufd, __u32 dev_id, __u32 grpid) {
  auto cmd = TestCmd(IOMMU_TEST_OP_TRIGGER_IOPF, 0);
  cmd.trigger_iopf.dev_id = dev_id;
  cmd.trigger_iopf.grpid = grpid;
  cmd.trigger_iopf.perm = IOMMU_PGFAULT_PERM_READ;
  cmd.trigger_iopf.addr = 0x10000;
  Ioctl(iommufd, IOMMU_TEST_CMD, &cmd, "IOMMU_TEST_OP_TRIGGER_IOPF");
}

// What every setup starts with: /dev/iommu, an IOAS, and the kernel's mock device attached to it.
struct Mock {
  int iommufd = -1;
  __u32 ioas_id = 0, stdev_id = 0, dev_id = 0;
};

Mock OpenMock() {
  Mock m;
  m.iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
  if (m.iommufd < 0) Die("open /dev/iommu");
  iommu_ioas_alloc ioas{};
  ioas.size = sizeof(ioas);
  Ioctl(m.iommufd, IOMMU_IOAS_ALLOC, &ioas, "IOMMU_IOAS_ALLOC");
  m.ioas_id = ioas.out_ioas_id;
  auto mock = TestCmd(IOMMU_TEST_OP_MOCK_DOMAIN, m.ioas_id);
  Ioctl(m.iommufd, IOMMU_TEST_CMD, &mock, "IOMMU_TEST_OP_MOCK_DOMAIN");
  m.stdev_id = mock.mock_domain.out_stdev_id;
  m.dev_id = mock.mock_domain.out_idev_id;
  return m;
}

// The mock device onto another HWPT.
void MoveMock(const Mock& m, __u32 pt_id) {
  auto replace = TestCmd(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, m.stdev_id);
  replace.mock_domain_replace.pt_id = pt_id;
  Ioctl(m.iommufd, IOMMU_TEST_CMD, &replace, "IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE");
}

// The same setup as the guest suite's paging case: IOAS, mock device, fault queue, a paging HWPT
// with the fault queue, and the device moved onto it.
struct Rig {
  int iommufd = -1;
  int fault_fd = -1;
  __u32 dev_id = 0;
};

Rig Setup() {
  Rig r;
  Mock m = OpenMock();
  r.iommufd = m.iommufd;
  r.dev_id = m.dev_id;
  iommu_fault_alloc fault{};
  fault.size = sizeof(fault);
  Ioctl(r.iommufd, IOMMU_FAULT_QUEUE_ALLOC, &fault, "IOMMU_FAULT_QUEUE_ALLOC");
  r.fault_fd = int(fault.out_fault_fd);
  iommu_hwpt_alloc hwpt{};
  hwpt.size = sizeof(hwpt);
  hwpt.flags = IOMMU_HWPT_FAULT_ID_VALID;
  hwpt.dev_id = r.dev_id;
  hwpt.pt_id = m.ioas_id;
  hwpt.fault_id = fault.out_fault_id;
  Ioctl(r.iommufd, IOMMU_HWPT_ALLOC, &hwpt, "IOMMU_HWPT_ALLOC");
  MoveMock(m, hwpt.out_hwpt_id);
  return r;
}

// The handler's work: SUCCESS for every group, named by its last record. Returns the answers.
size_t AnswerAll(const iommu_hwpt_pgfault* records, size_t count, iommu_hwpt_page_response* out) {
  size_t groups = 0;
  for (size_t i = 0; i < count; i++) {
    if (!(records[i].flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE)) continue;
    out[groups].cookie = records[i].cookie;
    out[groups].code = IOMMUFD_PAGE_RESP_SUCCESS;
    groups++;
  }
  return groups;
}

// The consumer: poll + read + one write per read.
class Consumer {
 public:
  explicit Consumer(int fd) : fd_(fd), records_(kBufferRecords), responses_(kBufferRecords) {}

  // Waits for faults (at most timeout_ms), then answers everything the kernel has queued.
  // Returns the groups answered.
  size_t PollAndDrain(uint64_t* delivered_at = nullptr, int timeout_ms = -1) {
    pollfd p{fd_, POLLIN, 0};
    int rc;
    while ((rc = poll(&p, 1, timeout_ms)) < 0)
      if (errno != EINTR) Die("poll");
    if (rc == 0) return 0;
    size_t answered = 0;
    for (;;) {
      ssize_t n = read(fd_, records_.data(), records_.size() * sizeof(iommu_hwpt_pgfault));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) Die("read");
      if (n == 0) break;
      if (delivered_at && answered == 0) *delivered_at = Now();
      size_t groups = AnswerAll(records_.data(), size_t(n) / sizeof(iommu_hwpt_pgfault), responses_.data());
      Write(groups);
      answered += groups;
    }
    return answered;
  }

 private:
  static constexpr size_t kBufferRecords = 1024;

  void Write(size_t groups) {
    size_t len = groups * sizeof(iommu_hwpt_page_response), off = 0;
    const char* p = reinterpret_cast<const char*>(responses_.data());
    while (off < len) {
      ssize_t n = write(fd_, p + off, len - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) Die("write (response refused)");
      off += size_t(n);
    }
  }

  int fd_;
  std::vector<iommu_hwpt_pgfault> records_;
  std::vector<iommu_hwpt_page_response> responses_;
};

// The io_uring consumer: the same work as Consumer, with the read, write and poll as SQEs and at
// most one io_uring_enter per batch (answers and the next read go in together).
//
// The fault fd has only .read/.write (no read_iter, no FMODE_NOWAIT), and its read returns 0, not
// -EAGAIN, on an empty queue. io_uring runs such a file's read inline only if the fd is O_NONBLOCK
// (else loop_rw_iter refuses IOCB_NOWAIT and every read and write goes to an io-wq worker: rtt
// ~50x poll's); O_NONBLOCK leaves the fd's own read() as it is (it never blocks), but an io_uring
// READ of an empty queue then completes with 0 instead of arming io_uring's internal poll. So the
// wait is an explicit POLL_ADD linked to a READ, queued only after a READ found the queue empty:
// in these benchmarks the faults are there before we look, so the poll is skipped (Consumer's
// poll() returns at once there; a linked POLL_ADD on every call measured slower in rtt).
class UringConsumer {
 public:
  explicit UringConsumer(int fd) : records_(kBufferRecords), responses_(kBufferRecords) {
    // First: a fixed file keeps the nowait-ness its fd had when it was registered.
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) Die("fcntl O_NONBLOCK");
    // DEFER_TASKRUN: the poll's wakeup is handled when we wait, not in the middle of a trigger.
    int rc = ring_.Init(8, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
    if (rc == 0) rc = ring_.RegisterFiles(&fd, 1);  // the fault fd is fixed file 0
    if (rc == 0) rc = ring_.RegisterRing();
    if (rc < 0) {
      errno = -rc;
      Die("io_uring setup");
    }
  }

  // As Consumer::PollAndDrain (no timeout: the uring modes do not need one).
  size_t PollAndDrain(uint64_t* delivered_at = nullptr) {
    QueueRead();
    Wait();
    if (read_res_ == 0) {  // nothing queued yet: wait for POLLIN, then read
      QueuePoll();
      QueueRead();
      Wait();
    }
    size_t answered = 0;
    while (read_res_ > 0) {
      if (delivered_at && answered == 0) *delivered_at = Now();
      size_t groups = AnswerAll(records_.data(), size_t(read_res_) / sizeof(iommu_hwpt_pgfault), responses_.data());
      QueueWrite(groups);
      QueueRead();  // until it finds the queue empty, as Consumer reads until 0
      Wait();
      answered += groups;
    }
    return answered;
  }

 private:
  static constexpr size_t kBufferRecords = 1024;
  enum : __u64 { kPoll = 1, kRead, kWrite };

  io_uring_sqe* Sqe(__u8 opcode, __u64 tag) {
    io_uring_sqe* sqe = ring_.Sqe();
    if (!sqe) {
      errno = EBUSY;
      Die("io_uring SQ full");
    }
    sqe->opcode = opcode;
    sqe->fd = 0;  // fixed file 0
    sqe->flags = IOSQE_FIXED_FILE;
    sqe->user_data = tag;
    return sqe;
  }

  void QueuePoll() {
    io_uring_sqe* sqe = Sqe(IORING_OP_POLL_ADD, kPoll);
    sqe->poll32_events = POLLIN;
    sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;  // the READ's CQE is the one that matters
  }

  void QueueRead() {
    io_uring_sqe* sqe = Sqe(IORING_OP_READ, kRead);
    sqe->addr = reinterpret_cast<__u64>(records_.data());
    sqe->len = __u32(records_.size() * sizeof(iommu_hwpt_pgfault));
    reading_ = true;
  }

  void QueueWrite(size_t groups) {
    io_uring_sqe* sqe = Sqe(IORING_OP_WRITE, kWrite);
    sqe->addr = reinterpret_cast<__u64>(responses_.data());
    sqe->len = write_len_ = __u32(groups * sizeof(iommu_hwpt_page_response));
    writing_ = true;
  }

  // Submits what is queued and reaps completions until the read and write in flight are done.
  void Wait() {
    while (reading_ || writing_) {
      int rc = ring_.Enter(1);
      if (rc < 0) {
        errno = -rc;
        Die("io_uring_enter");
      }
      for (io_uring_cqe* cqe; (cqe = ring_.Peek()); ring_.Pop()) {
        errno = cqe->res < 0 ? -cqe->res : EIO;
        if (cqe->user_data == kRead) {
          if (cqe->res < 0) Die("io_uring read");
          read_res_ = cqe->res;
          reading_ = false;
        } else if (cqe->user_data == kWrite) {
          if (cqe->res != int(write_len_)) Die("io_uring write (response refused)");
          writing_ = false;
        } else {  // only a failed POLL_ADD posts a CQE (its READ is cancelled with it)
          Die("io_uring poll");
        }
      }
    }
  }

  uring::Ring ring_;
  bool reading_ = false, writing_ = false;
  int read_res_ = 0;
  __u32 write_len_ = 0;
  std::vector<iommu_hwpt_pgfault> records_;
  std::vector<iommu_hwpt_page_response> responses_;
};

long RssKiB() {
  FILE* f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2) Die("/proc/self/statm");
  fclose(f);
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

size_t Arg(char** argv, int i) { return size_t(strtoull(argv[i], nullptr, 0)); }

// Triggers n faults, then drains them: the nanoseconds from the first poll to the last answer.
template <typename C>
uint64_t DrainOnce(const Rig& r, C& c, size_t n, size_t* answered) {
  for (size_t i = 0; i < n; i++) Trigger(r.iommufd, r.dev_id, __u32(i));
  uint64_t t0 = Now();
  *answered = 0;
  while (*answered < n) *answered += c.PollAndDrain();
  return Now() - t0;
}

// A first drain of `warmup` faults, then `reps` measured ones, as the Node side does.
template <typename C>
int Drain(size_t n, size_t warmup, size_t reps) {
  Rig r = Setup();
  C c(r.fault_fd);
  size_t answered = 0;
  uint64_t cold = warmup ? DrainOnce(r, c, warmup, &answered) : 0;
  std::vector<uint64_t> ns;
  bool all = true;
  for (size_t i = 0; i < reps; i++) {
    ns.push_back(DrainOnce(r, c, n, &answered));
    all = all && answered == n;
  }
  printf("{\"mode\":\"drain\",\"n\":%zu,\"answered\":%zu,\"warmup\":%zu,\"coldNs\":%llu,\"nsAll\":[", n, answered, warmup,
         (unsigned long long)cold);
  for (size_t i = 0; i < ns.size(); i++) printf("%s%llu", i ? "," : "", (unsigned long long)ns[i]);
  printf("]}\n");
  return all ? 0 : 1;
}

void PrintRtt(size_t iters, const std::vector<uint64_t>& trigger, const std::vector<uint64_t>& deliver,
              const std::vector<uint64_t>& total) {
  auto list = [](const char* name, const std::vector<uint64_t>& v) {
    printf(",\"%s\":[", name);
    for (size_t i = 0; i < v.size(); i++) printf("%s%llu", i ? "," : "", (unsigned long long)v[i]);
    printf("]");
  };
  printf("{\"mode\":\"rtt\",\"iters\":%zu", iters);
  list("triggerNs", trigger);
  list("deliverNs", deliver);
  list("totalNs", total);
  printf("}\n");
}

template <typename C>
int Rtt(size_t iters, size_t warmup) {
  Rig r = Setup();
  C c(r.fault_fd);
  std::vector<uint64_t> trigger, deliver, total;
  for (size_t i = 0; i < warmup + iters; i++) {
    uint64_t t0 = Now(), t1 = 0;
    Trigger(r.iommufd, r.dev_id, __u32(i));
    uint64_t tq = Now();
    if (c.PollAndDrain(&t1) != 1) {
      fprintf(stderr, "fault_bench: rtt: expected exactly one group\n");
      return 1;
    }
    uint64_t t2 = Now();
    if (i >= warmup) {
      trigger.push_back(tq - t0);
      deliver.push_back(t1 - t0);
      total.push_back(t2 - t0);
    }
  }
  PrintRtt(iters, trigger, deliver, total);
  return 0;
}

// The round trip with the consumer on a thread of its own, as serveInWorker() runs it: this thread
// raises a fault and spins until the consumer thread, blocked in poll() until then, has written
// the answer. The floor of any design that waits for faults on another thread.
int RttThread(size_t iters, size_t warmup) {
  Rig r = Setup();
  std::atomic<uint32_t> writes{0};
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    Consumer c(r.fault_fd);
    while (!stop.load(std::memory_order_relaxed))
      if (c.PollAndDrain(nullptr, 100) > 0) writes.fetch_add(1, std::memory_order_release);
  });
  std::vector<uint64_t> trigger, total;
  for (size_t i = 0; i < warmup + iters; i++) {
    uint32_t seen = writes.load(std::memory_order_acquire);
    uint64_t t0 = Now();
    Trigger(r.iommufd, r.dev_id, __u32(i));
    uint64_t tq = Now();
    while (writes.load(std::memory_order_acquire) == seen) {
    }
    uint64_t t2 = Now();
    if (i >= warmup) {
      trigger.push_back(tq - t0);
      total.push_back(t2 - t0);
    }
  }
  stop = true;
  consumer.join();
  PrintRtt(iters, trigger, total, total);
  return 0;
}

// The producer is this binary in `produce` mode with the iommufd as its fd 3: the Node side spawns
// the very same program the same way (child_process stdio slot 3).
int Pipe(size_t n, const char* self) {
  Rig r = Setup();
  Consumer c(r.fault_fd);
  int out[2];
  if (pipe(out) < 0) Die("pipe");
  uint64_t spawned = Now();
  pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    dup2(out[1], 1);
    // dup2 clears FD_CLOEXEC on the copy, but is a no-op when the iommufd already is fd 3.
    if (r.iommufd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(r.iommufd, 3) < 0) _exit(126);
    std::string dev = std::to_string(r.dev_id), count = std::to_string(n);
    execl(self, self, "produce", "3", dev.c_str(), count.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  size_t answered = 0;
  int status = 0;
  bool exited = false;
  while (answered < n) {
    size_t k = c.PollAndDrain(nullptr, 2000);
    answered += k;
    if (k == 0 && exited) break;  // the producer is gone and nothing came for 2 s
    if (k == 0 && !exited && waitpid(pid, &status, WNOHANG) == pid) exited = true;
  }
  uint64_t done = Now();
  char buf[512];
  ssize_t len = 0, k;
  while ((k = read(out[0], buf + len, sizeof(buf) - 1 - size_t(len))) > 0) len += k;
  buf[len > 0 ? len : 0] = 0;
  if (!exited) waitpid(pid, &status, 0);
  while (len > 0 && (buf[len - 1] == '\n')) buf[--len] = 0;
  printf("{\"mode\":\"pipe\",\"n\":%zu,\"answered\":%zu,\"spawnedNs\":%llu,\"doneNs\":%llu,\"producer\":%s}\n", n,
         answered, (unsigned long long)spawned, (unsigned long long)done, len > 0 ? buf : "null");
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 && answered == n ? 0 : 1;
}

// FAULT_BENCH_PRODUCER_CPU=k pins the producer to CPU k (guest.mjs pins the consumer to another).
int Produce(int fd, __u32 dev_id, size_t n) {
  if (const char* cpu = getenv("FAULT_BENCH_PRODUCER_CPU")) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(atoi(cpu), &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) Die("sched_setaffinity");
  }
  uint64_t t0 = Now();
  for (size_t i = 0; i < n; i++) Trigger(fd, dev_id, __u32(i));
  uint64_t t1 = Now();
  printf("{\"startNs\":%llu,\"endNs\":%llu}\n", (unsigned long long)t0, (unsigned long long)t1);
  return 0;
}

int Mem(size_t n, size_t chunk) {
  Rig r = Setup();
  Consumer c(r.fault_fd);
  long before = RssKiB();
  uint64_t t0 = Now();
  for (size_t done = 0; done < n;) {
    size_t k = std::min(chunk, n - done);
    for (size_t i = 0; i < k; i++) Trigger(r.iommufd, r.dev_id, __u32(done + i));
    size_t answered = 0;
    while (answered < k) answered += c.PollAndDrain();
    done += k;
  }
  uint64_t t1 = Now();
  printf("{\"mode\":\"mem\",\"n\":%zu,\"rssBeforeKiB\":%ld,\"rssAfterKiB\":%ld,\"ns\":%llu}\n", n, before, RssKiB(),
         (unsigned long long)(t1 - t0));
  return 0;
}

// Calibration (no kernel): the consumer's per-record loop over a synthetic 1024-record buffer, the
// same loop node_bench calib runs in JS; run on the host and in the guest to see what TCG costs C.
int Calib(size_t reps) {
  constexpr size_t kRecords = 1024;
  std::vector<iommu_hwpt_pgfault> recs(kRecords);
  std::vector<iommu_hwpt_page_response> out(kRecords);
  for (size_t i = 0; i < kRecords; i++) {
    recs[i] = {};
    recs[i].flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE;
    recs[i].dev_id = 1;
    recs[i].grpid = __u32(i);
    recs[i].addr = 0x10000;
    recs[i].cookie = __u32(i);
  }
  auto loop = [&] {
    size_t k = 0;
    asm volatile("" : : "r"(recs.data()) : "memory");  // the records are "read from the kernel"
    for (size_t i = 0; i < kRecords; i++) {
      const iommu_hwpt_pgfault& f = recs[i];
      if (!(f.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE)) continue;
      out[k].cookie = f.cookie;
      out[k].code = IOMMUFD_PAGE_RESP_SUCCESS;
      k++;
    }
    asm volatile("" : : "r"(out.data()) : "memory");  // the responses are "written"
    return k;
  };
  size_t sink = 0;
  for (size_t i = 0; i < reps; i++) sink += loop();
  uint64_t t0 = Now();
  for (size_t i = 0; i < reps; i++) sink += loop();
  double ns = double(Now() - t0) / double(reps * kRecords);
  printf("{\"mode\":\"calib\",\"reps\":%zu,\"loopNsPerRecord\":%.3f,\"sink\":%zu}\n", reps, ns, sink);
  return 0;
}

// ---- vEVENTQ (Linux 6.15+): the test device's vIOMMU reports selftest vEVENTs ----------------

// As Ioctl, but a kernel without the command is not fatal: returns the errno (0 on success).
template <typename T>
int TryIoctl(int fd, unsigned long req, T* arg) {
  int rc;
  do rc = ioctl(fd, req, arg);
  while (rc < 0 && errno == EINTR);
  return rc < 0 ? errno : 0;
}

// The vDEVICE's virtual id: what every selftest vEVENT carries (must be non-zero).
constexpr __u32 kVirtId = 0x99;
// The deepest queue the kernel allows: a drain of up to this many pre-queued events loses none.
constexpr __u32 kVeventDepth = VEVENTQ_MAX_DEPTH;

struct VeventRig {
  int iommufd = -1;
  int veventq_fd = -1;
  __u32 dev_id = 0;
  std::string skipped;  // why not, on a kernel without vIOMMUs or vEVENTQs
};

__u32 HwptAlloc(int iommufd, __u32 dev_id, __u32 pt_id, __u32 flags, __u32 data_type, void* data, __u32 data_len) {
  iommu_hwpt_alloc hwpt{};
  hwpt.size = sizeof(hwpt);
  hwpt.flags = flags;
  hwpt.dev_id = dev_id;
  hwpt.pt_id = pt_id;
  hwpt.data_type = data_type;
  hwpt.data_len = data_len;
  hwpt.data_uptr = reinterpret_cast<__u64>(data);
  Ioctl(iommufd, IOMMU_HWPT_ALLOC, &hwpt, "IOMMU_HWPT_ALLOC");
  return hwpt.out_hwpt_id;
}

// ENOTTY from an alloc means the kernel predates the command: the caller reports a skip.
bool Skip(VeventRig& r, int err, const char* what, const char* needs) {
  if (err == 0) return false;
  if (err != ENOTTY) {
    errno = err;
    Die(what);
  }
  r.skipped = std::string(what) + ": ENOTTY (" + needs + ")";
  return true;
}

// The selftests' flow (tools/testing/selftests/iommu, vdevice_alloc): IOAS, mock device, a
// NEST_PARENT HWPT, a selftest vIOMMU over it, its vEVENTQ, the device's vDEVICE, and the device
// moved onto a nested HWPT of the vIOMMU (after the vDEVICE: the mock takes its virt_id then).
VeventRig VeventSetup() {
  VeventRig r;
  Mock m = OpenMock();
  r.iommufd = m.iommufd;
  r.dev_id = m.dev_id;
  __u32 parent = HwptAlloc(r.iommufd, r.dev_id, m.ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT, 0, nullptr, 0);
  iommu_viommu_alloc viommu{};
  viommu.size = sizeof(viommu);
  viommu.type = IOMMU_VIOMMU_TYPE_SELFTEST;
  viommu.dev_id = r.dev_id;
  viommu.hwpt_id = parent;
  if (Skip(r, TryIoctl(r.iommufd, IOMMU_VIOMMU_ALLOC, &viommu), "IOMMU_VIOMMU_ALLOC", "a vIOMMU needs Linux 6.13+, its vEVENTQs 6.15+")) return r;
  iommu_veventq_alloc veventq{};
  veventq.size = sizeof(veventq);
  veventq.viommu_id = viommu.out_viommu_id;
  veventq.type = IOMMU_VEVENTQ_TYPE_SELFTEST;
  veventq.veventq_depth = kVeventDepth;
  if (Skip(r, TryIoctl(r.iommufd, IOMMU_VEVENTQ_ALLOC, &veventq), "IOMMU_VEVENTQ_ALLOC", "a vEVENTQ needs Linux 6.15+")) return r;
  r.veventq_fd = int(veventq.out_veventq_fd);
  iommu_vdevice_alloc vdev{};
  vdev.size = sizeof(vdev);
  vdev.viommu_id = viommu.out_viommu_id;
  vdev.dev_id = r.dev_id;
  vdev.virt_id = kVirtId;
  Ioctl(r.iommufd, IOMMU_VDEVICE_ALLOC, &vdev, "IOMMU_VDEVICE_ALLOC");
  iommu_hwpt_selftest data{};
  data.iotlb = IOMMU_TEST_IOTLB_DEFAULT;
  MoveMock(m, HwptAlloc(r.iommufd, r.dev_id, viommu.out_viommu_id, 0, IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data)));
  return r;
}

// One selftest vEVENT: the device's vIOMMU reports {virt_id} (0 also when the queue was full).
void TriggerVevent(int iommufd, __u32 dev_id) {
  auto cmd = TestCmd(IOMMU_TEST_OP_TRIGGER_VEVENT, 0);
  cmd.trigger_vevent.dev_id = dev_id;
  Ioctl(iommufd, IOMMU_TEST_CMD, &cmd, "IOMMU_TEST_OP_TRIGGER_VEVENT");
}

// The vEVENT consumer: poll(POLLIN), then read() into one buffer until the kernel has nothing
// left (0: the vEVENTQ read never blocks), walking each read's records: the sequence numbers
// checked (a gap, or a LOST_EVENTS header, counts lost events), the payload read.
//
// The buffer holds 1024 selftest vEVENTs (12 bytes each), as the Node pump's default
// bufferRecords does, so both sides make the same reads.
class VeventConsumer {
 public:
  explicit VeventConsumer(int fd) : fd_(fd), buffer_(kBufferBytes) {}

  __u64 delivered = 0;   // events read
  __u64 lost = 0;        // events the kernel dropped (LOST_EVENTS headers and sequence gaps)
  __u64 overflows = 0;   // LOST_EVENTS headers read
  __u64 bad = 0;         // events with another virt_id (none expected)

  // Waits for vEVENTs, then reads everything queued. Returns the events read plus those lost.
  __u64 PollAndDrain() {
    pollfd p{fd_, POLLIN, 0};
    while (poll(&p, 1, -1) < 0)
      if (errno != EINTR) Die("poll");
    __u64 before = delivered + lost;
    for (;;) {
      ssize_t n = read(fd_, buffer_.data(), buffer_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) Die("read (vEVENTQ)");
      if (n == 0) break;
      Walk(buffer_.data(), size_t(n));
    }
    return delivered + lost - before;
  }

 private:
  static constexpr size_t kBufferBytes =
      1024 * (sizeof(iommufd_vevent_header) + sizeof(iommu_viommu_event_selftest));
  static constexpr __u32 kSeqMask = 0x7fffffff;  // sequences run 0..INT_MAX, then 0

  void Walk(const uint8_t* p, size_t len) {
    for (size_t off = 0; off + sizeof(iommufd_vevent_header) <= len;) {
      iommufd_vevent_header h;
      memcpy(&h, p + off, sizeof(h));  // records are packed: 12 bytes, not 8-aligned
      off += sizeof(h);
      __u32 step = (h.sequence - prev_) & kSeqMask;
      prev_ = h.sequence;
      if (h.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {  // no data; its sequence is the last lost one's
        lost += step;
        overflows++;
        continue;
      }
      lost += step - 1;
      iommu_viommu_event_selftest e;
      memcpy(&e, p + off, sizeof(e));
      off += sizeof(e);
      if (e.virt_id != kVirtId) bad++;
      delivered++;
    }
  }

  int fd_;
  __u32 prev_ = kSeqMask;  // so that the first event, sequence 0, is one step on
  std::vector<uint8_t> buffer_;
};

// Queues n vEVENTs, then reads them: the nanoseconds from the first poll to the last record.
uint64_t VeventDrainOnce(const VeventRig& r, VeventConsumer& c, size_t n) {
  for (size_t i = 0; i < n; i++) TriggerVevent(r.iommufd, r.dev_id);
  uint64_t t0 = Now();
  __u64 seen = 0;
  while (seen < n) seen += c.PollAndDrain();
  return Now() - t0;
}

// As Drain: a first drain of `warmup` events, then `reps` measured ones of n (n <= the depth, so
// nothing is lost unless something is wrong; the counts say so either way).
int VeventDrain(size_t n, size_t warmup, size_t reps) {
  if (n > kVeventDepth || warmup > kVeventDepth) {
    fprintf(stderr, "fault_bench: vevent-drain: N and WARMUP must be at most %u (the queue's depth)\n", kVeventDepth);
    return 2;
  }
  VeventRig r = VeventSetup();
  if (!r.skipped.empty()) {
    printf("{\"mode\":\"vevent-drain\",\"n\":%zu,\"skipped\":\"%s\"}\n", n, r.skipped.c_str());
    return 0;
  }
  VeventConsumer c(r.veventq_fd);
  uint64_t cold = warmup ? VeventDrainOnce(r, c, warmup) : 0;
  std::vector<uint64_t> ns;
  for (size_t i = 0; i < reps; i++) ns.push_back(VeventDrainOnce(r, c, n));
  printf("{\"mode\":\"vevent-drain\",\"n\":%zu,\"delivered\":%llu,\"lost\":%llu,\"overflows\":%llu,\"bad\":%llu,"
         "\"depth\":%u,\"warmup\":%zu,\"coldNs\":%llu,\"nsAll\":[",
         n, (unsigned long long)c.delivered, (unsigned long long)c.lost, (unsigned long long)c.overflows,
         (unsigned long long)c.bad, kVeventDepth, warmup, (unsigned long long)cold);
  for (size_t i = 0; i < ns.size(); i++) printf("%s%llu", i ? "," : "", (unsigned long long)ns[i]);
  printf("]}\n");
  close(r.veventq_fd);
  close(r.iommufd);
  return c.bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "drain" && argc == 5) return Drain<Consumer>(Arg(argv, 2), Arg(argv, 3), Arg(argv, 4));
  if (mode == "rtt" && argc == 4) return Rtt<Consumer>(Arg(argv, 2), Arg(argv, 3));
  if (mode == "drain-uring" && argc == 5) return Drain<UringConsumer>(Arg(argv, 2), Arg(argv, 3), Arg(argv, 4));
  if (mode == "rtt-uring" && argc == 4) return Rtt<UringConsumer>(Arg(argv, 2), Arg(argv, 3));
  if (mode == "rtt-thread" && argc == 4) return RttThread(Arg(argv, 2), Arg(argv, 3));
  if (mode == "pipe" && argc == 3) return Pipe(Arg(argv, 2), "/proc/self/exe");
  if (mode == "mem" && argc == 4) return Mem(Arg(argv, 2), Arg(argv, 3));
  if (mode == "calib" && argc == 3) return Calib(Arg(argv, 2));
  if (mode == "vevent-drain" && argc == 5) return VeventDrain(Arg(argv, 2), Arg(argv, 3), Arg(argv, 4));
  if (mode == "produce" && argc == 5) return Produce(int(Arg(argv, 2)), __u32(Arg(argv, 3)), Arg(argv, 4));
  fprintf(stderr,
          "usage: fault_bench drain N WARMUP REPS | rtt ITERS WARMUP | drain-uring N WARMUP REPS | rtt-uring ITERS WARMUP"
          " | pipe N | mem N CHUNK | produce FD DEVID N | calib REPS | vevent-drain N WARMUP REPS\n");
  return 2;
}
