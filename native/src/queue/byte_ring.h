// ByteRing: a single-producer single-consumer ring of variable-length byte records in
// shared memory, for a native thread on one end and a JS thread on the other. The JS
// side is lib/bus/byte-ring.ts (the same ring the bus uses between JS threads); this is
// its mirror, and the layout below is the contract (test/gateway-records.test.ts
// checks both sides agree).
//
// Layout (u32 words; byte offset = index * 4, each group on its own cache line):
//   [0]   WRITE              bytes written (u32, wraps)            producer's line
//   [16]  READ               bytes consumed (u32, wraps)           consumer's line
//   [32]  DATA_SEQ           bumped to wake a JS consumer sleeping in Atomics.wait
//   [33]  CONSUMER_SLEEPING  1 while the consumer is idle and wants a wake-up
//   [48]  ROOM_SEQ
//   [49]  PRODUCER_WAITING   1 while the producer waits for room
//   [64]  DONE               (used by worker pools; unused here)
//   [80]  CLOSED
//   [88]  BUSY               (used by worker pools: busy time; unused here)
//   byte 384: records: [u32 length][body, padded so the next record starts 8-aligned];
//   a length of 0xffffffff means "wrap to offset 0".
//
// Wake-ups cross between native and JS without either side blocking on the other's
// primitive: a consumer that goes idle stores CONSUMER_SLEEPING = 1 and re-checks
// WRITE; a producer that publishes swaps CONSUMER_SLEEPING to 0 and, if it was 1, wakes
// the consumer by its own means (a thread-safe function for JS, an eventfd for a native
// thread). All accesses are sequentially consistent, so the store-then-load on each
// side cannot both miss (a Dekker pair), and the swap makes the wake-up fire once.
// PRODUCER_WAITING works the same way in the other direction.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace myelin {

inline constexpr std::size_t kByteRingHeaderBytes = 384;
inline constexpr uint32_t kByteRingWrap = 0xffffffffu;

struct ByteRingWord {
  enum : uint32_t {
    kWrite = 0,
    kRead = 16,
    kDataSeq = 32,
    kConsumerSleeping = 33,
    kRoomSeq = 48,
    kProducerWaiting = 49,
    kDone = 64,
    kClosed = 80,
    kBusy = 88,
  };
};

class ByteRing {
 public:
  ByteRing() = default;
  // memory: kByteRingHeaderBytes + capacity bytes, capacity a power of two >= 1 KiB,
  // 8-byte aligned, zeroed by its creator. The caller keeps it alive.
  ByteRing(uint8_t* memory, std::size_t total_bytes) noexcept
      : words_(reinterpret_cast<uint32_t*>(memory)),
        data_(memory + kByteRingHeaderBytes),
        capacity_(static_cast<uint32_t>(total_bytes - kByteRingHeaderBytes)),
        mask_(capacity_ - 1) {
    w_ = Load(ByteRingWord::kWrite);
    r_ = Load(ByteRingWord::kRead);
  }

  static bool ValidSize(std::size_t total_bytes) noexcept {
    if (total_bytes <= kByteRingHeaderBytes) return false;
    std::size_t cap = total_bytes - kByteRingHeaderBytes;
    return cap >= 1024 && cap <= (1u << 30) && (cap & (cap - 1)) == 0;
  }

  uint32_t capacity() const noexcept { return capacity_; }
  uint32_t max_record() const noexcept { return (capacity_ >> 1) - 8; }

  uint32_t Load(uint32_t word) const noexcept {
    return std::atomic_ref<uint32_t>(words_[word]).load(std::memory_order_seq_cst);
  }
  void Store(uint32_t word, uint32_t v) noexcept {
    std::atomic_ref<uint32_t>(words_[word]).store(v, std::memory_order_seq_cst);
  }
  uint32_t Exchange(uint32_t word, uint32_t v) noexcept {
    return std::atomic_ref<uint32_t>(words_[word]).exchange(v, std::memory_order_seq_cst);
  }

  // --- producer ---------------------------------------------------------------------
  // Room for a record body of `bytes`; nullptr when the ring is full now. The record
  // becomes visible at Publish.
  uint8_t* Reserve(uint32_t bytes) noexcept {
    const uint32_t padded = (4 + bytes + 7) & ~7u;
    const uint32_t off = w_ & mask_;
    const uint32_t tail = capacity_ - off;
    const uint32_t total = padded <= tail ? padded : tail + padded;
    if (static_cast<uint32_t>(w_ - cached_other_) + total > capacity_) {
      cached_other_ = Load(ByteRingWord::kRead);
      if (static_cast<uint32_t>(w_ - cached_other_) + total > capacity_) return nullptr;
    }
    uint32_t at = off;
    if (padded > tail) {
      std::memcpy(data_ + off, &kByteRingWrap, 4);
      w_ += tail;
      at = 0;
    }
    std::memcpy(data_ + at, &bytes, 4);
    w_ += padded;
    return data_ + at + 4;
  }
  // Whether Reserve(bytes) would succeed now (counting a wrap).
  bool HasRoom(uint32_t bytes) noexcept {
    const uint32_t padded = (4 + bytes + 7) & ~7u;
    const uint32_t tail = capacity_ - (w_ & mask_);
    const uint32_t total = padded <= tail ? padded : tail + padded;
    if (static_cast<uint32_t>(w_ - cached_other_) + total <= capacity_) return true;
    cached_other_ = Load(ByteRingWord::kRead);
    return static_cast<uint32_t>(w_ - cached_other_) + total <= capacity_;
  }

  // Publishes what was reserved; true when the consumer was idle and must be woken.
  bool Publish() noexcept {
    Store(ByteRingWord::kWrite, w_);
    return Exchange(ByteRingWord::kConsumerSleeping, 0) != 0;
  }
  bool Unpublished() const noexcept { return w_ != Load(ByteRingWord::kWrite); }

  // --- consumer ---------------------------------------------------------------------
  // The next record's body, or nullptr when none is published.
  const uint8_t* Next(uint32_t* len) noexcept {
    uint32_t r = r_;
    if (r == cached_other_) {
      cached_other_ = Load(ByteRingWord::kWrite);
      if (r == cached_other_) return nullptr;
    }
    uint32_t off = r & mask_;
    uint32_t n;
    std::memcpy(&n, data_ + off, 4);
    if (n == kByteRingWrap) {
      r_ = r + (capacity_ - off);
      off = 0;
      std::memcpy(&n, data_, 4);
    }
    len_ = n;
    *len = n;
    return data_ + off + 4;
  }
  void Advance() noexcept { r_ += (4 + len_ + 7) & ~7u; }
  // Publishes the read position; true when the producer waits for room.
  bool Release() noexcept {
    Store(ByteRingWord::kRead, r_);
    return Exchange(ByteRingWord::kProducerWaiting, 0) != 0;
  }
  // Consumer going idle: announces it, then re-checks. False when data arrived
  // meanwhile (the flag is withdrawn and the caller must not sleep).
  bool PrepareSleep() noexcept {
    Store(ByteRingWord::kConsumerSleeping, 1);
    if (Load(ByteRingWord::kWrite) != r_) {
      Store(ByteRingWord::kConsumerSleeping, 0);
      return false;
    }
    return true;
  }
  // Producer found no room: announces it and re-checks; true when room appeared.
  bool PrepareWaitForRoom(uint32_t bytes) noexcept {
    Store(ByteRingWord::kProducerWaiting, 1);
    const uint32_t need = ((4 + bytes + 7) & ~7u) * 2;  // a wrap may waste up to one record
    cached_other_ = Load(ByteRingWord::kRead);
    return static_cast<uint32_t>(w_ - cached_other_) + need <= capacity_;
  }

 private:
  uint32_t* words_ = nullptr;
  uint8_t* data_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t mask_ = 0;
  uint32_t w_ = 0;             // producer: write offset, published at Publish
  uint32_t r_ = 0;             // consumer: read offset, published at Release
  uint32_t cached_other_ = 0;  // the other side's index, refreshed when needed
  uint32_t len_ = 0;
};

}  // namespace myelin
