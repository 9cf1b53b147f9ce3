// Slab vs glibc malloc, same pattern for both, in the same run:
//   *.same_thread   one thread allocates 64 blocks (sizes cycling 64..256 B in 32 B steps),
//                   writes each, then frees the 64 in allocation order; alloc+free pairs/s.
//   *.cross_thread  thread A allocates and writes blocks and hands them to thread B in
//                   batches of 256 through a single-producer single-consumer ring of
//                   64 batches; B reads and frees each; alloc+free pairs/s, and as
//                   *.cross_thread.cpu the CPU time of A + B per pair. A side that waits
//                   sleeps on a futex (atomic::wait), so the CPU time is the allocator's
//                   and the handoff's work; on a shared 2-vCPU machine it is the steadier
//                   number (spinning with yield made wall time swing 3x between runs).
// Usage: slab_bench [substring]  runs only scenarios whose name contains it, so each
// scenario can be run in a fresh process.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <thread>
#include <vector>

#include "alloc/slab.h"
#include "bench_util.h"

using myelin::Slab;
namespace bench = myelin::bench;

namespace {

constexpr int kLive = 64;
constexpr std::size_t kSizes[] = {64, 96, 128, 160, 192, 224, 256};
constexpr std::size_t kSizeCount = sizeof kSizes / sizeof kSizes[0];
constexpr std::size_t kBatch = 256;
constexpr std::size_t kRingSlots = 64;  // batches in flight, 16 Ki blocks

struct SlabAlloc {
  Slab* slab;
  void* Alloc(std::size_t n) { return slab->Allocate(n); }
  void Free(void* p) { slab->Free(p); }
};

struct MallocAlloc {
  void* Alloc(std::size_t n) { return std::malloc(n); }
  void Free(void* p) { std::free(p); }
};

template <typename A>
double SameThread(A a, uint64_t pairs) {
  void* live[kLive];
  uint64_t sum = 0;
  std::size_t k = 0;
  const uint64_t rounds = pairs / kLive;
  const uint64_t t0 = bench::NowNs();
  for (uint64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < kLive; ++i) {
      const std::size_t n = kSizes[k];
      k = k + 1 == kSizeCount ? 0 : k + 1;
      void* p = a.Alloc(n);
      std::memcpy(p, &r, sizeof r);  // touch it, as an event record would be
      live[i] = p;
    }
    for (int i = 0; i < kLive; ++i) {
      uint64_t v;
      std::memcpy(&v, live[i], sizeof v);
      sum += v;
      a.Free(live[i]);
    }
  }
  const uint64_t t1 = bench::NowNs();
  bench::Consume(sum);
  return static_cast<double>(rounds * kLive) * 1e9 / static_cast<double>(t1 - t0);
}

// Single-producer single-consumer ring of batches. head/tail on their own lines.
struct Ring {
  struct Batch {
    void* p[kBatch];
  };
  alignas(myelin::kCacheLine) std::atomic<uint64_t> head{0};  // written by the producer
  alignas(myelin::kCacheLine) std::atomic<uint64_t> tail{0};  // written by the consumer
  alignas(myelin::kCacheLine) Batch slots[kRingSlots];
};

inline uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Waits until `value` differs from `old`: a short spin, then a futex wait (atomic::wait),
// so a side that waits burns no CPU and the CPU time per pair measures allocator work.
inline void AwaitChange(const std::atomic<uint64_t>& value, uint64_t old) {
  for (int i = 0; i < 256; ++i) {
    if (value.load(std::memory_order_acquire) != old) return;
  }
  while (value.load(std::memory_order_acquire) == old) value.wait(old, std::memory_order_acquire);
}

struct CrossResult {
  double pairs_per_s;
  double cpu_ns_per_pair;  // producer + consumer thread CPU time
};

template <typename A>
CrossResult CrossThread(A a, uint64_t pairs) {
  auto ring = std::make_unique<Ring>();
  const uint64_t batches = pairs / kBatch;
  std::atomic<uint64_t> consumer_sum{0}, consumer_cpu{0};
  const uint64_t t0 = bench::NowNs();
  std::thread consumer([&] {
    const uint64_t c0 = ThreadCpuNs();
    uint64_t sum = 0;
    for (uint64_t b = 0; b < batches; ++b) {
      uint64_t head;
      while ((head = ring->head.load(std::memory_order_acquire)) == b) AwaitChange(ring->head, head);
      Ring::Batch& batch = ring->slots[b % kRingSlots];
      for (std::size_t i = 0; i < kBatch; ++i) {
        uint64_t v;
        std::memcpy(&v, batch.p[i], sizeof v);
        sum += v;
        a.Free(batch.p[i]);
      }
      ring->tail.store(b + 1, std::memory_order_release);
      ring->tail.notify_one();
    }
    consumer_sum.store(sum);
    consumer_cpu.store(ThreadCpuNs() - c0);
  });
  const uint64_t c0 = ThreadCpuNs();
  std::size_t k = 0;
  for (uint64_t b = 0; b < batches; ++b) {
    uint64_t tail;
    while (b - (tail = ring->tail.load(std::memory_order_acquire)) >= kRingSlots) {
      AwaitChange(ring->tail, tail);
    }
    Ring::Batch& batch = ring->slots[b % kRingSlots];
    for (std::size_t i = 0; i < kBatch; ++i) {
      const std::size_t n = kSizes[k];
      k = k + 1 == kSizeCount ? 0 : k + 1;
      void* p = a.Alloc(n);
      std::memcpy(p, &b, sizeof b);
      batch.p[i] = p;
    }
    ring->head.store(b + 1, std::memory_order_release);
    ring->head.notify_one();
  }
  const uint64_t producer_cpu = ThreadCpuNs() - c0;
  consumer.join();
  const uint64_t t1 = bench::NowNs();
  bench::Consume(consumer_sum.load());
  const double n = static_cast<double>(batches * kBatch);
  return {n * 1e9 / static_cast<double>(t1 - t0),
          static_cast<double>(producer_cpu + consumer_cpu.load()) / n};
}

// Runs a cross-thread scenario through bench::Run (pairs/s) and prints the CPU time per
// pair of the same samples as a second RESULT line, "<scenario>.cpu" in ns/pair.
template <typename A>
double RunCross(const char* scenario, A a, uint64_t pairs) {
  std::vector<double> cpu;
  const double median = bench::Run(scenario, "pairs/s", [&] {
    CrossResult r = CrossThread(a, pairs);
    cpu.push_back(r.cpu_ns_per_pair);
    return r.pairs_per_s;
  }).median;
  cpu.erase(cpu.begin());  // the warm-up
  const bench::Summary s = bench::Summarize(cpu);
  std::printf(
      "RESULT {\"scenario\":\"%s.cpu\",\"metric\":\"ns/pair\",\"median\":%.6g,\"min\":%.6g,"
      "\"max\":%.6g,\"repeats\":%zu}\n",
      scenario, s.median, s.min, s.max, cpu.size());
  std::fflush(stdout);
  return median;
}

}  // namespace

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  auto wanted = [&](const char* name) { return !filter || std::strstr(name, filter); };
  std::unique_ptr<Slab> slab;
  if (!myelin::Ok(Slab::Create({}, &slab))) return 1;

  const uint64_t same_pairs = bench::Scaled(8'000'000);
  const uint64_t cross_pairs = bench::Scaled(4'000'000);
  double slab_same = 0, malloc_same = 0, slab_cross = 0, malloc_cross = 0;
  if (wanted("slab.same_thread")) {
    slab_same = bench::Run("slab.same_thread", "pairs/s", [&] {
      return SameThread(SlabAlloc{slab.get()}, same_pairs);
    }).median;
  }
  if (wanted("malloc.same_thread")) {
    malloc_same = bench::Run("malloc.same_thread", "pairs/s", [&] {
      return SameThread(MallocAlloc{}, same_pairs);
    }).median;
  }
  if (wanted("slab.cross_thread")) {
    slab_cross = RunCross("slab.cross_thread", SlabAlloc{slab.get()}, cross_pairs);
  }
  if (wanted("malloc.cross_thread")) {
    malloc_cross = RunCross("malloc.cross_thread", MallocAlloc{}, cross_pairs);
  }
  if (slab_same > 0 && malloc_same > 0) {
    std::fprintf(stderr, "  same_thread  slab/malloc = %.2fx (%.1f vs %.1f ns per pair)\n",
                 slab_same / malloc_same, 1e9 / slab_same, 1e9 / malloc_same);
  }
  if (slab_cross > 0 && malloc_cross > 0) {
    std::fprintf(stderr, "  cross_thread slab/malloc = %.2fx (%.1f vs %.1f ns per pair)\n",
                 slab_cross / malloc_cross, 1e9 / slab_cross, 1e9 / malloc_cross);
  }
  const myelin::SlabStats st = slab->Stats();
  std::fprintf(stderr, "  slab: %zu chunks (%zu KiB), %zu blocks in use\n", st.chunks,
               st.bytes_reserved / 1024, st.blocks_in_use);
  bench::PrintSink();
  return 0;
}
