// Shared plumbing for the native micro-benchmarks: wall clock, repeats, median, and
// one machine-readable line per result that `myelin bench` parses:
//   RESULT {"scenario":"...","metric":"items/s","median":..,"min":..,"max":..,"repeats":N}
// Progress goes to stderr so it never mixes with results on stdout.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace myelin::bench {

inline uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Repeats from MYELIN_BENCH_REPEATS (default 5, the minimum BENCHMARKS.md allows).
inline int Repeats() {
  const char* e = std::getenv("MYELIN_BENCH_REPEATS");
  int r = e ? std::atoi(e) : 5;
  return r < 1 ? 1 : r;
}

// Scale factor for iteration counts from MYELIN_BENCH_SCALE (default 1.0); CI smoke
// runs use a small value so the binaries are exercised without taking minutes.
inline double Scale() {
  const char* e = std::getenv("MYELIN_BENCH_SCALE");
  double s = e ? std::atof(e) : 1.0;
  return s > 0 ? s : 1.0;
}

inline uint64_t Scaled(uint64_t n) {
  uint64_t v = static_cast<uint64_t>(static_cast<double>(n) * Scale());
  return v < 1 ? 1 : v;
}

struct Summary {
  double median, min, max;
};

inline Summary Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {med, v.front(), v.back()};
}

// Runs fn() once as warm-up then Repeats() times; fn returns one sample (higher or
// lower is better as the metric says). Prints progress and the RESULT line.
template <typename Fn>
Summary Run(const char* scenario, const char* metric, Fn&& fn) {
  std::fprintf(stderr, "  %s: warm-up", scenario);
  fn();
  std::vector<double> samples;
  const int reps = Repeats();
  for (int i = 0; i < reps; ++i) {
    samples.push_back(fn());
    std::fprintf(stderr, " .");
  }
  std::fprintf(stderr, "\n");
  Summary s = Summarize(samples);
  std::printf(
      "RESULT {\"scenario\":\"%s\",\"metric\":\"%s\",\"median\":%.6g,\"min\":%.6g,"
      "\"max\":%.6g,\"repeats\":%d}\n",
      scenario, metric, s.median, s.min, s.max, reps);
  std::fflush(stdout);
  return s;
}

// Defeats dead-code elimination: every bench folds delivered values into a sink
// that is printed at exit.
inline volatile uint64_t g_sink = 0;
inline void Consume(uint64_t v) { g_sink = g_sink + v; }
inline void PrintSink() { std::fprintf(stderr, "  checksum %llu\n", (unsigned long long)g_sink); }

}  // namespace myelin::bench
