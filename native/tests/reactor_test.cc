// Reactor (native/src/io/reactor.h), each case run on both backends over real loopback
// TCP: blocking client sockets in other threads against a reactor polled here. io_uring
// cases are skipped, with a note, where IoUringUsable() says no.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "io/reactor.h"

using namespace myelin;
using namespace myelin::io;
using myelin::test::Fail;

namespace {

// ---- sockets -------------------------------------------------------------------------

int Listen(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4096) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

int Connect(uint16_t port, int fd = -1) {
  if (fd < 0) fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

bool WriteAll(int fd, const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    b += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadExact(int fd, void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    const ssize_t r = recv(fd, b, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

uint8_t PatternByte(size_t i) { return static_cast<uint8_t>((i * 131) ^ (i >> 9)); }

// ---- a recording, echoing handler ----------------------------------------------------

enum class Cb { kAccept, kData, kHangup, kSent, kClosed, kWake };
struct Event {
  Cb cb;
  uint64_t token;
  int err;
};

struct Conn {
  int fd = -1;
  std::string out;       // waiting to be sent
  std::string inflight;  // given to Send, owned until OnSent/OnClosed
  bool sending = false;
  bool hung = false;
  bool closing = false;
  std::string received;  // kept when record_data
};

class TestHandler : public Handler {
 public:
  Reactor* r = nullptr;
  bool echo = true;
  bool record_data = false;
  bool close_on_hangup = true;
  bool attach = true;
  std::map<uint64_t, Conn> conns;
  std::vector<Event> log;
  std::vector<int> accepted_fds;
  uint64_t next_token = 100;
  uint64_t data_bytes = 0;
  int wakes = 0;
  std::function<void(uint64_t)> on_data_hook;

  void OnAccept(uint64_t listener, int fd) noexcept override {
    log.push_back({Cb::kAccept, listener, fd});
    accepted_fds.push_back(fd);
    if (!attach) return;
    const uint64_t t = next_token++;
    conns[t].fd = fd;
    if (!Ok(r->Attach(fd, t))) {
      Fail(__FILE__, __LINE__, "Attach failed");
      close(fd);
      conns.erase(t);
    }
  }
  void OnData(uint64_t t, uint8_t* d, size_t n) noexcept override {
    log.push_back({Cb::kData, t, static_cast<int>(n)});
    data_bytes += n;
    auto it = conns.find(t);
    if (it == conns.end()) return Fail(__FILE__, __LINE__, "OnData for an unknown token");
    if (record_data) it->second.received.append(reinterpret_cast<char*>(d), n);
    if (echo) {
      it->second.out.append(reinterpret_cast<char*>(d), n);
      Flush(t);
    }
    if (on_data_hook) on_data_hook(t);
  }
  void OnHangup(uint64_t t, int err) noexcept override {
    log.push_back({Cb::kHangup, t, err});
    auto it = conns.find(t);
    if (it == conns.end()) return Fail(__FILE__, __LINE__, "OnHangup for an unknown token");
    it->second.hung = true;
    if (close_on_hangup && !it->second.sending) CloseConn(t);
  }
  void OnSent(uint64_t t, int err) noexcept override {
    log.push_back({Cb::kSent, t, err});
    auto it = conns.find(t);
    if (it == conns.end()) return Fail(__FILE__, __LINE__, "OnSent for an unknown token");
    it->second.sending = false;
    it->second.inflight.clear();
    if (err == 0) Flush(t);
    if (it->second.hung && close_on_hangup && !it->second.sending) CloseConn(t);
  }
  void OnClosed(uint64_t t) noexcept override {
    log.push_back({Cb::kClosed, t, 0});
    auto it = conns.find(t);
    if (it == conns.end()) return Fail(__FILE__, __LINE__, "OnClosed for an unknown token");
    if (!it->second.closing) Fail(__FILE__, __LINE__, "OnClosed without Close");
    conns.erase(it);  // frees inflight: the reactor promised the kernel is done with it
  }
  void OnWake() noexcept override {
    log.push_back({Cb::kWake, 0, 0});
    ++wakes;
  }

  void Flush(uint64_t t) {
    Conn& c = conns[t];
    if (c.sending || c.closing || c.out.empty()) return;
    c.inflight.swap(c.out);
    c.out.clear();
    c.sending = true;
    r->Send(c.fd, t, reinterpret_cast<const uint8_t*>(c.inflight.data()), c.inflight.size());
  }
  void SendOwned(uint64_t t, std::string data) {
    Conn& c = conns[t];
    c.out.append(data);
    Flush(t);
  }
  void CloseConn(uint64_t t) {
    Conn& c = conns[t];
    if (c.closing) return;
    c.closing = true;
    r->Close(c.fd, t);
  }
  int Count(Cb cb, uint64_t t = 0) const {
    int n = 0;
    for (const Event& e : log) n += e.cb == cb && (t == 0 || e.token == t);
    return n;
  }
};

// Polls until done() or a generous hang guard (a failure, not a speed limit).
bool PollUntil(Reactor& r, const std::function<bool()>& done, int guard_ms = 60000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(guard_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    if (r.Poll(10) < 0) return false;
  }
  return true;
}

struct Rig {
  TestHandler h;
  std::unique_ptr<Reactor> r;
  int lfd = -1;
  uint16_t port = 0;
  static constexpr uint64_t kListenerToken = 7;

  bool Start(Backend b, ReactorOptions o = {}) {
    o.backend = b;
    if (!Ok(Reactor::Create(o, &h, &r))) return false;
    h.r = r.get();
    lfd = Listen(&port);
    return lfd >= 0 && Ok(r->AddListener(lfd, kListenerToken));
  }
  ~Rig() {
    if (r) r->RemoveListener(lfd);
    if (r) r->Poll(0);
    r.reset();
    if (lfd >= 0) close(lfd);
  }
};

// Runs body once per backend; io_uring is skipped with a note where unusable.
void ForEachBackend(const std::function<void(Backend)>& body) {
  for (Backend b : {Backend::kEpoll, Backend::kIoUring}) {
    if (b == Backend::kIoUring && !IoUringUsable()) {
      std::fprintf(stderr, "  note: io_uring is not usable here; its half is skipped\n");
      continue;
    }
    std::fprintf(stderr, "  backend %s\n", BackendName(b));
    body(b);
  }
}

}  // namespace

TEST(RejectsBadOptions) {
  TestHandler h;
  std::unique_ptr<Reactor> r;
  ReactorOptions o;
  CHECK_EQ(Reactor::Create(o, nullptr, &r), Status::kInvalidArgument);
  o.buffer_count = 100;
  CHECK_EQ(Reactor::Create(o, &h, &r), Status::kInvalidArgument);
  o = {};
  o.buffer_bytes = 0;
  CHECK_EQ(Reactor::Create(o, &h, &r), Status::kInvalidArgument);
  o = {};
  o.queue_depth = 0;
  CHECK_EQ(Reactor::Create(o, &h, &r), Status::kInvalidArgument);
  CHECK(r == nullptr);
  CHECK_EQ(std::string(BackendName(Backend::kEpoll)), std::string("epoll"));
  CHECK_EQ(std::string(BackendName(Backend::kIoUring)), std::string("io_uring"));
  ForEachBackend([&](Backend b) {
    ReactorOptions ok;
    ok.backend = b;
    std::unique_ptr<Reactor> rr;
    CHECK_EQ(Reactor::Create(ok, &h, &rr), Status::kOk);
    CHECK(rr && rr->backend() == b);
    CHECK_EQ(rr->Attach(-1, 1), Status::kInvalidArgument);
    CHECK_EQ(rr->Poll(0), 0);
  });
}

TEST(EchoManyClientsRandomSizes) {
  ForEachBackend([](Backend b) {
    Rig rig;
    // Small buffers so messages span many reads and provided buffers recycle.
    ReactorOptions o;
    o.buffer_count = 16;
    o.buffer_bytes = 4096;
    CHECK(rig.Start(b, o));
    const int clients = test::kSanitized ? 4 : 8;
    const int messages = test::kSanitized ? 40 : 150;
    std::atomic<int> done{0};
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        std::mt19937 rng(1234 + c);
        const int fd = Connect(rig.port);
        if (fd < 0) {
          ++bad;
          ++done;
          return;
        }
        std::string msg, back;
        for (int m = 0; m < messages; ++m) {
          const size_t len = 1 + rng() % (rng() % 4 == 0 ? 65536 : 512);
          msg.resize(len);
          for (auto& ch : msg) ch = static_cast<char>(rng());
          back.assign(len, '\0');
          if (!WriteAll(fd, msg.data(), len) || !ReadExact(fd, back.data(), len) || back != msg) {
            ++bad;
            break;
          }
        }
        close(fd);
        ++done;
      });
    }
    CHECK(PollUntil(*rig.r, [&] { return done.load() == clients; }));
    for (auto& t : threads) t.join();
    CHECK_EQ(bad.load(), 0);
    // Every client closed: every connection hangs up, is closed, and reports it once.
    CHECK(PollUntil(*rig.r, [&] { return rig.h.conns.empty(); }));
    CHECK_EQ(rig.h.Count(Cb::kAccept), clients);
    CHECK_EQ(rig.h.Count(Cb::kClosed), clients);
    for (const Event& e : rig.h.log) {
      if (e.cb == Cb::kHangup) CHECK_EQ(e.err, 0);
      if (e.cb == Cb::kSent) CHECK_EQ(e.err, 0);
    }
  });
}

TEST(BigSendToSlowReader) {
  ForEachBackend([](Backend b) {
    Rig rig;
    CHECK(rig.Start(b));
    rig.h.echo = false;
    const size_t kBig = 8u << 20;
    std::string big(kBig, '\0');
    for (size_t i = 0; i < kBig; ++i) big[i] = static_cast<char>(PatternByte(i));
    std::atomic<bool> ok{false}, finished{false};
    std::thread client([&] {
      const int fd = Connect(rig.port);
      std::vector<uint8_t> buf(kBig);
      size_t got = 0;
      int reads = 0;
      while (fd >= 0 && got < kBig) {
        const ssize_t r = recv(fd, buf.data() + got, std::min<size_t>(16384, kBig - got), 0);
        if (r <= 0) break;
        got += static_cast<size_t>(r);
        if (++reads % 32 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      bool same = got == kBig;
      for (size_t i = 0; same && i < kBig; ++i) same = buf[i] == PatternByte(i);
      ok = same;
      finished = true;
      if (fd >= 0) close(fd);
    });
    CHECK(PollUntil(*rig.r, [&] { return !rig.h.conns.empty(); }));
    const uint64_t t = rig.h.conns.begin()->first;
    rig.h.SendOwned(t, big);
    CHECK(PollUntil(*rig.r, [&] { return finished.load() && rig.h.Count(Cb::kSent, t) > 0; }));
    client.join();
    CHECK(ok.load());
    CHECK_EQ(rig.h.Count(Cb::kSent, t), 1);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.conns.empty(); }));
    CHECK_EQ(rig.h.Count(Cb::kClosed, t), 1);
  });
}

TEST(PauseStopsDataUntilResume) {
  ForEachBackend([](Backend b) {
    Rig rig;
    ReactorOptions o;
    o.buffer_count = 8;
    o.buffer_bytes = 4096;
    CHECK(rig.Start(b, o));
    rig.h.echo = false;
    rig.h.record_data = true;
    rig.h.close_on_hangup = false;
    const size_t kTotal = 32u << 20;  // more than loopback's socket buffers: the client blocks
    bool paused = false;
    uint64_t paused_bytes = 0;
    int paused_turn_data = -1;
    rig.h.on_data_hook = [&](uint64_t t) {
      if (!paused) {
        paused = true;
        rig.r->PauseReading(rig.h.conns[t].fd, t);
      }
    };
    std::atomic<bool> written{false};
    std::thread client([&] {
      const int fd = Connect(rig.port);
      std::vector<uint8_t> data(kTotal);
      for (size_t i = 0; i < kTotal; ++i) data[i] = PatternByte(i);
      written = fd >= 0 && WriteAll(fd, data.data(), kTotal);
      if (fd >= 0) close(fd);
    });
    CHECK(PollUntil(*rig.r, [&] { return paused; }));
    rig.r->Poll(0);  // the rest of the pausing turn may still deliver
    paused_bytes = rig.h.data_bytes;
    paused_turn_data = rig.h.Count(Cb::kData);
    for (int i = 0; i < 30; ++i) rig.r->Poll(5);
    CHECK_EQ(rig.h.Count(Cb::kData), paused_turn_data);
    CHECK_EQ(rig.h.data_bytes, paused_bytes);
    CHECK(!written.load());  // still blocked: nothing was drained behind our back
    const uint64_t t = rig.h.conns.begin()->first;
    rig.r->ResumeReading(rig.h.conns[t].fd, t);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.Count(Cb::kHangup, t) == 1; }));
    client.join();
    CHECK(written.load());
    const std::string& got = rig.h.conns[t].received;
    CHECK_EQ(got.size(), kTotal);
    bool same = got.size() == kTotal;
    for (size_t i = 0; same && i < kTotal; ++i) same = static_cast<uint8_t>(got[i]) == PatternByte(i);
    CHECK(same);
    rig.h.CloseConn(t);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.conns.empty(); }));
  });
}

TEST(PeerCloseIsHangupZero) {
  ForEachBackend([](Backend b) {
    Rig rig;
    CHECK(rig.Start(b));
    rig.h.echo = false;
    rig.h.record_data = true;
    rig.h.close_on_hangup = false;
    std::thread client([&] {
      const int fd = Connect(rig.port);
      if (fd >= 0) {
        WriteAll(fd, "bye", 3);
        close(fd);
      }
    });
    CHECK(PollUntil(*rig.r, [&] { return rig.h.Count(Cb::kHangup) == 1; }));
    client.join();
    const uint64_t t = rig.h.conns.begin()->first;
    CHECK_EQ(rig.h.conns[t].received, std::string("bye"));
    for (const Event& e : rig.h.log) {
      if (e.cb == Cb::kHangup) CHECK_EQ(e.err, 0);
    }
    // Nothing more for a hung-up socket until the handler closes it.
    for (int i = 0; i < 5; ++i) rig.r->Poll(2);
    CHECK_EQ(rig.h.Count(Cb::kHangup), 1);
    CHECK_EQ(rig.h.Count(Cb::kClosed), 0);
    rig.h.CloseConn(t);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.conns.empty(); }));
    for (int i = 0; i < 3; ++i) rig.r->Poll(1);
    CHECK_EQ(rig.h.Count(Cb::kClosed, t), 1);
  });
}

TEST(CloseWhileSendInFlight) {
  ForEachBackend([](Backend b) {
    Rig rig;
    CHECK(rig.Start(b));
    rig.h.echo = false;
    std::atomic<bool> release{false};
    std::atomic<size_t> client_got{0};
    std::thread client([&] {
      const int fd = Connect(rig.port);
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      char buf[65536];
      size_t got = 0;
      for (;;) {
        const ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) break;
        got += static_cast<size_t>(r);
      }
      client_got = got;
      if (fd >= 0) close(fd);
    });
    CHECK(PollUntil(*rig.r, [&] { return !rig.h.conns.empty(); }));
    const uint64_t t = rig.h.conns.begin()->first;
    rig.h.SendOwned(t, std::string(16u << 20, 'x'));  // far more than socket buffers
    for (int i = 0; i < 10; ++i) rig.r->Poll(1);
    CHECK_EQ(rig.h.Count(Cb::kSent, t), 0);  // the client reads nothing: still in flight
    rig.h.CloseConn(t);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.Count(Cb::kClosed, t) == 1; }));
    for (int i = 0; i < 5; ++i) rig.r->Poll(2);
    release = true;
    client.join();
    CHECK_EQ(rig.h.Count(Cb::kClosed, t), 1);
    // After OnClosed, nothing for that token; any OnSent came before it.
    bool closed_seen = false;
    for (const Event& e : rig.h.log) {
      if (e.token != t || e.cb == Cb::kAccept) continue;
      CHECK(!closed_seen);
      if (e.cb == Cb::kClosed) closed_seen = true;
    }
    CHECK(client_got.load() < (16u << 20));
  });
}

TEST(WakeFromAnotherThread) {
  ForEachBackend([](Backend b) {
    TestHandler h;
    std::unique_ptr<Reactor> r;
    ReactorOptions o;
    o.backend = b;
    CHECK_EQ(Reactor::Create(o, &h, &r), Status::kOk);
    h.r = r.get();
    // A blocked Poll(-1) returns once woken.
    std::thread waker([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      r->Wake();
    });
    const int n = r->Poll(-1);
    waker.join();
    CHECK(n >= 1);
    CHECK_EQ(h.wakes, 1);
    // Many wakes coalesce: at least one OnWake after the last, never more than calls.
    const int kWakes = test::kSanitized ? 2000 : 20000;
    std::atomic<bool> done{false};
    std::thread many([&] {
      for (int i = 0; i < kWakes; ++i) r->Wake();
      done = true;
    });
    while (!done.load()) r->Poll(1);
    many.join();
    const int before = h.wakes;
    r->Poll(0);
    r->Poll(0);
    CHECK(h.wakes > before || h.wakes >= 2);
    CHECK(h.wakes <= kWakes + 1);
    // Drained: with no new Wake a Poll(0) makes no callback.
    r->Poll(0);
    CHECK_EQ(r->Poll(0), 0);
    r->Wake();
    CHECK_EQ(r->Poll(-1), 1);
  });
}

TEST(AcceptAThousand) {
  ForEachBackend([](Backend b) {
    Rig rig;
    CHECK(rig.Start(b));
    const int kConns = 1000;
    std::vector<int> fds;
    std::atomic<bool> connected{false};
    std::thread client([&] {
      for (int i = 0; i < kConns; ++i) fds.push_back(Connect(rig.port));
      connected = true;
    });
    CHECK(PollUntil(*rig.r, [&] { return connected.load() && rig.h.Count(Cb::kAccept) == kConns; }));
    client.join();
    int bad = 0;
    for (int fd : fds) bad += fd < 0;
    CHECK_EQ(bad, 0);
    CHECK_EQ(static_cast<int>(rig.h.conns.size()), kConns);
    for (int fd : fds) close(fd);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.conns.empty(); }));
    CHECK_EQ(rig.h.Count(Cb::kClosed), kConns);
  });
}

TEST(StaleTokenAfterFdReuse) {
  ForEachBackend([](Backend b) {
    Rig rig;
    CHECK(rig.Start(b));
    rig.h.close_on_hangup = false;
    const int c1 = Connect(rig.port);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.conns.size() == 1; }));
    const uint64_t t1 = rig.h.conns.begin()->first;
    const int fd1 = rig.h.conns[t1].fd;
    CHECK(WriteAll(c1, "ping", 4));
    CHECK(PollUntil(*rig.r, [&] { return rig.h.Count(Cb::kData, t1) >= 1; }));
    const int s2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // before fd1 is free
    rig.h.CloseConn(t1);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.Count(Cb::kClosed, t1) == 1; }));
    // The next connection gets the lowest free fd: the one just closed.
    const int c2 = Connect(rig.port, s2);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.conns.size() == 1; }));
    const uint64_t t2 = rig.h.conns.begin()->first;
    CHECK(t2 != t1);
    CHECK_EQ(rig.h.conns[t2].fd, fd1);
    // Calls with the old token reach nothing.
    static const uint8_t kStale[] = "stale";
    rig.r->Send(fd1, t1, kStale, 5);
    rig.r->PauseReading(fd1, t1);
    rig.r->Close(fd1, t1);
    CHECK(WriteAll(c2, "hello", 5));
    char back[5];
    std::atomic<bool> echoed{false};
    std::thread reader([&] { echoed = ReadExact(c2, back, 5); });
    CHECK(PollUntil(*rig.r, [&] { return echoed.load(); }));
    reader.join();
    CHECK_EQ(std::string(back, 5), std::string("hello"));
    close(c1);
    close(c2);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.Count(Cb::kHangup, t2) == 1; }));
    rig.h.CloseConn(t2);
    CHECK(PollUntil(*rig.r, [&] { return rig.h.conns.empty(); }));
    bool closed = false;
    for (const Event& e : rig.h.log) {
      if (e.token != t1 || e.cb == Cb::kAccept) continue;
      CHECK(!closed);
      closed = closed || e.cb == Cb::kClosed;
    }
    CHECK_EQ(rig.h.Count(Cb::kClosed, t1), 1);
  });
}

TEST(CreatedOnOneThreadPolledOnAnother) {
  ForEachBackend([](Backend b) {
    TestHandler h;
    std::unique_ptr<Reactor> r;
    std::thread maker([&] {
      ReactorOptions o;
      o.backend = b;
      CHECK_EQ(Reactor::Create(o, &h, &r), Status::kOk);
    });
    maker.join();
    if (!r) return;
    h.r = r.get();
    uint16_t port = 0;
    const int lfd = Listen(&port);
    CHECK_EQ(r->AddListener(lfd, 1), Status::kOk);
    const int c = Connect(port);
    CHECK(WriteAll(c, "abc", 3));
    char back[3];
    std::atomic<bool> echoed{false};
    std::thread reader([&] { echoed = ReadExact(c, back, 3); });
    CHECK(PollUntil(*r, [&] { return echoed.load(); }));
    reader.join();
    CHECK_EQ(std::string(back, 3), std::string("abc"));
    close(c);
    CHECK(PollUntil(*r, [&] { return h.conns.empty(); }));
    r->RemoveListener(lfd);
    r->Poll(0);
    r.reset();
    close(lfd);
  });
}

TEST(DestroyWithSocketsAttached) {
  ForEachBackend([](Backend b) {
    auto rig = std::make_unique<Rig>();
    CHECK(rig->Start(b));
    const int c = Connect(rig->port);
    CHECK(PollUntil(*rig->r, [&] { return rig->h.conns.size() == 1; }));
    rig->h.SendOwned(rig->h.conns.begin()->first, std::string(4u << 20, 'y'));
    rig->r->Poll(0);
    rig.reset();  // closes the attached socket: the client sees the end
    char buf[65536];
    ssize_t r;
    while ((r = recv(c, buf, sizeof buf, 0)) > 0) {
    }
    CHECK(r == 0 || (r < 0 && errno == ECONNRESET));
    close(c);
  });
}
