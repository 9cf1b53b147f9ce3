// Histogram: an HDR histogram (3 significant digits, 1 ns .. 1 h) that any thread records
// into without locks, through per-thread shards merged on read.
//
// ===================================== LAYOUT CONTRACT =====================================
// JS threads write shards too (a Float64Array over memory this class owns), so the index
// math and the shard layout below are shared with lib/ and must change in both at once.
//
// Values are unsigned integers, nanoseconds by convention. Values above
// kHighestTrackable are clamped to it (and so counted in the top bucket).
//
//   kSubBucketHalfCountMagnitude = 10
//   kSubBucketCount     = 2048        (1 << (magnitude + 1))
//   kSubBucketHalfCount = 1024
//   kSubBucketMask      = 2047
//   kBucketCount        = 32
//   kCountsLen          = (kBucketCount + 1) * kSubBucketHalfCount = 33792
//   kHighestTrackable   = 3'600'000'000'000   (1 h in ns)
//
// Index of a value v (after clamping):
//   bucket = 63 - clz64(v | kSubBucketMask) - kSubBucketHalfCountMagnitude   (v < 2048: 0)
//   sub    = v >> bucket                                  (in [1024, 2047] when bucket > 0)
//   index  = ((bucket + 1) << kSubBucketHalfCountMagnitude) + (sub - kSubBucketHalfCount)
// So v < 2048 has index v (exact); above, an index covers 2^bucket values, a relative
// width <= 1/1024.
//
// A shard is kShardDoubles doubles (exact integers up to 2^53), 64-byte aligned:
//   [0] count   [1] sum   [2] min (initially +Infinity)   [3] max (initially 0)
//   [4 + i] counts[i] for i < kCountsLen
//   kShardDoubles = 4 + kCountsLen = 33796   (270,368 bytes)
// Each shard has exactly one writer at a time, which updates with plain load + store,
// in this order (record v): count += 1, sum += v, min = min(min, v), max = max(max, v),
// counts[CountsIndex(v)] += 1. Readers read racily: aligned 8-byte loads and stores do
// not tear on x86-64 or AArch64. C++ uses std::atomic_ref<double> relaxed; JS uses plain
// Float64Array element access. Readers scan only the indexes between CountsIndex(min)
// and CountsIndex(max), and skip a shard with min = +Infinity and max = 0, so min and
// max must cover every value counted (hence the order). A shard handed out may already
// hold counts (from an earlier writer): writers accumulate, never initialise.
// ===========================================================================================
//
// Threads
//   Native threads take a slot from one process-wide pool of kMaxShards slots the first
//   time they record (into any histogram) and give it back at thread exit. A histogram
//   keeps one lazily allocated shard per slot, so a slot's next thread continues the
//   same shard and counts of exited threads are kept. A thread that finds the pool
//   empty records into one shared overflow shard with CAS loops (slower, still exact).
//   External writers (JS threads) take shards from a separate per-histogram set of
//   kMaxShards through AcquireShard, so a JS thread recording into many histograms does
//   not drain the native pool.
//
// Ownership: the histogram owns every shard. A pointer from AcquireShard stays valid
// until the histogram is destroyed (ReleaseShard does not free it): whoever exposes it
// to JS must keep the histogram alive for as long as the view exists.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/cache_line.h"
#include "common/status.h"

namespace myelin {

inline constexpr uint32_t kSubBucketHalfCountMagnitude = 10;
inline constexpr uint32_t kSubBucketCount = 2048;
inline constexpr uint32_t kSubBucketHalfCount = 1024;
inline constexpr uint64_t kSubBucketMask = 2047;
inline constexpr uint32_t kBucketCount = 32;
inline constexpr uint32_t kCountsLen = (kBucketCount + 1) * kSubBucketHalfCount;
inline constexpr uint64_t kHighestTrackable = 3'600'000'000'000ull;
inline constexpr uint32_t kShardHeaderDoubles = 4;
inline constexpr uint32_t kShardDoubles = kShardHeaderDoubles + kCountsLen;
inline constexpr uint32_t kShardCount = 0, kShardSum = 1, kShardMin = 2, kShardMax = 3;
inline constexpr uint32_t kMaxShards = 64;

static_assert(kSubBucketCount == 1u << (kSubBucketHalfCountMagnitude + 1));
static_assert(kSubBucketHalfCount == kSubBucketCount / 2);
static_assert(kSubBucketMask == kSubBucketCount - 1);
static_assert(kCountsLen == 33792);
static_assert(kShardDoubles == 33796);

// Index into counts[] of a value; values above kHighestTrackable count as it.
constexpr uint32_t CountsIndex(uint64_t v) noexcept {
  if (v > kHighestTrackable) v = kHighestTrackable;
  const uint32_t bucket = static_cast<uint32_t>(63 - std::countl_zero(v | kSubBucketMask)) -
                          kSubBucketHalfCountMagnitude;
  const uint64_t sub = v >> bucket;
  return static_cast<uint32_t>(((uint64_t{bucket} + 1) << kSubBucketHalfCountMagnitude) +
                               (sub - kSubBucketHalfCount));
}

// Smallest value that maps to index.
constexpr uint64_t LowestEquivalent(uint32_t index) noexcept {
  const uint32_t bucket_plus_one = index >> kSubBucketHalfCountMagnitude;
  if (bucket_plus_one == 0) return index;
  const uint32_t bucket = bucket_plus_one - 1;
  const uint64_t sub = (index & (kSubBucketHalfCount - 1)) + kSubBucketHalfCount;
  return sub << bucket;
}

// Largest value that maps to index.
constexpr uint64_t HighestEquivalent(uint32_t index) noexcept {
  const uint32_t bucket_plus_one = index >> kSubBucketHalfCountMagnitude;
  const uint32_t bucket = bucket_plus_one == 0 ? 0 : bucket_plus_one - 1;
  return LowestEquivalent(index) + (uint64_t{1} << bucket) - 1;
}

static_assert(CountsIndex(kHighestTrackable) < kCountsLen);

// A merged, self-consistent copy: count is the sum of counts[], so percentiles agree
// with it even when records raced with the merge. Owns kCountsLen uint64_t (264 KiB).
class HistogramSnapshot {
 public:
  HistogramSnapshot() = default;
  HistogramSnapshot(HistogramSnapshot&&) noexcept = default;
  HistogramSnapshot& operator=(HistogramSnapshot&&) noexcept = default;

  // kOutOfMemory when the counts buffer could not be allocated; then every field is 0.
  Status status() const noexcept { return status_; }
  uint64_t count() const noexcept { return count_; }
  double sum() const noexcept { return sum_; }
  uint64_t min() const noexcept { return min_; }  // 0 when empty
  uint64_t max() const noexcept { return max_; }  // 0 when empty
  double mean() const noexcept { return count_ ? sum_ / static_cast<double>(count_) : 0; }
  // Records that went through the shared overflow shard (all native slots were taken).
  uint64_t overflow_count() const noexcept { return overflow_count_; }
  // HdrHistogram semantics: the highest value equivalent to the first index at which the
  // cumulative count reaches ceil(p / 100 * count) (at least 1), clamped to max();
  // p == 0 gives min(). p is clamped to [0, 100]; NaN counts as 0. 0 when empty.
  double ValueAtPercentile(double p) const noexcept;
  // Count at one index; 0 when out of range or empty.
  uint64_t CountAt(uint32_t index) const noexcept;

 private:
  friend class Histogram;
  Status status_ = Status::kOk;
  uint64_t count_ = 0;
  double sum_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  uint64_t overflow_count_ = 0;
  std::unique_ptr<uint64_t[]> counts_;  // kCountsLen, or null when empty/failed
};

class alignas(kCacheLine) Histogram {
 public:
  // kOutOfMemory. Shared because the binding hands one histogram to several threads.
  static Status Create(std::shared_ptr<Histogram>* out) noexcept;
  ~Histogram();
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Any native thread, lock-free. Never fails: without a shard (pool empty, or its
  // memory could not be allocated) the value goes to the overflow shard.
  void Record(uint64_t v) noexcept;

  // Hands an exclusive shard to an external writer that follows the layout contract.
  // *slot identifies it for ReleaseShard. kFull when kMaxShards are out; kOutOfMemory;
  // kInvalidArgument for null outputs.
  Status AcquireShard(double** shard, uint32_t* slot) noexcept;
  // Ends the writer's exclusivity. Its counts stay in the shard (and in snapshots); the
  // memory stays valid. Unknown or already released slots are ignored.
  void ReleaseShard(uint32_t slot) noexcept;

  // Merges every shard. Safe from any thread, concurrently with Record and with external
  // writers; a record racing with the merge may be missing from some fields (count and
  // counts[] always agree with each other).
  HistogramSnapshot Snapshot() const noexcept;
  // Same, reusing out's buffer when it has one (no allocation on repeated snapshots).
  Status SnapshotInto(HistogramSnapshot* out) const noexcept;

  // Zeroes every shard. Records concurrent with Reset may be lost or kept, even partly
  // (e.g. in counts[] but not in sum) since a writer's load+store can land on either
  // side of the zeroing; each field stays a valid number and nothing is freed, so
  // writers never touch released memory.
  void Reset() noexcept;

 private:
  Histogram() = default;
  double* ShardForSlot(uint32_t slot) noexcept;
  void RecordOverflow(uint64_t v) noexcept;
  void RecordSlow(uint64_t v) noexcept;

  // Indexed by the process-wide native thread slot; allocated on first record.
  std::atomic<double*> thread_shards_[kMaxShards] = {};
  // External writers' shards, allocated on first acquire, kept until destruction.
  std::atomic<double*> external_shards_[kMaxShards] = {};
  alignas(kCacheLine) std::atomic<uint64_t> external_claimed_{0};  // bit per slot
  // Shared fallback, updated with CAS loops by any number of threads.
  alignas(kCacheLine) double* overflow_ = nullptr;
  std::atomic<uint64_t> overflow_records_{0};
};

}  // namespace myelin
