// HDR histogram: the index math of the layout contract, percentiles, multi-thread
// recording, external shards written by hand, slot exhaustion, thread exit and Reset.
#include "hist/histogram.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <latch>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "check.h"

using myelin::CountsIndex;
using myelin::HighestEquivalent;
using myelin::Histogram;
using myelin::HistogramSnapshot;
using myelin::kCountsLen;
using myelin::kHighestTrackable;
using myelin::kMaxShards;
using myelin::LowestEquivalent;
using myelin::Status;

namespace {

using myelin::test::kSanitized;


std::shared_ptr<Histogram> MakeHistogram() {
  std::shared_ptr<Histogram> h;
  CHECK_EQ(Histogram::Create(&h), Status::kOk);
  CHECK(h != nullptr);
  return h;
}

// What a JS writer does, by hand, straight on the contract.
void WriteByHand(double* shard, uint64_t v) {
  shard[0] += 1;
  shard[1] += static_cast<double>(v);
  if (static_cast<double>(v) < shard[2]) shard[2] = static_cast<double>(v);
  if (static_cast<double>(v) > shard[3]) shard[3] = static_cast<double>(v);
  shard[4 + CountsIndex(v)] += 1;
}

bool IndexHolds(uint64_t v) {
  const uint32_t i = CountsIndex(v);
  const uint64_t lo = LowestEquivalent(i), hi = HighestEquivalent(i);
  if (i >= kCountsLen || lo > v || v > hi) return false;
  if (v < 2048) return lo == v && hi == v;
  return static_cast<double>(hi - lo) / static_cast<double>(v) <= 1.0 / 1000;
}

}  // namespace

// The contract's constants and formula, checked at compile time as JS will compute them.
static_assert(myelin::kSubBucketHalfCountMagnitude == 10);
static_assert(myelin::kSubBucketCount == 2048 && myelin::kSubBucketHalfCount == 1024);
static_assert(myelin::kSubBucketMask == 2047 && myelin::kBucketCount == 32);
static_assert(kCountsLen == 33792 && myelin::kShardDoubles == 33796);
static_assert(kHighestTrackable == 3'600'000'000'000ull);
static_assert(CountsIndex(0) == 0 && CountsIndex(1) == 1 && CountsIndex(2047) == 2047);
static_assert(CountsIndex(2048) == 2048 && CountsIndex(2049) == 2048 && CountsIndex(2050) == 2049);
static_assert(CountsIndex(4095) == 3071 && CountsIndex(4096) == 3072);
static_assert(CountsIndex(kHighestTrackable) == CountsIndex(kHighestTrackable + 1));
static_assert(CountsIndex(UINT64_MAX) == CountsIndex(kHighestTrackable));

TEST(IndexMathRoundTrips) {
  bool ok = true;
  for (uint64_t v = 0; v < (uint64_t{1} << 21); ++v) ok &= IndexHolds(v);
  CHECK(ok);
  // Around every power of two up to the top, and random values in between.
  for (int b = 12; b < 42; ++b) {  // 2^12 - 1 - 4095 = 0: no wrap-around
    const uint64_t p = uint64_t{1} << b;
    for (uint64_t d = 0; d < 4096; ++d) {
      ok &= IndexHolds(p - 1 - d);
      ok &= IndexHolds(p + d);
    }
  }
  std::mt19937_64 rng(7);
  for (int k = 0; k < 2'000'000; ++k) ok &= IndexHolds(rng() % (kHighestTrackable + 1));
  CHECK(ok);
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{2047}, uint64_t{2048}, kHighestTrackable}) {
    CHECK(IndexHolds(v));
  }
  CHECK(CountsIndex(kHighestTrackable) < kCountsLen);
}

TEST(IndexesAreContiguousAndMonotonic) {
  // Every index up to the top one is reached, in order, with no gaps.
  const uint32_t top = CountsIndex(kHighestTrackable);
  bool ok = true;
  for (uint32_t i = 0; i < top; ++i) {
    ok &= CountsIndex(LowestEquivalent(i)) == i;
    ok &= CountsIndex(HighestEquivalent(i)) == i;
    ok &= HighestEquivalent(i) + 1 == LowestEquivalent(i + 1);
  }
  CHECK(ok);
  CHECK(LowestEquivalent(top) <= kHighestTrackable && kHighestTrackable <= HighestEquivalent(top));
}

TEST(EmptySnapshot) {
  auto h = MakeHistogram();
  HistogramSnapshot s = h->Snapshot();
  CHECK_EQ(s.status(), Status::kOk);
  CHECK_EQ(s.count(), 0u);
  CHECK_EQ(s.min(), 0u);
  CHECK_EQ(s.max(), 0u);
  CHECK_EQ(s.mean(), 0.0);
  CHECK_EQ(s.ValueAtPercentile(50), 0.0);
  CHECK_EQ(s.CountAt(0), 0u);
  HistogramSnapshot never;  // default-constructed, no buffer
  CHECK_EQ(never.ValueAtPercentile(99), 0.0);
  CHECK_EQ(never.CountAt(5), 0u);
}

TEST(EdgeValuesAndClamp) {
  auto h = MakeHistogram();
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{2047}, uint64_t{2048}, kHighestTrackable,
                     kHighestTrackable + 1, UINT64_MAX}) {
    h->Record(v);
  }
  HistogramSnapshot s = h->Snapshot();
  CHECK_EQ(s.count(), 7u);
  CHECK_EQ(s.min(), 0u);
  CHECK_EQ(s.max(), kHighestTrackable);
  CHECK_EQ(s.CountAt(0), 1u);
  CHECK_EQ(s.CountAt(1), 1u);
  CHECK_EQ(s.CountAt(2047), 1u);
  CHECK_EQ(s.CountAt(2048), 1u);
  CHECK_EQ(s.CountAt(CountsIndex(kHighestTrackable)), 3u);  // 1 h and the two clamped
  CHECK_EQ(s.CountAt(kCountsLen), 0u);
  CHECK_EQ(s.sum(), 0.0 + 1 + 2047 + 2048 + 3.0 * static_cast<double>(kHighestTrackable));
  CHECK_EQ(s.ValueAtPercentile(100), static_cast<double>(kHighestTrackable));
  CHECK_EQ(s.ValueAtPercentile(0), 0.0);
}

TEST(PercentilesOfUniform) {
  auto h = MakeHistogram();
  const uint64_t n = 100000;
  for (uint64_t v = 1; v <= n; ++v) h->Record(v);
  HistogramSnapshot s = h->Snapshot();
  CHECK_EQ(s.count(), n);
  CHECK_EQ(s.sum(), static_cast<double>(n * (n + 1) / 2));
  CHECK_EQ(s.mean(), 50000.5);
  CHECK_EQ(s.min(), 1u);
  CHECK_EQ(s.max(), n);
  struct {
    double p, expect;
  } cases[] = {{50, 50000}, {90, 90000}, {99, 99000}, {99.9, 99900}, {100, 100000}};
  for (auto c : cases) {
    const double got = s.ValueAtPercentile(c.p);
    CHECK(got >= c.expect);
    CHECK(std::fabs(got - c.expect) / c.expect <= 0.001);
  }
  CHECK_EQ(s.ValueAtPercentile(0), 1.0);
  CHECK_EQ(s.ValueAtPercentile(-5), 1.0);
  CHECK_EQ(s.ValueAtPercentile(std::nan("")), 1.0);
  CHECK_EQ(s.ValueAtPercentile(250), 100000.0);
}

TEST(PercentilesExactBelow2048) {
  auto h = MakeHistogram();
  for (uint64_t v = 1; v <= 1000; ++v) h->Record(v);
  HistogramSnapshot s = h->Snapshot();
  CHECK_EQ(s.ValueAtPercentile(50), 500.0);
  CHECK_EQ(s.ValueAtPercentile(99), 990.0);
  CHECK_EQ(s.ValueAtPercentile(99.9), 999.0);  // not 1000: the one-ulp step down
  CHECK_EQ(s.ValueAtPercentile(100), 1000.0);
  CHECK_EQ(s.ValueAtPercentile(0.05), 1.0);
  // Clamped to max: a lone large value reports itself, not its bucket's top.
  auto g = MakeHistogram();
  g->Record(1'000'001);
  HistogramSnapshot t = g->Snapshot();
  CHECK(HighestEquivalent(CountsIndex(1'000'001)) > 1'000'001);
  CHECK_EQ(t.ValueAtPercentile(50), 1'000'001.0);
}

TEST(FourThreadsCountExactly) {
  auto h = MakeHistogram();
  const uint64_t per = kSanitized ? 200000 : 1000000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < per; ++i) h->Record(1000 + (i % 1000) * (t + 1));
    });
  }
  for (auto& t : threads) t.join();
  HistogramSnapshot s = h->Snapshot();
  CHECK_EQ(s.count(), 4 * per);
  double sum = 0;
  for (int t = 0; t < 4; ++t) {
    sum += static_cast<double>(per) * 1000 + static_cast<double>(per / 1000) * 999 * 1000 / 2 * (t + 1);
  }
  CHECK_EQ(s.sum(), sum);
  CHECK_EQ(s.min(), 1000u);
  CHECK_EQ(s.max(), 1000u + 999 * 4);
  // The threads exited; their counts stay.
  CHECK_EQ(h->Snapshot().count(), 4 * per);
}

TEST(ConcurrentSnapshotsSeeConsistentData) {
  auto h = MakeHistogram();
  std::atomic<bool> stop{false};
  const uint64_t per = kSanitized ? 50000 : 500000;
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&] {
      for (uint64_t i = 0; i < per; ++i) h->Record(100 + i % 5000);
    });
  }
  std::thread reader([&] {
    uint64_t last = 0;
    bool ok = true;
    HistogramSnapshot s;
    while (!stop.load()) {
      CHECK_EQ(h->SnapshotInto(&s), Status::kOk);
      if (s.count() == 0) continue;
      ok &= s.count() >= last;
      ok &= s.min() <= s.max() && s.min() >= 100 && s.max() <= 5099;
      last = s.count();
    }
    CHECK(ok);
  });
  for (auto& w : writers) w.join();
  stop.store(true);
  reader.join();
  CHECK_EQ(h->Snapshot().count(), 2 * per);
}

TEST(ExternalShardByHand) {
  auto h = MakeHistogram();
  double* shard = nullptr;
  uint32_t slot = 99;
  CHECK_EQ(h->AcquireShard(&shard, &slot), Status::kOk);
  CHECK(shard != nullptr);
  CHECK(slot < kMaxShards);
  CHECK_EQ(reinterpret_cast<uintptr_t>(shard) % myelin::kCacheLine, 0u);
  // A fresh shard is the contract's initial state.
  CHECK_EQ(shard[0], 0.0);
  CHECK_EQ(shard[1], 0.0);
  CHECK(std::isinf(shard[2]) && shard[2] > 0);
  CHECK_EQ(shard[3], 0.0);
  CHECK_EQ(shard[4 + kCountsLen - 1], 0.0);

  for (uint64_t v : {5u, 5000u, 5'000'000u}) WriteByHand(shard, v);
  h->Record(7);
  HistogramSnapshot s = h->Snapshot();
  CHECK_EQ(s.count(), 4u);
  CHECK_EQ(s.sum(), 5.0 + 5000 + 5'000'000 + 7);
  CHECK_EQ(s.min(), 5u);
  CHECK_EQ(s.max(), 5'000'000u);
  CHECK_EQ(s.CountAt(CountsIndex(5000)), 1u);
  CHECK_EQ(s.CountAt(5), 1u);

  // Released data stays; the next acquirer of the slot continues the same shard.
  h->ReleaseShard(slot);
  h->ReleaseShard(slot);  // twice: ignored
  h->ReleaseShard(kMaxShards + 3);  // unknown: ignored
  CHECK_EQ(h->Snapshot().count(), 4u);
  double* again = nullptr;
  uint32_t slot2 = 99;
  CHECK_EQ(h->AcquireShard(&again, &slot2), Status::kOk);
  CHECK_EQ(slot2, slot);
  CHECK(again == shard);
  CHECK_EQ(again[0], 3.0);
  WriteByHand(again, 1);
  CHECK_EQ(h->Snapshot().count(), 5u);
  CHECK_EQ(h->Snapshot().min(), 1u);
  h->ReleaseShard(slot2);

  CHECK_EQ(h->AcquireShard(nullptr, &slot2), Status::kInvalidArgument);
  CHECK_EQ(h->AcquireShard(&again, nullptr), Status::kInvalidArgument);
}

TEST(ExternalGarbageDoesNotCorrupt) {
  auto h = MakeHistogram();
  double* shard = nullptr;
  uint32_t slot = 0;
  CHECK_EQ(h->AcquireShard(&shard, &slot), Status::kOk);
  shard[2] = std::nan("");
  shard[3] = -1;
  shard[4 + 10] = -3;
  shard[4 + 11] = std::nan("");
  shard[4 + 12] = 1e300;
  shard[4 + 13] = 2;
  HistogramSnapshot s = h->Snapshot();
  CHECK_EQ(s.count(), 2u);  // only the sane bucket counts
  CHECK_EQ(s.min(), 13u);
  CHECK_EQ(s.max(), 13u);
  h->ReleaseShard(slot);
}

TEST(ExhaustExternalShards) {
  auto h = MakeHistogram();
  std::vector<uint32_t> slots;
  double* shard = nullptr;
  uint32_t slot = 0;
  for (uint32_t i = 0; i < kMaxShards; ++i) {
    CHECK_EQ(h->AcquireShard(&shard, &slot), Status::kOk);
    WriteByHand(shard, 100 + i);
    slots.push_back(slot);
  }
  CHECK_EQ(h->AcquireShard(&shard, &slot), Status::kFull);
  h->Record(1);  // native threads do not depend on external slots
  CHECK_EQ(h->Snapshot().count(), kMaxShards + 1u);
  h->ReleaseShard(slots[17]);
  CHECK_EQ(h->AcquireShard(&shard, &slot), Status::kOk);
  CHECK_EQ(slot, slots[17]);
  for (uint32_t s : slots) h->ReleaseShard(s);
}

TEST(ExhaustNativeSlotsThenOverflowCounts) {
  auto h = MakeHistogram();
  // 64 threads hold a slot each (or as many as are free: this thread may hold one), so
  // the 65th must record through the overflow shard.
  std::latch holding(kMaxShards + 1);
  std::latch done(1);
  std::vector<std::thread> holders;
  for (uint32_t i = 0; i < kMaxShards; ++i) {
    holders.emplace_back([&] {
      h->Record(10);
      holding.arrive_and_wait();
      done.wait();
    });
  }
  std::thread late([&] {
    holding.arrive_and_wait();
    for (int i = 0; i < 1000; ++i) h->Record(20);
  });
  late.join();
  HistogramSnapshot s = h->Snapshot();
  CHECK_EQ(s.count(), kMaxShards + 1000u);
  CHECK(s.overflow_count() >= 1000u);
  CHECK_EQ(s.CountAt(20), 1000u);
  done.count_down();
  for (auto& t : holders) t.join();
  // Slots came back at thread exit: a new thread gets one, not the overflow.
  const uint64_t overflow_before = h->Snapshot().overflow_count();
  std::thread([&] {
    for (int i = 0; i < 100; ++i) h->Record(30);
  }).join();
  s = h->Snapshot();
  CHECK_EQ(s.overflow_count(), overflow_before);
  CHECK_EQ(s.count(), kMaxShards + 1100u);
}

TEST(TwoHistogramsOneThread) {
  auto a = MakeHistogram();
  auto b = MakeHistogram();
  for (int i = 0; i < 1000; ++i) {
    a->Record(1);
    b->Record(2);
    b->Record(3);
  }
  CHECK_EQ(a->Snapshot().count(), 1000u);
  CHECK_EQ(b->Snapshot().count(), 2000u);
  CHECK_EQ(a->Snapshot().max(), 1u);
  CHECK_EQ(b->Snapshot().min(), 2u);
  a.reset();  // destroying one does not disturb the other, or this thread's slot
  b->Record(4);
  CHECK_EQ(b->Snapshot().count(), 2001u);
}

TEST(ResetClearsEveryShard) {
  auto h = MakeHistogram();
  double* shard = nullptr;
  uint32_t slot = 0;
  CHECK_EQ(h->AcquireShard(&shard, &slot), Status::kOk);
  WriteByHand(shard, 50);
  h->Record(60);
  std::thread([&] { h->Record(70); }).join();
  CHECK_EQ(h->Snapshot().count(), 3u);
  h->Reset();
  HistogramSnapshot s = h->Snapshot();
  CHECK_EQ(s.count(), 0u);
  CHECK_EQ(s.sum(), 0.0);
  CHECK_EQ(s.max(), 0u);
  CHECK(std::isinf(shard[2]));
  WriteByHand(shard, 80);
  h->Record(90);
  s = h->Snapshot();
  CHECK_EQ(s.count(), 2u);
  CHECK_EQ(s.min(), 80u);
  CHECK_EQ(s.max(), 90u);
  CHECK_EQ(s.sum(), 170.0);
  h->ReleaseShard(slot);
}

TEST(ResetRacingWithRecordStaysSane) {
  auto h = MakeHistogram();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint64_t i = 0;
    while (!stop.load(std::memory_order_relaxed)) h->Record(1000 + (i++ % 100));
  });
  for (int r = 0; r < (kSanitized ? 5 : 50); ++r) {
    h->Reset();
    HistogramSnapshot s = h->Snapshot();
    CHECK(s.count() == 0 || (s.min() >= 1000 && s.max() <= 1099 && s.min() <= s.max()));
  }
  stop.store(true);
  writer.join();
  h->Reset();
  CHECK_EQ(h->Snapshot().count(), 0u);
}
