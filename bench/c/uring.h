// Just enough io_uring for fault_bench's uring modes, over the raw syscalls (no liburing): one ring
// with its SQ and CQ mapped, SQEs handed out in order, completions reaped in order.
#pragma once

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace uring {

class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    if (sqes_ != MAP_FAILED) munmap(sqes_, sqes_len_);
    if (ring_ != MAP_FAILED) munmap(ring_, ring_len_);
    if (fd_ >= 0) close(fd_);
  }

  // 0, or -errno when the kernel refuses (e.g. a setup flag it does not know).
  int Init(unsigned entries, unsigned flags) {
    io_uring_params p{};
    p.flags = flags;
    fd_ = enter_fd_ = int(syscall(__NR_io_uring_setup, entries, &p));
    if (fd_ < 0) return -errno;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP)) return -ENOSYS;  // 5.4+: SQ and CQ in one mapping
    ring_len_ = std::max(p.sq_off.array + p.sq_entries * sizeof(unsigned),
                         p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe));
    ring_ = mmap(nullptr, ring_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQ_RING);
    if (ring_ == MAP_FAILED) return -errno;
    sqes_len_ = p.sq_entries * sizeof(io_uring_sqe);
    sqes_ = mmap(nullptr, sqes_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES);
    if (sqes_ == MAP_FAILED) return -errno;
    char* r = static_cast<char*>(ring_);
    sq_head_ = reinterpret_cast<unsigned*>(r + p.sq_off.head);
    sq_tail_ = reinterpret_cast<unsigned*>(r + p.sq_off.tail);
    sq_mask_ = *reinterpret_cast<unsigned*>(r + p.sq_off.ring_mask);
    sq_entries_ = p.sq_entries;
    unsigned* array = reinterpret_cast<unsigned*>(r + p.sq_off.array);
    for (unsigned i = 0; i < p.sq_entries; i++) array[i] = i;  // SQE i always sits in slot i
    cq_head_ = reinterpret_cast<unsigned*>(r + p.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(r + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(r + p.cq_off.ring_mask);
    cqes_ = reinterpret_cast<io_uring_cqe*>(r + p.cq_off.cqes);
    sq_local_tail_ = *sq_tail_;
    cq_local_head_ = *cq_head_;
    return 0;
  }

  // Makes fds the fixed files 0..n-1, for SQEs with IOSQE_FIXED_FILE (no fget/fput per request).
  int RegisterFiles(const int* fds, unsigned n) {
    return syscall(__NR_io_uring_register, fd_, IORING_REGISTER_FILES, fds, n) < 0 ? -errno : 0;
  }

  // Registers the ring's own fd, so that io_uring_enter skips the fd lookup.
  int RegisterRing() {
    io_uring_rsrc_update u{};
    u.offset = ~0u;  // any free slot
    u.data = __u64(fd_);
    if (syscall(__NR_io_uring_register, fd_, IORING_REGISTER_RING_FDS, &u, 1) != 1) return -errno;
    enter_fd_ = int(u.offset);
    enter_flags_ = IORING_ENTER_REGISTERED_RING;
    return 0;
  }

  // The next SQE, zeroed; nullptr when the SQ is full.
  io_uring_sqe* Sqe() {
    if (sq_local_tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE) >= sq_entries_) return nullptr;
    io_uring_sqe* sqe = &static_cast<io_uring_sqe*>(sqes_)[sq_local_tail_++ & sq_mask_];
    memset(sqe, 0, sizeof(*sqe));
    return sqe;
  }

  // Submits the queued SQEs and waits until at least wait_nr completions are in the CQ, in one
  // io_uring_enter (none if there is nothing to submit and nothing to wait for). 0, or -errno.
  int Enter(unsigned wait_nr) {
    unsigned to_submit = sq_local_tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
    __atomic_store_n(sq_tail_, sq_local_tail_, __ATOMIC_RELEASE);
    if (!to_submit && Ready() >= wait_nr) return 0;
    long rc;
    do rc = syscall(__NR_io_uring_enter, enter_fd_, to_submit, wait_nr,
                    enter_flags_ | (wait_nr ? IORING_ENTER_GETEVENTS : 0), nullptr, 0);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
  }

  // The oldest unreaped completion, or nullptr; Pop() hands its slot back to the kernel.
  io_uring_cqe* Peek() { return Ready() ? &cqes_[cq_local_head_ & cq_mask_] : nullptr; }
  void Pop() { __atomic_store_n(cq_head_, ++cq_local_head_, __ATOMIC_RELEASE); }

 private:
  unsigned Ready() const { return __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE) - cq_local_head_; }

  int fd_ = -1, enter_fd_ = -1;
  unsigned enter_flags_ = 0;
  void* ring_ = MAP_FAILED;
  size_t ring_len_ = 0;
  void* sqes_ = MAP_FAILED;
  size_t sqes_len_ = 0;
  unsigned *sq_head_ = nullptr, *sq_tail_ = nullptr;
  unsigned sq_mask_ = 0, sq_entries_ = 0, sq_local_tail_ = 0;
  unsigned *cq_head_ = nullptr, *cq_tail_ = nullptr;
  unsigned cq_mask_ = 0, cq_local_head_ = 0;
  io_uring_cqe* cqes_ = nullptr;
};

}  // namespace uring
