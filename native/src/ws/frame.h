// WebSocket (RFC 6455) framing for the gateway: the handshake key, frame headers, a
// message reader that assembles fragments and checks every rule of the RFC, and UTF-8
// validation. Pure and allocation-free on the common path (an unfragmented message is
// returned in place); fuzzed on its own (native/fuzz/fuzz_ws.cc).
//
// The reader runs on the server side by default (client frames must be masked) and on
// the client side for the load generator and tests (server frames must not be).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace myelin::ws {

enum Opcode : uint8_t { kContinuation = 0x0, kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA };

// Close codes this library sends (RFC 6455 7.4.1).
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseUnsupportedData = 1003;
inline constexpr uint16_t kCloseNoStatus = 1005;  // never on the wire
inline constexpr uint16_t kCloseInvalidData = 1007;
inline constexpr uint16_t kClosePolicy = 1008;
inline constexpr uint16_t kCloseTooBig = 1009;
inline constexpr uint16_t kCloseInternal = 1011;
inline constexpr uint16_t kCloseTryAgain = 1013;

// --- handshake ----------------------------------------------------------------------
// True when key is a valid Sec-WebSocket-Key: base64 of exactly 16 bytes (24 chars,
// ending "==", the standard alphabet).
bool IsValidClientKey(std::string_view key) noexcept;
// Sec-WebSocket-Accept: base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")),
// always 28 characters.
void ComputeAccept(std::string_view key, char out[28]) noexcept;
// SHA-1 (FIPS 180-4) of data: ComputeAccept's hash, declared here for its test vectors.
void Sha1(const uint8_t* data, std::size_t len, uint8_t out[20]) noexcept;

// --- encoding -----------------------------------------------------------------------
inline constexpr std::size_t kMaxServerHeader = 10;  // unmasked
inline constexpr std::size_t kMaxClientHeader = 14;  // masked
// Writes an unmasked (server) frame header; returns its length (2, 4 or 10).
std::size_t EncodeServerHeader(uint8_t out[kMaxServerHeader], uint8_t opcode, bool fin,
                               uint64_t payload_len) noexcept;
// Writes a masked (client) frame header with the given mask key; returns its length
// (6, 8 or 14). The caller masks the payload with MaskBytes(payload, len, mask, 0).
std::size_t EncodeClientHeader(uint8_t out[kMaxClientHeader], uint8_t opcode, bool fin,
                               uint64_t payload_len, uint32_t mask) noexcept;
// XORs data with the 4-byte mask (in network order as sent on the wire, read as a
// little-endian u32 from the header bytes), starting at mask phase `phase` (0..3).
// Word-at-a-time; used both to mask and to unmask.
void MaskBytes(uint8_t* data, std::size_t len, uint32_t mask, std::size_t phase) noexcept;

// --- UTF-8 --------------------------------------------------------------------------
// Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF), SIMD-dispatched at run time
// (simdjson's validator), with a scalar fallback.
bool IsValidUtf8(const uint8_t* data, std::size_t len) noexcept;

// --- reading ------------------------------------------------------------------------
struct Message {
  uint8_t opcode;        // kText, kBinary, kClose, kPing or kPong
  const uint8_t* data;   // payload (unmasked); for kClose the reason text
  std::size_t len;
  uint16_t close_code;   // kClose only: the peer's code, or kCloseNoStatus when empty
};

struct ReaderLimits {
  uint64_t max_message_bytes = 1 << 20;  // a frame or an assembled message past it: 1009
  uint32_t max_fragments = 4096;         // frames in one fragmented message: past it 1008
  bool server_side = true;               // client frames must be masked, server frames not
};

class MessageReader {
 public:
  // limits is shared by every reader of a server and must outlive them (a connection
  // keeps a pointer, not a copy: idle connections stay small).
  explicit MessageReader(const ReaderLimits* limits) noexcept;

  enum class Result : uint8_t {
    kMessage,   // *msg holds one complete message or control frame
    kNeedMore,  // no complete message in buf yet
    kError,     // a protocol violation: send a close frame with *close_code, then close
  };

  // Reads from buf[0, len), unmasking payloads in place (so buf must be writable).
  // *consumed is always set: the bytes of buf the caller may now drop.
  //   kMessage: msg->data points into buf (an unfragmented message) or into the
  //     reader's fragment buffer; it stays valid until the next Read or Reset. The
  //     caller handles the message, drops *consumed bytes, and calls Read again on the
  //     rest (there may be more messages).
  //   kNeedMore: complete data frames of a fragmented message were moved into the
  //     fragment buffer and are counted in *consumed; an incomplete frame is left in
  //     buf (consumed stops before it).
  //   kError: *close_code is 1002 (unmasked client frame or masked server frame, RSV
  //     bits set, unknown opcode, a control frame fragmented or over 125 bytes, a
  //     continuation with no message open, a new data frame inside a fragmented one, a
  //     64-bit length with the top bit set, a close payload of 1 byte or with an
  //     invalid code), 1007 (invalid UTF-8 in a text message or a close reason), 1009
  //     (a frame or message over max_message_bytes; decided from the header, before the
  //     payload arrives) or 1008 (more than max_fragments frames in one message).
  //     After an error the reader stays in error.
  // Text messages are validated as a whole once complete (or per frame when
  // unfragmented). Empty continuation frames count toward max_fragments. Lengths need
  // not use the shortest form (RFC 6455 5.2 binds senders; readers gain nothing by
  // refusing).
  Result Read(uint8_t* buf, std::size_t len, std::size_t* consumed, Message* msg,
              uint16_t* close_code) noexcept;

  // Bytes held in the fragment buffer (for memory accounting); 0 between messages.
  std::size_t buffered_bytes() const noexcept { return fragments_.size(); }
  // Drops any partial message, frees the fragment buffer and clears a failure: the
  // reader is as new (for a connection object that is reused).
  void Reset() noexcept;

 private:
  const ReaderLimits* limits_;
  std::vector<uint8_t> fragments_;  // assembled data of a fragmented message; freed after it
  uint8_t frag_opcode_ = 0;         // opcode of the open fragmented message, 0 when none
  uint32_t frag_count_ = 0;
  bool failed_ = false;
  uint16_t fail_code_ = 0;          // the close code every Read repeats once failed_
};

}  // namespace myelin::ws
