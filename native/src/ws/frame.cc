// RFC 6455 framing: headers, masking, UTF-8 and the message reader (frame.h).
//
// Order in which one frame's header is judged, so that a frame breaking two rules
// always gets the same code (the fuzzer's reference decoder follows the same order):
//   with 2 bytes: RSV bits, opcode, mask bit for the side, control frame fragmented or
//   over 125 bytes, continuation with nothing open, data frame inside an open message
//   (all 1002); with the extended length: top bit set (1002), one frame too many in
//   the message (1008), frame or assembled message over the limit (1009); with the
//   payload: close payload of 1 byte or an invalid code (1002), invalid UTF-8 in a
//   close reason or a text message (1007).
// Lengths need not be minimal (a 5-byte payload announced with 126 and a 16-bit
// length is accepted): RFC 6455 5.2 binds the sender only, and rejecting such frames
// protects nothing.
#include "ws/frame.h"

#include <cstring>
#include <new>
#include <stdexcept>

#include "simdjson.h"

namespace myelin::ws {

namespace {

inline bool IsControl(uint8_t opcode) { return (opcode & 0x8) != 0; }

inline bool IsKnownOpcode(uint8_t opcode) {
  return opcode <= kBinary || (opcode >= kClose && opcode <= kPong);
}

// RFC 6455 7.4: codes a peer may send. 1004-1006 and 1015 are reserved or never on
// the wire; 1016-2999 are reserved for the RFC and its extensions; 3000-4999 belong to
// libraries and applications. 1012-1014 are IANA-registered since the RFC.
inline bool IsValidWireCloseCode(uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  if (code < 1000 || code > 1014) return false;
  return code != 1004 && code != 1005 && code != 1006;
}

template <typename T>
inline T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
inline void Store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

// Writes the shared first bytes of a header and the 7/16/64-bit length; returns the
// bytes written. mask_bit is 0x80 for client frames.
inline std::size_t EncodeLength(uint8_t* out, uint8_t opcode, bool fin, uint64_t len,
                                uint8_t mask_bit) {
  out[0] = static_cast<uint8_t>((fin ? 0x80 : 0x00) | (opcode & 0x0F));
  if (len < 126) {
    out[1] = static_cast<uint8_t>(mask_bit | len);
    return 2;
  }
  if (len <= 0xFFFF) {
    out[1] = static_cast<uint8_t>(mask_bit | 126);
    out[2] = static_cast<uint8_t>(len >> 8);
    out[3] = static_cast<uint8_t>(len);
    return 4;
  }
  out[1] = static_cast<uint8_t>(mask_bit | 127);
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(len >> (56 - 8 * i));
  return 10;
}

}  // namespace

std::size_t EncodeServerHeader(uint8_t out[kMaxServerHeader], uint8_t opcode, bool fin,
                               uint64_t payload_len) noexcept {
  return EncodeLength(out, opcode, fin, payload_len, 0x00);
}

std::size_t EncodeClientHeader(uint8_t out[kMaxClientHeader], uint8_t opcode, bool fin,
                               uint64_t payload_len, uint32_t mask) noexcept {
  std::size_t n = EncodeLength(out, opcode, fin, payload_len, 0x80);
  // Little-endian u32 <-> wire bytes, the convention MaskBytes and the reader share.
  for (int i = 0; i < 4; ++i) out[n + i] = static_cast<uint8_t>(mask >> (8 * i));
  return n + 4;
}

void MaskBytes(uint8_t* data, std::size_t len, uint32_t mask, std::size_t phase) noexcept {
  // The key bytes in the order they apply from data[0]; laid out in memory and loaded
  // as words, so the same code is right on either byte order.
  uint8_t key[16];
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(mask >> (8 * ((phase + i) & 3)));
  std::size_t i = 0;
  if (len >= 8) {
    const uint64_t k = Load<uint64_t>(key);
    // 32 bytes a step in four independent words; GCC and clang turn this into SSE2 or
    // NEON at the baseline ISA (numbers in native/bench/ws_bench.cc).
    for (; i + 32 <= len; i += 32) {
      uint64_t a = Load<uint64_t>(data + i) ^ k;
      uint64_t b = Load<uint64_t>(data + i + 8) ^ k;
      uint64_t c = Load<uint64_t>(data + i + 16) ^ k;
      uint64_t d = Load<uint64_t>(data + i + 24) ^ k;
      Store(data + i, a);
      Store(data + i + 8, b);
      Store(data + i + 16, c);
      Store(data + i + 24, d);
    }
    for (; i + 8 <= len; i += 8) Store(data + i, Load<uint64_t>(data + i) ^ k);
  }
  // i is a multiple of 8, so the tail starts at key phase 0 again.
  for (; i < len; ++i) data[i] ^= key[i & 3];
}

bool IsValidUtf8(const uint8_t* data, std::size_t len) noexcept {
  if (len == 0) return true;
  // Runtime-dispatched (haswell, icelake, westmere, arm64 or fallback kernels); every
  // kernel is strict: no overlongs, no surrogates, nothing past U+10FFFF.
  return simdjson::validate_utf8(reinterpret_cast<const char*>(data), len);
}

MessageReader::MessageReader(const ReaderLimits* limits) noexcept : limits_(limits) {}

void MessageReader::Reset() noexcept {
  std::vector<uint8_t>().swap(fragments_);  // swap, not clear: capacity must go too
  frag_opcode_ = 0;
  frag_count_ = 0;
  failed_ = false;
  fail_code_ = 0;
}

MessageReader::Result MessageReader::Read(uint8_t* buf, std::size_t len, std::size_t* consumed,
                                          Message* msg, uint16_t* close_code) noexcept {
  *consumed = 0;
  if (failed_) {
    *close_code = fail_code_;
    return Result::kError;
  }
  // The previous Read returned an assembled message from the fragment buffer; the
  // caller is done with it now, and an idle connection owns no heap memory.
  if (frag_opcode_ == 0 && fragments_.capacity() != 0) std::vector<uint8_t>().swap(fragments_);

  const ReaderLimits& lim = *limits_;
  std::size_t pos = 0;
  auto fail = [&](uint16_t code) {
    failed_ = true;
    fail_code_ = code;
    *close_code = code;
    *consumed = pos;
    std::vector<uint8_t>().swap(fragments_);
    frag_opcode_ = 0;
    frag_count_ = 0;
    return Result::kError;
  };

  for (;;) {
    const uint8_t* h = buf + pos;
    const std::size_t avail = len - pos;
    if (avail < 2) break;
    const bool fin = (h[0] & 0x80) != 0;
    const uint8_t opcode = h[0] & 0x0F;
    const bool masked = (h[1] & 0x80) != 0;
    const uint8_t len7 = h[1] & 0x7F;
    if (h[0] & 0x70) return fail(kCloseProtocolError);  // no extension negotiated
    if (!IsKnownOpcode(opcode)) return fail(kCloseProtocolError);
    if (masked != lim.server_side) return fail(kCloseProtocolError);
    const bool control = IsControl(opcode);
    if (control && (!fin || len7 > 125)) return fail(kCloseProtocolError);
    if (opcode == kContinuation && frag_opcode_ == 0) return fail(kCloseProtocolError);
    if ((opcode == kText || opcode == kBinary) && frag_opcode_ != 0) {
      return fail(kCloseProtocolError);
    }

    const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (avail < 2 + ext) break;
    uint64_t payload_len = len7;
    if (ext == 2) {
      payload_len = (uint64_t{h[2]} << 8) | h[3];
    } else if (ext == 8) {
      payload_len = 0;
      for (int i = 0; i < 8; ++i) payload_len = (payload_len << 8) | h[2 + i];
      if (payload_len >> 63) return fail(kCloseProtocolError);
    }
    const bool starts_fragmented = !control && opcode != kContinuation && !fin;
    if (opcode == kContinuation && frag_count_ >= lim.max_fragments) return fail(kClosePolicy);
    if (starts_fragmented && lim.max_fragments == 0) return fail(kClosePolicy);
    // fragments_.size() is 0 unless a continuation adds to an open message.
    const uint64_t held = opcode == kContinuation ? fragments_.size() : 0;
    if (payload_len > lim.max_message_bytes || held > lim.max_message_bytes - payload_len) {
      return fail(kCloseTooBig);
    }

    const std::size_t header_len = 2 + ext + (masked ? 4 : 0);
    if (avail < header_len || avail - header_len < payload_len) break;
    uint8_t* payload = buf + pos + header_len;
    const std::size_t n = static_cast<std::size_t>(payload_len);  // fits: <= avail
    if (masked) {
      const uint8_t* m = h + 2 + ext;
      const uint32_t mask = m[0] | (m[1] << 8) | (m[2] << 16) | (uint32_t{m[3]} << 24);
      MaskBytes(payload, n, mask, 0);
    }
    const std::size_t frame_end = pos + header_len + n;

    if (control) {
      msg->opcode = opcode;
      msg->data = payload;
      msg->len = n;
      msg->close_code = 0;
      if (opcode == kClose) {
        if (n == 1) return fail(kCloseProtocolError);
        msg->close_code = kCloseNoStatus;
        if (n >= 2) {
          const uint16_t code = static_cast<uint16_t>((payload[0] << 8) | payload[1]);
          if (!IsValidWireCloseCode(code)) return fail(kCloseProtocolError);
          if (!IsValidUtf8(payload + 2, n - 2)) return fail(kCloseInvalidData);
          msg->close_code = code;
          msg->data = payload + 2;
          msg->len = n - 2;
        }
      }
      *consumed = frame_end;
      return Result::kMessage;
    }

    if (fin && opcode != kContinuation) {  // unfragmented: returned in place, no copy
      if (opcode == kText && !IsValidUtf8(payload, n)) return fail(kCloseInvalidData);
      msg->opcode = opcode;
      msg->data = payload;
      msg->len = n;
      msg->close_code = 0;
      *consumed = frame_end;
      return Result::kMessage;
    }

    // A fragment: its payload joins the buffer and its bytes count as consumed. Empty
    // fragments allocate nothing, so a flood of them costs only the max_fragments check.
    if (n != 0) {
      try {
        fragments_.insert(fragments_.end(), payload, payload + n);
      } catch (const std::bad_alloc&) {
        return fail(kCloseTooBig);
      } catch (const std::length_error&) {
        return fail(kCloseTooBig);
      }
    }
    if (opcode != kContinuation) {
      frag_opcode_ = opcode;
      frag_count_ = 1;
    } else {
      ++frag_count_;
    }
    pos = frame_end;
    if (!fin) continue;

    // The last fragment: the message is complete. The buffer is freed by the next Read.
    if (frag_opcode_ == kText && !IsValidUtf8(fragments_.data(), fragments_.size())) {
      return fail(kCloseInvalidData);
    }
    msg->opcode = frag_opcode_;
    // An empty message may have no buffer at all: point at the (empty) last payload.
    msg->data = fragments_.empty() ? payload : fragments_.data();
    msg->len = fragments_.size();
    msg->close_code = 0;
    frag_opcode_ = 0;
    frag_count_ = 0;
    *consumed = frame_end;
    return Result::kMessage;
  }
  *consumed = pos;
  return Result::kNeedMore;
}

}  // namespace myelin::ws
