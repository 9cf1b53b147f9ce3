// A bounded single-producer single-consumer ring of trivially copyable items.
//
// Shared layout (the contract with lib/internal/ring-layout.ts, checked by a test):
//
//   byte    0  u32 write      producer's index (items published), its own cache line
//   byte   64  u32 read       consumer's index (items consumed), its own cache line
//   byte  128  u32 magic      'MYRG' (0x4752594d)
//   byte  132  u32 capacity   power of two, 1 .. 2^30
//   byte  136  u32 item_size  bytes per slot
//   byte  140  u32 closed     0 open, 1 closed (producer will push no more)
//   byte  192  EventCount not_empty {u32 seq, u32 waiters}   consumers park here
//   byte  256  EventCount not_full  {u32 seq, u32 waiters}   producers park here
//   byte  320  slots          capacity * item_size bytes
//
// Indices are u32 and wrap: the fill level is (write - read) mod 2^32, valid because
// capacity <= 2^30. Each side keeps a private cached copy of the other side's index
// and reloads it only when the cached value says full (producer) or empty (consumer),
// so in steady state each side touches the other's cache line once per wrap, not per
// item.
//
// Ownership: Create() owns its memory (64-byte aligned); Attach() maps memory the
// caller owns (a SharedArrayBuffer's backing store, 8-byte aligned at least) and which
// must outlive the ring.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#include "common/cache_line.h"
#include "common/status.h"
#include "queue/wait_strategy.h"

namespace myelin {

inline constexpr uint32_t kRingMagic = 0x4752594d;  // "MYRG" little-endian
inline constexpr uint32_t kRingMaxCapacity = 1u << 30;

// Explicit padding rather than alignas: the header often lives in a
// SharedArrayBuffer, whose backing store V8 aligns to 16 bytes, not 64, so the type
// must not demand more alignment than its fields. Fields 64 bytes apart sit on
// different cache lines whatever the base address.
struct RingHeader {
  std::atomic<uint32_t> write{0};
  char pad0_[60];
  std::atomic<uint32_t> read{0};
  char pad1_[60];
  uint32_t magic = kRingMagic;
  uint32_t capacity = 0;
  uint32_t item_size = 0;
  std::atomic<uint32_t> closed{0};
  char pad2_[48];
  EventCount not_empty;
  char pad3_[56];
  EventCount not_full;
  char pad4_[56];
};
inline constexpr size_t kRingHeaderBytes = 320;
static_assert(sizeof(RingHeader) == kRingHeaderBytes);
static_assert(alignof(RingHeader) <= 8);
static_assert(offsetof(RingHeader, read) == 64);
static_assert(offsetof(RingHeader, magic) == 128);
static_assert(offsetof(RingHeader, closed) == 140);
static_assert(offsetof(RingHeader, not_empty) == 192);
static_assert(offsetof(RingHeader, not_full) == 256);

inline bool IsPowerOfTwo(uint64_t v) noexcept { return v != 0 && (v & (v - 1)) == 0; }

inline Status ValidateCapacity(uint64_t capacity) noexcept {
  if (!IsPowerOfTwo(capacity) || capacity > kRingMaxCapacity) return Status::kInvalidArgument;
  return Status::kOk;
}

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring items are copied as bytes");

 public:
  static size_t BytesFor(uint32_t capacity) noexcept {
    return kRingHeaderBytes + static_cast<size_t>(capacity) * sizeof(T);
  }

  // A ring over memory it owns. kInvalidArgument for zero, non-power-of-two or
  // over-2^30 capacities; kOutOfMemory when allocation fails.
  static Status Create(uint64_t capacity, std::unique_ptr<SpscRing>* out) noexcept {
    if (Status s = ValidateCapacity(capacity); !Ok(s)) return s;
    const size_t bytes = BytesFor(static_cast<uint32_t>(capacity));
    void* mem = std::aligned_alloc(kCacheLine, (bytes + kCacheLine - 1) & ~(kCacheLine - 1));
    if (!mem) return Status::kOutOfMemory;
    auto* ring = new (std::nothrow) SpscRing(mem, static_cast<uint32_t>(capacity), true, true);
    if (!ring) {
      std::free(mem);
      return Status::kOutOfMemory;
    }
    out->reset(ring);
    return Status::kOk;
  }

  // A ring over caller-owned memory of `bytes` bytes, 8-byte aligned. With init the
  // header is written; without, an existing header is checked (magic, item size,
  // capacity) so a second thread can map the same ring.
  static Status Attach(void* mem, size_t bytes, uint64_t capacity, bool init,
                       std::unique_ptr<SpscRing>* out) noexcept {
    if (!mem || reinterpret_cast<uintptr_t>(mem) % alignof(uint64_t) != 0) return Status::kInvalidArgument;
    if (Status s = ValidateCapacity(capacity); !Ok(s)) return s;
    if (bytes < BytesFor(static_cast<uint32_t>(capacity))) return Status::kInvalidArgument;
    if (!init) {
      auto* h = static_cast<RingHeader*>(mem);
      if (h->magic != kRingMagic || h->item_size != sizeof(T) || h->capacity != capacity)
        return Status::kInvalidArgument;
    }
    auto* ring = new (std::nothrow) SpscRing(mem, static_cast<uint32_t>(capacity), init, false);
    if (!ring) return Status::kOutOfMemory;
    out->reset(ring);
    return Status::kOk;
  }

  ~SpscRing() {
    if (owns_) std::free(header_);
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  uint32_t capacity() const noexcept { return capacity_; }
  RingHeader* header() noexcept { return header_; }

  // Producer: copies up to n items in, returns how many fit (0 when full or closed).
  size_t TryPushBulk(const T* items, size_t n) noexcept {
    const uint32_t w = p_.write;
    uint32_t free_slots = capacity_ - (w - p_.cached_read);
    if (free_slots < n) {
      p_.cached_read = header_->read.load(std::memory_order_acquire);
      free_slots = capacity_ - (w - p_.cached_read);
      if (free_slots == 0) return 0;
    }
    const uint32_t k = static_cast<uint32_t>(n < free_slots ? n : free_slots);
    CopyIn(w, items, k);
    p_.write = w + k;
    header_->write.store(w + k, std::memory_order_release);
    header_->not_empty.NotifyAll();
    if (notifier_ && notify_armed_.load(std::memory_order_relaxed)) notifier_->Notify();
    return k;
  }

  bool TryPush(const T& item) noexcept { return TryPushBulk(&item, 1) == 1; }

  // Consumer: copies up to max items out, returns how many (0 when empty).
  size_t TryPopBulk(T* out, size_t max) noexcept {
    const uint32_t r = c_.read;
    uint32_t avail = c_.cached_write - r;
    if (avail < max) {
      c_.cached_write = header_->write.load(std::memory_order_acquire);
      avail = c_.cached_write - r;
      if (avail == 0) return 0;
    }
    const uint32_t k = static_cast<uint32_t>(max < avail ? max : avail);
    CopyOut(r, out, k);
    c_.read = r + k;
    header_->read.store(r + k, std::memory_order_release);
    header_->not_full.NotifyAll();
    return k;
  }

  bool TryPop(T* out) noexcept { return TryPopBulk(out, 1) == 1; }

  // Blocking forms: wait by `opts` for room (push) or items (pop). Push returns
  // kClosed once the ring is closed; Pop drains what is left before returning kClosed.
  Status Push(const T& item, const WaitOptions& opts = {}) noexcept {
    for (;;) {
      if (header_->closed.load(std::memory_order_acquire)) return Status::kClosed;
      if (TryPush(item)) return Status::kOk;
      Status s = WaitUntil(
          header_->not_full, opts,
          [&] { return capacity_ - (p_.write - header_->read.load(std::memory_order_acquire)) > 0; },
          [&] { return header_->closed.load(std::memory_order_acquire) != 0; });
      if (s == Status::kTimedOut || s == Status::kClosed) return s;
    }
  }

  Status Pop(T* out, const WaitOptions& opts = {}) noexcept {
    for (;;) {
      if (TryPop(out)) return Status::kOk;
      Status s = WaitUntil(
          header_->not_empty, opts,
          [&] { return header_->write.load(std::memory_order_acquire) != c_.read; },
          [&] { return header_->closed.load(std::memory_order_acquire) != 0; });
      if (s == Status::kTimedOut) return s;
      if (s == Status::kClosed && !TryPop(out)) return Status::kClosed;
      if (s == Status::kClosed) return Status::kOk;
    }
  }

  // Marks the ring closed and wakes every parked side. Idempotent.
  void Close() noexcept {
    header_->closed.store(1, std::memory_order_release);
    header_->not_empty.seq.fetch_add(1, std::memory_order_release);
    FutexWake(&header_->not_empty.seq, 0x7fffffff);
    header_->not_full.seq.fetch_add(1, std::memory_order_release);
    FutexWake(&header_->not_full.seq, 0x7fffffff);
    if (notifier_) notifier_->Notify();
  }
  bool closed() const noexcept { return header_->closed.load(std::memory_order_acquire) != 0; }

  // Items visible to the consumer right now (approximate under concurrency).
  uint32_t Size() const noexcept {
    return header_->write.load(std::memory_order_acquire) - header_->read.load(std::memory_order_acquire);
  }

  // A JS-side consumer arms the notifier before it goes back to its event loop and
  // disarms while it drains; the producer calls Notify() after each publish while
  // armed. The notifier must outlive the ring or be cleared first.
  void SetNotifier(Notifier* n) noexcept { notifier_ = n; }
  void ArmNotifier(bool armed) noexcept {
    notify_armed_.store(armed, std::memory_order_seq_cst);
  }

 private:
  SpscRing(void* mem, uint32_t capacity, bool init, bool owns) noexcept
      : header_(static_cast<RingHeader*>(mem)),
        slots_(reinterpret_cast<T*>(static_cast<char*>(mem) + kRingHeaderBytes)),
        capacity_(capacity),
        mask_(capacity - 1),
        owns_(owns) {
    if (init) {
      new (header_) RingHeader();
      header_->capacity = capacity;
      header_->item_size = sizeof(T);
    }
    p_.write = header_->write.load(std::memory_order_relaxed);
    p_.cached_read = header_->read.load(std::memory_order_relaxed);
    c_.read = header_->read.load(std::memory_order_relaxed);
    c_.cached_write = header_->write.load(std::memory_order_relaxed);
  }

  void CopyIn(uint32_t at, const T* items, uint32_t k) noexcept {
    const uint32_t i = at & mask_;
    const uint32_t first = k < capacity_ - i ? k : capacity_ - i;
    std::memcpy(slots_ + i, items, first * sizeof(T));
    if (k > first) std::memcpy(slots_, items + first, (k - first) * sizeof(T));
  }
  void CopyOut(uint32_t at, T* out, uint32_t k) noexcept {
    const uint32_t i = at & mask_;
    const uint32_t first = k < capacity_ - i ? k : capacity_ - i;
    std::memcpy(out, slots_ + i, first * sizeof(T));
    if (k > first) std::memcpy(out + first, slots_, (k - first) * sizeof(T));
  }

  RingHeader* header_;
  T* slots_;
  const uint32_t capacity_;
  const uint32_t mask_;
  const bool owns_;
  Notifier* notifier_ = nullptr;
  std::atomic<bool> notify_armed_{false};
  // Each side's private state on its own line, so the producer's writes to p_ never
  // invalidate the consumer's c_.
  struct alignas(kCacheLine) Producer {
    uint32_t write = 0;
    uint32_t cached_read = 0;
  } p_;
  struct alignas(kCacheLine) Consumer {
    uint32_t read = 0;
    uint32_t cached_write = 0;
  } c_;
};

}  // namespace myelin
