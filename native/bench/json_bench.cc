// FieldExtractor on 1 KiB `pub` events: subject, key and priority out of each.
//   json.extract.1k           one Extract per document, MB/s and docs/s
//   json.extract.1k.batch     ExtractBatch, 256 documents per call, MB/s
//   json.extract.1k.fallback  as json.extract.1k under simdjson's scalar kernels
// The anchor, JSON.parse of the same kind of event in V8, is measured in JS
// (bench/): ~410 MB/s on the reference machine (BENCHMARKS.md).
//
// The events sit back to back in one buffer, as frames do in a receive buffer, so
// each document's padding is the bytes after it and nothing is copied (the buffer
// ends with kJsonPadding spare bytes for the last one).
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.h"
#include "json/field_extractor.h"

namespace myelin {
namespace {

constexpr size_t kDocs = 1000;
constexpr size_t kTargetBytes = 1024;
constexpr size_t kBatch = 256;

struct Rng {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
};

// One realistic event of about kTargetBytes: routing fields, a headers object, and a
// data object with nested arrays and strings; a filler string makes up the size.
// A quarter of the events put key and priority after data, as some clients do.
std::string MakeEvent(Rng& rng, size_t i) {
  static constexpr const char* kDomains[] = {"orders", "payments", "users", "inventory"};
  static constexpr const char* kRegions[] = {"eu", "us", "ap"};
  static constexpr const char* kVerbs[] = {"created", "updated", "paid", "shipped", "deleted"};
  static constexpr const char* kPriorities[] = {"critical", "high", "normal", "low"};
  char head[256];
  std::snprintf(head, sizeof head, "\"subject\":\"%s.%s.%s\"", kDomains[rng.Below(4)],
                kRegions[rng.Below(3)], kVerbs[rng.Below(5)]);
  char routing[128];
  std::snprintf(routing, sizeof routing, "\"key\":\"u-%zu\",\"priority\":\"%s\"",
                static_cast<size_t>(rng.Below(100000)), kPriorities[rng.Below(4)]);
  const bool late = i % 4 == 3;

  std::string e = "{\"op\":\"pub\",";
  e += head;
  if (!late) e += std::string(",") + routing;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                ",\"id\":\"evt-%06zu\",\"ts\":%llu,\"headers\":{\"trace-id\":\"%016llx%016llx\","
                "\"content-type\":\"application/json\",\"source\":\"checkout-svc\","
                "\"retries\":%zu}",
                i, 1718000000000ull + rng.Below(1000000), static_cast<unsigned long long>(rng.Next()),
                static_cast<unsigned long long>(rng.Next()), static_cast<size_t>(rng.Below(3)));
  e += buf;
  e += ",\"data\":{";
  std::snprintf(buf, sizeof buf,
                "\"order_id\":\"o-%zu\",\"customer\":{\"id\":\"c-%zu\",\"name\":\"Customer %zu\","
                "\"email\":\"c%zu@example.com\",\"vip\":%s},\"items\":[",
                static_cast<size_t>(rng.Below(1000000)), static_cast<size_t>(rng.Below(100000)), i,
                i, rng.Below(2) ? "true" : "false");
  e += buf;
  const size_t items = 2 + rng.Below(3);
  for (size_t k = 0; k < items; ++k) {
    std::snprintf(buf, sizeof buf,
                  "%s{\"sku\":\"SKU-%05zu\",\"qty\":%zu,\"price\":%zu.%02zu,\"tags\":[\"t%zu\","
                  "\"promo\",\"caf\xC3\xA9\"],\"dims\":[%zu,%zu,%zu]}",
                  k ? "," : "", static_cast<size_t>(rng.Below(100000)), 1 + rng.Below(5),
                  static_cast<size_t>(rng.Below(500)), static_cast<size_t>(rng.Below(100)),
                  static_cast<size_t>(rng.Below(10)), static_cast<size_t>(rng.Below(90)),
                  static_cast<size_t>(rng.Below(90)), static_cast<size_t>(rng.Below(90)));
    e += buf;
  }
  e += "],\"note\":\"";
  const std::string tail = late ? std::string("},") + routing + "}" : "}}";
  const size_t used = e.size() + 2 + tail.size();
  const size_t filler = used < kTargetBytes ? kTargetBytes - used : 0;
  for (size_t k = 0; k < filler; ++k) e += static_cast<char>('a' + (k * 7 + i) % 26);
  e += "\"";
  e += tail;
  return e;
}

struct Corpus {
  std::vector<uint8_t> bytes;  // events back to back, then kJsonPadding spare bytes
  std::vector<uint32_t> offsets, lengths;
  size_t payload = 0;
};

Corpus MakeCorpus() {
  Corpus c;
  Rng rng;
  std::string all;
  for (size_t i = 0; i < kDocs; ++i) {
    const std::string e = MakeEvent(rng, i);
    c.offsets.push_back(static_cast<uint32_t>(all.size()));
    c.lengths.push_back(static_cast<uint32_t>(e.size()));
    all += e;
  }
  c.payload = all.size();
  c.bytes.assign(all.begin(), all.end());
  c.bytes.resize(all.size() + kJsonPadding, ' ');
  return c;
}

constexpr std::string_view kNames[] = {"subject", "key", "priority"};
constexpr size_t kNameCount = 3;

// Folds the extracted views into the sink so that nothing is optimized out.
inline uint64_t Fold(const FieldView* v) {
  return uint64_t{v[0].offset} + v[1].length + v[2].length + static_cast<uint64_t>(v[2].type);
}

void PrintResult(const char* scenario, const char* metric, const std::vector<double>& samples) {
  const bench::Summary s = bench::Summarize(samples);
  std::printf(
      "RESULT {\"scenario\":\"%s\",\"metric\":\"%s\",\"median\":%.6g,\"min\":%.6g,"
      "\"max\":%.6g,\"repeats\":%zu}\n",
      scenario, metric, s.median, s.min, s.max, samples.size());
  std::fflush(stdout);
}

// One Extract per document; reports MB/s through bench::Run and docs/s from the
// same timed runs (warm-up excluded).
void RunSingle(const Corpus& c, const char* scenario, uint64_t docs_per_sample) {
  FieldExtractor ex;
  FieldView views[kNameCount];
  std::vector<double> docs_per_s;
  bool warm = false;
  bench::Run(scenario, "MB/s", [&] {
    uint64_t bytes = 0, sink = 0;
    const uint64_t t0 = bench::NowNs();
    for (uint64_t n = 0; n < docs_per_sample; ++n) {
      const size_t d = n % kDocs;
      const uint32_t off = c.offsets[d];
      ex.Extract(c.bytes.data() + off, c.lengths[d], c.bytes.size() - off, kNames, kNameCount,
                 views);
      sink += Fold(views);
      bytes += c.lengths[d];
    }
    const double secs = static_cast<double>(bench::NowNs() - t0) * 1e-9;
    bench::Consume(sink);
    if (warm) docs_per_s.push_back(static_cast<double>(docs_per_sample) / secs);
    warm = true;
    return static_cast<double>(bytes) / secs / 1e6;
  });
  PrintResult((std::string(scenario) + ".docs").c_str(), "docs/s", docs_per_s);
}

void RunBatch(const Corpus& c, uint64_t docs_per_sample) {
  FieldExtractor ex;
  std::vector<FieldView> views(kBatch * kNameCount);
  std::vector<Status> statuses(kBatch);
  const uint64_t calls = (docs_per_sample + kBatch - 1) / kBatch;
  bench::Run("json.extract.1k.batch", "MB/s", [&] {
    uint64_t bytes = 0, sink = 0;
    size_t first = 0;
    const uint64_t t0 = bench::NowNs();
    for (uint64_t call = 0; call < calls; ++call) {
      const size_t count = first + kBatch <= kDocs ? kBatch : kDocs - first;
      ex.ExtractBatch(c.bytes.data(), c.bytes.size(), c.offsets.data() + first,
                      c.lengths.data() + first, count, kNames, kNameCount, views.data(),
                      statuses.data());
      for (size_t d = 0; d < count; ++d) {
        sink += Fold(&views[d * kNameCount]) + static_cast<uint64_t>(statuses[d]);
        bytes += c.lengths[first + d];
      }
      first = first + count == kDocs ? 0 : first + count;
    }
    const double secs = static_cast<double>(bench::NowNs() - t0) * 1e-9;
    bench::Consume(sink);
    return static_cast<double>(bytes) / secs / 1e6;
  });
}

// Fails loudly if the corpus is not what the scenarios claim to measure.
bool CheckCorpus(const Corpus& c) {
  FieldExtractor ex;
  FieldView v[kNameCount];
  for (size_t d = 0; d < kDocs; ++d) {
    const uint32_t off = c.offsets[d];
    const Status s = ex.Extract(c.bytes.data() + off, c.lengths[d], c.bytes.size() - off, kNames,
                                kNameCount, v);
    if (!Ok(s) || v[0].type != JsonType::kString || v[1].type != JsonType::kString ||
        v[2].type != JsonType::kString ||
        ValidateJsonObject(c.bytes.data() + off, c.lengths[d]) != Status::kOk) {
      std::fprintf(stderr, "json_bench: event %zu is not a valid event (%s)\n", d, StatusCode(s));
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace myelin

int main() {
  using namespace myelin;
  const Corpus corpus = MakeCorpus();
  std::fprintf(stderr, "json_bench: %zu events, %.0f B mean, simdjson %s\n", kDocs,
               static_cast<double>(corpus.payload) / kDocs, JsonImplementation());
  if (!CheckCorpus(corpus)) return 1;

  const uint64_t docs = bench::Scaled(1000000);
  RunSingle(corpus, "json.extract.1k", docs);
  RunBatch(corpus, docs);

  const std::string native = JsonImplementation();
  if (!Ok(SetJsonImplementation("fallback"))) {
    std::fprintf(stderr, "json_bench: no fallback implementation\n");
    return 1;
  }
  RunSingle(corpus, "json.extract.1k.fallback", bench::Scaled(300000));
  SetJsonImplementation(native);
  bench::PrintSink();
  return 0;
}
