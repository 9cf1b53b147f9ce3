// Multi-threaded stress of both rings: 4 producers and 4 consumers move
// MYELIN_STRESS_ITEMS items (default 10^8) through each ring kind, and a bitmap proves
// every item was seen exactly once. Built plain and under -fsanitize=thread
// (npm run test:native:tsan), where the count is set lower by the runner if asked.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "check.h"
#include "queue/mpmc_ring.h"
#include "queue/spsc_ring.h"

using namespace myelin;

namespace {

uint64_t StressItems() {
  const char* e = std::getenv("MYELIN_STRESS_ITEMS");
  uint64_t n = e ? std::strtoull(e, nullptr, 10) : 100'000'000ull;
  return n < 8 ? 8 : n;
}

// One bit per item; a second sighting of an item is a duplicate.
struct SeenSet {
  explicit SeenSet(uint64_t n) : words((n + 63) / 64) {}
  bool Mark(uint64_t item) {
    const uint64_t bit = uint64_t{1} << (item & 63);
    return (words[item >> 6].fetch_or(bit, std::memory_order_relaxed) & bit) == 0;
  }
  uint64_t Count() const {
    uint64_t c = 0;
    for (const auto& w : words) c += __builtin_popcountll(w.load(std::memory_order_relaxed));
    return c;
  }
  std::vector<std::atomic<uint64_t>> words;
};

constexpr int kThreads = 4;
constexpr size_t kBatch = 64;

}  // namespace

// Four independent SPSC pairs (an SPSC ring has one producer and one consumer by
// contract); each pair moves a quarter of the items. Batches vary in size so the wrap
// point lands everywhere.
TEST(spsc_4x4_every_item_exactly_once) {
  const uint64_t total = StressItems();
  const uint64_t per = total / kThreads;
  SeenSet seen(per * kThreads);
  std::atomic<uint64_t> duplicates{0}, out_of_order{0};
  std::vector<std::unique_ptr<SpscRing<uint64_t>>> rings(kThreads);
  for (auto& r : rings) CHECK_EQ(SpscRing<uint64_t>::Create(1024, &r), Status::kOk);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      uint64_t buf[kBatch];
      uint64_t next = t * per;
      const uint64_t end = next + per;
      size_t n = 1;
      while (next < end) {
        n = n % kBatch + 1;
        size_t want = std::min<uint64_t>(n, end - next);
        for (size_t i = 0; i < want; ++i) buf[i] = next + i;
        size_t pushed = rings[t]->TryPushBulk(buf, want);
        if (pushed == 0) YieldCpu();
        next += pushed;
      }
      rings[t]->Close();
    });
    ts.emplace_back([&, t] {
      uint64_t buf[kBatch];
      uint64_t expect = t * per;
      for (;;) {
        size_t got = rings[t]->TryPopBulk(buf, kBatch);
        if (got == 0) {
          if (rings[t]->closed() && rings[t]->Size() == 0) break;
          YieldCpu();
          continue;
        }
        for (size_t i = 0; i < got; ++i) {
          if (buf[i] != expect++) out_of_order.fetch_add(1, std::memory_order_relaxed);
          if (!seen.Mark(buf[i])) duplicates.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (auto& th : ts) th.join();
  CHECK_EQ(duplicates.load(), 0u);
  CHECK_EQ(out_of_order.load(), 0u);
  CHECK_EQ(seen.Count(), per * kThreads);
}

// One MPMC ring shared by 4 producers and 4 consumers. Each consumer also checks that
// it sees each producer's items in increasing order (claims are ordered).
TEST(mpmc_4p4c_every_item_exactly_once) {
  const uint64_t total = StressItems();
  const uint64_t per = total / kThreads;
  SeenSet seen(per * kThreads);
  std::atomic<uint64_t> duplicates{0}, out_of_order{0};
  std::unique_ptr<MpmcRing<uint64_t>> ring;
  CHECK_EQ(MpmcRing<uint64_t>::Create(4096, &ring), Status::kOk);
  std::atomic<int> producers_left{kThreads};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      uint64_t buf[kBatch];
      uint64_t next = t * per;
      const uint64_t end = next + per;
      size_t n = t;
      while (next < end) {
        n = n % kBatch + 1;
        size_t want = std::min<uint64_t>(n, end - next);
        for (size_t i = 0; i < want; ++i) buf[i] = next + i;
        size_t pushed = ring->TryPushBulk(buf, want);
        if (pushed == 0) YieldCpu();
        next += pushed;
      }
      if (producers_left.fetch_sub(1) == 1) ring->Close();
    });
    ts.emplace_back([&, t] {
      uint64_t buf[kBatch];
      uint64_t last[kThreads];
      for (auto& l : last) l = UINT64_MAX;
      size_t got = 0;
      WaitOptions opts;
      while (ring->PopBulk(buf, 1 + t * 16, &got, opts) == Status::kOk) {
        for (size_t i = 0; i < got; ++i) {
          const uint64_t item = buf[i];
          const uint64_t producer = item / per;
          if (producer < kThreads) {
            if (last[producer] != UINT64_MAX && item <= last[producer])
              out_of_order.fetch_add(1, std::memory_order_relaxed);
            last[producer] = item;
          }
          if (item >= per * kThreads || !seen.Mark(item)) duplicates.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (auto& th : ts) th.join();
  CHECK_EQ(duplicates.load(), 0u);
  CHECK_EQ(out_of_order.load(), 0u);
  CHECK_EQ(seen.Count(), per * kThreads);
}

// The blocking path: both sides park on every wait (no spinning, no yielding) over a
// 4-slot ring, so almost every hand-off goes through the event counts' futexes. A lost
// wake-up shows as a hang (ctest's timeout), an order or count error as a failure.
TEST(spsc_blocking_park_every_wait) {
  const uint64_t per = std::max<uint64_t>(StressItems() / 10000, 2000);
  std::unique_ptr<SpscRing<uint64_t>> ring;
  CHECK_EQ(SpscRing<uint64_t>::Create(4, &ring), Status::kOk);
  WaitOptions park;
  park.spin = 0;
  park.yield = 0;
  std::atomic<uint64_t> out_of_order{0}, received{0};
  std::thread consumer([&] {
    uint64_t v = 0, expect = 0;
    while (ring->Pop(&v, park) == Status::kOk) {
      if (v != expect++) out_of_order.fetch_add(1, std::memory_order_relaxed);
      received.fetch_add(1, std::memory_order_relaxed);
    }
  });
  for (uint64_t i = 0; i < per; ++i) CHECK_EQ(ring->Push(i, park), Status::kOk);
  ring->Close();
  consumer.join();
  CHECK_EQ(out_of_order.load(), 0u);
  CHECK_EQ(received.load(), per);
}

TEST(mpmc_blocking_park_every_wait) {
  const uint64_t per = std::max<uint64_t>(StressItems() / 20000, 1000);
  std::unique_ptr<MpmcRing<uint64_t>> ring;
  CHECK_EQ(MpmcRing<uint64_t>::Create(4, &ring), Status::kOk);
  WaitOptions park;
  park.spin = 0;
  park.yield = 0;
  std::atomic<uint64_t> sum{0}, count{0};
  std::atomic<int> producers_left{2};
  std::vector<std::thread> ts;
  for (int p = 0; p < 2; ++p)
    ts.emplace_back([&, p] {
      for (uint64_t i = 0; i < per; ++i) CHECK_EQ(ring->Push(p * per + i, park), Status::kOk);
      if (producers_left.fetch_sub(1) == 1) ring->Close();
    });
  for (int c = 0; c < 2; ++c)
    ts.emplace_back([&] {
      uint64_t v = 0;
      while (ring->Pop(&v, park) == Status::kOk) {
        sum.fetch_add(v, std::memory_order_relaxed);
        count.fetch_add(1, std::memory_order_relaxed);
      }
    });
  for (auto& t : ts) t.join();
  CHECK_EQ(count.load(), 2 * per);
  CHECK_EQ(sum.load(), (2 * per) * (2 * per - 1) / 2);
}
