// libFuzzer target for the WebSocket message reader (ws/frame.h). Input layout:
//   byte 0   max_message_bytes, one of kLimits
//   byte 1   max_fragments: low 3 bits, or 4096 when the top bit is set
//   byte 2   seed of the piece sizes for the split feeding
//   rest     the byte stream a peer sends
// The stream goes to a server-side and a client-side reader (each rejects the other's
// mask bit, so the fuzzer finds masked and unmasked streams as it goes), each fed as a
// connection feeds it (unconsumed bytes kept, more appended) three ways: all at once,
// in fuzzer-chosen pieces, and one byte at a time. For every input it checks:
//   - each message view lies in the receive buffer, or is the whole fragment buffer;
//     lengths are within the limit, control payloads within 125 bytes, text is valid
//     UTF-8 (by a scalar reference), a close code is valid on the wire or 1005 when empty;
//   - a failed reader stays failed with the same code and consumes nothing;
//   - the three feedings give the same messages and error, and those equal what an
//     independent reference decoder below (byte-wise unmasking, std::string assembly,
//     its own UTF-8 check) predicts for the whole stream.
// Any violation traps, which libFuzzer reports as a crash with the input saved.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ws/frame.h"

namespace {

using myelin::ws::Message;
using myelin::ws::MessageReader;
using myelin::ws::ReaderLimits;

#define FUZZ_ASSERT(cond)          \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

constexpr uint64_t kLimits[] = {0, 1, 5, 125, 126, 300, 1000, 70000};

struct Event {
  bool error;
  uint8_t opcode;
  uint16_t code;
  std::string data;
  bool operator==(const Event& o) const {
    return error == o.error && opcode == o.opcode && code == o.code && data == o.data;
  }
};

bool RefUtf8(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      lo = c == 0xE0 ? 0xA0 : 0x80;
      hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      lo = c == 0xF0 ? 0x90 : 0x80;
      hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
      return false;
    }
    if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

bool RefCloseCode(unsigned c) {
  static const unsigned kOk[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014};
  for (unsigned k : kOk) {
    if (c == k) return true;
  }
  return c >= 3000 && c < 5000;
}

// The reference: the whole stream at once, the rules in frame.cc's documented order.
std::vector<Event> Reference(const uint8_t* s, size_t n, const ReaderLimits& lim) {
  std::vector<Event> out;
  auto err = [&](uint16_t code) {
    out.push_back({true, 0, code, {}});
    return out;
  };
  size_t pos = 0;
  int open = -1;  // opcode of the open message
  uint32_t frames = 0;
  std::string acc;
  while (n - pos >= 2) {
    const uint8_t b0 = s[pos], b1 = s[pos + 1];
    const unsigned op = b0 & 15, len7 = b1 & 127;
    const bool fin = b0 >> 7, mask = b1 >> 7, control = op >= 8;
    if (b0 & 0x70) return err(1002);
    if (!(op <= 2 || (op >= 8 && op <= 10))) return err(1002);
    if (mask != lim.server_side) return err(1002);
    if (control && (!fin || len7 >= 126)) return err(1002);
    if (op == 0 && open < 0) return err(1002);
    if ((op == 1 || op == 2) && open >= 0) return err(1002);
    const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (n - pos < 2 + ext) break;
    unsigned __int128 plen = len7;
    if (ext) {
      plen = 0;
      for (size_t i = 0; i < ext; ++i) plen = plen * 256 + s[pos + 2 + i];
      if (plen >= (unsigned __int128)1 << 63) return err(1002);
    }
    if (op == 0 && frames + 1 > lim.max_fragments) return err(1008);
    if ((op == 1 || op == 2) && !fin && lim.max_fragments < 1) return err(1008);
    const size_t have = op == 0 ? acc.size() : 0;
    if (plen + have > lim.max_message_bytes) return err(1009);
    const size_t hlen = 2 + ext + (mask ? 4 : 0);
    if (n - pos < hlen || n - pos - hlen < plen) break;
    std::string p(reinterpret_cast<const char*>(s) + pos + hlen, static_cast<size_t>(plen));
    for (size_t i = 0; i < p.size() && mask; ++i) p[i] = static_cast<char>(p[i] ^ s[pos + 2 + ext + i % 4]);
    pos += hlen + p.size();
    const auto* u = reinterpret_cast<const uint8_t*>(p.data());
    if (op == 8) {
      if (p.size() == 1) return err(1002);
      if (p.empty()) {
        out.push_back({false, 8, 1005, {}});
        continue;
      }
      const unsigned code = u[0] * 256u + u[1];
      if (!RefCloseCode(code)) return err(1002);
      if (!RefUtf8(u + 2, p.size() - 2)) return err(1007);
      out.push_back({false, 8, static_cast<uint16_t>(code), p.substr(2)});
      continue;
    }
    if (control) {
      out.push_back({false, static_cast<uint8_t>(op), 0, p});
      continue;
    }
    if (op != 0) {
      open = static_cast<int>(op);
      frames = 0;
      acc.clear();
    }
    acc += p;
    ++frames;
    if (!fin) continue;
    if (open == 1 && !RefUtf8(reinterpret_cast<const uint8_t*>(acc.data()), acc.size())) return err(1007);
    out.push_back({false, static_cast<uint8_t>(open), 0, acc});
    open = -1;
  }
  return out;
}

// Feeds stream in pieces ending at each of cuts (then the rest), as a connection.
std::vector<Event> Feed(const uint8_t* s, size_t n, const ReaderLimits& lim, const std::vector<size_t>& cuts) {
  MessageReader r(&lim);
  std::vector<Event> out;
  std::vector<uint8_t> pending;
  size_t fed = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : n;
    if (end <= fed && i < cuts.size()) continue;
    pending.insert(pending.end(), s + fed, s + end);
    fed = end;
    for (;;) {
      size_t consumed = ~size_t{0};
      Message m{};
      uint16_t code = 0;
      const auto res = r.Read(pending.data(), pending.size(), &consumed, &m, &code);
      FUZZ_ASSERT(consumed <= pending.size());
      if (res == MessageReader::Result::kError) {
        FUZZ_ASSERT(code == 1002 || code == 1007 || code == 1008 || code == 1009);
        FUZZ_ASSERT(r.buffered_bytes() == 0);
        uint16_t again = 0;
        FUZZ_ASSERT(r.Read(pending.data(), pending.size(), &consumed, &m, &again) ==
                    MessageReader::Result::kError);
        FUZZ_ASSERT(again == code && consumed == 0);
        out.push_back({true, 0, code, {}});
        return out;
      }
      if (res == MessageReader::Result::kNeedMore) {
        pending.erase(pending.begin(), pending.begin() + consumed);
        break;
      }
      const uint8_t* b = pending.data();
      const bool in_buf = m.len == 0 ? (m.data >= b && m.data <= b + pending.size())
                                     : (m.data >= b && m.data + m.len <= b + consumed);
      FUZZ_ASSERT(in_buf || (m.data != nullptr && m.len == r.buffered_bytes()));
      FUZZ_ASSERT(m.len <= lim.max_message_bytes);
      FUZZ_ASSERT(consumed > 0);
      switch (m.opcode) {
        case myelin::ws::kText:
          FUZZ_ASSERT(RefUtf8(m.data, m.len));
          [[fallthrough]];
        case myelin::ws::kBinary:
          FUZZ_ASSERT(m.close_code == 0);
          break;
        case myelin::ws::kClose:
          FUZZ_ASSERT(m.len <= 123);
          FUZZ_ASSERT(m.close_code == 1005 ? m.len == 0 : RefCloseCode(m.close_code));
          FUZZ_ASSERT(RefUtf8(m.data, m.len));
          break;
        case myelin::ws::kPing:
        case myelin::ws::kPong:
          FUZZ_ASSERT(m.len <= 125 && m.close_code == 0);
          break;
        default:
          FUZZ_ASSERT(false);
      }
      // Copy before dropping: the view lives until the next Read.
      out.push_back({false, m.opcode, m.opcode == myelin::ws::kClose ? m.close_code : uint16_t{0},
                     std::string(reinterpret_cast<const char*>(m.data), m.len)});
      pending.erase(pending.begin(), pending.begin() + consumed);
    }
  }
  return out;
}

void CheckSide(const uint8_t* s, size_t n, const ReaderLimits& lim, uint8_t seed) {
  const std::vector<Event> whole = Feed(s, n, lim, {});
  FUZZ_ASSERT(whole == Reference(s, n, lim));

  std::vector<size_t> cuts;
  uint32_t x = 0x9E3779B9u ^ (seed * 0x01000193u);
  for (size_t at = 0; at < n;) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    // Mostly small pieces, sometimes big ones; seed 0 feeds the whole header region
    // one byte at a time by piece size 1.
    at += (seed & 0x80) ? 1 + x % 300 : 1 + x % (1 + (seed & 31));
    cuts.push_back(at < n ? at : n);
  }
  FUZZ_ASSERT(Feed(s, n, lim, cuts) == whole);

  if (n <= 4096) {
    cuts.clear();
    for (size_t i = 1; i < n; ++i) cuts.push_back(i);
    FUZZ_ASSERT(Feed(s, n, lim, cuts) == whole);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  ReaderLimits lim;
  lim.max_message_bytes = kLimits[data[0] % 8];
  lim.max_fragments = (data[1] & 0x80) ? 4096 : (data[1] & 7);
  const uint8_t seed = data[2];
  // An exact-size copy: Read unmasks in place, and ASan sees any read past the end.
  std::vector<uint8_t> stream(data + 3, data + size);
  lim.server_side = true;
  CheckSide(stream.data(), stream.size(), lim, seed);
  lim.server_side = false;
  CheckSide(stream.data(), stream.size(), lim, seed);
  return 0;
}
