#include "hist/histogram.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

namespace myelin {
namespace {

static_assert(std::atomic_ref<double>::is_always_lock_free,
              "shards rely on lock-free 8-byte loads and stores");

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::size_t kShardBytes = std::size_t{kShardDoubles} * sizeof(double);

// --- shard memory ----------------------------------------------------------------------
//
// calloc, not aligned_alloc + memset: a shard is 264 KiB, above glibc's mmap threshold,
// so calloc hands back fresh zero pages without writing them, and only the pages a writer
// touches (the header and the buckets its values fall in) become resident. A histogram
// of latencies between 1 us and 10 ms touches a few dozen KiB per shard, not 264.
// The block is over-allocated by one cache line and aligned up by hand; the pointer
// calloc returned is kept in the word just before the shard.

double* AllocShard() noexcept {
  void* raw = std::calloc(1, kShardBytes + kCacheLine);
  if (!raw) return nullptr;
  // calloc returns at least 16-byte alignment, so there are >= 16 bytes of slack before
  // the aligned start for the stashed pointer.
  const uintptr_t aligned =
      (reinterpret_cast<uintptr_t>(raw) + kCacheLine) & ~uintptr_t{kCacheLine - 1};
  double* shard = reinterpret_cast<double*>(aligned);
  reinterpret_cast<void**>(shard)[-1] = raw;
  shard[kShardMin] = kInf;  // the rest is zero: count, sum, max and every bucket
  return shard;
}

void FreeShard(double* shard) noexcept {
  if (shard) std::free(reinterpret_cast<void**>(shard)[-1]);
}

inline double Load(const double& d) noexcept {
  return std::atomic_ref<const double>(d).load(std::memory_order_relaxed);
}

inline void Store(double& d, double v) noexcept {
  std::atomic_ref<double>(d).store(v, std::memory_order_relaxed);
}

// Single writer: a plain read-modify-write that readers may observe before or after.
inline void RecordInto(double* shard, uint64_t v) noexcept {
  if (v > kHighestTrackable) v = kHighestTrackable;
  const double d = static_cast<double>(v);
  Store(shard[kShardCount], Load(shard[kShardCount]) + 1);
  Store(shard[kShardSum], Load(shard[kShardSum]) + d);
  if (d < Load(shard[kShardMin])) Store(shard[kShardMin], d);
  if (d > Load(shard[kShardMax])) Store(shard[kShardMax], d);
  double& bucket = shard[kShardHeaderDoubles + CountsIndex(v)];
  Store(bucket, Load(bucket) + 1);
}

void ResetShard(double* shard) noexcept {
  Store(shard[kShardCount], 0);
  Store(shard[kShardSum], 0);
  Store(shard[kShardMin], kInf);
  Store(shard[kShardMax], 0);
  for (uint32_t i = 0; i < kCountsLen; ++i) {
    double& c = shard[kShardHeaderDoubles + i];
    // Skip zeroes: reading an untouched page maps the shared zero page, writing it
    // would make the whole shard resident.
    if (Load(c) != 0) Store(c, 0);
  }
}

// A count written by an external writer is trusted only as far as it is a finite
// non-negative number below 2^64; anything else reads as 0 (NaN fails both tests).
inline uint64_t ToCount(double d) noexcept {
  return d >= 1.0 && d < 18446744073709551616.0 ? static_cast<uint64_t>(d) : 0;
}

// --- the process-wide native slot pool ---------------------------------------------------
//
// Process-wide because threads are: a thread keeps one slot for every histogram it
// records into. Only trivially destructible state lives at namespace scope, so it stays
// valid while other threads exit during process teardown.

constinit std::atomic<uint64_t> g_native_slots{0};  // bit s set: slot s taken

constexpr uint32_t kUnclaimed = 0xFFFFFFFFu;
constexpr uint32_t kPoolWasFull = kMaxShards;   // overflow; retry after a while
constexpr uint32_t kThreadExited = kMaxShards + 1;  // overflow for good
constexpr uint32_t kRetryEvery = 4096;          // overflow records between retries

thread_local uint32_t t_slot = kUnclaimed;
thread_local uint32_t t_retry_countdown = 0;

// Its destructor gives the slot back at thread exit; touched only when a slot is taken,
// so the hot path never goes through the thread_local init guard.
struct SlotReleaser {
  bool armed = false;
  ~SlotReleaser() {
    if (t_slot < kMaxShards) {
      // Release: the next owner of the slot sees every write this thread made.
      g_native_slots.fetch_and(~(uint64_t{1} << t_slot), std::memory_order_release);
    }
    t_slot = kThreadExited;
  }
};
thread_local SlotReleaser t_releaser;

uint32_t ClaimSlot() noexcept {
  uint64_t taken = g_native_slots.load(std::memory_order_relaxed);
  while (taken != ~uint64_t{0}) {
    const uint32_t s = static_cast<uint32_t>(std::countr_zero(~taken));
    if (g_native_slots.compare_exchange_weak(taken, taken | (uint64_t{1} << s),
                                             std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
      t_slot = s;
      t_releaser.armed = true;
      return s;
    }
  }
  t_slot = kPoolWasFull;
  t_retry_countdown = kRetryEvery;
  return kPoolWasFull;
}

}  // namespace

// --- snapshot --------------------------------------------------------------------------

double HistogramSnapshot::ValueAtPercentile(double p) const noexcept {
  if (!counts_ || count_ == 0) return 0;
  if (!(p > 0)) return static_cast<double>(min_);  // p <= 0 or NaN
  if (p > 100) p = 100;
  // As HdrHistogram: step one ulp down so 99.9 of 1000 is 999, not a round-off 1000.
  const double requested = std::nextafter(p, 0.0);
  uint64_t target = static_cast<uint64_t>(std::ceil(requested / 100.0 * static_cast<double>(count_)));
  if (target < 1) target = 1;
  if (target > count_) target = count_;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < kCountsLen; ++i) {
    seen += counts_[i];
    if (seen >= target) {
      const uint64_t v = HighestEquivalent(i);
      return static_cast<double>(v < max_ ? v : max_);
    }
  }
  return static_cast<double>(max_);
}

uint64_t HistogramSnapshot::CountAt(uint32_t index) const noexcept {
  return counts_ && index < kCountsLen ? counts_[index] : 0;
}

// --- histogram -------------------------------------------------------------------------

Status Histogram::Create(std::shared_ptr<Histogram>* out) noexcept {
  if (!out) return Status::kInvalidArgument;
  Histogram* h = new (std::nothrow) Histogram();
  if (!h) return Status::kOutOfMemory;
  h->overflow_ = AllocShard();
  if (!h->overflow_) {
    delete h;
    return Status::kOutOfMemory;
  }
  // shared_ptr allocates its control block with operator new; keep a bad_alloc from
  // escaping this noexcept function (the addon builds with -fexceptions).
#if defined(__cpp_exceptions)
  try {
    out->reset(h);
  } catch (...) {  // reset() already deleted h
    return Status::kOutOfMemory;
  }
#else
  out->reset(h);
#endif
  return Status::kOk;
}

Histogram::~Histogram() {
  for (uint32_t i = 0; i < kMaxShards; ++i) {
    FreeShard(thread_shards_[i].load(std::memory_order_relaxed));
    FreeShard(external_shards_[i].load(std::memory_order_relaxed));
  }
  FreeShard(overflow_);
}

void Histogram::Record(uint64_t v) noexcept {
  const uint32_t slot = t_slot;
  if (slot < kMaxShards) {
    if (double* shard = thread_shards_[slot].load(std::memory_order_acquire)) {
      RecordInto(shard, v);
      return;
    }
  }
  RecordSlow(v);
}

void Histogram::RecordSlow(uint64_t v) noexcept {
  uint32_t slot = t_slot;
  if (slot == kUnclaimed || (slot == kPoolWasFull && --t_retry_countdown == 0)) {
    slot = ClaimSlot();
  }
  if (slot < kMaxShards) {
    if (double* shard = ShardForSlot(slot)) {
      RecordInto(shard, v);
      return;
    }
  }
  RecordOverflow(v);
}

double* Histogram::ShardForSlot(uint32_t slot) noexcept {
  double* shard = thread_shards_[slot].load(std::memory_order_acquire);
  if (shard) return shard;
  double* fresh = AllocShard();
  if (!fresh) return nullptr;
  // Only the slot's owner installs, so the CAS is expected to win; it is a CAS anyway so
  // that a lost race could never leak or double-install.
  if (thread_shards_[slot].compare_exchange_strong(shard, fresh, std::memory_order_acq_rel,
                                                    std::memory_order_acquire)) {
    return fresh;
  }
  FreeShard(fresh);
  return shard;
}

void Histogram::RecordOverflow(uint64_t v) noexcept {
  if (v > kHighestTrackable) v = kHighestTrackable;
  const double d = static_cast<double>(v);
  double* s = overflow_;
  std::atomic_ref<double>(s[kShardCount]).fetch_add(1, std::memory_order_relaxed);
  std::atomic_ref<double>(s[kShardSum]).fetch_add(d, std::memory_order_relaxed);
  std::atomic_ref<double> min(s[kShardMin]);
  for (double cur = min.load(std::memory_order_relaxed);
       d < cur && !min.compare_exchange_weak(cur, d, std::memory_order_relaxed);) {
  }
  std::atomic_ref<double> max(s[kShardMax]);
  for (double cur = max.load(std::memory_order_relaxed);
       d > cur && !max.compare_exchange_weak(cur, d, std::memory_order_relaxed);) {
  }
  std::atomic_ref<double>(s[kShardHeaderDoubles + CountsIndex(v)])
      .fetch_add(1, std::memory_order_relaxed);
  overflow_records_.fetch_add(1, std::memory_order_relaxed);
}

Status Histogram::AcquireShard(double** shard, uint32_t* slot) noexcept {
  if (!shard || !slot) return Status::kInvalidArgument;
  uint64_t claimed = external_claimed_.load(std::memory_order_relaxed);
  for (;;) {
    if (claimed == ~uint64_t{0}) return Status::kFull;
    const uint32_t s = static_cast<uint32_t>(std::countr_zero(~claimed));
    const uint64_t bit = uint64_t{1} << s;
    // Acquire pairs with ReleaseShard: the previous writer's data is visible to us.
    if (!external_claimed_.compare_exchange_weak(claimed, claimed | bit,
                                                 std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
      continue;
    }
    // The claim bit makes us the only thread that may install slot s's memory.
    double* p = external_shards_[s].load(std::memory_order_acquire);
    if (!p) {
      p = AllocShard();
      if (!p) {
        external_claimed_.fetch_and(~bit, std::memory_order_release);
        return Status::kOutOfMemory;
      }
      external_shards_[s].store(p, std::memory_order_release);
    }
    *shard = p;
    *slot = s;
    return Status::kOk;
  }
}

void Histogram::ReleaseShard(uint32_t slot) noexcept {
  if (slot >= kMaxShards) return;
  external_claimed_.fetch_and(~(uint64_t{1} << slot), std::memory_order_release);
}

HistogramSnapshot Histogram::Snapshot() const noexcept {
  HistogramSnapshot snap;
  (void)SnapshotInto(&snap);
  return snap;
}

Status Histogram::SnapshotInto(HistogramSnapshot* out) const noexcept {
  if (!out) return Status::kInvalidArgument;
  if (!out->counts_) out->counts_.reset(new (std::nothrow) uint64_t[kCountsLen]);
  out->count_ = 0;
  out->sum_ = 0;
  out->min_ = out->max_ = 0;
  out->overflow_count_ = 0;
  if (!out->counts_) {
    out->status_ = Status::kOutOfMemory;
    return out->status_;
  }
  out->status_ = Status::kOk;
  uint64_t* counts = out->counts_.get();
  std::memset(counts, 0, sizeof(uint64_t) * kCountsLen);
  double sum = 0, min = kInf, max = 0;
  auto merge = [&](const double* shard) {
    if (!shard) return;
    const double smin = Load(shard[kShardMin]);
    const double smax = Load(shard[kShardMax]);
    // Only indexes between min's and max's can hold counts, so scan just those: a
    // latency histogram of 1 us .. 16 ms spans 14 K of the 33 K buckets, and an idle
    // shard (min = +Inf, max = 0) none. Anything else odd (an external writer mid-update,
    // or writing garbage) gets the full scan; NaN fails every comparison here.
    uint32_t lo = 0, hi = kCountsLen - 1;
    if (smin == kInf && smax == 0) return;
    if (smin >= 0 && smin <= smax && smax <= static_cast<double>(kHighestTrackable)) {
      lo = CountsIndex(static_cast<uint64_t>(smin));
      hi = CountsIndex(static_cast<uint64_t>(smax));
    }
    sum += Load(shard[kShardSum]);
    min = std::fmin(min, smin);
    max = std::fmax(max, smax);
    for (uint32_t i = lo; i <= hi; ++i) {
      counts[i] += ToCount(Load(shard[kShardHeaderDoubles + i]));
    }
  };
  for (uint32_t i = 0; i < kMaxShards; ++i) {
    merge(thread_shards_[i].load(std::memory_order_acquire));
    merge(external_shards_[i].load(std::memory_order_acquire));
  }
  merge(overflow_);
  out->overflow_count_ = overflow_records_.load(std::memory_order_relaxed);

  uint64_t count = 0;
  uint32_t first = kCountsLen, last = 0;
  for (uint32_t i = 0; i < kCountsLen; ++i) {
    if (counts[i] == 0) continue;
    count += counts[i];
    if (first == kCountsLen) first = i;
    last = i;
  }
  out->count_ = count;
  out->sum_ = sum;
  if (count == 0) return Status::kOk;
  // A writer stores min/max before its bucket, but a racy reader may see the bucket
  // first; bounding by the occupied indexes keeps min <= max and within the data. Both
  // bounds are no-ops when the fields are current.
  const double lo = static_cast<double>(HighestEquivalent(first));
  const double hi = static_cast<double>(LowestEquivalent(last));
  min = std::fmin(min, lo);
  max = std::fmax(max, hi);
  if (max > static_cast<double>(kHighestTrackable)) max = static_cast<double>(kHighestTrackable);
  if (!(min >= 0)) min = 0;
  out->min_ = static_cast<uint64_t>(min);
  out->max_ = static_cast<uint64_t>(max);
  return Status::kOk;
}

void Histogram::Reset() noexcept {
  for (uint32_t i = 0; i < kMaxShards; ++i) {
    if (double* s = thread_shards_[i].load(std::memory_order_acquire)) ResetShard(s);
    if (double* s = external_shards_[i].load(std::memory_order_acquire)) ResetShard(s);
  }
  ResetShard(overflow_);
  overflow_records_.store(0, std::memory_order_relaxed);
}

}  // namespace myelin
