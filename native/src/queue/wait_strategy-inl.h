#pragma once

#include "queue/wait_strategy.h"

namespace myelin {

template <typename Ready, typename Closed>
Status WaitUntil(EventCount& ec, const WaitOptions& opts, Ready&& ready, Closed&& closed) noexcept {
  if (ready()) return Status::kOk;
  const int64_t deadline = opts.timeout_ns < 0 ? -1 : MonotonicNs() + opts.timeout_ns;
  for (uint32_t i = 0; i < opts.spin; ++i) {
    CpuRelax();
    if (ready()) return Status::kOk;
  }
  for (uint32_t i = 0; i < opts.yield; ++i) {
    YieldCpu();
    if (ready()) return Status::kOk;
    if (closed()) return ready() ? Status::kOk : Status::kClosed;
  }
  for (;;) {
    if (closed()) return ready() ? Status::kOk : Status::kClosed;
    int64_t left = -1;
    if (deadline >= 0) {
      left = deadline - MonotonicNs();
      if (left <= 0) return ready() ? Status::kOk : Status::kTimedOut;
    }
    ec.waiters.fetch_add(1, std::memory_order_acq_rel);
    const uint32_t key = ec.seq.load(std::memory_order_acquire);
    // Re-check after announcing: a producer that published before our announcement
    // is seen here; one that publishes after it sees waiters != 0 and bumps seq.
    if (ready()) {
      ec.waiters.fetch_sub(1, std::memory_order_relaxed);
      return Status::kOk;
    }
    if (closed()) {
      ec.waiters.fetch_sub(1, std::memory_order_relaxed);
      continue;  // the loop's head reports kClosed (or kOk if an item raced in)
    }
    FutexWait(&ec.seq, key, left);
    ec.waiters.fetch_sub(1, std::memory_order_relaxed);
    if (ready()) return Status::kOk;
  }
}

}  // namespace myelin
