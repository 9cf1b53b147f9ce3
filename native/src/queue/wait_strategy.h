// How a ring's producer or consumer waits: spin with a CPU pause, then yield the core,
// then park in the kernel on a futex. Parking goes through an EventCount so a waker
// pays one load (plus the fence it already needs) when nobody sleeps, and a syscall
// only when somebody does.
//
// Waking a JS consumer is different: V8's Atomics.wait does not sleep on an OS futex,
// so a native producer cannot wake it that way. A ring therefore also carries an
// optional Notifier that the binding implements with uv_async_send (coalescing wakes
// into one libuv callback per loop turn).
#pragma once

#include <atomic>
#include <cstdint>

#include "common/status.h"

namespace myelin {

struct WaitOptions {
  uint32_t spin = 256;        // iterations of a CPU pause before yielding
  uint32_t yield = 32;        // sched_yield calls before parking
  int64_t timeout_ns = -1;    // total wait budget; -1 waits until woken or closed
};

// Called by a producer after it published while a JS-side consumer is armed. Must be
// cheap and thread-safe; the binding's implementation is a uv_async_send.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void Notify() noexcept = 0;
};

inline void CpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// Futex wrappers on a 32-bit word (process-private). Elsewhere than Linux the wait
// degrades to a 50 us sleep, which WaitUntil's loop turns into polling.
// FutexWait returns kOk when woken or when the word differed, kTimedOut on timeout.
Status FutexWait(const std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ns) noexcept;
void FutexWake(const std::atomic<uint32_t>* word, int count) noexcept;

// An event count (Dekker-style): the waiter announces itself, re-checks its condition,
// then sleeps on `seq`; the waker bumps `seq` and wakes only when someone announced.
// Both words live in the ring's shared header so any thread mapping it can use them.
struct EventCount {
  std::atomic<uint32_t> seq{0};
  std::atomic<uint32_t> waiters{0};

  // Producer side, after publishing. A read-modify-write of `waiters` (not a plain
  // load after a fence) gives the store-load ordering parking needs: either our RMW
  // sees the waiter's increment, or the waiter's increment reads ours and so
  // synchronizes with it and sees what we published. TSan models RMWs, not fences.
  // Cost: one locked instruction per push call, amortized by bulk pushes.
  void NotifyAll() noexcept {
    if (waiters.fetch_add(0, std::memory_order_acq_rel) != 0) {
      seq.fetch_add(1, std::memory_order_release);
      FutexWake(&seq, 0x7fffffff);
    }
  }
};

// Waits until ready() is true, following `opts` (spin, yield, park). `closed()` stops
// the wait with kClosed. Returns kOk, kTimedOut or kClosed.
template <typename Ready, typename Closed>
Status WaitUntil(EventCount& ec, const WaitOptions& opts, Ready&& ready, Closed&& closed) noexcept;

int64_t MonotonicNs() noexcept;
void YieldCpu() noexcept;

}  // namespace myelin

#include "queue/wait_strategy-inl.h"
