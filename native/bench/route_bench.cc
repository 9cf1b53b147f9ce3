// Subject routing micro-benchmarks. The workload is a multi-tenant bus: 10,000
// per-tenant patterns "tenant.<i>.orders.*" plus one cross-tenant auditor
// "tenant.*.audit.>", published to from a fixed set of 1,000 subjects, half
// "tenant.<i>.orders.created" (one match each) and half "tenant.<i>.audit.login.ok"
// (matched by the auditor only).
//
//   route.match.warm   Match with every subject already cached (the steady state)
//   route.match.trie   MatchUncached: validation plus the trie walk, no cache
//   route.match.miss   Match with a 256-entry cache cycling 1,000 subjects, so every
//                      call misses, walks the trie, evicts and inserts
//   route.subscribe    Subscribe of all 10,001 patterns into a fresh matcher
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "route/subject_matcher.h"

using myelin::MatchResult;
using myelin::Status;
using myelin::SubjectMatcher;
namespace bench = myelin::bench;

namespace {

constexpr uint32_t kTenants = 10000;

struct Workload {
  std::vector<std::string> patterns;  // index == subscription id
  std::vector<std::string> subjects;
};

Workload MakeWorkload() {
  Workload w;
  for (uint32_t i = 0; i < kTenants; ++i) w.patterns.push_back("tenant." + std::to_string(i) + ".orders.*");
  w.patterns.push_back("tenant.*.audit.>");
  for (uint32_t k = 0; k < 500; ++k) {
    const std::string tenant = std::to_string((k * 7919u) % kTenants);  // spread over all tenants
    w.subjects.push_back("tenant." + tenant + ".orders.created");
    w.subjects.push_back("tenant." + tenant + ".audit.login.ok");
  }
  std::mt19937 rng(42);
  std::shuffle(w.subjects.begin(), w.subjects.end(), rng);
  return w;
}

bool SubscribeAll(SubjectMatcher* m, const Workload& w) {
  for (uint32_t id = 0; id < w.patterns.size(); ++id) {
    if (m->Subscribe(w.patterns[id], id) != Status::kOk) return false;
  }
  return true;
}

// Matches iters subjects, cycling through the set; returns matches/s.
template <bool kCached>
double MatchLoop(SubjectMatcher* m, const std::vector<std::string>& subjects, uint64_t iters) {
  uint64_t sum = 0;
  size_t j = 0;
  const uint64_t t0 = bench::NowNs();
  for (uint64_t n = 0; n < iters; ++n) {
    MatchResult r;
    const Status st = kCached ? m->Match(subjects[j], &r) : m->MatchUncached(subjects[j], &r);
    sum += static_cast<uint64_t>(st) + r.count + (r.count ? r.ids[0] : 0);
    if (++j == subjects.size()) j = 0;
  }
  const uint64_t ns = bench::NowNs() - t0;
  bench::Consume(sum);
  return static_cast<double>(iters) * 1e9 / static_cast<double>(ns ? ns : 1);
}

}  // namespace

int main() {
  const Workload w = MakeWorkload();

  SubjectMatcher m;
  if (!SubscribeAll(&m, w)) {
    std::fprintf(stderr, "route_bench: subscribe failed\n");
    return 1;
  }
  // The cached and trie paths must agree before either is timed.
  uint64_t total = 0;
  for (const std::string& s : w.subjects) {
    MatchResult a, b;
    if (m.Match(s, &a) != Status::kOk || m.Match(s, &b) != Status::kOk) return 1;
    std::vector<uint32_t> cached(b.ids, b.ids + b.count);
    if (m.MatchUncached(s, &a) != Status::kOk || a.count != cached.size() ||
        !std::equal(cached.begin(), cached.end(), a.ids)) {
      std::fprintf(stderr, "route_bench: cache and trie disagree on %s\n", s.c_str());
      return 1;
    }
    total += a.count;
  }
  std::fprintf(stderr, "route_bench: %zu patterns, %zu subjects, %.2f matches per subject\n",
               m.PatternCount(), w.subjects.size(),
               static_cast<double>(total) / static_cast<double>(w.subjects.size()));

  bench::Run("route.match.warm", "matches/s",
             [&] { return MatchLoop<true>(&m, w.subjects, bench::Scaled(20'000'000)); });
  bench::Run("route.match.trie", "matches/s",
             [&] { return MatchLoop<false>(&m, w.subjects, bench::Scaled(2'000'000)); });

  SubjectMatcher small(256);
  if (!SubscribeAll(&small, w)) return 1;
  bench::Run("route.match.miss", "matches/s",
             [&] { return MatchLoop<true>(&small, w.subjects, bench::Scaled(1'000'000)); });
  const SubjectMatcher::CacheStats st = small.GetCacheStats();
  std::fprintf(stderr, "  miss-bench cache: %llu hits, %llu misses, %llu evictions\n",
               static_cast<unsigned long long>(st.hits), static_cast<unsigned long long>(st.misses),
               static_cast<unsigned long long>(st.evictions));

  bench::Run("route.subscribe", "patterns/s", [&] {
    const uint64_t rounds = bench::Scaled(20);
    uint64_t ns = 0, count = 0;
    for (uint64_t r = 0; r < rounds; ++r) {
      auto fresh = std::make_unique<SubjectMatcher>();
      const uint64_t t0 = bench::NowNs();
      const bool ok = SubscribeAll(fresh.get(), w);
      ns += bench::NowNs() - t0;  // teardown is not part of the metric
      count += w.patterns.size();
      bench::Consume(ok ? fresh->PatternCount() : 0);
    }
    return static_cast<double>(count) * 1e9 / static_cast<double>(ns ? ns : 1);
  });

  bench::PrintSink();
  return 0;
}
