// The records the gateway's I/O threads and the JS thread exchange through their
// ByteRings (queue/byte_ring.h): per I/O thread, one ingress ring (I/O thread -> JS)
// and one egress ring (JS -> I/O thread). lib/gateway/records.ts mirrors this file;
// test/gateway-records.test.ts checks the two agree.
//
// Connection ids: conn = (io thread index << 24) | slot, plus a generation that changes
// whenever a slot is reused, so a record for a closed connection is recognised and
// dropped instead of reaching the slot's next owner.
//
// All integers little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace myelin::io {

// ---- ingress: I/O thread -> JS -------------------------------------------------------
//   off  0  u8   kind (IngressKind)
//   off  1  u8   priority 0..3 (critical, high, normal, low) or kNoPriority
//   off  2  u16  flags (IngressFlag)
//   off  4  u32  conn
//   off  8  u32  gen
//   off 12  u32  subject id: 0 = not interned; else the id of this thread's subject
//                table. A record that carries subject text with a non-zero id defines
//                the id; one with an id and no text refers to it.
//   off 16  u16  subject length      (text follows the header)
//   off 18  u16  id length           (a `sub`/`req` id, or the HTTP target)
//   off 20  u32  key length          (pub key; for HTTP: the header block)
//   off 24  u32  data length         (pub data: raw JSON value text; HTTP: body)
//   off 28  u32  read time: CLOCK_MONOTONIC in microseconds (wraps) when the I/O thread
//                read the bytes; JS subtracts it from its own clock (process.hrtime is
//                the same clock) for the ingress stage of the hot-path breakdown
//   off 32  bytes: subject, id, key, data, in that order
inline constexpr std::size_t kIngressHeader = 32;
inline constexpr uint8_t kNoPriority = 0xff;

enum IngressKind : uint8_t {
  kInPub = 1,         // WebSocket `pub` or one /v1/events event: subject, key, priority, data
  kInSub = 2,         // `sub`: id, subject (a pattern)
  kInUnsub = 3,       // `unsub`: id
  kInReq = 4,         // `req`: id, subject, data (key optional)
  kInWsClosed = 5,    // a WebSocket that JS knows of (it sent sub/req) is gone
  kInHttpRequest = 6, // subject = method, id = target, key = header block, data = body
  kInHttpClosed = 7,  // the client of an HTTP request JS is answering went away
  kInEventsEnd = 8,   // end of a /v1/events body: data = u32 count of kInPub records sent
};

enum IngressFlag : uint16_t {
  kInFlagHttp = 1,       // kInPub from POST /v1/events (answered by kInEventsEnd), not a socket
  kInFlagTokenShift = 8, // bits 8..15: 1 + index of the auth token used; 0 = none
};

// ---- egress: JS -> I/O thread --------------------------------------------------------
//   off  0  u8   kind (EgressKind)
//   off  1  u8   flags (EgressFlag)
//   off  2  u16  code (close code)
//   off  4  u32  conn (kOutFanout: target count)
//   off  8  u32  gen
//   off 12  u32  payload length
//   off 16  payload
inline constexpr std::size_t kEgressHeader = 16;

enum EgressKind : uint8_t {
  kOutHttp = 1,     // raw bytes of an HTTP response (head and/or body)
  kOutWsText = 2,   // payload is one text message; the I/O thread frames it
  kOutFanout = 3,   // one text message to many sockets, see below
  kOutWsClose = 4,  // close handshake with `code`, payload = reason (<= 123 bytes)
  kOutClose = 5,    // close the socket once what is queued is written
};

enum EgressFlag : uint8_t {
  kOutFlagEnd = 1,  // kOutHttp: the response is complete; the next pipelined request may start
  kOutFlagCloseAfter = 2,  // kOutHttp: close the connection after this response
};

// kOutFanout payload: the shared prefix (payload length bytes, padded to 4), then
// `conn` (the count) targets of: u32 conn, u32 gen, u32 suffix length, suffix bytes
// padded to 4. Each target gets one text message: prefix + its suffix (the suffix
// carries what differs per socket: the subscription id and the closing brace).
}  // namespace myelin::io
