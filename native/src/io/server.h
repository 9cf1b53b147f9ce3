// Server: the gateway's network half. `io_threads` threads, each with its own Reactor
// (epoll or io_uring), its own listening socket on the shared port (SO_REUSEPORT), its
// own connections, and one pair of ByteRings to the JS thread (records.h):
//
//   socket -> reactor -> HTTP parser / WebSocket reader -> simdjson field extraction
//          -> ingress ring -> (one wake-up per batch) -> JS: bus.publish of JSON bytes
//   JS -> egress ring -> (one wake-up per batch) -> framing, fan-out, write coalescing
//          -> one send per socket per loop turn
//
// What the I/O thread answers itself, without JS: the WebSocket handshake, ping/pong,
// close handshakes, malformed frames and `pub`s (error frames), auth refusals (401),
// protocol errors (4xx), the connection limit (503). Everything else is a record.
//
// Ownership: the caller (the binding) owns the ring memory and keeps it alive until
// every thread has returned from Run. Connections' state comes from one Slab; their
// read buffers exist only while they hold unprocessed bytes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/request_parser.h"
#include "io/reactor.h"

namespace myelin {
class Slab;
}

namespace myelin::io {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: an ephemeral port, shared by every thread
  uint32_t io_threads = 1;
  Backend backend = Backend::kEpoll;
  bool pin_threads = false;
  uint32_t max_connections = 10000;
  uint32_t max_payload_bytes = 1 << 20;   // WebSocket message and HTTP body
  uint32_t max_head_bytes = 16384;
  uint32_t max_headers = 64;
  uint32_t max_buffered_bytes = 8 << 20;  // unsent bytes per connection before it is closed
  uint32_t head_timeout_ms = 10000;       // a request head must arrive within this
  uint32_t idle_timeout_ms = 120000;      // an idle keep-alive HTTP connection is closed
  uint32_t ping_interval_ms = 30000;      // WebSocket: ping after this silence, close after twice
  uint32_t pub_per_second = 0;            // per connection `pub` rate; 0 = unlimited
  uint32_t pub_per_second_per_token = 0;  // per auth token, across connections; 0 = unlimited
  std::vector<std::string> tokens;        // bearer tokens; empty = no auth
};

struct ThreadRings {
  uint8_t* ingress;
  std::size_t ingress_bytes;
  uint8_t* egress;
  std::size_t egress_bytes;
};

// Wakes the JS thread: called from an I/O thread when it published ingress records
// (or freed egress room) while JS was idle. One call per idle-to-busy transition.
class JsWaker {
 public:
  virtual ~JsWaker() = default;
  virtual void WakeJs(uint32_t thread) noexcept = 0;
};

enum CloseReason : uint8_t {
  kClosePeer,          // the client closed or the socket failed
  kCloseNormal,        // a close handshake, or the server's response said close
  kCloseProtocol,      // a frame or request broke the protocol
  kCloseInvalidUtf8,
  kCloseTooBig,
  kCloseSlowConsumer,  // max_buffered_bytes passed
  kCloseTimeout,       // head, idle or ping timeout
  kCloseShutdown,
  kCloseReasonCount,
};
const char* CloseReasonName(CloseReason r) noexcept;

struct ServerStats {
  uint64_t accepted = 0, refused = 0, open = 0, websockets = 0;
  uint64_t http_requests = 0, frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t events_in = 0, errors_sent = 0, rate_limited = 0, auth_failures = 0;
  uint64_t ingress_stalls = 0;
  uint64_t state_bytes = 0;  // memory reserved for connection state (the slab's chunks)
  uint64_t closes[kCloseReasonCount] = {};
};

class Server {
 public:
  // kInvalidArgument for bad options or rings; kUnsupported when io_uring is asked
  // for and unusable; kResourceExhausted / kOutOfMemory.
  static Status Create(const ServerOptions& options, const std::vector<ThreadRings>& rings,
                       JsWaker* waker, std::unique_ptr<Server>* out) noexcept;
  ~Server();

  // Binds and listens (one socket per thread). kListenFailed with *error describing
  // why (address in use, permission, bad host). *port gets the bound port.
  Status Listen(std::string* error, uint16_t* port) noexcept;

  // The body of I/O thread `thread`; returns after Stop(). Call once per thread.
  void Run(uint32_t thread) noexcept;

  // Any thread. Wake: the thread looks at its egress ring and its commands.
  void Wake(uint32_t thread) noexcept;
  void StopAccepting() noexcept;
  // Sends a close frame with `code` to every WebSocket; they close on the reply or
  // after the close timeout (1 s).
  void CloseWebSockets(uint16_t code) noexcept;
  // Threads close every socket and return from Run.
  void Stop() noexcept;

  ServerStats Stats() const noexcept;
  Backend backend() const noexcept { return backend_; }
  uint32_t threads() const noexcept { return static_cast<uint32_t>(loops_.size()); }

  class Loop;

 private:
  Server() = default;
  ServerOptions options_;
  Backend backend_ = Backend::kEpoll;
  std::vector<std::unique_ptr<Loop>> loops_;
  JsWaker* waker_ = nullptr;
  std::atomic<uint32_t> open_connections_{0};
  struct TokenWindow {
    std::atomic<uint32_t> second{0};
    std::atomic<uint32_t> count{0};
  };
  std::unique_ptr<TokenWindow[]> token_windows_;  // per auth token: its pub rate window
  std::unique_ptr<Slab> slab_;                      // every connection's state
  friend class Loop;
};

}  // namespace myelin::io
