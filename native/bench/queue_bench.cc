// Ring benchmarks against their anchors, all in one run (BENCHMARKS.md):
//   queue.spsc.bulk64      8-byte items, bulk 64 per call           items/s
//   queue.spsc.batch1      the same ring, one item per call         items/s
//   queue.mutex_deque.1p1c std::mutex + std::deque, one item a lock items/s
//   queue.mpmc.2p2c.bulk64 / .batch1 and queue.mutex_deque.2p2c     items/s
//   queue.spsc.rtt.p50 / .p99   ping-pong over two SPSC rings        ns
#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "queue/mpmc_ring.h"
#include "queue/spsc_ring.h"

using namespace myelin;
using namespace myelin::bench;

namespace {

double SpscThroughput(size_t batch, uint64_t n) {
  std::unique_ptr<SpscRing<uint64_t>> ring;
  SpscRing<uint64_t>::Create(8192, &ring);
  std::atomic<bool> go{false};
  uint64_t sum = 0;
  std::thread consumer([&] {
    std::vector<uint64_t> buf(batch);
    uint64_t got = 0, s = 0;
    while (!go.load(std::memory_order_acquire)) CpuRelax();
    while (got < n) {
      size_t k = ring->TryPopBulk(buf.data(), batch);
      if (k == 0) {
        CpuRelax();
        continue;
      }
      for (size_t i = 0; i < k; ++i) s += buf[i];
      got += k;
    }
    sum = s;
  });
  std::vector<uint64_t> buf(batch);
  const uint64_t t0 = NowNs();
  go.store(true, std::memory_order_release);
  for (uint64_t sent = 0; sent < n;) {
    const size_t want = std::min<uint64_t>(batch, n - sent);
    for (size_t i = 0; i < want; ++i) buf[i] = sent + i;
    size_t k = ring->TryPushBulk(buf.data(), want);
    if (k == 0) CpuRelax();
    sent += k;
  }
  consumer.join();
  const uint64_t t1 = NowNs();
  Consume(sum);
  return n * 1e9 / double(t1 - t0);
}

struct MutexDeque {
  std::mutex mu;
  std::deque<uint64_t> q;
  void Push(uint64_t v) {
    std::lock_guard<std::mutex> g(mu);
    q.push_back(v);
  }
  bool Pop(uint64_t* v) {
    std::lock_guard<std::mutex> g(mu);
    if (q.empty()) return false;
    *v = q.front();
    q.pop_front();
    return true;
  }
};

double MutexThroughput(int producers, int consumers, uint64_t n) {
  MutexDeque q;
  std::atomic<uint64_t> consumed{0}, sum{0};
  const uint64_t per = n / producers;
  const uint64_t total = per * producers;
  std::vector<std::thread> ts;
  const uint64_t t0 = NowNs();
  for (int p = 0; p < producers; ++p)
    ts.emplace_back([&] {
      for (uint64_t i = 0; i < per; ++i) q.Push(i);
    });
  for (int c = 0; c < consumers; ++c)
    ts.emplace_back([&] {
      uint64_t v, s = 0;
      while (consumed.load(std::memory_order_relaxed) < total) {
        if (q.Pop(&v)) {
          s += v;
          consumed.fetch_add(1, std::memory_order_relaxed);
        } else {
          std::this_thread::yield();
        }
      }
      sum.fetch_add(s);
    });
  for (auto& t : ts) t.join();
  const uint64_t t1 = NowNs();
  Consume(sum.load());
  return total * 1e9 / double(t1 - t0);
}

double MpmcThroughput(int producers, int consumers, size_t batch, uint64_t n) {
  std::unique_ptr<MpmcRing<uint64_t>> ring;
  MpmcRing<uint64_t>::Create(8192, &ring);
  const uint64_t per = n / producers;
  const uint64_t total = per * producers;
  std::atomic<uint64_t> consumed{0}, sum{0};
  std::vector<std::thread> ts;
  const uint64_t t0 = NowNs();
  for (int p = 0; p < producers; ++p)
    ts.emplace_back([&] {
      std::vector<uint64_t> buf(batch);
      for (uint64_t sent = 0; sent < per;) {
        const size_t want = std::min<uint64_t>(batch, per - sent);
        for (size_t i = 0; i < want; ++i) buf[i] = sent + i;
        size_t k = ring->TryPushBulk(buf.data(), want);
        if (k == 0) YieldCpu();
        sent += k;
      }
    });
  for (int c = 0; c < consumers; ++c)
    ts.emplace_back([&] {
      std::vector<uint64_t> buf(batch);
      uint64_t s = 0;
      while (consumed.load(std::memory_order_relaxed) < total) {
        size_t k = ring->TryPopBulk(buf.data(), batch);
        if (k == 0) {
          YieldCpu();
          continue;
        }
        for (size_t i = 0; i < k; ++i) s += buf[i];
        consumed.fetch_add(k, std::memory_order_relaxed);
      }
      sum.fetch_add(s);
    });
  for (auto& t : ts) t.join();
  const uint64_t t1 = NowNs();
  Consume(sum.load());
  return total * 1e9 / double(t1 - t0);
}

// Ping-pong: A stamps and pushes, B echoes back, A records the round trip. Both sides
// busy-poll, as a latency-critical hand-off would.
void RoundTrip(uint64_t n, std::vector<double>* p50s, std::vector<double>* p99s) {
  std::unique_ptr<SpscRing<uint64_t>> ab, ba;
  SpscRing<uint64_t>::Create(64, &ab);
  SpscRing<uint64_t>::Create(64, &ba);
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    uint64_t v;
    while (!stop.load(std::memory_order_relaxed)) {
      if (ab->TryPop(&v)) {
        while (!ba->TryPush(v)) CpuRelax();
      } else {
        CpuRelax();
      }
    }
  });
  std::vector<double> rtt(n);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t t0 = NowNs();
    ab->TryPush(t0);
    uint64_t v;
    while (!ba->TryPop(&v)) CpuRelax();
    rtt[i] = double(NowNs() - v);
  }
  stop.store(true);
  echo.join();
  std::sort(rtt.begin(), rtt.end());
  p50s->push_back(rtt[n / 2]);
  p99s->push_back(rtt[n * 99 / 100]);
}

}  // namespace

int main() {
  std::fprintf(stderr, "queue benchmarks (%d repeats)\n", Repeats());
  const uint64_t n = Scaled(50'000'000);
  const uint64_t n_slow = Scaled(5'000'000);
  Run("queue.spsc.bulk64", "items/s", [&] { return SpscThroughput(64, n); });
  Run("queue.spsc.batch1", "items/s", [&] { return SpscThroughput(1, n_slow * 4); });
  Run("queue.mutex_deque.1p1c", "items/s", [&] { return MutexThroughput(1, 1, n_slow); });
  Run("queue.mpmc.2p2c.bulk64", "items/s", [&] { return MpmcThroughput(2, 2, 64, n); });
  Run("queue.mpmc.2p2c.batch1", "items/s", [&] { return MpmcThroughput(2, 2, 1, n_slow); });
  Run("queue.mutex_deque.2p2c", "items/s", [&] { return MutexThroughput(2, 2, n_slow); });
  std::vector<double> p50s, p99s;
  const uint64_t trips = Scaled(200'000);
  RoundTrip(trips, &p50s, &p99s);  // warm-up
  p50s.clear();
  p99s.clear();
  for (int i = 0; i < Repeats(); ++i) RoundTrip(trips, &p50s, &p99s);
  auto a = Summarize(p50s), b = Summarize(p99s);
  std::printf("RESULT {\"scenario\":\"queue.spsc.rtt.p50\",\"metric\":\"ns\",\"median\":%.6g,\"min\":%.6g,\"max\":%.6g,\"repeats\":%d}\n",
              a.median, a.min, a.max, Repeats());
  std::printf("RESULT {\"scenario\":\"queue.spsc.rtt.p99\",\"metric\":\"ns\",\"median\":%.6g,\"min\":%.6g,\"max\":%.6g,\"repeats\":%d}\n",
              b.median, b.min, b.max, Repeats());
  PrintSink();
  return 0;
}
