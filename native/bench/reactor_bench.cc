// Reactor micro-benchmarks over loopback TCP, each backend: echo round trips per second
// (one blocking client, 64-byte ping-pong, the reactor echoing) and bulk receive
// throughput (a client streams, the reactor's handler counts bytes). The client thread
// is part of what is measured: on loopback its syscalls cost about what the reactor's do.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "io/reactor.h"

using namespace myelin;
using namespace myelin::io;

namespace {

int Listen(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

int Connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Echoes (or only counts) whatever arrives; one connection at a time is enough here.
class BenchHandler : public Handler {
 public:
  Reactor* r = nullptr;
  bool echo = true;
  int fd = -1;
  uint64_t token = 0, next = 1, bytes = 0;
  std::string out, inflight;
  bool sending = false, closed = false;

  void OnAccept(uint64_t, int c) noexcept override {
    fd = c;
    token = next++;
    closed = false;
    if (!Ok(r->Attach(c, token))) close(c);
  }
  void OnData(uint64_t, uint8_t* d, size_t n) noexcept override {
    bytes += n;
    if (!echo) return;
    out.append(reinterpret_cast<char*>(d), n);
    Flush();
  }
  void OnHangup(uint64_t t, int) noexcept override { r->Close(fd, t); }
  void OnSent(uint64_t, int) noexcept override {
    sending = false;
    Flush();
  }
  void OnClosed(uint64_t) noexcept override {
    closed = true;
    sending = false;
    out.clear();
  }
  void OnWake() noexcept override {}
  void Flush() {
    if (sending || out.empty()) return;
    inflight.swap(out);
    out.clear();
    sending = true;
    r->Send(fd, token, reinterpret_cast<const uint8_t*>(inflight.data()), inflight.size());
  }
};

struct Server {
  BenchHandler h;
  std::unique_ptr<Reactor> r;
  int lfd = -1;
  uint16_t port = 0;
  bool Start(Backend b) {
    ReactorOptions o;
    o.backend = b;
    if (!Ok(Reactor::Create(o, &h, &r))) return false;
    h.r = r.get();
    lfd = Listen(&port);
    return lfd >= 0 && Ok(r->AddListener(lfd, 1));
  }
  ~Server() {
    if (r) r->RemoveListener(lfd);
    if (r) r->Poll(0);
    r.reset();
    if (lfd >= 0) close(lfd);
  }
};

// Runs the client in a thread and polls until it is done and the connection closed.
template <typename Client>
void Drive(Server& s, Client&& client) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    client();
    done = true;
  });
  while (!done.load() || !s.h.closed) s.r->Poll(1);
  t.join();
}

double EchoRoundTrips(Backend b) {
  Server s;
  if (!s.Start(b)) return 0;
  const uint64_t n = bench::Scaled(50000);
  uint64_t t0 = 0, t1 = 0;
  Drive(s, [&] {
    const int fd = Connect(s.port);
    char msg[64] = {1}, back[64];
    t0 = bench::NowNs();
    for (uint64_t i = 0; i < n; ++i) {
      if (send(fd, msg, sizeof msg, MSG_NOSIGNAL) != sizeof msg) break;
      size_t got = 0;
      while (got < sizeof back) {
        const ssize_t r = recv(fd, back + got, sizeof back - got, 0);
        if (r <= 0) break;
        got += static_cast<size_t>(r);
      }
      bench::Consume(static_cast<uint8_t>(back[0]));
    }
    t1 = bench::NowNs();
    close(fd);
  });
  return static_cast<double>(n) * 1e9 / static_cast<double>(t1 - t0);
}

double BulkGBs(Backend b) {
  Server s;
  if (!s.Start(b)) return 0;
  s.h.echo = false;
  const uint64_t total = bench::Scaled(1ull << 30);
  uint64_t t0 = 0, t1 = 0;
  s.h.bytes = 0;
  Drive(s, [&] {
    const int fd = Connect(s.port);
    std::vector<char> chunk(256 << 10, 'z');
    t0 = bench::NowNs();
    uint64_t sent = 0;
    while (sent < total) {
      const ssize_t w = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (w <= 0) break;
      sent += static_cast<uint64_t>(w);
    }
    close(fd);
  });
  t1 = bench::NowNs();  // after the reactor saw the close: every byte was received
  bench::Consume(s.h.bytes);
  return static_cast<double>(s.h.bytes) / static_cast<double>(t1 - t0);
}

}  // namespace

int main() {
  for (Backend b : {Backend::kEpoll, Backend::kIoUring}) {
    if (b == Backend::kIoUring && !IoUringUsable()) {
      std::fprintf(stderr, "io_uring is not usable here: skipped\n");
      continue;
    }
    const std::string name = BackendName(b);
    bench::Run((name + "/echo_64B_round_trips").c_str(), "items/s", [&] { return EchoRoundTrips(b); });
    bench::Run((name + "/bulk_receive").c_str(), "GB/s", [&] { return BulkGBs(b); });
  }
  bench::PrintSink();
  return 0;
}
