// What both C reference clients (fault_bench.cc, pri_bench.cc) need: fail loudly, a clock that
// matches Node's process.hrtime (CLOCK_MONOTONIC), and an ioctl that retries EINTR.
#pragma once

#include <errno.h>
#include <sys/ioctl.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {

[[noreturn]] inline void Die(const char* what) {
  fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
  exit(1);
}

inline uint64_t Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

template <typename T>
void Ioctl(int fd, unsigned long req, T* arg, const char* what) {
  int rc;
  do rc = ioctl(fd, req, arg);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) Die(what);
}

}  // namespace bench
