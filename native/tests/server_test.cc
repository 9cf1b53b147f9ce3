// io::Server (native/src/io/server.h) without Node: a C++ thread stands in for the JS
// thread (it drains the ingress ByteRing, writes egress records, and is woken through a
// JsWaker built on a condition variable), and plain blocking TCP clients speak HTTP and
// masked WebSocket frames to it. Every case runs on both backends; io_uring cases are
// skipped, with a note, where IoUringUsable() says no. ctest runs this binary plain and
// under ASan+UBSan and TSan (the rings and the wake-ups are the cross-thread parts).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "io/records.h"
#include "io/server.h"
#include "queue/byte_ring.h"
#include "ws/frame.h"

using namespace myelin;
using namespace myelin::io;

namespace {

constexpr std::size_t kRingBytes = kByteRingHeaderBytes + (1u << 20);

// Ring memory as the binding allocates it: zeroed, 8-aligned, header then data.
struct RingMemory {
  uint8_t* p;
  RingMemory() : p(static_cast<uint8_t*>(std::aligned_alloc(64, kRingBytes))) { std::memset(p, 0, kRingBytes); }
  ~RingMemory() { std::free(p); }
  RingMemory(const RingMemory&) = delete;
  RingMemory& operator=(const RingMemory&) = delete;
};

struct Record {
  uint8_t kind;
  uint8_t priority;
  uint16_t flags;
  uint32_t conn, gen, subject_id;
  std::string subject, id, key, data;
};

// The JS thread's part, in C++: wakes on WakeJs, drains ingress, keeps what it saw,
// and runs a tiny event plane (subs kept by pattern-less subject, pubs fanned out).
class FakeJs final : public JsWaker {
 public:
  explicit FakeJs(uint8_t* ingress, uint8_t* egress) : in_(ingress, kRingBytes), out_(egress, kRingBytes) {
    // Idle from the start, as lib/gateway/io-channel.ts does: the first publish wakes us.
    in_.Store(ByteRingWord::kConsumerSleeping, 1);
  }

  void WakeJs(uint32_t) noexcept override {
    {
      std::lock_guard<std::mutex> g(mu_);
      woken_ = true;
      ++wakes_;
    }
    cv_.notify_one();
  }

  void Start(Server* server) {
    server_ = server;
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  // Waits until pred(records) holds (under the lock) or 5 s pass.
  template <typename Pred>
  bool WaitFor(Pred pred) {
    std::unique_lock<std::mutex> g(mu_);
    return seen_cv_.wait_for(g, std::chrono::seconds(5), [&] { return pred(records_); });
  }
  std::vector<Record> Records() {
    std::lock_guard<std::mutex> g(mu_);
    return records_;
  }
  uint64_t Wakes() {
    std::lock_guard<std::mutex> g(mu_);
    return wakes_;
  }

  // Writes one egress record and publishes it (JS's flush), waking the I/O thread.
  void Send(uint8_t kind, uint32_t conn, uint32_t gen, const std::string& payload, uint16_t code = 0,
            uint8_t flags = 0) {
    std::lock_guard<std::mutex> g(out_mu_);
    WriteOut(kind, conn, gen, payload, code, flags);
    FlushOut();
  }

 private:
  void WriteOut(uint8_t kind, uint32_t conn, uint32_t gen, const std::string& payload, uint16_t code = 0,
                uint8_t flags = 0, uint32_t length_field = UINT32_MAX) {
    uint8_t* r = nullptr;
    for (int i = 0; i < 5000 && !(r = out_.Reserve(static_cast<uint32_t>(kEgressHeader + payload.size()))); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!r) {
      ::myelin::test::Fail(__FILE__, __LINE__, "egress ring stayed full");
      return;
    }
    uint32_t len = length_field == UINT32_MAX ? static_cast<uint32_t>(payload.size()) : length_field;
    r[0] = kind;
    r[1] = flags;
    std::memcpy(r + 2, &code, 2);
    std::memcpy(r + 4, &conn, 4);
    std::memcpy(r + 8, &gen, 4);
    std::memcpy(r + 12, &len, 4);
    std::memcpy(r + kEgressHeader, payload.data(), payload.size());
  }
  void FlushOut() {
    if (out_.Publish()) server_->Wake(0);
  }

  void Loop() {
    for (;;) {
      {
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait_for(g, std::chrono::milliseconds(200), [&] { return woken_ || stop_; });
        if (stop_) return;
        woken_ = false;
      }
      Drain();
    }
  }

  void Drain() {
    std::vector<Record> batch;
    for (;;) {
      uint32_t len;
      const uint8_t* p = in_.Next(&len);
      if (!p) {
        // Announce idleness, then look again (the Dekker pair of byte_ring.h).
        in_.Store(ByteRingWord::kConsumerSleeping, 1);
        p = in_.Next(&len);
        if (!p) break;
        in_.Store(ByteRingWord::kConsumerSleeping, 0);
      }
      if (len >= kIngressHeader) {
        Record rec;
        rec.kind = p[0];
        rec.priority = p[1];
        std::memcpy(&rec.flags, p + 2, 2);
        std::memcpy(&rec.conn, p + 4, 4);
        std::memcpy(&rec.gen, p + 8, 4);
        std::memcpy(&rec.subject_id, p + 12, 4);
        uint16_t sl, il;
        uint32_t kl, dl;
        std::memcpy(&sl, p + 16, 2);
        std::memcpy(&il, p + 18, 2);
        std::memcpy(&kl, p + 20, 4);
        std::memcpy(&dl, p + 24, 4);
        if (kIngressHeader + sl + il + kl + dl <= len) {
          const char* b = reinterpret_cast<const char*>(p + kIngressHeader);
          rec.subject.assign(b, sl);
          rec.id.assign(b + sl, il);
          rec.key.assign(b + sl + il, kl);
          rec.data.assign(b + sl + il + kl, dl);
          // Interned subjects: a record with text and an id defines it; one without text refers to it.
          if (rec.subject_id != 0) {
            if (sl > 0) subjects_[rec.subject_id] = rec.subject;
            else rec.subject = subjects_[rec.subject_id];
          }
          batch.push_back(rec);
        } else {
          ::myelin::test::Fail(__FILE__, __LINE__, "ingress record shorter than its fields");
        }
      }
      in_.Advance();
    }
    if (in_.Release()) server_->Wake(0);
    std::lock_guard<std::mutex> og(out_mu_);
    bool wrote = false;
    for (const Record& r : batch) {
      if (r.kind == kInSub) subs_.push_back({r.conn, r.gen, r.id, r.subject});
      if (r.kind == kInPub) wrote |= FanOut(r);
      if (r.kind == kInHttpRequest) {
        // A user route answering with its method and body.
        std::string body = r.subject + " " + r.id + " " + r.data;
        std::string resp = "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        WriteOut(kOutHttp, r.conn, r.gen, resp, 0, kOutFlagEnd);
        wrote = true;
      }
    }
    if (wrote) FlushOut();
    {
      std::lock_guard<std::mutex> g(mu_);
      records_.insert(records_.end(), batch.begin(), batch.end());
    }
    seen_cv_.notify_all();
  }

  // One fan-out record per pub with every subscriber whose pattern is `<subject>`
  // exactly or `echo.>` for subjects under echo. (The bus does real matching.)
  bool FanOut(const Record& r) {
    std::string prefix = "{\"op\":\"event\",\"subject\":\"" + r.subject + "\",\"data\":" + r.data;
    if (!r.key.empty()) prefix += ",\"key\":\"" + r.key + "\"";
    std::string payload = prefix;
    payload.resize((payload.size() + 3) & ~std::size_t{3}, ' ');
    uint32_t count = 0;
    for (const Sub& s : subs_) {
      const bool match = s.pattern == r.subject || (s.pattern == "echo.>" && r.subject.rfind("echo.", 0) == 0);
      if (!match) continue;
      std::string suffix = ",\"sub\":\"" + s.id + "\"}";
      uint32_t sl = static_cast<uint32_t>(suffix.size());
      payload.append(reinterpret_cast<const char*>(&s.conn), 4);
      payload.append(reinterpret_cast<const char*>(&s.gen), 4);
      payload.append(reinterpret_cast<const char*>(&sl), 4);
      payload += suffix;
      payload.resize((payload.size() + 3) & ~std::size_t{3}, '\0');
      ++count;
    }
    if (count == 0) return false;
    // kOutFanout: conn = the target count, length = the prefix's length.
    WriteOut(kOutFanout, count, 0, payload, 0, 0, static_cast<uint32_t>(prefix.size()));
    return true;
  }

  struct Sub {
    uint32_t conn, gen;
    std::string id, pattern;
  };

  ByteRing in_;
  ByteRing out_;
  Server* server_ = nullptr;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable seen_cv_;
  bool woken_ = false;
  bool stop_ = false;
  uint64_t wakes_ = 0;
  std::vector<Record> records_;
  std::mutex out_mu_;  // the egress ring has one producer: this thread or a test's Send
  std::vector<Sub> subs_;
  std::map<uint32_t, std::string> subjects_;
};

// A server, its I/O thread and its fake JS thread.
struct Harness {
  RingMemory ingress, egress;
  std::unique_ptr<FakeJs> js;
  std::unique_ptr<Server> server;
  std::thread io;
  uint16_t port = 0;
  bool ok = false;

  explicit Harness(Backend backend, ServerOptions o = {}) {
    js = std::make_unique<FakeJs>(ingress.p, egress.p);
    o.host = "127.0.0.1";
    o.port = 0;
    o.io_threads = 1;
    o.backend = backend;
    std::vector<ThreadRings> rings = {{ingress.p, kRingBytes, egress.p, kRingBytes}};
    if (!Ok(Server::Create(o, rings, js.get(), &server))) return;
    std::string error;
    if (!Ok(server->Listen(&error, &port))) {
      std::fprintf(stderr, "  listen: %s\n", error.c_str());
      return;
    }
    js->Start(server.get());
    io = std::thread([this] { server->Run(0); });
    ok = true;
  }
  ~Harness() {
    if (server) server->Stop();
    if (io.joinable()) io.join();
    js->Stop();
  }
};

// ---- a blocking client ------------------------------------------------------------------

int Connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool WriteAll(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t w = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    off += static_cast<std::size_t>(w);
  }
  return true;
}

// Reads what is there within `ms`; "" on timeout, and sets *eof at end of stream.
std::string ReadSome(int fd, int ms, bool* eof = nullptr) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return {};
  char buf[65536];
  const ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n <= 0) {
    if (eof) *eof = true;
    return {};
  }
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string ClientFrame(uint8_t opcode, const std::string& payload, uint32_t mask = 0x37fa213d) {
  uint8_t h[ws::kMaxClientHeader];
  const std::size_t hn = ws::EncodeClientHeader(h, opcode, true, payload.size(), mask);
  std::string out(reinterpret_cast<const char*>(h), hn);
  std::string body = payload;
  ws::MaskBytes(reinterpret_cast<uint8_t*>(body.data()), body.size(), mask, 0);
  return out + body;
}

struct Frame {
  uint8_t opcode;
  std::string payload;
  uint16_t close_code;
};

// A WebSocket client: upgrade, then frames read with the library's client-side reader.
class WsClient {
 public:
  explicit WsClient(uint16_t port) : fd_(Connect(port)), reader_(&limits_) { limits_.server_side = false; }
  ~WsClient() {
    if (fd_ >= 0) close(fd_);
  }
  bool Upgrade() {
    if (fd_ < 0) return false;
    if (!WriteAll(fd_, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
      return false;
    for (int i = 0; i < 50 && buf_.find("\r\n\r\n") == std::string::npos; ++i) buf_ += ReadSome(fd_, 100);
    const std::size_t end = buf_.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    // RFC 6455's own example key and accept value.
    return head.rfind("HTTP/1.1 101", 0) == 0 && head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos;
  }
  bool Send(const std::string& bytes) { return WriteAll(fd_, bytes); }
  bool Text(const std::string& json) { return Send(ClientFrame(ws::kText, json)); }
  // The next frame within ~2 s; opcode 0xff on timeout or end of stream.
  Frame Next() {
    for (int i = 0; i < 40; ++i) {
      if (!buf_.empty()) {
        std::size_t consumed = 0;
        ws::Message m{};
        uint16_t code = 0;
        auto r = reader_.Read(reinterpret_cast<uint8_t*>(buf_.data()), buf_.size(), &consumed, &m, &code);
        if (r == ws::MessageReader::Result::kMessage) {
          Frame f{m.opcode, std::string(reinterpret_cast<const char*>(m.data), m.len), m.close_code};
          buf_.erase(0, consumed);
          return f;
        }
        if (r == ws::MessageReader::Result::kError) return {0xff, "reader error", code};
        buf_.erase(0, consumed);
      }
      bool eof = false;
      buf_ += ReadSome(fd_, 50, &eof);
      if (eof) return {0xff, "eof", 0};
    }
    return {0xff, "timeout", 0};
  }
  Frame NextText() {
    for (;;) {
      Frame f = Next();
      if (f.opcode == ws::kText || f.opcode == 0xff || f.opcode == ws::kClose) return f;
    }
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  ws::ReaderLimits limits_;
  ws::MessageReader reader_;
  std::string buf_;
};

template <typename Fn>
void ForEachBackend(Fn fn) {
  for (Backend b : {Backend::kEpoll, Backend::kIoUring}) {
    if (b == Backend::kIoUring && !IoUringUsable()) {
      std::fprintf(stderr, "  (io_uring not usable here: skipped)\n");
      continue;
    }
    fn(b);
  }
}

bool Has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(PubRecordsCarryTheirFields) {
  ForEachBackend([](Backend b) {
    Harness h(b);
    CHECK(h.ok);
    if (!h.ok) return;
    WsClient c(h.port);
    CHECK(c.Upgrade());
    CHECK(c.Text(R"({"op":"pub","subject":"orders.new","data":{"id":7,"tags":["a"]},"key":"cust-1","priority":"high"})"));
    CHECK(c.Text(R"({"priority":"low","data":"text","subject":"orders.new","op":"pub"})"));
    CHECK(c.Text(R"({"op":"pub","subject":"orders.none"})"));
    CHECK(h.js->WaitFor([](const std::vector<Record>& r) { return r.size() >= 3; }));
    auto recs = h.js->Records();
    CHECK_EQ(recs.size(), std::size_t{3});
    if (recs.size() < 3) return;
    for (const Record& r : recs) {
      CHECK_EQ(r.kind, uint8_t{kInPub});
      CHECK_EQ(r.conn >> 24, 0u);  // thread 0
      CHECK(r.gen != 0);
      CHECK_EQ(r.flags & kInFlagHttp, 0);
    }
    CHECK_EQ(recs[0].subject, std::string("orders.new"));
    CHECK_EQ(recs[0].data, std::string(R"({"id":7,"tags":["a"]})"));
    CHECK_EQ(recs[0].key, std::string("cust-1"));
    CHECK_EQ(recs[0].priority, uint8_t{1});
    // The second pub of a subject refers to its interned id.
    CHECK_EQ(recs[1].subject, std::string("orders.new"));
    CHECK_EQ(recs[1].subject_id, recs[0].subject_id);
    CHECK_EQ(recs[1].data, std::string("\"text\""));
    CHECK_EQ(recs[1].priority, uint8_t{3});
    CHECK(recs[1].key.empty());
    CHECK_EQ(recs[2].data, std::string("null"));
    CHECK_EQ(recs[2].priority, kNoPriority);
    ServerStats s = h.server->Stats();
    CHECK_EQ(s.events_in, uint64_t{3});
    CHECK_EQ(s.websockets, uint64_t{1});
    CHECK(h.js->Wakes() >= 1);
  });
}

TEST(FanOutFramesReachEverySubscriber) {
  ForEachBackend([](Backend b) {
    Harness h(b);
    CHECK(h.ok);
    if (!h.ok) return;
    WsClient a(h.port), bb(h.port), pub(h.port);
    CHECK(a.Upgrade());
    CHECK(bb.Upgrade());
    CHECK(pub.Upgrade());
    CHECK(a.Text(R"({"op":"sub","id":"s1","subject":"echo.>"})"));
    CHECK(bb.Text(R"({"op":"sub","id":42,"subject":"echo.>"})"));
    CHECK(h.js->WaitFor([](const std::vector<Record>& r) {
      int subs = 0;
      for (const auto& x : r) subs += x.kind == kInSub;
      return subs == 2;
    }));
    const int n = 50;
    for (int i = 0; i < n; ++i)
      CHECK(pub.Text("{\"op\":\"pub\",\"subject\":\"echo.x\",\"key\":\"k\",\"data\":{\"i\":" + std::to_string(i) + "}}"));
    for (int i = 0; i < n; ++i) {
      const std::string want = "{\"op\":\"event\",\"subject\":\"echo.x\",\"data\":{\"i\":" + std::to_string(i) + "},\"key\":\"k\"";
      Frame fa = a.NextText();
      Frame fb = bb.NextText();
      CHECK_EQ(fa.payload, want + ",\"sub\":\"s1\"}");
      CHECK_EQ(fb.payload, want + ",\"sub\":\"42\"}");
    }
    CHECK_EQ(h.server->Stats().events_in, uint64_t{n});
  });
}

TEST(NativeAnswersPingsErrorsAndCloses) {
  ForEachBackend([](Backend b) {
    Harness h(b);
    CHECK(h.ok);
    if (!h.ok) return;
    WsClient c(h.port);
    CHECK(c.Upgrade());
    CHECK(c.Text(R"({"op":"ping"})"));
    CHECK_EQ(c.NextText().payload, std::string(R"({"op":"pong"})"));
    CHECK(c.Send(ClientFrame(ws::kPing, "abc")));
    Frame pong = c.Next();
    CHECK_EQ(pong.opcode, uint8_t{ws::kPong});
    CHECK_EQ(pong.payload, std::string("abc"));
    CHECK(c.Text(R"({"op":"pub","subject":"a..b"})"));
    Frame e = c.NextText();
    CHECK(Has(e.payload, R"("op":"error")"));
    CHECK(Has(e.payload, "ERR_INVALID_ARGUMENT"));
    CHECK(c.Text("{not json"));
    CHECK(Has(c.NextText().payload, "ERR_INVALID_JSON"));
    // JS sends a text message of its own to this connection (a reply).
    CHECK(c.Text(R"({"op":"req","id":"r1","subject":"svc","data":1})"));
    CHECK(h.js->WaitFor([](const std::vector<Record>& r) { return !r.empty() && r.back().kind == kInReq; }));
    auto recs = h.js->Records();
    if (!recs.empty()) {
      CHECK_EQ(recs.back().id, std::string("r1"));
      h.js->Send(kOutWsText, recs.back().conn, recs.back().gen, R"({"op":"reply","id":"r1","data":2})");
      CHECK_EQ(c.NextText().payload, std::string(R"({"op":"reply","id":"r1","data":2})"));
    }
    // An unmasked frame breaks the protocol: 1002, then the socket closes.
    uint8_t hdr[ws::kMaxServerHeader];
    std::size_t hn = ws::EncodeServerHeader(hdr, ws::kText, true, 2);
    CHECK(c.Send(std::string(reinterpret_cast<const char*>(hdr), hn) + "{}"));
    Frame close_frame = c.Next();
    CHECK_EQ(close_frame.opcode, uint8_t{ws::kClose});
    CHECK_EQ(close_frame.close_code, uint16_t{1002});
    CHECK_EQ(c.Next().payload, std::string("eof"));
    // JS learns the socket it knew (it sent a req) is gone.
    CHECK(h.js->WaitFor([](const std::vector<Record>& r) { return !r.empty() && r.back().kind == kInWsClosed; }));
    CHECK_EQ(h.server->Stats().closes[kCloseProtocol], uint64_t{1});
    // A close handshake from a healthy client is echoed.
    WsClient d(h.port);
    CHECK(d.Upgrade());
    CHECK(d.Send(ClientFrame(ws::kClose, std::string("\x03\xe8", 2))));
    Frame echo = d.Next();
    CHECK_EQ(echo.opcode, uint8_t{ws::kClose});
    CHECK_EQ(echo.close_code, uint16_t{1000});
  });
}

TEST(HttpRequestsRoundTripThroughTheRings) {
  ForEachBackend([](Backend b) {
    Harness h(b);
    CHECK(h.ok);
    if (!h.ok) return;
    const int fd = Connect(h.port);
    CHECK(fd >= 0);
    if (fd < 0) return;
    // Two pipelined requests: answered by the fake JS thread in order.
    CHECK(WriteAll(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /two?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string got;
    for (int i = 0; i < 40 && !Has(got, "GET /two?q=1 "); ++i) got += ReadSome(fd, 50);
    CHECK(Has(got, "HTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\nPOST /echo hello"));
    CHECK(got.find("POST /echo hello") < got.find("GET /two?q=1 "));
    // Native answers: the health of the protocol is the I/O thread's job.
    CHECK(WriteAll(fd, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string refused;
    bool eof = false;
    for (int i = 0; i < 40 && !eof; ++i) refused += ReadSome(fd, 50, &eof);
    CHECK(refused.rfind("HTTP/1.1 426", 0) == 0);
    CHECK(eof);
    close(fd);
    // POST /v1/events: parsed natively into pub records and an end record.
    const int ev = Connect(h.port);
    const std::string body = "{\"subject\":\"e.a\",\"data\":1}\n{\"subject\":\"e.b\",\"data\":[2],\"key\":\"k\"}\n";
    CHECK(WriteAll(ev, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
    CHECK(h.js->WaitFor([](const std::vector<Record>& r) { return !r.empty() && r.back().kind == kInEventsEnd; }));
    auto recs = h.js->Records();
    std::vector<Record> pubs;
    for (const auto& r : recs)
      if (r.kind == kInPub) pubs.push_back(r);
    CHECK_EQ(pubs.size(), std::size_t{2});
    if (pubs.size() == 2) {
      CHECK_EQ(pubs[0].subject, std::string("e.a"));
      CHECK_EQ(pubs[1].data, std::string("[2]"));
      CHECK_EQ(pubs[1].key, std::string("k"));
      CHECK(pubs[0].flags & kInFlagHttp);
    }
    uint32_t count = 0;
    if (!recs.empty() && recs.back().data.size() == 4) std::memcpy(&count, recs.back().data.data(), 4);
    CHECK_EQ(count, 2u);
    close(ev);
  });
}

TEST(ManyPublishersKeepPerConnectionOrder) {
  ForEachBackend([](Backend b) {
    Harness h(b);
    CHECK(h.ok);
    if (!h.ok) return;
    const int clients = 4;
    const int per = test::kSanitized ? 300 : 2000;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([&, t] {
        WsClient c(h.port);
        if (!c.Upgrade()) {
          ++failures;
          return;
        }
        std::string batch;
        for (int i = 0; i < per; ++i) {
          batch += ClientFrame(ws::kText, "{\"op\":\"pub\",\"subject\":\"p" + std::to_string(t) + "\",\"data\":" + std::to_string(i) + "}",
                               static_cast<uint32_t>(0x01020304u * (i + 1)));
          if (batch.size() > 8192) {
            if (!c.Send(batch)) ++failures;
            batch.clear();
          }
        }
        if (!c.Send(batch)) ++failures;
        // Stay connected until everything is read.
        c.Text(R"({"op":"ping"})");
        if (c.NextText().payload != R"({"op":"pong"})") ++failures;
      });
    }
    for (auto& th : threads) th.join();
    CHECK_EQ(failures.load(), 0);
    CHECK(h.js->WaitFor([&](const std::vector<Record>& r) { return r.size() >= static_cast<std::size_t>(clients * per); }));
    std::vector<int> next(clients, 0);
    bool in_order = true;
    for (const Record& r : h.js->Records()) {
      if (r.kind != kInPub) continue;
      const int t = r.subject[1] - '0';
      if (std::stoi(r.data) != next[t]++) in_order = false;
    }
    CHECK(in_order);
    for (int t = 0; t < clients; ++t) CHECK_EQ(next[t], per);
  });
}
