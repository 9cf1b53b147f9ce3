#include "queue/wait_strategy.h"

#include <cerrno>
#include <ctime>
#include <sched.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace myelin {

int64_t MonotonicNs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void YieldCpu() noexcept { sched_yield(); }

Status FutexWait(const std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ns) noexcept {
#if defined(__linux__)
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000LL;
    ts.tv_nsec = timeout_ns % 1000000000LL;
    tsp = &ts;
  }
  // std::atomic<uint32_t> is layout-compatible with uint32_t (static_assert below).
  long rc = syscall(SYS_futex, reinterpret_cast<const uint32_t*>(word), FUTEX_WAIT_PRIVATE,
                    expected, tsp, nullptr, 0);
  if (rc == -1 && errno == ETIMEDOUT) return Status::kTimedOut;
  return Status::kOk;
#else
  (void)word;
  (void)expected;
  timespec ts{0, 50000};
  nanosleep(&ts, nullptr);
  return Status::kOk;
#endif
}

void FutexWake(const std::atomic<uint32_t>* word, int count) noexcept {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<const uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
#else
  (void)word;
  (void)count;
#endif
}

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(std::atomic<uint32_t>::is_always_lock_free);

}  // namespace myelin
