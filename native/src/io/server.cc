// The gateway server: one Loop per I/O thread (server.h has the picture).
//
// A connection's life: accepted -> HTTP (head, then body) -> either a record for JS
// (the connection then waits for JS's response, pipelined bytes kept), a native answer
// (401/4xx/426), the WebSocket handshake (-> WebSocket state), or /v1/events parsed
// into pub records. WebSocket text frames are parsed here; only their fields and the
// raw `data` bytes cross to JS.
//
// Backpressure: before turning bytes into records, the loop checks the ingress ring
// has room for every record those bytes could make; when it has not, the connection
// keeps its bytes, stops reading, and waits on the loop's stalled list until JS frees
// room (it swaps PRODUCER_WAITING and wakes us). Nothing is read that cannot be handed
// on, so nothing is dropped.
#include "io/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string_view>
#include <unordered_map>

#include "alloc/slab.h"
#include "io/records.h"
#include "json/field_extractor.h"
#include "queue/byte_ring.h"
#include "route/subject.h"
#include "sys/cpu.h"
#include "ws/frame.h"

namespace myelin::io {

const char* CloseReasonName(CloseReason r) noexcept {
  switch (r) {
    case kClosePeer: return "peer";
    case kCloseNormal: return "normal";
    case kCloseProtocol: return "protocol";
    case kCloseInvalidUtf8: return "invalid_utf8";
    case kCloseTooBig: return "too_big";
    case kCloseSlowConsumer: return "slow_consumer";
    case kCloseTimeout: return "timeout";
    case kCloseShutdown: return "shutdown";
    default: return "unknown";
  }
}

namespace {

// Counters are written by their own I/O thread only and read by Stats() from another:
// relaxed atomic load/store (no locked add), so the read is a whole value and not a race.
inline void Bump(uint64_t& field, uint64_t n = 1) noexcept {
  std::atomic_ref<uint64_t> a(field);
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline uint64_t Read(const uint64_t& field) noexcept {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(field)).load(std::memory_order_relaxed);
}

uint32_t NowUs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000);
}

uint64_t NowMs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// A growable byte buffer on malloc; empty buffers own nothing.
struct Buf {
  uint8_t* p = nullptr;
  uint32_t len = 0;
  uint32_t cap = 0;

  bool Reserve(std::size_t need) noexcept {
    if (need <= cap) return true;
    if (need > 0xffffffffu) return false;
    std::size_t n = cap ? cap : 256;
    while (n < need) n *= 2;
    if (n > 0xffffffffu) n = 0xffffffffu;
    void* q = std::realloc(p, n);
    if (!q) return false;
    p = static_cast<uint8_t*>(q);
    cap = static_cast<uint32_t>(n);
    return true;
  }
  bool Append(const void* d, std::size_t n) noexcept {
    if (!Reserve(static_cast<std::size_t>(len) + n)) return false;
    if (n) std::memcpy(p + len, d, n);
    len += static_cast<uint32_t>(n);
    return true;
  }
  void Consume(std::size_t n) noexcept {
    if (n >= len) {
      len = 0;
      return;
    }
    std::memmove(p, p + n, len - n);
    len -= static_cast<uint32_t>(n);
  }
  void Free() noexcept {
    std::free(p);
    p = nullptr;
    len = cap = 0;
  }
};

enum ConnState : uint8_t { kHttpHead, kHttpBody, kHttpWaitJs, kWebSocket, kClosing };

enum ConnFlag : uint16_t {
  kSending = 1,        // a reactor Send is in flight (inflight holds its bytes)
  kPaused = 2,         // reading paused (stalled on the ingress ring or waiting on JS)
  kJsKnows = 4,        // JS holds state for this WebSocket (it sent sub/req)
  kCloseAfter = 8,     // close once everything queued is written
  kStalled = 16,       // on the stalled list
  kPingSent = 32,
  kKeepAlive = 64,     // the request being answered keeps the connection open
  kDirty = 128,        // on the dirty list
  kWsCloseSent = 256,
  kEventsRequest = 512,  // the request JS answers is a /v1/events body
  kNoInput = 1024,       // answered and closing: further input is ignored
  kBodyReady = 2048,     // kHttpBody: the whole body is in `in`, waiting for ring room
};

// One connection. Kept small: idle WebSockets are the common case at scale.
struct Conn {
  int fd;
  uint32_t slot;
  uint32_t gen;
  uint8_t state;
  uint8_t token;  // 1 + index of the auth token, 0 = none
  uint16_t flags;
  uint8_t why;    // the CloseReason to count when a kCloseAfter close happens
  uint32_t last_ms;   // last read activity, loop clock (ms, wraps)
  uint32_t since_ms;  // when the current request head started (slowloris)
  uint32_t head_scan;
  uint32_t body_off;     // kHttpBody: where the body starts in `in`
  uint32_t body_len;     // kHttpBody, Content-Length: body bytes expected
  uint32_t window_start; // pub rate window (s) and count in it
  uint32_t window_count;
  Buf in;        // unprocessed input
  Buf out;       // queued output, sent when the in-flight send ends
  Buf inflight;  // bytes the reactor is sending
  http::ChunkedDecoder* chunked;  // kHttpBody with Transfer-Encoding: chunked
  uint32_t chunk_in;   // chunked: undecoded input starts here in `in`
  uint32_t chunk_out;  // chunked: decoded bytes so far, from body_off
  ws::MessageReader reader;

  explicit Conn(const ws::ReaderLimits* limits) noexcept : reader(limits) {}
};

// The MyelinError codes the server puts in error frames and bodies, from the one status
// table (common/status.h), never spelled here.
const char* const kBadInput = StatusCode(Status::kInvalidArgument);
const char* const kBusy = StatusCode(Status::kFull);
const char* const kRateLimited = StatusCode(Status::kRateLimited);
const char* const kTimedOut = StatusCode(Status::kTimedOut);

constexpr std::string_view kPubNames[] = {"op", "subject", "data", "key", "priority", "id"};
enum { kFOp, kFSubject, kFData, kFKey, kFPriority, kFId, kFCount };

// Lets the subject table be searched with a string_view (C++20 heterogeneous lookup).
struct SubjectHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

bool IEquals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) noexcept {
  // Length is not secret (tokens are long random strings); the bytes are.
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

// Appends s as a JSON string body (no quotes), escaping what JSON requires.
void AppendJsonEscaped(std::string* out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      out->append("\\u00");
      out->push_back(hex[c >> 4]);
      out->push_back(hex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
}

int PriorityOf(std::string_view p) noexcept {
  if (p == "critical") return 0;
  if (p == "high") return 1;
  if (p == "normal") return 2;
  if (p == "low") return 3;
  return -1;
}

}  // namespace

// ===================================================================================
class Server::Loop final : public Handler {
 public:
  Loop(Server* server, uint32_t index, const ThreadRings& rings, Slab* slab) noexcept
      : server_(server),
        opts_(server->options_),
        index_(index),
        ingress_(rings.ingress, rings.ingress_bytes),
        egress_(rings.egress, rings.egress_bytes),
        slab_(slab) {
    reader_limits_.max_message_bytes = opts_.max_payload_bytes;
    reader_limits_.server_side = true;
    http_limits_.max_head_bytes = opts_.max_head_bytes;
    http_limits_.max_request_line = std::min<uint32_t>(8192, opts_.max_head_bytes);
    http_limits_.max_headers = std::min<uint32_t>(opts_.max_headers, http::kMaxHeaders);
    http_limits_.max_body_bytes = opts_.max_payload_bytes;
  }

  ~Loop() override {
    for (Conn* c : conns_)
      if (c) Release(c, /*close_fd=*/true);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  Status Init(Backend backend) noexcept {
    ReactorOptions ro;
    ro.backend = backend;
    return Reactor::Create(ro, this, &reactor_);
  }

  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stop_accepting_{false};
  std::atomic<uint32_t> close_ws_code_{0};
  ServerStats stats_;  // written by this thread only; read racily by Stats()
  std::atomic<uint64_t> stats_seq_{0};

  void Run() noexcept {
    if (opts_.pin_threads) {
      CpuInfo info;
      // Leave the first allowed CPU to the JS thread when there is more than one.
      if (Ok(GetCpuInfo(&info)) && !info.allowed.empty()) {
        const std::size_t n = info.allowed.size();
        PinCurrentThread(info.allowed[n > 1 ? 1 + index_ % (n - 1) : 0]);
      }
    }
    if (listen_fd_ >= 0 && !Ok(reactor_->AddListener(listen_fd_, kListenerToken))) {
      ::close(listen_fd_);
      listen_fd_ = -1;
    }
    now_ = static_cast<uint32_t>(NowMs());
    uint32_t next_sweep = now_ + 250;
    while (!stop_.load(std::memory_order_acquire)) {
      Commands();
      DrainEgress();
      RetryStalled();
      Flush();
      PublishIngress();
      int timeout = static_cast<int>(next_sweep - now_);
      if (timeout < 0) timeout = 0;
      // Sleep only when JS has nothing queued for us: announce it, then re-check.
      if (timeout > 0 && !egress_.PrepareSleep()) timeout = 0;
      if (reactor_->Poll(timeout) < 0) break;
      egress_.Store(ByteRingWord::kConsumerSleeping, 0);
      now_ = static_cast<uint32_t>(NowMs());
      if (static_cast<int32_t>(now_ - next_sweep) >= 0) {
        Sweep();
        next_sweep = now_ + 250;
      }
    }
    // Shutdown. What JS wrote before Stop() (the responses close() waited for) may
    // still be in the egress ring or queued on its sockets: send it first, bounded
    // (0.5 s), reading nothing more; then every socket goes, and JS learns of those
    // it knows.
    stopping_ = true;
    DrainEgress();
    Flush();
    for (int i = 0; i < 50 && PendingOutput(); ++i) {
      reactor_->Poll(10);
      Flush();
    }
    for (Conn* c : conns_)
      if (c && c->state != kClosing) CloseConn(c, kCloseShutdown);
    PublishIngress();
    for (int i = 0; i < 50 && live_ > 0; ++i) reactor_->Poll(10);
    if (listen_fd_ >= 0) {
      reactor_->RemoveListener(listen_fd_);
      ::close(listen_fd_);
      listen_fd_ = -1;
    }
  }

  void Wake() noexcept {
    if (reactor_) reactor_->Wake();
  }

  bool PendingOutput() const noexcept {
    for (const Conn* c : conns_)
      if (c && c->state != kClosing && ((c->flags & kSending) || c->out.len)) return true;
    return false;
  }

  // ---- Handler ----------------------------------------------------------------------
  void OnAccept(uint64_t, int fd) noexcept override {
    if (stop_accepting_.load(std::memory_order_relaxed)) {
      ::close(fd);
      return;
    }
    uint32_t open = server_->open_connections_.fetch_add(1, std::memory_order_relaxed);
    if (open >= opts_.max_connections) {
      server_->open_connections_.fetch_sub(1, std::memory_order_relaxed);
      static const char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!::send(fd, kBusy, sizeof(kBusy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      Bump(stats_.refused);
      return;
    }
    Conn* c = NewConn(fd);
    if (!c) {
      server_->open_connections_.fetch_sub(1, std::memory_order_relaxed);
      ::close(fd);
      Bump(stats_.refused);
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!Ok(reactor_->Attach(fd, Token(c)))) {
      CloseConn(c, kClosePeer);
      return;
    }
    Bump(stats_.accepted);
  }

  void OnData(uint64_t token, uint8_t* data, std::size_t len) noexcept override {
    Conn* c = Lookup(token);
    if (!c || c->state == kClosing || (c->flags & kNoInput) || stopping_) return;
    c->last_ms = now_;
    read_us_ = NowUs();
    c->flags &= ~kPingSent;
    Bump(stats_.bytes_in, len);
    if (c->in.len == 0 && !(c->flags & (kStalled | kPaused)) && c->state != kHttpBody) {
      // The common case: parse straight from the reactor's buffer, keep the rest.
      std::size_t used = Process(c, data, len);
      if (c->state != kClosing && !(c->flags & kNoInput) && used < len && !c->in.Append(data + used, len - used))
        CloseConn(c, kCloseTooBig);
      if (c->state == kHttpBody) ContinueBody(c);
    } else {
      if (!c->in.Append(data, len)) {
        CloseConn(c, kCloseTooBig);
        return;
      }
      if (!(c->flags & kStalled)) ProcessBuffered(c);
    }
    if (c->state != kClosing && c->in.len > BufferedInputLimit()) {
      // A client that keeps sending while we wait (on JS or the ring) is paused, not buffered.
      PauseRead(c);
    }
  }

  void OnHangup(uint64_t token, int) noexcept override {
    Conn* c = Lookup(token);
    if (c && c->state != kClosing) CloseConn(c, kClosePeer);
  }

  void OnSent(uint64_t token, int err) noexcept override {
    Conn* c = Lookup(token);
    if (!c) return;
    c->flags &= ~kSending;
    c->inflight.Free();
    if (c->state == kClosing) return;
    if (err) {
      CloseConn(c, kClosePeer);
      return;
    }
    if (c->out.len) {
      MarkDirty(c);
    } else if (c->flags & kCloseAfter) {
      CloseConn(c, static_cast<CloseReason>(c->why));
    }
  }

  void OnClosed(uint64_t token) noexcept override {
    Conn* c = Lookup(token);
    if (!c) return;
    Release(c, /*close_fd=*/false);
  }

  void OnWake() noexcept override {}

 private:
  static constexpr uint64_t kListenerToken = ~0ull;

  uint32_t BufferedInputLimit() const noexcept { return opts_.max_payload_bytes + opts_.max_head_bytes + 65536; }

  static uint64_t Token(const Conn* c) noexcept { return (static_cast<uint64_t>(c->gen) << 32) | c->slot; }
  uint32_t ConnId(const Conn* c) const noexcept { return (index_ << 24) | c->slot; }

  Conn* Lookup(uint64_t token) noexcept {
    uint32_t slot = static_cast<uint32_t>(token);
    if (slot >= conns_.size()) return nullptr;
    Conn* c = conns_[slot];
    return c && c->gen == static_cast<uint32_t>(token >> 32) ? c : nullptr;
  }
  Conn* LookupId(uint32_t conn, uint32_t gen) noexcept {
    if ((conn >> 24) != index_) return nullptr;
    uint32_t slot = conn & 0xffffff;
    if (slot >= conns_.size()) return nullptr;
    Conn* c = conns_[slot];
    return c && c->gen == gen && c->state != kClosing ? c : nullptr;
  }

  Conn* NewConn(int fd) noexcept {
    uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      if (conns_.size() >= 0xffffff) return nullptr;
      try {
        conns_.push_back(nullptr);
        gens_.push_back(0);
        free_slots_.reserve(conns_.capacity());
      } catch (...) {
        return nullptr;
      }
      slot = static_cast<uint32_t>(conns_.size() - 1);
    }
    void* mem = slab_->Allocate(sizeof(Conn));
    if (!mem) {
      free_slots_.push_back(slot);
      return nullptr;
    }
    Conn* c = new (mem) Conn(&reader_limits_);
    c->fd = fd;
    c->slot = slot;
    c->gen = ++gens_[slot];
    c->state = kHttpHead;
    c->token = 0;
    c->flags = 0;
    c->why = kCloseNormal;
    c->last_ms = c->since_ms = now_;
    c->head_scan = c->body_off = c->body_len = 0;
    c->window_start = c->window_count = 0;
    c->chunked = nullptr;
    c->chunk_in = c->chunk_out = 0;
    conns_[slot] = c;
    ++live_;
    Bump(stats_.open);
    return c;
  }

  void Release(Conn* c, bool close_fd) noexcept {
    if (close_fd && c->state != kClosing && c->fd >= 0) ::close(c->fd);
    c->in.Free();
    c->out.Free();
    c->inflight.Free();
    delete c->chunked;
    conns_[c->slot] = nullptr;
    free_slots_.push_back(c->slot);  // capacity reserved in NewConn
    c->~Conn();
    slab_->Free(c);
    --live_;
    Bump(stats_.open, ~0ull);
    server_->open_connections_.fetch_sub(1, std::memory_order_relaxed);
  }

  void CloseConn(Conn* c, CloseReason why) noexcept {
    if (c->state == kClosing) return;
    if (c->state == kWebSocket) Bump(stats_.websockets, ~0ull);
    if (c->flags & kJsKnows) Control(c->state == kWebSocket ? kInWsClosed : kInHttpClosed, c);
    c->state = kClosing;
    Bump(stats_.closes[why]);
    if (c->flags & kStalled) c->flags &= ~kStalled;  // RetryStalled skips closing conns
    reactor_->Close(c->fd, Token(c));
  }

  // Stops reading for good; the connection closes once its queued bytes are written.
  void CloseAfterFlush(Conn* c, CloseReason why) noexcept {
    if (c->state == kClosing) return;
    c->flags |= kNoInput | kCloseAfter;
    c->why = why;
    c->since_ms = now_;
    PauseRead(c);
    if (!(c->flags & kSending) && c->out.len == 0 && !(c->flags & kDirty)) CloseConn(c, why);
  }

  void PauseRead(Conn* c) noexcept {
    if (c->flags & kPaused) return;
    c->flags |= kPaused;
    reactor_->PauseReading(c->fd, Token(c));
  }
  void ResumeRead(Conn* c) noexcept {
    if (!(c->flags & kPaused)) return;
    c->flags &= ~kPaused;
    reactor_->ResumeReading(c->fd, Token(c));
  }

  // ---- output -------------------------------------------------------------------------
  void MarkDirty(Conn* c) noexcept {
    if (c->flags & kDirty) return;
    c->flags |= kDirty;
    try {
      dirty_.push_back(Token(c));
    } catch (...) {
      c->flags &= ~kDirty;
      CloseConn(c, kCloseSlowConsumer);
    }
  }

  bool Write(Conn* c, const void* data, std::size_t n) noexcept {
    if (c->state == kClosing) return false;
    if (static_cast<uint64_t>(c->out.len) + c->inflight.len + n > opts_.max_buffered_bytes ||
        !c->out.Append(data, n)) {
      CloseConn(c, kCloseSlowConsumer);
      return false;
    }
    MarkDirty(c);
    return true;
  }

  bool WriteFrame(Conn* c, uint8_t opcode, const uint8_t* a, std::size_t an, const uint8_t* b = nullptr,
                  std::size_t bn = 0) noexcept {
    uint8_t h[ws::kMaxServerHeader];
    std::size_t hn = ws::EncodeServerHeader(h, opcode, true, an + bn);
    if (c->state == kClosing) return false;
    const std::size_t total = hn + an + bn;
    if (static_cast<uint64_t>(c->out.len) + c->inflight.len + total > opts_.max_buffered_bytes ||
        !c->out.Reserve(static_cast<std::size_t>(c->out.len) + total)) {
      CloseConn(c, kCloseSlowConsumer);
      return false;
    }
    c->out.Append(h, hn);
    c->out.Append(a, an);
    if (bn) c->out.Append(b, bn);
    Bump(stats_.frames_out);
    MarkDirty(c);
    return true;
  }

  void Flush() noexcept {
    for (uint64_t token : dirty_) {
      Conn* c = Lookup(token);
      if (!c) continue;
      c->flags &= ~kDirty;
      if (c->state == kClosing || (c->flags & kSending) || c->out.len == 0) continue;
      std::swap(c->out, c->inflight);
      c->flags |= kSending;
      Bump(stats_.bytes_out, c->inflight.len);
      reactor_->Send(c->fd, Token(c), c->inflight.p, c->inflight.len);
    }
    dirty_.clear();
  }

  void SendError(Conn* c, std::string_view id_json, const char* code, std::string_view message) noexcept {
    try {
      std::string f = "{\"op\":\"error\",";
      if (!id_json.empty()) {
        f += "\"id\":";
        f.append(id_json);
        f += ',';
      }
      f += "\"code\":\"";
      f += code;
      f += "\",\"message\":\"";
      AppendJsonEscaped(&f, message);
      f += "\"}";
      Bump(stats_.errors_sent);
      WriteFrame(c, ws::kText, reinterpret_cast<const uint8_t*>(f.data()), f.size());
    } catch (...) {
      CloseConn(c, kCloseProtocol);
    }
  }

  void SendWsClose(Conn* c, uint16_t code, std::string_view reason) noexcept {
    if (c->flags & kWsCloseSent) return;
    c->since_ms = now_;
    uint8_t p[125];
    p[0] = static_cast<uint8_t>(code >> 8);
    p[1] = static_cast<uint8_t>(code);
    std::size_t n = std::min<std::size_t>(reason.size(), 123);
    std::memcpy(p + 2, reason.data(), n);
    c->flags |= kWsCloseSent;
    WriteFrame(c, ws::kClose, p, n + 2);
  }

  void HttpAnswer(Conn* c, int status, const char* reason, std::string_view body, bool close,
                  std::string_view extra_headers = {}) noexcept {
    try {
      std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
      r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
      r.append(extra_headers);
      if (close) r += "Connection: close\r\n";
      r += "\r\n";
      r.append(body);
      Write(c, r.data(), r.size());
    } catch (...) {
      CloseConn(c, kCloseProtocol);
    }
  }

  void HttpError(Conn* c, int status, const char* reason, const char* code, std::string_view message,
                 bool close, std::string_view extra_headers = {}) noexcept {
    try {
      std::string b = "{\"error\":{\"message\":\"";
      AppendJsonEscaped(&b, message);
      b += "\",\"type\":\"invalid_request_error\",\"code\":\"";
      b += code;
      b += "\"}}";
      HttpAnswer(c, status, reason, b, close, extra_headers);
    } catch (...) {
      CloseConn(c, kCloseProtocol);
    }
  }

  // ---- ingress records ------------------------------------------------------------------
  // Room for a record of `bytes`, counting the worst-case wrap.
  bool Room(std::size_t bytes) noexcept {
    if (!pending_control_.empty()) return false;
    return ingress_.HasRoom(static_cast<uint32_t>(bytes));
  }

  uint8_t* Record(uint8_t kind, const Conn* c, std::size_t subject_len, std::size_t id_len, std::size_t key_len,
                  std::size_t data_len, uint32_t subject_id = 0, uint8_t priority = kNoPriority,
                  uint16_t flags = 0) noexcept {
    const std::size_t total = kIngressHeader + subject_len + id_len + key_len + data_len;
    if (total > ingress_.max_record()) return nullptr;
    uint8_t* r = ingress_.Reserve(static_cast<uint32_t>(total));
    if (!r) return nullptr;
    r[0] = kind;
    r[1] = priority;
    std::memcpy(r + 2, &flags, 2);
    uint32_t conn = c ? ConnId(c) : 0, gen = c ? c->gen : 0;
    std::memcpy(r + 4, &conn, 4);
    std::memcpy(r + 8, &gen, 4);
    std::memcpy(r + 12, &subject_id, 4);
    uint16_t sl = static_cast<uint16_t>(subject_len), il = static_cast<uint16_t>(id_len);
    uint32_t kl = static_cast<uint32_t>(key_len), dl = static_cast<uint32_t>(data_len);
    std::memcpy(r + 16, &sl, 2);
    std::memcpy(r + 18, &il, 2);
    std::memcpy(r + 20, &kl, 4);
    std::memcpy(r + 24, &dl, 4);
    std::memcpy(r + 28, &read_us_, 4);
    produced_ = true;
    return r + kIngressHeader;
  }

  // A record JS must get even when the ring is full now (a close): queued here, sent
  // first when room appears.
  void Control(uint8_t kind, const Conn* c) noexcept {
    uint32_t conn = ConnId(c), gen = c->gen;
    if (pending_control_.empty()) {
      if (Record(kind, c, 0, 0, 0, 0)) return;
    }
    try {
      pending_control_.push_back({kind, conn, gen});
    } catch (...) {
    }
  }

  void PublishIngress() noexcept {
    if (!pending_control_.empty()) {
      std::size_t i = 0;
      for (; i < pending_control_.size(); ++i) {
        uint8_t* r = ingress_.Reserve(static_cast<uint32_t>(kIngressHeader));
        if (!r) break;
        std::memset(r, 0, kIngressHeader);
        r[0] = pending_control_[i].kind;
        r[1] = kNoPriority;
        std::memcpy(r + 4, &pending_control_[i].conn, 4);
        std::memcpy(r + 8, &pending_control_[i].gen, 4);
        produced_ = true;
      }
      pending_control_.erase(pending_control_.begin(), pending_control_.begin() + static_cast<std::ptrdiff_t>(i));
      if (!pending_control_.empty()) ingress_.Store(ByteRingWord::kProducerWaiting, 1);
    }
    if (!produced_) return;
    produced_ = false;
    if (ingress_.Publish()) server_->waker_->WakeJs(index_);
  }

  void Stall(Conn* c) noexcept {
    Bump(stats_.ingress_stalls);
    PauseRead(c);
    if (c->flags & kStalled) return;
    c->flags |= kStalled;
    try {
      stalled_.push_back(Token(c));
    } catch (...) {
      CloseConn(c, kCloseSlowConsumer);
      return;
    }
    ingress_.Store(ByteRingWord::kProducerWaiting, 1);
    // Publish now so JS sees everything before us and frees room.
    PublishIngress();
  }

  void RetryStalled() noexcept {
    if (stalled_.empty()) return;
    std::vector<uint64_t> list;
    list.swap(stalled_);
    for (std::size_t i = 0; i < list.size(); ++i) {
      Conn* c = Lookup(list[i]);
      if (!c || c->state == kClosing || !(c->flags & kStalled)) continue;
      c->flags &= ~kStalled;
      ProcessBuffered(c);
      if (c->flags & kStalled) {
        // Still no room: keep the rest in order behind it.
        for (std::size_t j = i + 1; j < list.size(); ++j) {
          Conn* d = Lookup(list[j]);
          if (d && (d->flags & kStalled)) stalled_.push_back(list[j]);
        }
        break;
      }
      if (c->state != kClosing && !(c->flags & kStalled) && c->state != kHttpWaitJs &&
          c->in.len <= BufferedInputLimit())
        ResumeRead(c);
    }
  }

  // ---- input --------------------------------------------------------------------------
  void ProcessBuffered(Conn* c) noexcept {
    if (c->state == kHttpBody) {
      ContinueBody(c);
      return;
    }
    if (c->in.len == 0) return;
    std::size_t used = Process(c, c->in.p, c->in.len);
    if (c->state == kClosing || (c->flags & kNoInput)) return;
    c->in.Consume(used);
    if (c->state == kHttpBody) ContinueBody(c);
  }

  // Parses data[0, len) in the connection's current state; returns bytes used. Stops
  // early when the connection must wait (JS answering, ring full, more bytes needed)
  // or a request with a body begins: the caller then keeps the rest in `in`, which
  // starts at that request, and calls ContinueBody.
  std::size_t Process(Conn* c, uint8_t* data, std::size_t len) noexcept {
    std::size_t used = 0;
    while (used < len && c->state != kClosing && !(c->flags & (kStalled | kNoInput))) {
      std::size_t n;
      if (c->state == kWebSocket) {
        n = ProcessWs(c, data + used, len - used);
      } else if (c->state == kHttpHead) {
        n = ProcessHead(c, data + used, len - used);
      } else {
        break;  // kHttpWaitJs / kHttpBody: bytes wait in `in`
      }
      if (n == 0) break;
      used += n;
    }
    return used;
  }

  // One request head. Returns the bytes used: the head of a body-less request, all of
  // it after an error, or 0 (more bytes needed, stalled, or a body follows: state is
  // then kHttpBody with the head's offsets set relative to `data`).
  std::size_t ProcessHead(Conn* c, uint8_t* data, std::size_t len) noexcept {
    std::size_t end = http::FindHeadEnd(data, len, c->head_scan);
    if (end == 0 && len <= opts_.max_head_bytes) {
      c->head_scan = static_cast<uint32_t>(len);
      return 0;
    }
    c->head_scan = 0;
    http::RequestHead head;
    http::ParseError perr{400, "bad request"};
    http::ParseStatus ps = http::ParseRequestHead(data, len, http_limits_, &head, &perr);
    if (ps == http::ParseStatus::kNeedMore) return 0;
    if (ps == http::ParseStatus::kError) {
      HttpError(c, perr.http_status, perr.reason, kBadInput, perr.reason, true);
      CloseAfterFlush(c, kCloseProtocol);
      return len;
    }
    Bump(stats_.http_requests);
    const bool has_body = head.chunked || head.content_length > 0;
    // Auth: every path except /healthz.
    c->token = 0;
    if (!opts_.tokens.empty() && head.path != "/healthz") {
      std::string_view presented;
      std::string_view auth = head.authorization;
      if (auth.size() > 7 && IEquals(auth.substr(0, 7), "bearer ")) presented = auth.substr(7);
      if (presented.empty() && head.path == "/ws") presented = QueryParam(head.query, "token");
      int match = -1;
      for (std::size_t i = 0; i < opts_.tokens.size(); ++i)
        if (ConstantTimeEquals(presented, opts_.tokens[i])) match = static_cast<int>(i);
      if (match < 0 || presented.empty()) {
        Bump(stats_.auth_failures);
        const bool close = !head.keep_alive || has_body;
        HttpError(c, 401, "Unauthorized", "invalid_api_key", "missing or invalid bearer token", close,
                  "WWW-Authenticate: Bearer\r\n");
        if (close) {
          CloseAfterFlush(c, kCloseNormal);
          return len;
        }
        c->since_ms = now_;
        return head.head_bytes;
      }
      c->token = static_cast<uint8_t>(match + 1);
    }
    if (head.path == "/ws") return Upgrade(c, head, len);
    if (head.keep_alive) c->flags |= kKeepAlive;
    else c->flags &= ~kKeepAlive;
    if (head.path == "/v1/events" && head.method == http::Method::kPost) c->flags |= kEventsRequest;
    else c->flags &= ~kEventsRequest;
    if (has_body) {
      if (head.expect_continue) Write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
      c->state = kHttpBody;
      c->flags &= ~kBodyReady;
      c->body_off = head.head_bytes;
      c->body_len = static_cast<uint32_t>(head.content_length);
      if (head.chunked) {
        c->chunked = new (std::nothrow) http::ChunkedDecoder(opts_.max_payload_bytes, opts_.max_head_bytes);
        if (!c->chunked) {
          CloseConn(c, kCloseTooBig);
          return len;
        }
        c->chunk_in = head.head_bytes;
        c->chunk_out = 0;
      }
      return 0;
    }
    if (!Dispatch(c, head, data, nullptr, 0)) return 0;  // stalled: the head is parsed again later
    return head.head_bytes;
  }

  static std::string_view QueryParam(std::string_view q, std::string_view name) noexcept {
    while (!q.empty()) {
      std::size_t amp = q.find('&');
      std::string_view part = q.substr(0, amp);
      if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=')
        return part.substr(name.size() + 1);
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    return {};
  }

  // kHttpBody: `in` starts with the request head (in[0, body_off)). Waits for the whole
  // body, then dispatches it. The head is parsed again here (bounded, and only for
  // requests with a body) rather than kept, so the connection holds no parsed state.
  void ContinueBody(Conn* c) noexcept {
    if (!(c->flags & kBodyReady)) {
      if (c->chunked) {
        std::size_t consumed = 0, out_len = 0;
        http::ParseError perr{400, "bad chunked body"};
        auto r = c->chunked->Decode(c->in.p + c->chunk_in, c->in.len - c->chunk_in,
                                    c->in.p + c->body_off + c->chunk_out, &consumed, &out_len, &perr);
        c->chunk_in += static_cast<uint32_t>(consumed);
        c->chunk_out += static_cast<uint32_t>(out_len);
        if (r == http::ChunkedDecoder::Result::kError) {
          HttpError(c, perr.http_status, perr.reason, kBadInput, perr.reason, true);
          CloseAfterFlush(c, kCloseProtocol);
          return;
        }
        if (r == http::ChunkedDecoder::Result::kNeedMore) {
          // Keep `in` compact: decoded body, then only the undecoded tail.
          const uint32_t dst = c->body_off + c->chunk_out;
          if (c->chunk_in > dst) {
            std::memmove(c->in.p + dst, c->in.p + c->chunk_in, c->in.len - c->chunk_in);
            c->in.len -= c->chunk_in - dst;
            c->chunk_in = dst;
          }
          return;
        }
        c->body_len = c->chunk_out;
        delete c->chunked;
        c->chunked = nullptr;
      } else {
        if (c->in.len - c->body_off < c->body_len) return;
        c->chunk_in = c->body_off + c->body_len;
      }
      c->flags |= kBodyReady;  // chunk_in: where the next request starts in `in`
    }
    http::RequestHead head;
    http::ParseError perr;
    if (http::ParseRequestHead(c->in.p, c->body_off, http_limits_, &head, &perr) != http::ParseStatus::kDone) {
      CloseConn(c, kCloseProtocol);
      return;
    }
    if (!Dispatch(c, head, c->in.p, c->in.p + c->body_off, c->body_len)) return;  // stalled
    c->flags &= ~kBodyReady;
    c->in.Consume(c->chunk_in);
    if (c->state == kHttpHead && c->in.len) ProcessBuffered(c);
  }

  // Hands one complete request to JS (or to the events parser), or answers it here.
  // False when the ring has no room: the connection is stalled, nothing was consumed.
  bool Dispatch(Conn* c, const http::RequestHead& head, const uint8_t* base, const uint8_t* body,
                std::size_t body_len) noexcept {
    c->since_ms = now_;
    if (c->flags & kEventsRequest) return DispatchEvents(c, body, body_len);
    // Header block: from the end of the request line to the blank line.
    const uint8_t* hb = reinterpret_cast<const uint8_t*>(head.target.data()) + head.target.size();
    const uint8_t* he = base + head.head_bytes;
    while (hb < he && *hb != '\n') ++hb;
    if (hb < he) ++hb;
    std::size_t hlen = static_cast<std::size_t>(he - hb);
    std::size_t total = kIngressHeader + head.method_text.size() + head.target.size() + hlen + body_len;
    if (total > ingress_.max_record()) {
      HttpError(c, 413, "Payload Too Large", kBadInput, "request too large", true);
      c->state = kHttpHead;
      CloseAfterFlush(c, kCloseTooBig);
      return true;
    }
    if (!Room(total)) {
      Stall(c);
      return false;
    }
    uint8_t* r = Record(kInHttpRequest, c, head.method_text.size(), head.target.size(), hlen, body_len, 0,
                        kNoPriority, static_cast<uint16_t>(c->token << kInFlagTokenShift));
    if (!r) {
      Stall(c);
      return false;
    }
    std::memcpy(r, head.method_text.data(), head.method_text.size());
    r += head.method_text.size();
    std::memcpy(r, head.target.data(), head.target.size());
    r += head.target.size();
    std::memcpy(r, hb, hlen);
    r += hlen;
    if (body_len) std::memcpy(r, body, body_len);
    // Keep reading while JS answers: a client that goes away must be seen (the answer
    // is then aborted); pipelined bytes wait in `in`, bounded by BufferedInputLimit.
    c->state = kHttpWaitJs;
    c->flags |= kJsKnows;
    return true;
  }

  // ---- WebSocket ------------------------------------------------------------------------
  std::size_t Upgrade(Conn* c, const http::RequestHead& head, std::size_t len) noexcept {
    if (head.method != http::Method::kGet || !head.upgrade_websocket) {
      HttpError(c, 426, "Upgrade Required", kBadInput, "GET /ws needs a WebSocket upgrade", true,
                "Upgrade: websocket\r\n");
      CloseAfterFlush(c, kCloseProtocol);
      return len;
    }
    std::string_view key = http::FindHeader(head, "sec-websocket-key");
    std::string_view version = http::FindHeader(head, "sec-websocket-version");
    if (version != "13") {
      HttpError(c, 426, "Upgrade Required", kBadInput, "Sec-WebSocket-Version must be 13", true,
                "Sec-WebSocket-Version: 13\r\n");
      CloseAfterFlush(c, kCloseProtocol);
      return len;
    }
    if (!ws::IsValidClientKey(key) || head.chunked || head.content_length > 0) {
      HttpError(c, 400, "Bad Request", kBadInput, "bad Sec-WebSocket-Key", true);
      CloseAfterFlush(c, kCloseProtocol);
      return len;
    }
    char accept[28];
    ws::ComputeAccept(key, accept);
    char resp[160];
    int n = std::snprintf(resp, sizeof resp,
                          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: %.28s\r\n\r\n",
                          accept);
    Write(c, resp, static_cast<std::size_t>(n));
    c->state = kWebSocket;
    Bump(stats_.websockets);
    return head.head_bytes;
  }

  std::size_t ProcessWs(Conn* c, uint8_t* data, std::size_t len) noexcept {
    // Every record these bytes can make must fit before we unmask them in place.
    if (!Room(kIngressHeader + c->reader.buffered_bytes() + std::min<std::size_t>(len, opts_.max_payload_bytes) + 64)) {
      Stall(c);
      return 0;
    }
    std::size_t consumed = 0;
    ws::Message msg;
    uint16_t code = 0;
    auto r = c->reader.Read(data, len, &consumed, &msg, &code);
    if (r == ws::MessageReader::Result::kError) {
      SendWsClose(c, code, "");
      CloseAfterFlush(c, code == ws::kCloseInvalidData ? kCloseInvalidUtf8
                         : code == ws::kCloseTooBig    ? kCloseTooBig
                                                       : kCloseProtocol);
      return len;
    }
    if (r == ws::MessageReader::Result::kNeedMore) return consumed;
    Bump(stats_.frames_in);
    switch (msg.opcode) {
      case ws::kText:
        HandleText(c, msg.data, msg.len);
        break;
      case ws::kBinary:
        SendError(c, {}, kBadInput, "binary frames are not part of the protocol; send JSON text");
        break;
      case ws::kPing:
        WriteFrame(c, ws::kPong, msg.data, msg.len);
        break;
      case ws::kPong:
        break;
      case ws::kClose: {
        uint16_t echo = msg.close_code == ws::kCloseNoStatus ? ws::kCloseNormal : msg.close_code;
        if (!(c->flags & kWsCloseSent)) SendWsClose(c, echo, "");
        CloseAfterFlush(c, kCloseNormal);
        return len;  // nothing after a close frame counts
      }
    }
    return consumed;
  }

  bool RateLimited(Conn* c) noexcept {
    uint32_t sec = now_ / 1000;
    if (opts_.pub_per_second) {
      if (c->window_start != sec) {
        c->window_start = sec;
        c->window_count = 0;
      }
      if (++c->window_count > opts_.pub_per_second) return true;
    }
    if (opts_.pub_per_second_per_token && c->token) {
      auto& w = server_->token_windows_[c->token - 1];
      uint32_t start = w.second.load(std::memory_order_relaxed);
      if (start != sec && w.second.compare_exchange_strong(start, sec, std::memory_order_relaxed))
        w.count.store(0, std::memory_order_relaxed);
      if (w.count.fetch_add(1, std::memory_order_relaxed) >= opts_.pub_per_second_per_token) return true;
    }
    return false;
  }

  // A JSON text message of the event plane.
  void HandleText(Conn* c, const uint8_t* p, std::size_t n) noexcept {
    FieldView f[kFCount];
    Status s = extractor_.Extract(p, n, n, kPubNames, kFCount, f);
    if (!Ok(s)) {
      SendError(c, {}, StatusCode(s), s == Status::kNotAnObject ? "a frame must be a JSON object" : StatusMessage(s));
      return;
    }
    auto view = [&](int i) { return std::string_view(reinterpret_cast<const char*>(p) + f[i].offset, f[i].length); };
    std::string_view id_json;
    if (f[kFId].type == JsonType::kString) {
      id_json = std::string_view(reinterpret_cast<const char*>(p) + f[kFId].offset - 1, f[kFId].length + 2);
    } else if (f[kFId].type == JsonType::kNumber) {
      id_json = view(kFId);
    }
    if (f[kFOp].type != JsonType::kString || f[kFOp].escaped) {
      SendError(c, id_json, kBadInput, "\"op\" must be one of pub, sub, unsub, req, ping");
      return;
    }
    std::string_view op = view(kFOp);
    if (op == "ping") {
      static const char kPong[] = "{\"op\":\"pong\"}";
      WriteFrame(c, ws::kText, reinterpret_cast<const uint8_t*>(kPong), sizeof(kPong) - 1);
      return;
    }
    const bool pub = op == "pub", sub = op == "sub", unsub = op == "unsub", req = op == "req";
    if (!pub && !sub && !unsub && !req) {
      SendError(c, id_json, kBadInput, "\"op\" must be one of pub, sub, unsub, req, ping");
      return;
    }
    // id: required for sub/unsub/req (a string or a number), sent to JS as its text.
    std::string id_text;
    if (sub || unsub || req) {
      if (f[kFId].type == JsonType::kString) {
        if (f[kFId].escaped) {
          if (!Ok(UnescapeJsonString(view(kFId), &id_text))) {
            SendError(c, {}, kBadInput, "bad \"id\"");
            return;
          }
        } else {
          id_text.assign(view(kFId));
        }
      } else if (f[kFId].type == JsonType::kNumber) {
        id_text.assign(view(kFId));
      } else {
        SendError(c, {}, kBadInput, "\"id\" (a string or number) is required");
        return;
      }
      if (id_text.size() > 256) {
        SendError(c, {}, kBadInput, "\"id\" longer than 256 bytes");
        return;
      }
    }
    std::string subject_buf;
    std::string_view subject;
    if (!unsub) {
      if (f[kFSubject].type != JsonType::kString) {
        SendError(c, id_json, kBadInput, "\"subject\" (a string) is required");
        return;
      }
      subject = view(kFSubject);
      if (f[kFSubject].escaped) {
        if (!Ok(UnescapeJsonString(subject, &subject_buf))) {
          SendError(c, id_json, kBadInput, "bad \"subject\"");
          return;
        }
        subject = subject_buf;
      }
      Status vs = ValidateSubject(subject, sub ? SubjectKind::kPattern : SubjectKind::kPublish);
      if (!Ok(vs)) {
        SendError(c, id_json, kBadInput,
                  vs == Status::kSubjectTooLong ? "subject longer than 1 KiB" : "invalid subject");
        return;
      }
    }
    if (sub || unsub) {
      std::size_t total = kIngressHeader + subject.size() + id_text.size();
      uint8_t* r = Record(sub ? kInSub : kInUnsub, c, subject.size(), id_text.size(), 0, 0);
      if (!r) {
        (void)total;
        SendError(c, id_json, kBusy, "server busy");
        return;
      }
      std::memcpy(r, subject.data(), subject.size());
      std::memcpy(r + subject.size(), id_text.data(), id_text.size());
      c->flags |= kJsKnows;
      return;
    }
    // pub / req: key, priority, data.
    std::string key_buf;
    std::string_view key;
    if (f[kFKey].type == JsonType::kString) {
      key = view(kFKey);
      if (f[kFKey].escaped) {
        if (!Ok(UnescapeJsonString(key, &key_buf))) {
          SendError(c, id_json, kBadInput, "bad \"key\"");
          return;
        }
        key = key_buf;
      }
    } else if (f[kFKey].type == JsonType::kNumber) {
      key = view(kFKey);
    } else if (f[kFKey].type != JsonType::kMissing && f[kFKey].type != JsonType::kNull) {
      SendError(c, id_json, kBadInput, "\"key\" must be a string");
      return;
    }
    uint8_t priority = kNoPriority;
    if (f[kFPriority].type == JsonType::kString) {
      int pr = PriorityOf(view(kFPriority));
      if (pr < 0) {
        SendError(c, id_json, kBadInput, "\"priority\" must be critical, high, normal or low");
        return;
      }
      priority = static_cast<uint8_t>(pr);
    } else if (f[kFPriority].type != JsonType::kMissing && f[kFPriority].type != JsonType::kNull) {
      SendError(c, id_json, kBadInput, "\"priority\" must be critical, high, normal or low");
      return;
    }
    std::string_view data = "null";
    if (f[kFData].type == JsonType::kString) {
      // The raw string token, quotes included: the event's JSON bytes.
      data = std::string_view(reinterpret_cast<const char*>(p) + f[kFData].offset - 1, f[kFData].length + 2);
    } else if (f[kFData].type != JsonType::kMissing) {
      data = view(kFData);
      if (f[kFData].type == JsonType::kObject || f[kFData].type == JsonType::kArray) {
        // Nested values are skipped by On-Demand, not validated: check them here so JS
        // never receives bytes it cannot parse.
        Status vs = ValidateJsonValue(reinterpret_cast<const uint8_t*>(data.data()), data.size());
        if (!Ok(vs)) {
          SendError(c, id_json, StatusCode(vs), "\"data\" is not valid JSON");
          return;
        }
      }
    }
    if (pub && RateLimited(c)) {
      Bump(stats_.rate_limited);
      SendError(c, id_json, kRateLimited, "publish rate limit passed");
      return;
    }
    uint32_t sid = 0;
    bool define = false;
    InternSubject(subject, &sid, &define);
    const std::size_t sl = define || sid == 0 ? subject.size() : 0;
    uint8_t* r = Record(pub ? kInPub : kInReq, c, sl, id_text.size(), key.size(), data.size(), sid, priority);
    if (!r) {
      if (define) subjects_.erase(subjects_.find(subject));
      SendError(c, id_json, kBusy, "server busy");
      return;
    }
    std::memcpy(r, subject.data(), sl);
    r += sl;
    std::memcpy(r, id_text.data(), id_text.size());
    r += id_text.size();
    // An absent key is a null string_view: memcpy from null is undefined even for 0 bytes.
    if (!key.empty()) std::memcpy(r, key.data(), key.size());
    r += key.size();
    std::memcpy(r, data.data(), data.size());
    if (pub) Bump(stats_.events_in);
    if (req) c->flags |= kJsKnows;
  }

  // Nested values inside `data`: On-Demand skipped them, so a full parse checks them
  // before the bytes can reach a subscriber's frame.
  Status ValidateJsonValue(const uint8_t* v, std::size_t n) noexcept { return extractor_.ValidateValue(v, n); }

  // Subjects seen on this thread get small ids, so a repeated subject crosses as 4
  // bytes and JS keeps its string. Bounded: past kMaxSubjects, subjects travel as text.
  static constexpr std::size_t kMaxSubjects = 16384;
  void InternSubject(std::string_view s, uint32_t* id, bool* define) noexcept {
    *define = false;
    try {
      auto it = subjects_.find(s);  // heterogeneous: no string built per pub
      if (it != subjects_.end()) {
        *id = it->second;
        return;
      }
      if (subjects_.size() >= kMaxSubjects) {
        *id = 0;
        return;
      }
      *id = static_cast<uint32_t>(subjects_.size() + 1);
      subjects_.emplace(std::string(s), *id);
      *define = true;
    } catch (...) {
      *id = 0;
    }
  }

  // ---- POST /v1/events -------------------------------------------------------------------
  // One JSON object, or NDJSON (one object per line). Every event is checked before
  // any is handed on, so a bad line rejects the whole body (400) and nothing is half
  // published.
  bool DispatchEvents(Conn* c, const uint8_t* body, std::size_t len) noexcept {
    struct Ev {
      std::string subject;
      std::string key;
      std::string_view data;
      uint8_t priority;
    };
    std::vector<Ev> evs;
    std::size_t bytes = 0;
    auto fail = [&](std::size_t line, const std::string& why) {
      std::string msg = line ? "line " + std::to_string(line) + ": " + why : why;
      HttpError(c, 400, "Bad Request", kBadInput, msg, false);
      FinishNative(c);
      return true;
    };
    try {
      auto parse_one = [&](const uint8_t* p, std::size_t n, std::size_t line, std::string* err) -> bool {
        FieldView f[kFCount];
        Status s = extractor_.Extract(p, n, n, kPubNames, kFCount, f);
        if (!Ok(s)) {
          *err = StatusMessage(s);
          return false;
        }
        auto view = [&](int i) { return std::string_view(reinterpret_cast<const char*>(p) + f[i].offset, f[i].length); };
        Ev e;
        if (f[kFSubject].type != JsonType::kString) {
          *err = "\"subject\" (a string) is required";
          return false;
        }
        if (f[kFSubject].escaped) {
          if (!Ok(UnescapeJsonString(view(kFSubject), &e.subject))) {
            *err = "bad \"subject\"";
            return false;
          }
        } else {
          e.subject.assign(view(kFSubject));
        }
        if (!Ok(ValidateSubject(e.subject, SubjectKind::kPublish))) {
          *err = "invalid subject";
          return false;
        }
        if (f[kFKey].type == JsonType::kString) {
          if (f[kFKey].escaped) {
            if (!Ok(UnescapeJsonString(view(kFKey), &e.key))) {
              *err = "bad \"key\"";
              return false;
            }
          } else {
            e.key.assign(view(kFKey));
          }
        } else if (f[kFKey].type == JsonType::kNumber) {
          e.key.assign(view(kFKey));
        } else if (f[kFKey].type != JsonType::kMissing && f[kFKey].type != JsonType::kNull) {
          *err = "\"key\" must be a string";
          return false;
        }
        e.priority = kNoPriority;
        if (f[kFPriority].type == JsonType::kString) {
          int pr = PriorityOf(view(kFPriority));
          if (pr < 0) {
            *err = "\"priority\" must be critical, high, normal or low";
            return false;
          }
          e.priority = static_cast<uint8_t>(pr);
        } else if (f[kFPriority].type != JsonType::kMissing && f[kFPriority].type != JsonType::kNull) {
          *err = "\"priority\" must be critical, high, normal or low";
          return false;
        }
        e.data = "null";
        if (f[kFData].type == JsonType::kString) {
          e.data = std::string_view(reinterpret_cast<const char*>(p) + f[kFData].offset - 1, f[kFData].length + 2);
        } else if (f[kFData].type != JsonType::kMissing) {
          e.data = view(kFData);
          if ((f[kFData].type == JsonType::kObject || f[kFData].type == JsonType::kArray) &&
              !Ok(ValidateJsonValue(reinterpret_cast<const uint8_t*>(e.data.data()), e.data.size()))) {
            *err = "\"data\" is not valid JSON";
            return false;
          }
        }
        (void)line;
        bytes += kIngressHeader + e.subject.size() + e.key.size() + e.data.size() + 8;
        evs.push_back(std::move(e));
        return true;
      };
      std::string err;
      if (!parse_one(body, len, 0, &err)) {
        evs.clear();
        bytes = 0;
        // NDJSON: one object per non-empty line.
        std::size_t line = 0, at = 0;
        bool any = false;
        while (at < len) {
          const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(body + at, '\n', len - at));
          std::size_t end = nl ? static_cast<std::size_t>(nl - body) : len;
          ++line;
          std::size_t a = at, b = end;
          while (a < b && (body[a] == ' ' || body[a] == '\t' || body[a] == '\r')) ++a;
          while (b > a && (body[b - 1] == ' ' || body[b - 1] == '\t' || body[b - 1] == '\r')) --b;
          if (b > a) {
            std::string e2;
            if (!parse_one(body + a, b - a, line, &e2)) return fail(line, e2);
            any = true;
          }
          at = end + 1;
        }
        if (!any) return fail(0, len ? err : std::string("empty body: send one event or NDJSON lines"));
      }
    } catch (...) {
      HttpError(c, 413, "Payload Too Large", kBadInput, "too many events", true);
      c->state = kHttpHead;
      CloseAfterFlush(c, kCloseTooBig);
      return true;
    }
    bytes += kIngressHeader + 8;
    if (bytes > ingress_.capacity() / 2) {
      HttpError(c, 413, "Payload Too Large", kBadInput, "too many events in one body", false);
      FinishNative(c);
      return true;
    }
    if (!Room(bytes)) {
      Stall(c);
      return false;
    }
    for (auto& e : evs) {
      uint32_t sid = 0;
      bool define = false;
      InternSubject(e.subject, &sid, &define);
      std::size_t sl = define || sid == 0 ? e.subject.size() : 0;
      uint8_t* r = Record(kInPub, c, sl, 0, e.key.size(), e.data.size(), sid, e.priority,
                          static_cast<uint16_t>(kInFlagHttp | (c->token << kInFlagTokenShift)));
      if (!r) return false;  // cannot happen: room was checked for all
      std::memcpy(r, e.subject.data(), sl);
      std::memcpy(r + sl, e.key.data(), e.key.size());
      std::memcpy(r + sl + e.key.size(), e.data.data(), e.data.size());
      Bump(stats_.events_in);
    }
    uint8_t* r = Record(kInEventsEnd, c, 0, 0, 0, 4, 0, kNoPriority, static_cast<uint16_t>(c->token << kInFlagTokenShift));
    if (r) {
      uint32_t n = static_cast<uint32_t>(evs.size());
      std::memcpy(r, &n, 4);
    }
    // Keep reading while JS answers: a client that goes away must be seen (the answer
    // is then aborted); pipelined bytes wait in `in`, bounded by BufferedInputLimit.
    c->state = kHttpWaitJs;
    c->flags |= kJsKnows;
    return true;
  }

  // A request this thread answered itself: the connection goes on with the next one.
  void FinishNative(Conn* c) noexcept {
    c->state = kHttpHead;
    if (!(c->flags & kKeepAlive)) CloseAfterFlush(c, kCloseNormal);
  }

  // ---- egress -----------------------------------------------------------------------------
  void DrainEgress() noexcept {
    uint32_t len;
    bool any = false;
    while (const uint8_t* r = egress_.Next(&len)) {
      any = true;
      if (len >= kEgressHeader) HandleEgress(r, len);
      egress_.Advance();
    }
    if (any && egress_.Release()) server_->waker_->WakeJs(index_);
  }

  void HandleEgress(const uint8_t* r, uint32_t len) noexcept {
    uint8_t kind = r[0], flags = r[1];
    uint16_t code;
    uint32_t conn, gen, plen;
    std::memcpy(&code, r + 2, 2);
    std::memcpy(&conn, r + 4, 4);
    std::memcpy(&gen, r + 8, 4);
    std::memcpy(&plen, r + 12, 4);
    if (plen > len - kEgressHeader) return;
    const uint8_t* p = r + kEgressHeader;
    if (kind == kOutFanout) {
      const uint8_t* t = p + ((plen + 3) & ~3u);
      const uint8_t* end = r + len;
      for (uint32_t i = 0; i < conn && t + 12 <= end; ++i) {
        uint32_t tc, tg, sl;
        std::memcpy(&tc, t, 4);
        std::memcpy(&tg, t + 4, 4);
        std::memcpy(&sl, t + 8, 4);
        if (sl > static_cast<std::size_t>(end - t - 12)) break;
        Conn* c = LookupId(tc, tg);
        if (c && c->state == kWebSocket && !(c->flags & kWsCloseSent)) WriteFrame(c, ws::kText, p, plen, t + 12, sl);
        t += 12 + ((sl + 3) & ~3u);
      }
      return;
    }
    Conn* c = LookupId(conn, gen);
    if (!c) return;
    switch (kind) {
      case kOutHttp:
        if (plen) Write(c, p, plen);
        if ((flags & kOutFlagEnd) && c->state == kHttpWaitJs) {
          c->flags &= ~kJsKnows;
          c->state = kHttpHead;
          if ((flags & kOutFlagCloseAfter) || !(c->flags & kKeepAlive)) CloseAfterFlush(c, kCloseNormal);
          else ResumeAfterResponse(c);
        }
        break;
      case kOutWsText:
        if (c->state == kWebSocket && !(c->flags & kWsCloseSent)) WriteFrame(c, ws::kText, p, plen);
        break;
      case kOutWsClose:
        if (c->state == kWebSocket) {
          SendWsClose(c, code, std::string_view(reinterpret_cast<const char*>(p), std::min<uint32_t>(plen, 123)));
          PauseRead(c);
        }
        break;
      case kOutClose:
        CloseAfterFlush(c, kCloseNormal);
        break;
      default:
        break;
    }
  }

  void ResumeAfterResponse(Conn* c) noexcept {
    ProcessBuffered(c);
    if (c->state == kHttpHead && !(c->flags & kStalled) && c->in.len <= BufferedInputLimit()) ResumeRead(c);
  }

  // ---- commands and timers -------------------------------------------------------------
  void Commands() noexcept {
    if (stop_accepting_.load(std::memory_order_relaxed) && listen_fd_ >= 0) {
      reactor_->RemoveListener(listen_fd_);
      ::close(listen_fd_);
      listen_fd_ = -1;
    }
    uint32_t code = close_ws_code_.exchange(0, std::memory_order_acq_rel);
    if (code) {
      closing_ws_ = true;
      close_deadline_ = now_ + 1000;
      for (Conn* c : conns_)
        if (c && c->state == kWebSocket) {
          SendWsClose(c, static_cast<uint16_t>(code), "server shutting down");
          PauseRead(c);
        }
    }
  }

  void Sweep() noexcept {
    const bool close_all_ws = closing_ws_ && static_cast<int32_t>(now_ - close_deadline_) >= 0;
    for (Conn* c : conns_) {
      if (!c || c->state == kClosing) continue;
      uint32_t idle = now_ - c->last_ms;
      switch (c->state) {
        case kHttpHead:
          if (c->in.len > 0 && now_ - c->since_ms > opts_.head_timeout_ms) {
            HttpError(c, 408, "Request Timeout", kTimedOut, "request head took too long", true);
            CloseAfterFlush(c, kCloseTimeout);
          } else if (c->in.len == 0) {
            c->since_ms = now_;
            if (idle > opts_.idle_timeout_ms) CloseConn(c, kCloseTimeout);
          }
          break;
        case kHttpBody:
          if (idle > opts_.head_timeout_ms) CloseConn(c, kCloseTimeout);
          break;
        case kWebSocket:
          if (close_all_ws && (c->flags & kWsCloseSent)) {
            CloseConn(c, kCloseShutdown);
          } else if (opts_.ping_interval_ms && idle > 2 * opts_.ping_interval_ms) {
            SendWsClose(c, ws::kCloseGoingAway, "ping timeout");
            CloseAfterFlush(c, kCloseTimeout);
          } else if (opts_.ping_interval_ms && idle > opts_.ping_interval_ms && !(c->flags & kPingSent)) {
            c->flags |= kPingSent;
            WriteFrame(c, ws::kPing, nullptr, 0);
          }
          break;
        default:
          break;
      }
      // A close that could not be flushed (the peer stopped reading) is forced.
      if (c->state != kClosing && (c->flags & kCloseAfter) && now_ - c->since_ms > 5000) CloseConn(c, kCloseTimeout);
    }
  }

  struct PendingControl {
    uint8_t kind;
    uint32_t conn;
    uint32_t gen;
  };

  Server* server_;
  const ServerOptions& opts_;
  uint32_t index_;
  ByteRing ingress_;
  ByteRing egress_;
  Slab* slab_;
  std::unique_ptr<Reactor> reactor_;
  ws::ReaderLimits reader_limits_;
  http::Limits http_limits_;
  FieldExtractor extractor_;
  std::vector<Conn*> conns_;
  std::vector<uint32_t> gens_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint64_t> dirty_;
  std::vector<uint64_t> stalled_;
  std::vector<PendingControl> pending_control_;
  std::unordered_map<std::string, uint32_t, SubjectHash, std::equal_to<>> subjects_;
  uint32_t now_ = 0;
  uint32_t read_us_ = 0;  // when the bytes being processed were read (records carry it)
  uint32_t live_ = 0;
  bool produced_ = false;
  bool closing_ws_ = false;
  bool stopping_ = false;  // Run is past its loop: flushing, then closing
  uint32_t close_deadline_ = 0;
  friend class Server;
};

// ===================================================================================
Status Server::Create(const ServerOptions& options, const std::vector<ThreadRings>& rings, JsWaker* waker,
                      std::unique_ptr<Server>* out) noexcept {
  if (!out || !waker || options.io_threads == 0 || options.io_threads > 64 || rings.size() != options.io_threads ||
      options.tokens.size() > 254 || options.max_payload_bytes == 0 || options.max_connections == 0)
    return Status::kInvalidArgument;
  for (const auto& r : rings) {
    if (!r.ingress || !r.egress || !ByteRing::ValidSize(r.ingress_bytes) || !ByteRing::ValidSize(r.egress_bytes))
      return Status::kInvalidArgument;
  }
  if (options.backend == Backend::kIoUring && !IoUringUsable()) return Status::kUnsupported;
  try {
    std::unique_ptr<Server> s(new Server());
    s->options_ = options;
    s->backend_ = options.backend;
    s->waker_ = waker;
    s->token_windows_ = std::make_unique<TokenWindow[]>(options.tokens.size() + 1);
    SlabOptions so;
    static const uint32_t kClasses[] = {(sizeof(Conn) + 63) / 64 * 64};
    so.class_sizes = kClasses;
    Status st = Slab::Create(so, &s->slab_);
    if (!Ok(st)) return st;
    for (uint32_t i = 0; i < options.io_threads; ++i) {
      auto loop = std::make_unique<Loop>(s.get(), i, rings[i], s->slab_.get());
      st = loop->Init(options.backend);
      if (!Ok(st)) return st;
      s->loops_.push_back(std::move(loop));
    }
    *out = std::move(s);
    return Status::kOk;
  } catch (const std::bad_alloc&) {
    return Status::kOutOfMemory;
  } catch (...) {
    return Status::kInternal;
  }
}

Server::~Server() {
  loops_.clear();  // before the slab goes
}

Status Server::Listen(std::string* error, uint16_t* port) noexcept {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string host = options_.host;
  if (host == "localhost") host = "127.0.0.1";
  uint16_t want = options_.port;
  char port_text[8];
  std::snprintf(port_text, sizeof port_text, "%u", want);
  int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), port_text, &hints, &res);
  if (gai != 0 || !res) {
    if (error) *error = std::string("cannot resolve host '") + options_.host + "': " + gai_strerror(gai);
    return Status::kListenFailed;
  }
  Status result = Status::kOk;
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      if (error) *error = std::string("socket: ") + std::strerror(errno);
      result = Status::kListenFailed;
      break;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (loops_.size() > 1) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    // Port 0: the first socket picks, the others join it.
    if (i > 0 && want == 0) {
      if (res->ai_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_port = htons(*port);
      else reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_port = htons(*port);
    }
    if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 4096) != 0) {
      int e = errno;
      ::close(fd);
      if (error) {
        *error = std::string("cannot listen on ") + options_.host + ":" + std::to_string(want) + ": " + std::strerror(e);
        if (e == EADDRINUSE) *error += " (another process has this port; choose another with --port)";
      }
      result = Status::kListenFailed;
      break;
    }
    if (i == 0) {
      sockaddr_storage ss{};
      socklen_t sl = sizeof ss;
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
      *port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    loops_[i]->listen_fd_ = fd;
  }
  freeaddrinfo(res);
  if (!Ok(result)) {
    for (auto& l : loops_)
      if (l->listen_fd_ >= 0) {
        ::close(l->listen_fd_);
        l->listen_fd_ = -1;
      }
  }
  return result;
}

void Server::Run(uint32_t thread) noexcept {
  if (thread < loops_.size()) loops_[thread]->Run();
}

void Server::Wake(uint32_t thread) noexcept {
  if (thread < loops_.size()) loops_[thread]->Wake();
}

void Server::StopAccepting() noexcept {
  for (auto& l : loops_) {
    l->stop_accepting_.store(true, std::memory_order_relaxed);
    l->Wake();
  }
}

void Server::CloseWebSockets(uint16_t code) noexcept {
  for (auto& l : loops_) {
    l->close_ws_code_.store(code, std::memory_order_release);
    l->Wake();
  }
}

void Server::Stop() noexcept {
  for (auto& l : loops_) {
    l->stop_.store(true, std::memory_order_release);
    l->Wake();
  }
}

ServerStats Server::Stats() const noexcept {
  // Counters are written by their thread only; a racy read of a u64 on x86-64/arm64 is
  // a whole value, and stats are a snapshot anyway.
  ServerStats sum;
  for (const auto& l : loops_) {
    const ServerStats& s = l->stats_;
    sum.accepted += Read(s.accepted);
    sum.refused += Read(s.refused);
    sum.open += Read(s.open);
    sum.websockets += Read(s.websockets);
    sum.http_requests += Read(s.http_requests);
    sum.frames_in += Read(s.frames_in);
    sum.frames_out += Read(s.frames_out);
    sum.bytes_in += Read(s.bytes_in);
    sum.bytes_out += Read(s.bytes_out);
    sum.events_in += Read(s.events_in);
    sum.errors_sent += Read(s.errors_sent);
    sum.rate_limited += Read(s.rate_limited);
    sum.auth_failures += Read(s.auth_failures);
    sum.ingress_stalls += Read(s.ingress_stalls);
    for (int i = 0; i < kCloseReasonCount; ++i) sum.closes[i] += Read(s.closes[i]);
  }
  if (slab_) sum.state_bytes = slab_->Stats().bytes_reserved;
  return sum;
}

}  // namespace myelin::io
