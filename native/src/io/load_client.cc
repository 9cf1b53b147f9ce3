// LoadClient (load_client.h): connections driven by the project's Reactor, frames
// pre-built once, a blocking publisher thread for the open-loop latency modes.
#include "io/load_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "hist/histogram.h"
#include "ws/frame.h"

namespace myelin::io {

uint64_t MonotonicNs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {

constexpr uint32_t kMask = 0x5a3c96e1u;
constexpr uint64_t kGraceNs = 300'000'000;     // deliveries still in flight at the deadline
constexpr std::size_t kMaxHead = 8192;          // a handshake response longer than this fails
constexpr uint32_t kConnectsPerPoll = 64;       // serve handshakes while connecting many
constexpr std::size_t kMaxPublishBatch = 4096;  // frames per publisher write when late

// Appends one masked client text frame carrying payload to out.
void AppendFrame(std::vector<uint8_t>* out, const uint8_t* payload, std::size_t len) {
  uint8_t hdr[ws::kMaxClientHeader];
  const std::size_t h = ws::EncodeClientHeader(hdr, ws::kText, true, len, kMask);
  const std::size_t at = out->size();
  out->resize(at + h + len);
  std::memcpy(out->data() + at, hdr, h);
  std::memcpy(out->data() + at + h, payload, len);
  ws::MaskBytes(out->data() + at + h, len, kMask, 0);
}

// A blocking TCP connection to addr:port with Nagle off; -1 with errno on failure.
int ConnectTcp(uint32_t addr, uint16_t port) noexcept {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = addr;
  int r;
  do {
    r = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool WriteAll(int fd, const uint8_t* p, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// The due time carried after the first `"t":` in a message; 0 when absent.
uint64_t DueTime(const uint8_t* p, std::size_t n) noexcept {
  static constexpr char kKey[] = "\"t\":";
  const void* at = memmem(p, n, kKey, sizeof kKey - 1);
  if (!at) return 0;
  const uint8_t* q = static_cast<const uint8_t*>(at) + (sizeof kKey - 1);
  const uint8_t* end = p + n;
  uint64_t v = 0;
  while (q < end && *q >= '0' && *q <= '9') v = v * 10 + static_cast<uint64_t>(*q++ - '0');
  return v;
}

}  // namespace

struct LoadClient::Worker final : Handler {
  struct Conn {
    explicit Conn(const ws::ReaderLimits* limits) : reader(limits) {}
    int fd = -1;
    bool upgraded = false;
    bool dead = false;
    bool sending = false;
    bool want_sub = false;   // the sub frame waits for a write in flight
    bool counting = false;   // the batch in flight was started inside the run window
    std::string head;        // handshake response bytes so far
    std::vector<uint8_t> in; // an incomplete frame carried to the next OnData
    ws::MessageReader reader;
  };

  Worker(LoadClient* client, uint32_t n) : c(client) {
    limits.server_side = false;
    limits.max_message_bytes = 16 << 20;
    conns.reserve(n);
    for (uint32_t i = 0; i < n; ++i) conns.emplace_back(&limits);
  }

  LoadClient* c;
  ws::ReaderLimits limits;
  std::unique_ptr<Reactor> reactor;
  std::vector<Conn> conns;
  uint32_t in_flight = 0;   // writes outstanding
  bool started = false;     // the run's first batches were issued
  bool finished = false;    // counted in workers_done_
  std::atomic<uint64_t> upgraded{0}, failed{0}, closed{0}, sent{0}, received{0}, recorded{0}, bytes_in{0};

  void Fail(Conn& cn, uint64_t token) noexcept {
    if (cn.dead) return;
    cn.dead = true;
    if (cn.upgraded) {
      closed.fetch_add(1, std::memory_order_relaxed);
    } else {
      failed.fetch_add(1, std::memory_order_relaxed);
      c->settled_.fetch_add(1, std::memory_order_release);
    }
    if (cn.sending) {
      cn.sending = false;
      --in_flight;
    }
    reactor->Close(cn.fd, token);
  }

  void Send(Conn& cn, uint64_t token, const std::vector<uint8_t>& bytes, bool counting) noexcept {
    cn.sending = true;
    cn.counting = counting;
    ++in_flight;
    reactor->Send(cn.fd, token, bytes.data(), bytes.size());
  }

  bool Running(uint64_t now) const noexcept {
    const uint64_t d = c->DeadlineNs();
    return d != 0 && now < d;
  }

  void OnAccept(uint64_t, int fd) noexcept override { close(fd); }
  void OnWake() noexcept override {}
  void OnClosed(uint64_t) noexcept override {}

  void OnHangup(uint64_t token, int) noexcept override { Fail(conns[token], token); }

  void OnSent(uint64_t token, int err) noexcept override {
    Conn& cn = conns[token];
    if (cn.dead || !cn.sending) return;
    cn.sending = false;
    --in_flight;
    if (err != 0) return Fail(cn, token);
    if (cn.counting) sent.fetch_add(c->options_.batch, std::memory_order_relaxed);
    if (cn.want_sub) {
      cn.want_sub = false;
      return Send(cn, token, c->sub_, false);
    }
    if (c->options_.mode == LoadMode::kIngest && cn.upgraded && Running(MonotonicNs()))
      Send(cn, token, c->batch_, true);
  }

  void OnData(uint64_t token, uint8_t* data, std::size_t len) noexcept override {
    Conn& cn = conns[token];
    if (cn.dead) return;
    bytes_in.fetch_add(len, std::memory_order_relaxed);
    try {
      if (!cn.upgraded) {
        cn.head.append(reinterpret_cast<const char*>(data), len);
        const std::size_t end = cn.head.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (cn.head.size() > kMaxHead) Fail(cn, token);
          return;
        }
        if (cn.head.compare(0, 12, "HTTP/1.1 101") != 0) return Fail(cn, token);
        cn.upgraded = true;
        upgraded.fetch_add(1, std::memory_order_relaxed);
        c->settled_.fetch_add(1, std::memory_order_release);
        std::string rest = cn.head.substr(end + 4);
        std::string().swap(cn.head);
        if (c->options_.mode == LoadMode::kLatency) {
          if (cn.sending) cn.want_sub = true;
          else Send(cn, token, c->sub_, false);
        }
        if (!rest.empty()) Frames(cn, token, reinterpret_cast<uint8_t*>(rest.data()), rest.size());
        return;
      }
      Frames(cn, token, data, len);
    } catch (const std::bad_alloc&) {
      Fail(cn, token);
    }
  }

  // Reads every complete message in the connection's carried bytes plus data.
  void Frames(Conn& cn, uint64_t token, uint8_t* data, std::size_t len) {
    uint8_t* p = data;
    std::size_t n = len;
    if (!cn.in.empty()) {
      cn.in.insert(cn.in.end(), data, data + len);
      p = cn.in.data();
      n = cn.in.size();
    }
    std::size_t off = 0;
    while (off < n) {
      std::size_t used = 0;
      ws::Message msg{};
      uint16_t code = 0;
      const auto r = cn.reader.Read(p + off, n - off, &used, &msg, &code);
      off += used;
      if (r == ws::MessageReader::Result::kNeedMore) break;
      if (r == ws::MessageReader::Result::kError || msg.opcode == ws::kClose) return Fail(cn, token);
      if (msg.opcode == ws::kText || msg.opcode == ws::kBinary) {
        received.fetch_add(1, std::memory_order_relaxed);
        if (c->hist_) {
          const uint64_t due = DueTime(msg.data, msg.len);
          if (due != 0 && due >= c->record_from_ns_.load(std::memory_order_relaxed)) {
            const uint64_t now = MonotonicNs();
            c->hist_->Record(now > due ? now - due : 0);
            recorded.fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
    }
    if (p == data) {
      if (off < n) cn.in.assign(p + off, p + n);
    } else {
      cn.in.erase(cn.in.begin(), cn.in.begin() + static_cast<std::ptrdiff_t>(off));
      if (cn.in.empty()) std::vector<uint8_t>().swap(cn.in);
    }
  }

  void Connect(uint64_t token) noexcept {
    Conn& cn = conns[token];
    cn.fd = ConnectTcp(c->addr_, c->options_.port);
    if (cn.fd < 0 || fcntl(cn.fd, F_SETFL, O_NONBLOCK) < 0 || !Ok(reactor->Attach(cn.fd, token))) {
      if (cn.fd >= 0) close(cn.fd);
      cn.fd = -1;
      cn.dead = true;
      failed.fetch_add(1, std::memory_order_relaxed);
      c->settled_.fetch_add(1, std::memory_order_release);
      return;
    }
    cn.sending = true;
    ++in_flight;
    reactor->Send(cn.fd, token, reinterpret_cast<const uint8_t*>(c->upgrade_.data()), c->upgrade_.size());
  }

  void Loop() noexcept {
    for (uint64_t i = 0; i < conns.size() && !c->stop_.load(std::memory_order_relaxed); ++i) {
      Connect(i);
      if ((i + 1) % kConnectsPerPoll == 0 && reactor->Poll(0) < 0) return;
    }
    while (!c->stop_.load(std::memory_order_acquire)) {
      if (reactor->Poll(5) < 0) return;
      const uint64_t deadline = c->DeadlineNs();
      if (deadline == 0 || finished) continue;
      if (c->options_.mode == LoadMode::kIngest && !started) {
        started = true;
        for (uint64_t t = 0; t < conns.size(); ++t) {
          Conn& cn = conns[t];
          if (!cn.dead && cn.upgraded && !cn.sending) Send(cn, t, c->batch_, true);
        }
      }
      if (MonotonicNs() >= deadline && in_flight == 0) {
        finished = true;
        c->workers_done_.fetch_add(1, std::memory_order_release);
      }
    }
  }
};

Status LoadClient::Create(const LoadOptions& options, std::unique_ptr<LoadClient>* out) noexcept {
  if (!out || options.connections == 0 || options.threads == 0 || options.threads > 64 || options.port == 0 ||
      options.batch == 0)
    return Status::kInvalidArgument;
  if (options.mode == LoadMode::kIngest && options.pub_frame.empty()) return Status::kInvalidArgument;
  if (options.mode == LoadMode::kLatency &&
      (options.sub_frame.empty() || options.pub_prefix.empty() || !(options.rate > 0 && options.rate <= 1e8)))
    return Status::kInvalidArgument;
  uint32_t addr = 0;
  const std::string host = options.host == "localhost" ? "127.0.0.1" : options.host;
  if (inet_pton(AF_INET, host.c_str(), &addr) != 1) return Status::kInvalidArgument;
  try {
    std::unique_ptr<LoadClient> c(new LoadClient());
    c->options_ = options;
    c->addr_ = addr;
    c->upgrade_ = "GET " + options.path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(options.port) +
                  "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n";
    if (options.mode == LoadMode::kIngest) {
      for (uint32_t i = 0; i < options.batch; ++i)
        AppendFrame(&c->batch_, reinterpret_cast<const uint8_t*>(options.pub_frame.data()), options.pub_frame.size());
    }
    if (options.mode == LoadMode::kLatency) {
      AppendFrame(&c->sub_, reinterpret_cast<const uint8_t*>(options.sub_frame.data()), options.sub_frame.size());
      Status s = Histogram::Create(&c->hist_);
      if (!Ok(s)) return s;
    }
    const uint32_t threads = options.threads < options.connections ? options.threads : options.connections;
    for (uint32_t t = 0; t < threads; ++t) {
      const uint32_t n = options.connections / threads + (t < options.connections % threads ? 1 : 0);
      auto w = std::make_unique<Worker>(c.get(), n);
      ReactorOptions ro;
      ro.backend = options.backend;
      ro.buffer_bytes = 256 << 10;  // big reads: the fan-out mode receives bursts
      Status s = Reactor::Create(ro, w.get(), &w->reactor);
      if (!Ok(s)) return s;
      c->workers_.push_back(std::move(w));
    }
    *out = std::move(c);
    return Status::kOk;
  } catch (const std::bad_alloc&) {
    return Status::kOutOfMemory;
  }
}

LoadClient::~LoadClient() = default;

void LoadClient::Run(uint32_t thread) noexcept {
  if (thread < workers_.size()) workers_[thread]->Loop();
}

void LoadClient::RunPublisher() noexcept {
  auto done = [this] { publisher_done_.store(true, std::memory_order_release); };
  if (!has_publisher()) return done();
  const int fd = ConnectTcp(addr_, options_.port);
  bool ok = fd >= 0 && WriteAll(fd, reinterpret_cast<const uint8_t*>(upgrade_.data()), upgrade_.size());
  std::string head;
  while (ok && head.find("\r\n\r\n") == std::string::npos && head.size() < kMaxHead) {
    char buf[1024];
    const ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) ok = false;
    else head.append(buf, static_cast<std::size_t>(r));
  }
  ok = ok && head.compare(0, 12, "HTTP/1.1 101") == 0;
  publisher_fd_.store(ok ? fd : -1, std::memory_order_release);
  publisher_ready_.store(true, std::memory_order_release);
  if (!ok) {
    if (fd >= 0) close(fd);
    publisher_failed_.store(true, std::memory_order_release);
    return done();
  }
  // Sleeps end within ~1 us of their due time instead of the default 50 us slack.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  while (!stop_.load(std::memory_order_acquire) && go_ns_.load(std::memory_order_acquire) == 0) usleep(1000);
  const uint64_t t0 = go_ns_.load(std::memory_order_acquire);
  const uint64_t end = DeadlineNs();
  const double period = 1e9 / options_.rate;
  std::vector<uint8_t> buf;
  std::string payload;
  uint64_t i = 0;
  try {
    buf.reserve(64 << 10);
    while (!stop_.load(std::memory_order_acquire)) {
      const uint64_t now = MonotonicNs();
      if (now >= end) break;
      uint64_t due_n = static_cast<uint64_t>(static_cast<double>(now - t0) / period) + 1;
      if (due_n - i > kMaxPublishBatch) due_n = i + kMaxPublishBatch;
      buf.clear();
      const uint64_t lag = now - (t0 + static_cast<uint64_t>(static_cast<double>(i) * period));
      if (lag > publisher_lag_.load(std::memory_order_relaxed)) publisher_lag_.store(lag, std::memory_order_relaxed);
      for (; i < due_n; ++i) {
        payload = options_.pub_prefix;
        payload += std::to_string(t0 + static_cast<uint64_t>(static_cast<double>(i) * period));
        payload += options_.pub_suffix;
        AppendFrame(&buf, reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
      }
      if (!WriteAll(fd, buf.data(), buf.size())) break;
      published_.store(i, std::memory_order_relaxed);
      const uint64_t next = t0 + static_cast<uint64_t>(static_cast<double>(i) * period);
      timespec ts{static_cast<time_t>(next / 1'000'000'000ull), static_cast<long>(next % 1'000'000'000ull)};
      if (next > MonotonicNs()) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    }
  } catch (const std::bad_alloc&) {
    publisher_failed_.store(true, std::memory_order_release);
  }
  published_.store(i, std::memory_order_relaxed);
  done();
  // Held open until Stop: closing it would be a close the server may report as an error.
  while (!stop_.load(std::memory_order_acquire)) usleep(5000);
  publisher_fd_.store(-1, std::memory_order_release);
  close(fd);
}

void LoadClient::Go(uint32_t duration_ms, uint32_t warmup_ms) noexcept {
  if (Stats().phase != LoadPhase::kReady) return;
  const uint64_t now = MonotonicNs();
  record_from_ns_.store(now + uint64_t{warmup_ms} * 1'000'000, std::memory_order_relaxed);
  deadline_ns_.store(now + uint64_t{duration_ms} * 1'000'000, std::memory_order_release);
  go_ns_.store(now, std::memory_order_release);
  for (auto& w : workers_) w->reactor->Wake();
}

void LoadClient::Stop() noexcept {
  stop_.store(true, std::memory_order_release);
  // A publisher blocked in write (the server stopped reading) returns from it.
  const int fd = publisher_fd_.load(std::memory_order_acquire);
  if (fd >= 0) shutdown(fd, SHUT_RDWR);
  for (auto& w : workers_) w->reactor->Wake();
}

LoadStats LoadClient::Stats() const noexcept {
  LoadStats s;
  for (const auto& w : workers_) {
    s.upgraded += w->upgraded.load(std::memory_order_relaxed);
    s.failed += w->failed.load(std::memory_order_relaxed);
    s.closed += w->closed.load(std::memory_order_relaxed);
    s.sent += w->sent.load(std::memory_order_relaxed);
    s.received += w->received.load(std::memory_order_relaxed);
    s.recorded += w->recorded.load(std::memory_order_relaxed);
    s.bytes_in += w->bytes_in.load(std::memory_order_relaxed);
  }
  if (has_publisher()) {
    s.sent += published_.load(std::memory_order_relaxed);
    s.publisher_lag_ns = publisher_lag_.load(std::memory_order_relaxed);
    if (publisher_failed_.load(std::memory_order_acquire)) s.failed += 1;
  }
  const bool settled = settled_.load(std::memory_order_acquire) >= options_.connections &&
                       (!has_publisher() || publisher_ready_.load(std::memory_order_acquire));
  const uint64_t deadline = DeadlineNs();
  if (!settled) s.phase = LoadPhase::kConnecting;
  else if (deadline == 0) s.phase = LoadPhase::kReady;
  else {
    const uint64_t now = MonotonicNs();
    bool done = now >= deadline;
    if (options_.mode == LoadMode::kIngest)
      done = done && workers_done_.load(std::memory_order_acquire) >= workers_.size();
    if (options_.mode == LoadMode::kLatency)
      done = publisher_done_.load(std::memory_order_acquire) && now >= deadline + kGraceNs;
    s.phase = done ? LoadPhase::kDone : LoadPhase::kRunning;
  }
  return s;
}

}  // namespace myelin::io
