// A bounded multi-producer multi-consumer ring of trivially copyable items, for
// native threads (the JS-visible rings are SPSC; see spsc_ring.h).
//
// Each slot carries a sequence number (Vyukov's bounded queue): slot for position p is
// free for the producer of p when seq == p, and holds p's item for its consumer when
// seq == p + 1; the consumer releases it for lap p + capacity by storing that value.
// Bulk operations claim a whole range of positions with one CAS on the shared
// position, then fill or drain the range slot by slot. The claim is what costs (a
// contended cache line); a batch of 64 pays it once instead of 64 times.
//
// Progress: a thread that claimed a range and is preempted before finishing delays the
// threads that claim the same slots one lap later (they spin, yield, then wait on the
// slot). That is the Disruptor's trade: no locks and no per-item CAS, but not strictly
// lock-free. Nothing is lost or reordered per producer either way.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

#include "common/cache_line.h"
#include "common/status.h"
#include "queue/spsc_ring.h"
#include "queue/wait_strategy.h"

namespace myelin {

template <typename T>
class MpmcRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring items are copied as bytes");

 public:
  static Status Create(uint64_t capacity, std::unique_ptr<MpmcRing>* out) noexcept {
    if (Status s = ValidateCapacity(capacity); !Ok(s)) return s;
    auto* slots = static_cast<Slot*>(std::aligned_alloc(kCacheLine, RoundUp(capacity * sizeof(Slot))));
    if (!slots) return Status::kOutOfMemory;
    auto* ring = new (std::nothrow) MpmcRing(slots, capacity);
    if (!ring) {
      std::free(slots);
      return Status::kOutOfMemory;
    }
    out->reset(ring);
    return Status::kOk;
  }

  ~MpmcRing() { std::free(slots_); }
  MpmcRing(const MpmcRing&) = delete;
  MpmcRing& operator=(const MpmcRing&) = delete;

  uint64_t capacity() const noexcept { return capacity_; }

  // Claims up to n free positions and fills them; returns how many (0 when full).
  size_t TryPushBulk(const T* items, size_t n) noexcept {
    if (n == 0) return 0;
    uint64_t pos = enqueue_.load(std::memory_order_relaxed);
    uint64_t k;
    for (;;) {
      const uint64_t head = dequeue_.load(std::memory_order_acquire);
      // Either load may be stale relative to the other; a pair no consistent moment
      // could produce (consumers past producers, or producers a lap ahead) is retried.
      if (head > pos || pos - head > capacity_) {
        pos = enqueue_.load(std::memory_order_relaxed);
        continue;
      }
      const uint64_t free_slots = capacity_ - (pos - head);
      if (free_slots == 0) return 0;
      k = n < free_slots ? n : free_slots;
      if (enqueue_.compare_exchange_weak(pos, pos + k, std::memory_order_relaxed,
                                         std::memory_order_relaxed))
        break;
    }
    for (uint64_t i = 0; i < k; ++i) {
      Slot& s = slots_[(pos + i) & mask_];
      // The consumer of the previous lap claimed this slot (head passed it) and may
      // still be copying out: wait for its release.
      AwaitSeq(s, pos + i);
      s.item = items[i];
      s.seq.store(pos + i + 1, std::memory_order_release);
    }
    not_empty_.NotifyAll();
    return static_cast<size_t>(k);
  }

  bool TryPush(const T& item) noexcept { return TryPushBulk(&item, 1) == 1; }

  // Claims up to max published-or-claimed positions and drains them; returns how many.
  size_t TryPopBulk(T* out, size_t max) noexcept {
    if (max == 0) return 0;
    uint64_t pos = dequeue_.load(std::memory_order_relaxed);
    uint64_t k;
    for (;;) {
      const uint64_t tail = enqueue_.load(std::memory_order_acquire);
      if (tail <= pos) {
        if (tail == pos) return 0;
        pos = dequeue_.load(std::memory_order_relaxed);
        continue;
      }
      const uint64_t avail = tail - pos;
      k = max < avail ? max : avail;
      if (dequeue_.compare_exchange_weak(pos, pos + k, std::memory_order_relaxed,
                                         std::memory_order_relaxed))
        break;
    }
    for (uint64_t i = 0; i < k; ++i) {
      Slot& s = slots_[(pos + i) & mask_];
      AwaitSeq(s, pos + i + 1);  // its producer claimed it and may still be writing
      out[i] = s.item;
      s.seq.store(pos + i + capacity_, std::memory_order_release);
    }
    not_full_.NotifyAll();
    return static_cast<size_t>(k);
  }

  bool TryPop(T* out) noexcept { return TryPopBulk(out, 1) == 1; }

  Status Push(const T& item, const WaitOptions& opts = {}) noexcept {
    for (;;) {
      if (closed_.load(std::memory_order_acquire)) return Status::kClosed;
      if (TryPush(item)) return Status::kOk;
      Status s = WaitUntil(
          not_full_, opts,
          [&] {
            return enqueue_.load(std::memory_order_acquire) - dequeue_.load(std::memory_order_acquire) <
                   capacity_;
          },
          [&] { return closed_.load(std::memory_order_acquire) != 0; });
      if (s == Status::kTimedOut || s == Status::kClosed) return s;
    }
  }

  // Waits for at least one item, then takes up to max. Drains what is left after
  // Close() before returning kClosed.
  Status PopBulk(T* out, size_t max, size_t* got, const WaitOptions& opts = {}) noexcept {
    *got = 0;
    for (;;) {
      if ((*got = TryPopBulk(out, max)) != 0) return Status::kOk;
      Status s = WaitUntil(
          not_empty_, opts,
          [&] {
            return enqueue_.load(std::memory_order_acquire) != dequeue_.load(std::memory_order_acquire);
          },
          [&] { return closed_.load(std::memory_order_acquire) != 0; });
      if (s == Status::kTimedOut) return s;
      if (s == Status::kClosed) {
        *got = TryPopBulk(out, max);
        return *got ? Status::kOk : Status::kClosed;
      }
    }
  }

  Status Pop(T* out, const WaitOptions& opts = {}) noexcept {
    size_t got;
    return PopBulk(out, 1, &got, opts);
  }

  void Close() noexcept {
    closed_.store(1, std::memory_order_release);
    not_empty_.seq.fetch_add(1, std::memory_order_release);
    FutexWake(&not_empty_.seq, 0x7fffffff);
    not_full_.seq.fetch_add(1, std::memory_order_release);
    FutexWake(&not_full_.seq, 0x7fffffff);
  }
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire) != 0; }

  // Claimed-but-not-drained positions; approximate under concurrency.
  uint64_t Size() const noexcept {
    const uint64_t d = dequeue_.load(std::memory_order_acquire);
    const uint64_t e = enqueue_.load(std::memory_order_acquire);
    return e > d ? e - d : 0;
  }

 private:
  struct Slot {
    std::atomic<uint64_t> seq;
    T item;
  };

  static size_t RoundUp(size_t n) noexcept { return (n + kCacheLine - 1) & ~(kCacheLine - 1); }

  MpmcRing(Slot* slots, uint64_t capacity) noexcept
      : slots_(slots), capacity_(capacity), mask_(capacity - 1) {
    for (uint64_t i = 0; i < capacity; ++i) new (&slots_[i].seq) std::atomic<uint64_t>(i);
  }

  // Spin, then yield: the thread we wait on holds a claim and is at most a copy away
  // from releasing it, unless it was preempted, which on an oversubscribed machine is
  // exactly when spinning would burn the timeslice it needs.
  static void AwaitSeq(const Slot& s, uint64_t want) noexcept {
    for (uint32_t i = 0; s.seq.load(std::memory_order_acquire) != want; ++i) {
      if (i < 64) CpuRelax();
      else YieldCpu();
    }
  }

  alignas(kCacheLine) std::atomic<uint64_t> enqueue_{0};
  alignas(kCacheLine) std::atomic<uint64_t> dequeue_{0};
  alignas(kCacheLine) std::atomic<uint32_t> closed_{0};
  alignas(kCacheLine) EventCount not_empty_;
  alignas(kCacheLine) EventCount not_full_;
  Slot* slots_;
  const uint64_t capacity_;
  const uint64_t mask_;
};

}  // namespace myelin
