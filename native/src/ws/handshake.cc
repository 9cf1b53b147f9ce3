// The opening handshake's key check and Sec-WebSocket-Accept (RFC 6455 4.2.1, 4.2.2),
// with the SHA-1 (FIPS 180-4) and base64 (RFC 4648 4) they need. Written here rather
// than linked from OpenSSL: the core has no such dependency, and the accept value is
// one 60-byte hash per connection, far from any hot path.
#include <cstring>

#include "ws/frame.h"

namespace myelin::ws {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// The 6-bit value of a standard-alphabet character, or -1.
int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

inline uint32_t Rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

class Sha1State {
 public:
  void Update(const uint8_t* p, std::size_t n) {
    if (n == 0) return;  // p may be null then
    total_ += n;
    if (fill_ != 0) {
      const std::size_t take = n < 64 - fill_ ? n : 64 - fill_;
      std::memcpy(block_ + fill_, p, take);
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ < 64) return;
      Compress(block_);
      fill_ = 0;
    }
    for (; n >= 64; p += 64, n -= 64) Compress(p);
    std::memcpy(block_, p, n);
    fill_ = n;
  }

  void Final(uint8_t out[20]) {
    const uint64_t bits = total_ * 8;
    uint8_t pad[72] = {0x80};
    // Pad to 56 mod 64, then the 64-bit big-endian bit count.
    const std::size_t pad_len = fill_ < 56 ? 56 - fill_ : 120 - fill_;
    for (int i = 0; i < 8; ++i) pad[pad_len + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    Update(pad, pad_len + 8);
    for (int i = 0; i < 5; ++i) {
      for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<uint8_t>(h_[i] >> (24 - 8 * j));
    }
  }

 private:
  void Compress(const uint8_t* b) {
    uint32_t w[80];
    for (int t = 0; t < 16; ++t) {
      w[t] = (uint32_t{b[4 * t]} << 24) | (uint32_t{b[4 * t + 1]} << 16) |
             (uint32_t{b[4 * t + 2]} << 8) | b[4 * t + 3];
    }
    for (int t = 16; t < 80; ++t) w[t] = Rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h_[0], bb = h_[1], c = h_[2], d = h_[3], e = h_[4];
    for (int t = 0; t < 80; ++t) {
      uint32_t f, k;
      if (t < 20) {
        f = (bb & c) | (~bb & d);
        k = 0x5A827999;
      } else if (t < 40) {
        f = bb ^ c ^ d;
        k = 0x6ED9EBA1;
      } else if (t < 60) {
        f = (bb & c) | (bb & d) | (c & d);
        k = 0x8F1BBCDC;
      } else {
        f = bb ^ c ^ d;
        k = 0xCA62C1D6;
      }
      const uint32_t tmp = Rotl(a, 5) + f + e + k + w[t];
      e = d;
      d = c;
      c = Rotl(bb, 30);
      bb = a;
      a = tmp;
    }
    h_[0] += a;
    h_[1] += bb;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
  }

  uint32_t h_[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  uint8_t block_[64];
  std::size_t fill_ = 0;
  uint64_t total_ = 0;
};

}  // namespace

void Sha1(const uint8_t* data, std::size_t len, uint8_t out[20]) noexcept {
  Sha1State s;
  s.Update(data, len);
  s.Final(out);
}

bool IsValidClientKey(std::string_view key) noexcept {
  // 16 bytes are 128 bits: 21 characters carry 126, the 22nd the last 2 and four
  // zero bits, then "==". A 22nd character with any of those four bits set is not the
  // encoding of any 16 bytes (RFC 4648 3.5); no conforming client sends one.
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 21; ++i) {
    if (Base64Value(key[i]) < 0) return false;
  }
  const int last = Base64Value(key[21]);
  return last >= 0 && (last & 0x0F) == 0;
}

void ComputeAccept(std::string_view key, char out[28]) noexcept {
  Sha1State s;
  s.Update(reinterpret_cast<const uint8_t*>(key.data()), key.size());
  s.Update(reinterpret_cast<const uint8_t*>(kGuid.data()), kGuid.size());
  uint8_t d[21] = {};  // 20 digest bytes and a zero, so the last group reads 3 bytes
  s.Final(d);
  for (int g = 0; g < 7; ++g) {
    const uint32_t v = (uint32_t{d[3 * g]} << 16) | (uint32_t{d[3 * g + 1]} << 8) | d[3 * g + 2];
    out[4 * g] = kAlphabet[(v >> 18) & 63];
    out[4 * g + 1] = kAlphabet[(v >> 12) & 63];
    out[4 * g + 2] = kAlphabet[(v >> 6) & 63];
    out[4 * g + 3] = kAlphabet[v & 63];
  }
  out[27] = '=';  // 20 bytes = 6 groups of 3 and one of 2: one pad character
}

}  // namespace myelin::ws
