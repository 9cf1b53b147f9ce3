// WebSocket framing hot paths, GB/s of payload (median of MYELIN_BENCH_REPEATS):
//   ws.unmask.1k / ws.unmask.64k     MaskBytes over one payload, in place
//   ws.utf8.1k / ws.utf8.64k         IsValidUtf8 (simdjson's dispatched kernel) on
//                                    valid mixed-script text (ASCII JSON with 2-, 3-
//                                    and 4-byte characters)
//   ws.utf8.ascii.1k                 the same on pure ASCII, the common case
//   ws.read.1k                       MessageReader::Read of masked 1 KiB text frames,
//                                    back to back in one buffer (unmask + UTF-8 +
//                                    header checks), messages/s and GB/s
// Buffers are small enough to stay in L1/L2: these are kernel speeds, not memory
// bandwidth.
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"
#include "ws/frame.h"

namespace myelin::ws {
namespace {

using bench::NowNs;

std::vector<uint8_t> MixedText(size_t n) {
  static const char* kPieces[] = {"{\"op\":\"pub\",\"subject\":\"orders.eu.created\",", "\"name\":\"Zoë\",",
                                  "\"city\":\"Kraków\",", "\"greet\":\"こんにちは\",", "\"emoji\":\"🚀✨\",",
                                  "\"data\":{\"id\":12345,\"ok\":true},"};
  std::vector<uint8_t> out;
  for (size_t i = 0; out.size() < n; ++i) {
    const std::string p = kPieces[i % 6];
    out.insert(out.end(), p.begin(), p.end());
  }
  // Cut back to n on a character boundary, then pad with ASCII to exactly n.
  out.resize(n);
  while (!out.empty() && !IsValidUtf8(out.data(), out.size())) out.pop_back();
  out.resize(n, ' ');
  return out;
}

double GbPerSec(uint64_t bytes, uint64_t ns) { return static_cast<double>(bytes) / static_cast<double>(ns); }

void BenchUnmask(const char* name, size_t n) {
  std::vector<uint8_t> buf(n, 0x5A);
  const uint64_t iters = bench::Scaled((1ull << 31) / n);
  bench::Run(name, "GB/s", [&] {
    const uint64_t t0 = NowNs();
    for (uint64_t i = 0; i < iters; ++i) MaskBytes(buf.data(), n, 0x3d21fa37 + static_cast<uint32_t>(i), 0);
    const uint64_t t1 = NowNs();
    bench::Consume(buf[n / 2]);
    return GbPerSec(iters * n, t1 - t0);
  });
}

void BenchUtf8(const char* name, const std::vector<uint8_t>& text) {
  const size_t n = text.size();
  const uint64_t iters = bench::Scaled((1ull << 30) / n);
  bench::Run(name, "GB/s", [&] {
    uint64_t ok = 0;
    const uint64_t t0 = NowNs();
    for (uint64_t i = 0; i < iters; ++i) ok += IsValidUtf8(text.data(), n);
    const uint64_t t1 = NowNs();
    bench::Consume(ok);
    return GbPerSec(iters * n, t1 - t0);
  });
}

void BenchRead() {
  constexpr size_t kFrames = 256, kPayload = 1024;
  const std::vector<uint8_t> text = MixedText(kPayload);
  std::vector<uint8_t> wire;
  for (size_t i = 0; i < kFrames; ++i) {
    uint8_t h[kMaxClientHeader];
    const uint32_t mask = 0x9E3779B9u * static_cast<uint32_t>(i + 1);
    wire.insert(wire.end(), h, h + EncodeClientHeader(h, kText, true, kPayload, mask));
    const size_t at = wire.size();
    wire.insert(wire.end(), text.begin(), text.end());
    MaskBytes(wire.data() + at, kPayload, mask, 0);
  }
  std::vector<uint8_t> buf;
  const ReaderLimits lim;
  const uint64_t rounds = bench::Scaled(2000);
  uint64_t copy_ns = 0;
  const auto one_pass = [&](bool read) {
    uint64_t msgs = 0;
    const uint64_t t0 = NowNs();
    for (uint64_t r = 0; r < rounds; ++r) {
      buf = wire;  // Read unmasks in place: a fresh masked copy per round
      if (!read) continue;
      MessageReader reader(&lim);
      size_t off = 0, consumed = 0;
      Message m;
      uint16_t code;
      while (reader.Read(buf.data() + off, buf.size() - off, &consumed, &m, &code) ==
             MessageReader::Result::kMessage) {
        off += consumed;
        msgs += m.len;
      }
    }
    bench::Consume(msgs);
    return NowNs() - t0;
  };
  copy_ns = one_pass(false);  // the refill alone, subtracted below
  bench::Run("ws.read.1k", "msgs/s", [&] {
    const uint64_t ns = one_pass(true) - copy_ns;
    return static_cast<double>(rounds * kFrames) * 1e9 / static_cast<double>(ns);
  });
  std::fprintf(stderr, "  (refill copy of %zu KiB per round: %.1f us, subtracted)\n", wire.size() / 1024,
               static_cast<double>(copy_ns) / 1e3 / static_cast<double>(rounds));
}

}  // namespace
}  // namespace myelin::ws

int main() {
  using namespace myelin::ws;
  std::fprintf(stderr, "ws framing micro-benchmarks\n");
  BenchUnmask("ws.unmask.1k", 1024);
  BenchUnmask("ws.unmask.64k", 65536);
  BenchUtf8("ws.utf8.1k", MixedText(1024));
  BenchUtf8("ws.utf8.64k", MixedText(65536));
  BenchUtf8("ws.utf8.ascii.1k", std::vector<uint8_t>(1024, 'a'));
  BenchRead();
  myelin::bench::PrintSink();
  return 0;
}
