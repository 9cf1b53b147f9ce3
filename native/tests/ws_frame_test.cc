// RFC 6455 framing (ws/frame.h): the RFC's own examples (5.7 frames, 1.3 handshake),
// FIPS 180 SHA-1 vectors, every protocol violation with its close code, every split
// point of a multi-frame stream fed as a connection feeds it, client-side mode,
// Autobahn-style edge cases, masking against a byte-wise reference, and UTF-8
// strictness of every simdjson kernel against a scalar reference written here.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "simdjson.h"
#include "ws/frame.h"

// Live-allocation counter (and a switch to make the next allocation fail) over the
// global operator new: how the tests see that an idle reader owns no heap memory and
// that a failed fragment allocation closes with 1009.
namespace {
std::atomic<long> g_live_allocs{0};
std::atomic<bool> g_fail_next_alloc{false};
}  // namespace

void* operator new(std::size_t n) {
  if (g_fail_next_alloc.exchange(false)) throw std::bad_alloc();
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  ++g_live_allocs;
  return p;
}
void operator delete(void* p) noexcept {
  if (!p) return;
  --g_live_allocs;
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace myelin::ws {
namespace {

using Bytes = std::vector<uint8_t>;
using R = MessageReader::Result;

Bytes B(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<uint8_t>(x));
  return b;
}
Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string S(const uint8_t* p, std::size_t n) { return std::string(reinterpret_cast<const char*>(p), n); }
void Append(Bytes* a, const Bytes& b) { a->insert(a->end(), b.begin(), b.end()); }

// A frame built byte by byte (independently of the encoders under test). len_form
// forces the 7/16/64-bit form (0: minimal); rsv goes into bits 4-6 of byte 0.
Bytes Frame(uint8_t opcode, bool fin, const Bytes& payload, bool masked, uint32_t mask = 0x3d21fa37,
            int len_form = 0, uint8_t rsv = 0) {
  Bytes f;
  f.push_back(static_cast<uint8_t>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
  const uint64_t n = payload.size();
  const int form = len_form ? len_form : n < 126 ? 7 : n <= 0xFFFF ? 16 : 64;
  const uint8_t mbit = masked ? 0x80 : 0;
  if (form == 7) {
    f.push_back(static_cast<uint8_t>(mbit | n));
  } else if (form == 16) {
    f.push_back(mbit | 126);
    f.push_back(static_cast<uint8_t>(n >> 8));
    f.push_back(static_cast<uint8_t>(n));
  } else {
    f.push_back(mbit | 127);
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<uint8_t>(n >> (8 * i)));
  }
  uint8_t key[4] = {static_cast<uint8_t>(mask), static_cast<uint8_t>(mask >> 8),
                    static_cast<uint8_t>(mask >> 16), static_cast<uint8_t>(mask >> 24)};
  if (masked) f.insert(f.end(), key, key + 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    f.push_back(masked ? static_cast<uint8_t>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return f;
}

// One outcome of a Read loop: a message or the error that ended the connection.
struct Event {
  bool error = false;
  uint8_t opcode = 0;
  std::string data;
  uint16_t code = 0;
  bool operator==(const Event& o) const {
    return error == o.error && opcode == o.opcode && data == o.data && code == o.code;
  }
};

Event Msg(uint8_t opcode, std::string data, uint16_t code = 0) { return {false, opcode, std::move(data), code}; }
Event Err(uint16_t code) { return {true, 0, "", code}; }

// Feeds stream as a connection would: the bytes up to each cut arrive, Read runs until
// it needs more, consumed bytes are dropped and the rest kept. Checks on the way that
// every view lies in the receive buffer or is the whole fragment buffer.
std::vector<Event> Feed(const ReaderLimits& lim, const Bytes& stream, const std::vector<std::size_t>& cuts,
                        MessageReader* shared = nullptr) {
  MessageReader local(&lim);
  MessageReader& r = shared ? *shared : local;
  std::vector<Event> out;
  Bytes pending;
  std::size_t fed = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(stream.size());
  for (std::size_t end : ends) {
    if (end < fed) continue;
    pending.insert(pending.end(), stream.begin() + fed, stream.begin() + end);
    fed = end;
    for (;;) {
      std::size_t consumed = 12345;
      Message m{};
      uint16_t code = 0;
      const R res = r.Read(pending.data(), pending.size(), &consumed, &m, &code);
      CHECK(consumed <= pending.size());
      if (res == R::kError) {
        out.push_back(Err(code));
        return out;
      }
      if (res == R::kMessage) {
        const bool in_buf = m.data >= pending.data() && m.data + m.len <= pending.data() + pending.size();
        CHECK(in_buf || m.len == r.buffered_bytes());
        CHECK(m.len <= lim.max_message_bytes);
        if (m.opcode == kText) CHECK(IsValidUtf8(m.data, m.len));
        out.push_back(Msg(m.opcode, S(m.data, m.len), m.opcode == kClose ? m.close_code : 0));
      }
      pending.erase(pending.begin(), pending.begin() + consumed);
      if (res == R::kNeedMore) break;
    }
  }
  return out;
}

std::vector<Event> FeedWhole(const ReaderLimits& lim, const Bytes& stream) { return Feed(lim, stream, {}); }

std::vector<Event> FeedBytewise(const ReaderLimits& lim, const Bytes& stream) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  return Feed(lim, stream, cuts);
}

const ReaderLimits kServer{};
const ReaderLimits kClient{1 << 20, 4096, false};

// --- RFC 6455 5.7 -------------------------------------------------------------------

TEST(Rfc5_7_SingleFrameUnmaskedText) {
  const Bytes wire = B({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  CHECK(FeedWhole(kClient, wire) == std::vector<Event>{Msg(kText, "Hello")});
  uint8_t h[kMaxServerHeader];
  CHECK_EQ(EncodeServerHeader(h, kText, true, 5), std::size_t{2});
  CHECK(Bytes(h, h + 2) == B({0x81, 0x05}));
  // In place: the view is the frame's own payload, consumed is the whole frame.
  Bytes buf = wire;
  MessageReader r(&kClient);
  std::size_t consumed = 0;
  Message m{};
  uint16_t code = 0;
  CHECK(r.Read(buf.data(), buf.size(), &consumed, &m, &code) == R::kMessage);
  CHECK(m.data == buf.data() + 2);
  CHECK_EQ(m.len, std::size_t{5});
  CHECK_EQ(consumed, std::size_t{7});
  CHECK(r.Read(buf.data() + 7, 0, &consumed, &m, &code) == R::kNeedMore);
  CHECK_EQ(consumed, std::size_t{0});
}

TEST(Rfc5_7_SingleFrameMaskedText) {
  const Bytes wire = B({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  CHECK(FeedWhole(kServer, wire) == std::vector<Event>{Msg(kText, "Hello")});
  // The same bytes from the client encoders: the key 37 fa 21 3d as a little-endian u32.
  uint8_t h[kMaxClientHeader];
  CHECK_EQ(EncodeClientHeader(h, kText, true, 5, 0x3d21fa37), std::size_t{6});
  Bytes out(h, h + 6);
  Bytes payload = B("Hello");
  MaskBytes(payload.data(), payload.size(), 0x3d21fa37, 0);
  Append(&out, payload);
  CHECK(out == wire);
  CHECK(Frame(kText, true, B("Hello"), true) == wire);
  // The server side refuses the unmasked form, the client side the masked one.
  CHECK(FeedWhole(kServer, B({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f})) == std::vector<Event>{Err(1002)});
  CHECK(FeedWhole(kClient, wire) == std::vector<Event>{Err(1002)});
}

TEST(Rfc5_7_FragmentedUnmaskedText) {
  const Bytes first = B({0x01, 0x03, 0x48, 0x65, 0x6c});
  const Bytes last = B({0x80, 0x02, 0x6c, 0x6f});
  Bytes wire = first;
  Append(&wire, last);
  CHECK(FeedWhole(kClient, wire) == std::vector<Event>{Msg(kText, "Hello")});
  // The first fragment moves into the fragment buffer and counts as consumed.
  MessageReader r(&kClient);
  Bytes buf = first;
  std::size_t consumed = 0;
  Message m{};
  uint16_t code = 0;
  CHECK(r.Read(buf.data(), buf.size(), &consumed, &m, &code) == R::kNeedMore);
  CHECK_EQ(consumed, std::size_t{5});
  CHECK_EQ(r.buffered_bytes(), std::size_t{3});
  buf = last;
  CHECK(r.Read(buf.data(), buf.size(), &consumed, &m, &code) == R::kMessage);
  CHECK_EQ(consumed, std::size_t{4});
  CHECK_EQ(S(m.data, m.len), std::string("Hello"));
  CHECK(!(m.data >= buf.data() && m.data < buf.data() + buf.size()));  // from the fragment buffer
  // The next Read frees it.
  CHECK(r.Read(buf.data() + 4, 0, &consumed, &m, &code) == R::kNeedMore);
  CHECK_EQ(r.buffered_bytes(), std::size_t{0});
}

TEST(Rfc5_7_PingAndMaskedPong) {
  CHECK(FeedWhole(kClient, B({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f})) ==
        std::vector<Event>{Msg(kPing, "Hello")});
  CHECK(FeedWhole(kServer, B({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58})) ==
        std::vector<Event>{Msg(kPong, "Hello")});
}

TEST(Rfc5_7_BinaryLengths256And64K) {
  Bytes p256(256);
  for (std::size_t i = 0; i < p256.size(); ++i) p256[i] = static_cast<uint8_t>(i * 7);
  Bytes wire = B({0x82, 0x7E, 0x01, 0x00});
  Append(&wire, p256);
  CHECK(FeedWhole(kClient, wire) == std::vector<Event>{Msg(kBinary, S(p256.data(), 256))});
  uint8_t h[kMaxServerHeader];
  CHECK_EQ(EncodeServerHeader(h, kBinary, true, 256), std::size_t{4});
  CHECK(Bytes(h, h + 4) == B({0x82, 0x7E, 0x01, 0x00}));

  Bytes p64k(65536);
  for (std::size_t i = 0; i < p64k.size(); ++i) p64k[i] = static_cast<uint8_t>(i ^ (i >> 8));
  wire = B({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00});
  Append(&wire, p64k);
  CHECK(FeedWhole(kClient, wire) == std::vector<Event>{Msg(kBinary, S(p64k.data(), p64k.size()))});
  CHECK_EQ(EncodeServerHeader(h, kBinary, true, 65536), std::size_t{10});
  CHECK(Bytes(h, h + 10) == B({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
  // Masked from the client: the same payloads back.
  CHECK(FeedWhole(kServer, Frame(kBinary, true, p64k, true, 0xA1B2C3D4)) ==
        std::vector<Event>{Msg(kBinary, S(p64k.data(), p64k.size()))});
}

TEST(EncodersAtLengthBoundaries) {
  const uint64_t lens[] = {0, 1, 125, 126, 127, 0xFFFF, 0x10000, 0xFFFFFFFFull, 0x100000000ull,
                           0x7FFFFFFFFFFFFFFFull};
  for (uint64_t n : lens) {
    uint8_t s[kMaxServerHeader], c[kMaxClientHeader];
    const std::size_t sl = EncodeServerHeader(s, kBinary, false, n);
    const std::size_t cl = EncodeClientHeader(c, kBinary, false, n, 0x04030201);
    const std::size_t want = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
    CHECK_EQ(sl, want);
    CHECK_EQ(cl, want + 4);
    CHECK_EQ(s[0], uint8_t{0x02});
    CHECK_EQ(s[1] & 0x80, 0);
    CHECK_EQ(c[1] & 0x80, 0x80);
    CHECK_EQ(c[1], static_cast<uint8_t>(s[1] | 0x80));
    CHECK(std::memcmp(s + 2, c + 2, sl - 2) == 0);
    CHECK(Bytes(c + want, c + want + 4) == B({1, 2, 3, 4}));
    uint64_t got = s[1] & 0x7F;
    if (want == 4) got = (uint64_t{s[2]} << 8) | s[3];
    if (want == 10) {
      got = 0;
      for (int i = 0; i < 8; ++i) got = (got << 8) | s[2 + i];
    }
    CHECK_EQ(got, n);
  }
  // Round trip through the readers, both sides, at the length-form boundaries.
  for (std::size_t n : {0, 125, 126, 65535, 65536}) {
    Bytes payload(n, 'x');
    uint8_t h[kMaxClientHeader];
    Bytes wire(h, h + EncodeServerHeader(h, kText, true, n));
    Append(&wire, payload);
    CHECK(FeedWhole(kClient, wire) == std::vector<Event>{Msg(kText, std::string(n, 'x'))});
    wire.assign(h, h + EncodeClientHeader(h, kText, true, n, 0xDEADBEEF));
    MaskBytes(payload.data(), n, 0xDEADBEEF, 0);
    Append(&wire, payload);
    CHECK(FeedWhole(kServer, wire) == std::vector<Event>{Msg(kText, std::string(n, 'x'))});
  }
}

// --- handshake and SHA-1 ----------------------------------------------------------------

std::string Hex(const uint8_t* d, std::size_t n) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += k[d[i] >> 4];
    s += k[d[i] & 15];
  }
  return s;
}

std::string Sha1Hex(std::string_view s) {
  uint8_t d[20];
  Sha1(reinterpret_cast<const uint8_t*>(s.data()), s.size(), d);
  return Hex(d, 20);
}

TEST(Sha1Fips180Vectors) {
  CHECK_EQ(Sha1Hex("abc"), std::string("a9993e364706816aba3e25717850c26c9cd0d89d"));
  CHECK_EQ(Sha1Hex(""), std::string("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
  CHECK_EQ(Sha1Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
           std::string("84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
  CHECK_EQ(Sha1Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                   "klmnopqrlmnopqrsmnopqrstnopqrstu"),
           std::string("a49b2446a02c645bf419f995b67091253a04a259"));
  CHECK_EQ(Sha1Hex(std::string(1000000, 'a')), std::string("34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
}

std::string Base64(const uint8_t* d, std::size_t n) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string s;
  for (std::size_t i = 0; i < n; i += 3) {
    uint32_t v = uint32_t{d[i]} << 16;
    if (i + 1 < n) v |= uint32_t{d[i + 1]} << 8;
    if (i + 2 < n) v |= d[i + 2];
    s += k[v >> 18];
    s += k[(v >> 12) & 63];
    s += i + 1 < n ? k[(v >> 6) & 63] : '=';
    s += i + 2 < n ? k[v & 63] : '=';
  }
  return s;
}

TEST(Rfc1_3_HandshakeAccept) {
  char out[28];
  ComputeAccept("dGhlIHNhbXBsZSBub25jZQ==", out);
  CHECK_EQ(std::string(out, 28), std::string("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  // ComputeAccept hashes key and GUID in two updates; one-shot Sha1 over the
  // concatenation must agree for keys around every block and padding boundary.
  for (std::size_t n = 0; n < 200; ++n) {
    std::string key;
    for (std::size_t i = 0; i < n; ++i) key += static_cast<char>('A' + (i * 7 + n) % 26);
    ComputeAccept(key, out);
    const std::string whole = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t d[20];
    Sha1(reinterpret_cast<const uint8_t*>(whole.data()), whole.size(), d);
    CHECK_EQ(std::string(out, 28), Base64(d, 20));
  }
}

TEST(ClientKeyValidation) {
  CHECK(IsValidClientKey("dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK(IsValidClientKey("AAAAAAAAAAAAAAAAAAAAAA=="));
  CHECK(IsValidClientKey("/////////////////////w=="));
  CHECK(IsValidClientKey("+/+/+/+/+/+/+/+/+/+/+g=="));
  // Every 16-byte value's encoding is accepted (random ones and the extremes).
  uint64_t x = 88172645463325252ull;
  for (int t = 0; t < 1000; ++t) {
    uint8_t raw[16];
    for (auto& b : raw) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b = static_cast<uint8_t>(x);
    }
    CHECK(IsValidClientKey(Base64(raw, 16)));
  }
  CHECK(!IsValidClientKey(""));
  CHECK(!IsValidClientKey("dGhlIHNhbXBsZSBub25jZQ="));     // 23 chars
  CHECK(!IsValidClientKey("dGhlIHNhbXBsZSBub25jZQ==="));   // 25
  CHECK(!IsValidClientKey("dGhlIHNhbXBsZSBub25jZQ== "));   // trailing space
  CHECK(!IsValidClientKey(" dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK(!IsValidClientKey("dGhlIHNhbXBsZSBub25jZQAA"));    // no padding: 18 bytes
  CHECK(!IsValidClientKey("dGhlIHNhbXBsZSBub25jZ=A="));    // = in the wrong place
  CHECK(!IsValidClientKey("dGhlIHNhbXBsZSBub25jZ==="));
  CHECK(!IsValidClientKey("dGhlIHNhbXBsZSBub25jZQ=x"));
  CHECK(!IsValidClientKey("dGhlIHNhbXBs-SBub25jZQ=="));    // base64url alphabet
  CHECK(!IsValidClientKey("dGhlIHNhbXBs_SBub25jZQ=="));
  CHECK(!IsValidClientKey("dGhlIHNhbXBs ZSBub25jZQ=="));
  CHECK(!IsValidClientKey("dGhlIHNhbXBs\xc3\xa9SBub25jZQ="));
  CHECK(!IsValidClientKey(std::string_view("dGhlIHNhbXBs\0SBub25jZQ==", 24)));
  CHECK(!IsValidClientKey("dGhlIHNhbXBzZSBub25jZQ=\n"));
  // 24 chars ending "==" but not the encoding of 16 bytes: the 22nd character's low
  // four bits are set (it decodes to 16 bytes only by dropping them).
  CHECK(!IsValidClientKey("dGhlIHNhbXBsZSBub25jZR=="));
  CHECK(!IsValidClientKey("AAAAAAAAAAAAAAAAAAAAAB=="));
  CHECK(!IsValidClientKey("AAAAAAAAAAAAAAAAAAAAA/=="));
}

// --- violations, each with its close code -----------------------------------------------

std::vector<Event> Server(const Bytes& wire, const ReaderLimits& lim = kServer) {
  const auto whole = FeedWhole(lim, wire);
  CHECK(FeedBytewise(lim, wire) == whole);
  return whole;
}
std::vector<Event> One(Event e) { return {std::move(e)}; }
Bytes Masked(uint8_t op, bool fin, const Bytes& p) { return Frame(op, fin, p, true); }

TEST(ViolationsProtocolError1002) {
  const Bytes hello = B("Hello");
  CHECK(Server(Frame(kText, true, hello, false)) == One(Err(1002)));  // unmasked client frame
  for (uint8_t rsv : {1, 2, 4, 7}) CHECK(Server(Frame(kText, true, hello, true, 1, 0, rsv)) == One(Err(1002)));
  CHECK(Server(Frame(kPing, true, {}, true, 1, 0, 4)) == One(Err(1002)));
  for (uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    CHECK(Server(Masked(op, true, hello)) == One(Err(1002)));
    CHECK(FeedWhole(kClient, Frame(op, true, {}, false)) == One(Err(1002)));
  }
  // Control frames: fragmented, or over 125 bytes (decided from the first two bytes).
  for (uint8_t op : {kClose, kPing, kPong}) {
    CHECK(Server(Masked(op, false, {})) == One(Err(1002)));
    CHECK(Server(Masked(op, true, Bytes(126, 'a'))) == One(Err(1002)));
    CHECK(FeedWhole(kServer, B({0x80 | op, 0x80 | 126})) == One(Err(1002)));
    CHECK(FeedWhole(kServer, B({0x80 | op, 0x80 | 127})) == One(Err(1002)));
    Bytes ok = Masked(op, true, Bytes(125, 'a'));
    if (op == kClose) ok = Masked(op, true, [] { Bytes b = B({0x03, 0xE8}); b.resize(125, 'r'); return b; }());
    CHECK(Server(ok).size() == 1 && !Server(ok)[0].error);
  }
  // Continuation with no message open; a new data frame inside an open one.
  CHECK(Server(Masked(kContinuation, true, hello)) == One(Err(1002)));
  CHECK(Server(Masked(kContinuation, false, {})) == One(Err(1002)));
  for (uint8_t op : {kText, kBinary}) {
    for (bool fin : {true, false}) {
      Bytes w = Masked(kBinary, false, B("ab"));
      Append(&w, Masked(op, fin, B("cd")));
      CHECK(Server(w) == One(Err(1002)));
    }
  }
  // A finished message closes the fragmented state: a continuation after it is an error.
  {
    Bytes w = Masked(kText, false, B("a"));
    Append(&w, Masked(kContinuation, true, B("b")));
    Append(&w, Masked(kContinuation, true, B("c")));
    CHECK(Server(w) == (std::vector<Event>{Msg(kText, "ab"), Err(1002)}));
  }
  // 64-bit length with the top bit set: decided from the 10 header bytes alone, even
  // under a limit that would allow everything.
  const ReaderLimits huge{~0ull, 4096, true};
  CHECK(FeedWhole(huge, B({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0})) == One(Err(1002)));
  CHECK(FeedWhole(huge, B({0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})) == One(Err(1002)));
  CHECK(FeedWhole(kServer, B({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 5})) == One(Err(1002)));
  // Nine header bytes are not enough to decide.
  CHECK(FeedWhole(huge, B({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0})).empty());
  // Close: a 1-byte payload; codes that may not be on the wire.
  CHECK(Server(Masked(kClose, true, B({0x03}))) == One(Err(1002)));
  const int bad_codes[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
  for (int c : bad_codes) {
    CHECK(Server(Masked(kClose, true, B({c >> 8, c & 0xFF}))) == One(Err(1002)));
    CHECK(Server(Masked(kClose, true, B({c >> 8, c & 0xFF, 'b', 'y', 'e'}))) == One(Err(1002)));
  }
  const int good_codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999};
  for (int c : good_codes) {
    CHECK(Server(Masked(kClose, true, B({c >> 8, c & 0xFF}))) == One(Msg(kClose, "", static_cast<uint16_t>(c))));
    CHECK(Server(Masked(kClose, true, B({c >> 8, c & 0xFF, 'b', 'y', 'e'}))) ==
          One(Msg(kClose, "bye", static_cast<uint16_t>(c))));
  }
  CHECK(Server(Masked(kClose, true, {})) == One(Msg(kClose, "", kCloseNoStatus)));
}

TEST(ViolationsInvalidUtf8_1007) {
  CHECK(Server(Masked(kText, true, B({'a', 0xC0, 0x80}))) == One(Err(1007)));      // overlong
  CHECK(Server(Masked(kText, true, B({0xED, 0xA0, 0x80}))) == One(Err(1007)));     // surrogate
  CHECK(Server(Masked(kText, true, B({0xF4, 0x90, 0x80, 0x80}))) == One(Err(1007)));  // > U+10FFFF
  CHECK(Server(Masked(kText, true, B({0xE2, 0x82}))) == One(Err(1007)));           // truncated
  // Binary carries anything.
  CHECK(Server(Masked(kBinary, true, B({0xC0, 0x80}))) == One(Msg(kBinary, "\xC0\x80")));
  // Fragmented text is judged as a whole: a character split across fragments is fine,
  // a message that ends inside one is not.
  {
    Bytes w = Masked(kText, false, B({'x', 0xE2}));
    Append(&w, Masked(kContinuation, false, B({0x82})));
    Append(&w, Masked(kContinuation, true, B({0xAC, 'y'})));
    CHECK(Server(w) == One(Msg(kText, "x\xE2\x82\xACy")));
    w = Masked(kText, false, B({'x', 0xE2}));
    Append(&w, Masked(kContinuation, true, B({0x82})));
    CHECK(Server(w) == One(Err(1007)));
    w = Masked(kBinary, false, B({'x', 0xE2}));
    Append(&w, Masked(kContinuation, true, B({0x82})));
    CHECK(Server(w) == One(Msg(kBinary, "x\xE2\x82")));
  }
  // Close reason.
  CHECK(Server(Masked(kClose, true, B({0x03, 0xE8, 0xFF}))) == One(Err(1007)));
  CHECK(Server(Masked(kClose, true, B({0x03, 0xE8, 0xCE, 0xBA, 0xE1, 0xBD, 0xB9}))) ==
        One(Msg(kClose, "\xCE\xBA\xE1\xBD\xB9", 1000)));
  // A bad code wins over a bad reason (the code is judged first).
  CHECK(Server(Masked(kClose, true, B({0x03, 0xED, 0xFF}))) == One(Err(1002)));
}

TEST(ViolationsTooBig1009AndFragments1008) {
  const ReaderLimits lim{100, 4, true};
  // Exactly at the limit passes; one over fails from the header, before any payload.
  CHECK(Server(Masked(kBinary, true, Bytes(100, 1)), lim) == One(Msg(kBinary, std::string(100, '\1'))));
  CHECK(Server(Masked(kBinary, true, Bytes(101, 1)), lim) == One(Err(1009)));
  CHECK(FeedWhole(lim, B({0x82, 0x80 | 101})) == One(Err(1009)));
  CHECK(FeedWhole(lim, B({0x82, 0x80 | 126, 0x10, 0x00})) == One(Err(1009)));
  CHECK(FeedWhole(kServer, B({0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 1})) == One(Err(1009)));
  // 2^53 (RELIABILITY.md): top bit clear, so it is over the limit rather than malformed.
  CHECK(FeedWhole(kServer, B({0x82, 0x80 | 127, 0, 0x20, 0, 0, 0, 0, 0, 0})) == One(Err(1009)));
  // The assembled message: 4 fragments of 25 pass, one more byte fails at that header.
  {
    Bytes w = Masked(kText, false, Bytes(25, 'a'));
    for (int i = 0; i < 2; ++i) Append(&w, Masked(kContinuation, false, Bytes(25, 'a')));
    Bytes ok = w;
    Append(&ok, Masked(kContinuation, true, Bytes(25, 'a')));
    CHECK(Server(ok, lim) == One(Msg(kText, std::string(100, 'a'))));
    Bytes over = w;
    Append(&over, B({0x80, 0x80 | 26}));
    CHECK(FeedWhole(lim, over) == One(Err(1009)));
  }
  // Frames in one message: max_fragments (4) pass, the fifth fails at its header,
  // empty continuations included.
  {
    Bytes w = Masked(kBinary, false, {});
    for (int i = 0; i < 2; ++i) Append(&w, Masked(kContinuation, false, {}));
    Bytes ok = w;
    Append(&ok, Masked(kContinuation, true, {}));
    CHECK(Server(ok, lim) == One(Msg(kBinary, "")));
    Bytes over = w;
    Append(&over, Masked(kContinuation, false, {}));
    CHECK(Server(over, lim).empty());  // four frames: still open
    Append(&over, Masked(kContinuation, false, {}));
    CHECK(Server(over, lim) == One(Err(1008)));
    Bytes over_fin = w;
    Append(&over_fin, Masked(kContinuation, false, {}));
    Append(&over_fin, B({0x80, 0x80}));
    CHECK(FeedWhole(lim, over_fin) == One(Err(1008)));
    // Control frames between fragments do not count.
    Bytes with_pings = Masked(kBinary, false, {});
    for (int i = 0; i < 10; ++i) Append(&with_pings, Masked(kPing, true, {}));
    Append(&with_pings, Masked(kContinuation, true, {}));
    CHECK(Server(with_pings, lim).size() == 11 && !Server(with_pings, lim).back().error);
  }
  // max_fragments 0: no fragmented message at all; 1: only a fragment with nothing after.
  const ReaderLimits no_frag{100, 0, true};
  CHECK(Server(Masked(kText, false, {}), no_frag) == One(Err(1008)));
  CHECK(Server(Masked(kText, true, B("x")), no_frag) == One(Msg(kText, "x")));
  // A control frame over a (tiny) limit is too big as well.
  const ReaderLimits tiny{4, 4, true};
  CHECK(Server(Masked(kPing, true, B("Hello")), tiny) == One(Err(1009)));
}

TEST(ViolationCodesAreStickyAndResetClears) {
  MessageReader r(&kServer);
  Bytes w = Masked(kBinary, false, B("abc"));
  Append(&w, Frame(kText, true, B("x"), false));  // unmasked
  std::size_t consumed = 99;
  Message m{};
  uint16_t code = 0;
  CHECK(r.Read(w.data(), w.size(), &consumed, &m, &code) == R::kError);
  CHECK_EQ(code, uint16_t{1002});
  CHECK_EQ(consumed, std::size_t{9});  // the fragment before the bad frame
  CHECK_EQ(r.buffered_bytes(), std::size_t{0});
  Bytes good = Masked(kText, true, B("ok"));
  code = 0;
  CHECK(r.Read(good.data(), good.size(), &consumed, &m, &code) == R::kError);
  CHECK_EQ(code, uint16_t{1002});
  CHECK_EQ(consumed, std::size_t{0});
  r.Reset();
  CHECK(r.Read(good.data(), good.size(), &consumed, &m, &code) == R::kMessage);
  CHECK_EQ(S(m.data, m.len), std::string("ok"));
}

TEST(NonMinimalLengthsAccepted) {
  const Bytes hello = B("Hello");
  CHECK(Server(Frame(kText, true, hello, true, 7, 16)) == One(Msg(kText, "Hello")));
  CHECK(Server(Frame(kText, true, hello, true, 7, 64)) == One(Msg(kText, "Hello")));
  CHECK(Server(Frame(kBinary, true, Bytes(300, 9), true, 7, 64)) == One(Msg(kBinary, std::string(300, '\x09'))));
  CHECK(Server(Frame(kPing, true, {}, true, 7, 7)) == One(Msg(kPing, "")));
}

// --- split points and client mode -------------------------------------------------------

// A stream with every kind of frame: single text, fragmented text with a ping and a
// pong inside, binary over 125 bytes (16-bit length), empty messages, a close.
Bytes MixedStream(bool masked, std::vector<Event>* expect) {
  Bytes w;
  uint32_t mask = 0x11223344;
  auto add = [&](uint8_t op, bool fin, const Bytes& p) {
    Append(&w, Frame(op, fin, p, masked, mask));
    mask = mask * 2654435761u + 1;
  };
  add(kText, true, B("{\"op\":\"pub\",\"subject\":\"orders.eu.created\",\"data\":{\"id\":1}}"));
  expect->push_back(Msg(kText, "{\"op\":\"pub\",\"subject\":\"orders.eu.created\",\"data\":{\"id\":1}}"));
  add(kText, false, B("Hel"));
  add(kPing, true, B("p1"));
  expect->push_back(Msg(kPing, "p1"));
  add(kContinuation, false, B({'l', 0xE2, 0x82}));
  add(kPong, true, {});
  expect->push_back(Msg(kPong, ""));
  add(kContinuation, true, B({0xAC, 'o'}));
  expect->push_back(Msg(kText, "Hell\xE2\x82\xACo"));
  Bytes big(300);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i);
  add(kBinary, true, big);
  expect->push_back(Msg(kBinary, S(big.data(), big.size())));
  add(kText, true, {});
  expect->push_back(Msg(kText, ""));
  add(kBinary, false, {});
  add(kContinuation, false, {});
  add(kContinuation, true, {});
  expect->push_back(Msg(kBinary, ""));
  add(kBinary, false, B("ab"));
  add(kContinuation, true, B("cd"));
  expect->push_back(Msg(kBinary, "abcd"));
  add(kClose, true, B({0x03, 0xE8, 'b', 'y', 'e'}));
  expect->push_back(Msg(kClose, "bye", 1000));
  return w;
}

void Dump(const std::vector<Event>& ev) {
  for (const Event& e : ev) {
    std::fprintf(stderr, "    %s op=%d code=%d len=%zu\n", e.error ? "error" : "msg", e.opcode, e.code,
                 e.data.size());
  }
}

void CheckEverySplit(const ReaderLimits& lim, bool masked) {
  std::vector<Event> expect;
  const Bytes w = MixedStream(masked, &expect);
  if (FeedWhole(lim, w) != expect) {
    Dump(FeedWhole(lim, w));
    Dump(expect);
  }
  CHECK(FeedWhole(lim, w) == expect);
  CHECK(FeedBytewise(lim, w) == expect);
  int bad = 0;
  for (std::size_t a = 0; a <= w.size(); ++a) {
    if (Feed(lim, w, {a}) != expect) ++bad;
  }
  // Three pieces: every pair of cuts near the fragmented message and the close.
  for (std::size_t a = 0; a < 120 && a < w.size(); ++a) {
    for (std::size_t b = a; b < w.size(); b += 7) {
      if (Feed(lim, w, {a, b}) != expect) ++bad;
    }
  }
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int t = 0; t < 300; ++t) {
    std::vector<std::size_t> cuts;
    std::size_t at = 0;
    while (at < w.size()) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      at += 1 + x % 40;
      cuts.push_back(at < w.size() ? at : w.size());
    }
    if (Feed(lim, w, cuts) != expect) ++bad;
  }
  CHECK_EQ(bad, 0);
}

TEST(EverySplitPointGivesTheSameMessages) { CheckEverySplit(kServer, true); }
TEST(ClientSideEverySplitPoint) {
  CheckEverySplit(kClient, false);
  std::vector<Event> expect;
  CHECK(FeedWhole(kClient, MixedStream(true, &expect)) == One(Err(1002)));
  CHECK(FeedWhole(kServer, MixedStream(false, &expect)) == One(Err(1002)));
}

TEST(MessagesBeforeAnErrorAreDelivered) {
  std::vector<Event> expect;
  Bytes w = MixedStream(true, &expect);
  w.resize(w.size() - 11);  // drop the close frame
  expect.pop_back();
  Append(&w, Masked(kText, true, B({0xFF})));
  expect.push_back(Err(1007));
  CHECK(FeedWhole(kServer, w) == expect);
  CHECK(FeedBytewise(kServer, w) == expect);
}

// --- Autobahn-style cases --------------------------------------------------------------

TEST(AutobahnStyleEdgeCases) {
  // 1.1.1 / 1.2.1: empty text and binary.
  CHECK(Server(Masked(kText, true, {})) == One(Msg(kText, "")));
  CHECK(Server(Masked(kBinary, true, {})) == One(Msg(kBinary, "")));
  // 5.x: empty fragments, a ping between fragments, text split one byte per frame.
  Bytes w = Masked(kText, false, {});
  Append(&w, Masked(kContinuation, false, {}));
  Append(&w, Masked(kPing, true, B("in between")));
  Append(&w, Masked(kContinuation, true, {}));
  CHECK(Server(w) == (std::vector<Event>{Msg(kPing, "in between"), Msg(kText, "")}));
  const std::string text = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5";  // "κόσμε"
  w = Masked(kText, false, B(text.substr(0, 1)));
  for (std::size_t i = 1; i < text.size(); ++i) {
    Append(&w, Masked(kContinuation, i + 1 == text.size(), B(text.substr(i, 1))));
  }
  CHECK(Server(w) == One(Msg(kText, text)));  // also fed in 1-byte writes by Server()
  // 2.x: ping payload of 125 bytes passes, 126 fails; close after the ping.
  w = Masked(kPing, true, Bytes(125, 0xFE));
  Append(&w, Masked(kClose, true, B({0x03, 0xE8})));
  CHECK(Server(w) == (std::vector<Event>{Msg(kPing, std::string(125, '\xFE')), Msg(kClose, "", 1000)}));
  // 9.x-style: the limit exactly vs one over, unfragmented and fragmented.
  const ReaderLimits lim{1 << 16, 4096, true};
  CHECK(Server(Masked(kBinary, true, Bytes(1 << 16, 7)), lim).size() == 1);
  CHECK(!Server(Masked(kBinary, true, Bytes(1 << 16, 7)), lim)[0].error);
  CHECK(FeedWhole(lim, Masked(kBinary, true, Bytes((1 << 16) + 1, 7))) == One(Err(1009)));
  w.clear();
  for (int i = 0; i < 64; ++i) Append(&w, Masked(i ? kContinuation : kBinary, i == 63, Bytes(1024, 7)));
  CHECK(!FeedWhole(lim, w).at(0).error);
  w.clear();
  for (int i = 0; i < 64; ++i) Append(&w, Masked(i ? kContinuation : kBinary, false, Bytes(1024, 7)));
  Append(&w, Masked(kContinuation, true, B("x")));
  CHECK(FeedWhole(lim, w) == One(Err(1009)));
}

TEST(FloodOfEmptyContinuationsAllocatesNothing) {
  const ReaderLimits lim{1 << 20, 100000, true};
  Bytes w = Masked(kText, false, {});
  for (int i = 0; i < 50000; ++i) Append(&w, Masked(kContinuation, false, {}));
  MessageReader r(&lim);
  std::size_t consumed = 0;
  Message m{};
  uint16_t code = 0;
  const long before = g_live_allocs.load();
  CHECK(r.Read(w.data(), w.size(), &consumed, &m, &code) == R::kNeedMore);
  CHECK_EQ(g_live_allocs.load(), before);
  CHECK_EQ(consumed, w.size());
}

TEST(IdleReaderOwnsNoHeap) {
  MessageReader r(&kServer);
  // Every buffer of the test exists before the count starts.
  Bytes w = Masked(kText, false, B("Hel"));
  Append(&w, Masked(kContinuation, true, B("lo")));
  const Bytes partial = Masked(kBinary, false, B("abc"));
  Bytes w2 = partial;
  Bytes bad = Masked(kText, true, B("x"));
  std::size_t consumed = 0;
  Message m{};
  uint16_t code = 0;
  const long before = g_live_allocs.load();
  CHECK(r.Read(w.data(), w.size(), &consumed, &m, &code) == R::kMessage);
  CHECK_EQ(S(m.data, m.len), std::string("Hello"));
  CHECK(g_live_allocs.load() > before);  // the fragment buffer, until the next Read
  CHECK(r.Read(w.data() + consumed, w.size() - consumed, &consumed, &m, &code) == R::kNeedMore);
  CHECK_EQ(g_live_allocs.load(), before);
  CHECK_EQ(r.buffered_bytes(), std::size_t{0});
  // A partial message dropped by Reset, and one dropped by an error.
  CHECK(r.Read(w2.data(), w2.size(), &consumed, &m, &code) == R::kNeedMore);
  CHECK(g_live_allocs.load() > before);
  r.Reset();
  CHECK_EQ(g_live_allocs.load(), before);
  w2 = partial;
  CHECK(r.Read(w2.data(), w2.size(), &consumed, &m, &code) == R::kNeedMore);
  CHECK(r.Read(bad.data(), bad.size(), &consumed, &m, &code) == R::kError);
  CHECK_EQ(code, uint16_t{1002});
  CHECK_EQ(g_live_allocs.load(), before);
}

TEST(FragmentAllocationFailureIs1009) {
  MessageReader r(&kServer);
  Bytes w = Masked(kBinary, false, B("abc"));
  std::size_t consumed = 0;
  Message m{};
  uint16_t code = 0;
  g_fail_next_alloc = true;
  CHECK(r.Read(w.data(), w.size(), &consumed, &m, &code) == R::kError);
  g_fail_next_alloc = false;
  CHECK_EQ(code, uint16_t{1009});
  CHECK_EQ(r.buffered_bytes(), std::size_t{0});
}

// --- masking ------------------------------------------------------------------------

TEST(MaskBytesMatchesBytewiseReferenceAtEveryPhaseAndAlignment) {
  std::vector<uint8_t> base(300), a, b;
  for (std::size_t i = 0; i < base.size(); ++i) base[i] = static_cast<uint8_t>(i * 31 + 7);
  const uint32_t mask = 0xA1B2C3D4;
  const uint8_t key[4] = {0xD4, 0xC3, 0xB2, 0xA1};  // wire order: the little-endian bytes
  int bad = 0;
  for (std::size_t off = 0; off < 8; ++off) {
    for (std::size_t len = 0; len < 140; ++len) {
      for (std::size_t phase = 0; phase < 4; ++phase) {
        a.assign(base.begin(), base.end());
        b = a;
        MaskBytes(a.data() + off, len, mask, phase);
        for (std::size_t i = 0; i < len; ++i) b[off + i] ^= key[(phase + i) % 4];
        if (a != b) ++bad;
        MaskBytes(a.data() + off, len, mask, phase);
        if (a != base) ++bad;
      }
    }
  }
  CHECK_EQ(bad, 0);
  // Masking in two pieces with the phase carried equals masking once.
  a = base;
  b = base;
  MaskBytes(a.data(), 300, mask, 0);
  MaskBytes(b.data(), 13, mask, 0);
  MaskBytes(b.data() + 13, 287, mask, 13 % 4);
  CHECK(a == b);
}

// --- UTF-8 ----------------------------------------------------------------------------

// The scalar reference: Unicode 15 table 3-7, well-formed byte sequences.
bool RefUtf8(const uint8_t* s, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (n - i < len) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

void CheckUtf8Cases(const char* impl_name, int* bad) {
  struct Case {
    Bytes b;
    bool valid;
  };
  const Case cases[] = {
      {B("plain ascii"), true},
      {B({0xC2, 0x80}), true},
      {B({0xDF, 0xBF}), true},
      {B({0xE0, 0xA0, 0x80}), true},
      {B({0xEF, 0xBF, 0xBF}), true},              // U+FFFF
      {B({0xEF, 0xBB, 0xBF}), true},              // BOM
      {B({0xED, 0x9F, 0xBF}), true},              // U+D7FF
      {B({0xEE, 0x80, 0x80}), true},              // U+E000
      {B({0xF0, 0x90, 0x80, 0x80}), true},        // U+10000
      {B({0xF4, 0x8F, 0xBF, 0xBF}), true},        // U+10FFFF
      {B({0xC0, 0x80}), false},                   // overlong NUL
      {B({0xC1, 0xBF}), false},                   // overlong
      {B({0xE0, 0x80, 0x80}), false},             // overlong 3-byte
      {B({0xE0, 0x9F, 0xBF}), false},
      {B({0xF0, 0x80, 0x80, 0x80}), false},       // overlong 4-byte
      {B({0xF0, 0x8F, 0xBF, 0xBF}), false},
      {B({0xED, 0xA0, 0x80}), false},             // U+D800
      {B({0xED, 0xBF, 0xBF}), false},             // U+DFFF
      {B({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}), false},  // CESU-8 pair
      {B({0xF4, 0x90, 0x80, 0x80}), false},       // U+110000
      {B({0xF5, 0x80, 0x80, 0x80}), false},
      {B({0xFF}), false},
      {B({0xFE}), false},
      {B({0x80}), false},                         // lone continuation
      {B({0xC2}), false},                         // truncated
      {B({0xE2, 0x82}), false},
      {B({0xF0, 0x9F, 0x98}), false},
      {B({0xC2, 0x41}), false},
  };
  for (const Case& c : cases) {
    // At the start, and deep in a long ASCII run so the SIMD blocks see it mid-vector
    // and across a 64-byte block boundary.
    for (std::size_t pad : {0, 1, 31, 62, 63, 64, 127, 1000}) {
      Bytes b(pad, 'a');
      Append(&b, c.b);
      b.resize(b.size() + (pad % 3) * 10, 'z');
      const bool got = IsValidUtf8(b.data(), b.size());
      if (RefUtf8(b.data(), b.size()) != c.valid || got != c.valid) {
        ++*bad;
        std::fprintf(stderr, "    %s: case at pad %zu: got %d\n", impl_name, pad, got);
      }
    }
  }
  // Random strings built from UTF-8-looking pieces, compared with the reference.
  uint64_t x = 0x2545F4914F6CDD1Dull;
  auto next = [&x] { x ^= x << 13, x ^= x >> 7, x ^= x << 17; return x; };
  const int rounds = myelin::test::kSanitized ? 3000 : 20000;
  for (int t = 0; t < rounds; ++t) {
    Bytes b;
    const std::size_t n = next() % 200;
    while (b.size() < n) {
      const uint64_t r = next();
      switch (r % 6) {
        case 0: b.push_back('a' + r % 26); break;
        case 1: b.push_back(static_cast<uint8_t>(r >> 8)); break;             // any byte
        case 2: b.push_back(0x80 | ((r >> 8) & 0x3F)); break;                 // continuation
        case 3: b.push_back(0xC0 | ((r >> 8) & 0x1F)); b.push_back(0x80 | ((r >> 16) & 0x3F)); break;
        case 4: b.push_back(0xE0 | ((r >> 8) & 0x0F)); b.push_back(0x80 | ((r >> 16) & 0x3F));
                b.push_back(0x80 | ((r >> 24) & 0x3F)); break;
        default: b.push_back(0xF0 | ((r >> 8) & 0x07)); b.push_back(0x80 | ((r >> 16) & 0x3F));
                 b.push_back(0x80 | ((r >> 24) & 0x3F)); b.push_back(0x80 | ((r >> 32) & 0x3F));
      }
    }
    if (IsValidUtf8(b.data(), b.size()) != RefUtf8(b.data(), b.size())) ++*bad;
  }
}

TEST(Utf8IsStrictOnEveryKernel) {
  const simdjson::implementation* active = simdjson::get_active_implementation();
  int kernels = 0;
  for (const simdjson::implementation* impl : simdjson::get_available_implementations()) {
    if (!impl->supported_by_runtime_system()) continue;
    simdjson::get_active_implementation() = impl;
    int bad = 0;
    CheckUtf8Cases(impl->name().c_str(), &bad);
    std::fprintf(stderr, "    kernel %s: %d mismatches\n", impl->name().c_str(), bad);
    CHECK_EQ(bad, 0);
    ++kernels;
  }
  simdjson::get_active_implementation() = active;
  CHECK(kernels >= 1);  // at least fallback
  CHECK(IsValidUtf8(nullptr, 0));
}

}  // namespace
}  // namespace myelin::ws
