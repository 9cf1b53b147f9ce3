// Histogram recording from native threads:
//   hist.record.native           one thread, records/s
//   hist.record.native.4threads  four threads into one histogram, aggregate records/s
// Values are pseudo-random latencies spread over 1 us .. ~16 ms (xorshift), so the
// writes land in many buckets as real latencies do. Also prints one snapshot's cost.
// Usage: histogram_bench [substring]  runs only the scenarios whose name contains it.
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "hist/histogram.h"

using myelin::Histogram;
namespace bench = myelin::bench;

namespace {

// Records n values; returns records/s for this thread.
double RecordLoop(Histogram* h, uint64_t n, uint64_t seed) {
  uint64_t x = seed | 1;
  const uint64_t t0 = bench::NowNs();
  for (uint64_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    h->Record(1000 + (x & ((uint64_t{1} << 24) - 1)));
  }
  const uint64_t t1 = bench::NowNs();
  return static_cast<double>(n) * 1e9 / static_cast<double>(t1 - t0);
}

}  // namespace

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  auto wanted = [&](const char* name) {
    if (!filter) return true;
    // "hist.record.native" alone should not also select the 4-thread scenario.
    return std::strcmp(name, filter) == 0 ||
           (std::strstr(name, filter) && std::strcmp(filter, "hist.record.native") != 0);
  };
  std::shared_ptr<Histogram> h;
  if (!myelin::Ok(Histogram::Create(&h))) return 1;
  const uint64_t n = bench::Scaled(20'000'000);

  if (wanted("hist.record.native")) {
    bench::Run("hist.record.native", "records/s", [&] { return RecordLoop(h.get(), n, 42); });
  }
  if (wanted("hist.record.native.4threads")) {
    bench::Run("hist.record.native.4threads", "records/s", [&] {
      const uint64_t per = n / 4;
      std::vector<std::thread> threads;
      const uint64_t t0 = bench::NowNs();
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] { RecordLoop(h.get(), per, 1234 + t); });
      }
      for (auto& t : threads) t.join();
      const uint64_t t1 = bench::NowNs();
      return static_cast<double>(per * 4) * 1e9 / static_cast<double>(t1 - t0);
    });
  }
  myelin::HistogramSnapshot snap;
  const uint64_t s0 = bench::NowNs();
  if (!myelin::Ok(h->SnapshotInto(&snap))) return 1;
  const uint64_t s1 = bench::NowNs();
  std::fprintf(stderr, "  snapshot: %.0f us, count %llu, p50 %.0f ns, p99 %.0f ns, overflow %llu\n",
               static_cast<double>(s1 - s0) / 1e3, static_cast<unsigned long long>(snap.count()),
               snap.ValueAtPercentile(50), snap.ValueAtPercentile(99),
               static_cast<unsigned long long>(snap.overflow_count()));
  bench::Consume(snap.count());
  bench::PrintSink();
  return 0;
}
