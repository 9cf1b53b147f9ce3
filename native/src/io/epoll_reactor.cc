// The epoll backend: level-triggered readiness over one epoll fd, reads into one
// scratch buffer the reactor owns, writes tried at once and finished on EPOLLOUT.
//
// Invariants:
//   - slots_[fd] describes fd; a slot's gen changes whenever it is taken or freed, and
//     every epoll registration and deferred callback carries the gen it was made for,
//     so an event for a closed fd whose number was reused is recognised and dropped.
//   - Callbacks run only from Poll: what Send/Close/... learn at once (a write that
//     finished, a close) is queued in deferred_ and dispatched by the next Poll.
//   - After Close(fd, token), the only callback for token is its OnClosed.
//   - EMFILE/ENFILE on accept: the listener stops being watched for kAcceptBackoffMs and
//     is watched again afterwards; pending connections wait in the kernel's backlog
//     instead of being accepted and dropped. Poll's wait is capped by the backoff so a
//     Poll(-1) still resumes the listener.
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <new>
#include <vector>

#include "io/epoll_reactor.h"

namespace myelin::io {
namespace {

constexpr int kMaxEvents = 256;
constexpr int kAcceptsPerTurn = 64;  // per listener per Poll: fairness against reads
constexpr int kReadsPerTurn = 4;     // per socket per Poll: one busy peer cannot starve
constexpr int kAcceptBackoffMs = 100;
constexpr uint64_t kWakeKey = ~uint64_t{0};

enum : uint8_t { kFree = 0, kConn = 1, kListener = 2 };
enum : uint8_t {
  kReading = 1 << 0,
  kHung = 1 << 1,      // EOF or error seen on read: no more OnData
  kSending = 1 << 2,   // a Send is partly written and waits for EPOLLOUT
  kInEpoll = 1 << 3,
  kErrSeen = 1 << 4,   // EPOLLERR/EPOLLHUP seen: level-triggered, they repeat forever
  kBackoff = 1 << 5,   // listener: not watched until the backoff ends
};

struct Slot {
  uint64_t token = 0;
  const uint8_t* send_ptr = nullptr;
  std::size_t send_left = 0;
  uint32_t gen = 0;
  uint32_t mask = 0;  // events registered with epoll
  uint8_t kind = kFree;
  uint8_t flags = 0;
};

enum class Ev : uint8_t { kSent, kHangup, kClosed };
struct Deferred {
  Ev ev;
  int fd;
  uint32_t gen;
  uint64_t token;
  int err;
};

uint64_t NowMs() noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

class EpollReactor final : public Reactor {
 public:
  EpollReactor(Handler* h, uint32_t buffer_bytes) noexcept : handler_(h), buffer_bytes_(buffer_bytes) {}

  ~EpollReactor() override {
    for (std::size_t fd = 0; fd < slots_.size(); ++fd) {
      if (slots_[fd].kind == kConn) close(static_cast<int>(fd));
    }
    if (ep_ >= 0) close(ep_);
    if (efd_ >= 0) close(efd_);
    delete[] scratch_;
  }

  Status Init() noexcept {
    scratch_ = new (std::nothrow) uint8_t[buffer_bytes_];
    if (!scratch_) return Status::kOutOfMemory;
    try {
      deferred_.reserve(64);
      spare_.reserve(64);
    } catch (const std::bad_alloc&) {
      return Status::kOutOfMemory;
    }
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) return Status::kResourceExhausted;
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) return Status::kResourceExhausted;
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = kWakeKey;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, efd_, &e) != 0) return Status::kResourceExhausted;
    return Status::kOk;
  }

  Backend backend() const noexcept override { return Backend::kEpoll; }

  Status AddListener(int fd, uint64_t token) noexcept override {
    Status st = Take(fd, kListener, token);
    if (!Ok(st)) return st;
    return Register(fd);
  }

  void RemoveListener(int fd) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size() || slots_[fd].kind != kListener) {
      return;
    }
    if (slots_[fd].flags & kInEpoll) epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    Free(fd);
  }

  Status Attach(int fd, uint64_t token) noexcept override {
    Status st = Take(fd, kConn, token);
    if (!Ok(st)) return st;
    slots_[fd].flags = kReading;
    return Register(fd);
  }

  void PauseReading(int fd, uint64_t token) noexcept override {
    if (!Live(fd, token)) return;
    slots_[fd].flags &= static_cast<uint8_t>(~kReading);
    UpdateInterest(fd);
  }

  void ResumeReading(int fd, uint64_t token) noexcept override {
    if (!Live(fd, token)) return;
    slots_[fd].flags |= kReading;
    UpdateInterest(fd);
  }

  void Send(int fd, uint64_t token, const uint8_t* data, std::size_t len) noexcept override {
    if (!Live(fd, token)) return;
    Slot& s = slots_[fd];
    // A second Send while one is in flight breaks the contract; it is refused with
    // EBUSY rather than silently interleaved or dropped.
    if (s.flags & kSending) return Defer(Ev::kSent, fd, EBUSY);
    while (len > 0) {
      const ssize_t w = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        data += w;
        len -= static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        s.send_ptr = data;
        s.send_left = len;
        s.flags |= kSending;
        UpdateInterest(fd);
        return;
      }
      return Defer(Ev::kSent, fd, w < 0 ? errno : EIO);
    }
    Defer(Ev::kSent, fd, 0);
  }

  void Close(int fd, uint64_t token) noexcept override {
    if (!Live(fd, token)) return;
    if (slots_[fd].flags & kInEpoll) epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    Defer(Ev::kClosed, fd, 0);  // after Free the gen no longer matches: kClosed skips the check
    Free(fd);
  }

  int Poll(int timeout_ms) noexcept override {
    int n = Dispatch();
    int t = (n > 0 || !deferred_.empty()) ? 0 : timeout_ms;
    if (!backoff_.empty()) {
      const uint64_t now = NowMs();
      const int left = backoff_until_ > now ? static_cast<int>(backoff_until_ - now) : 0;
      if (t < 0 || t > left) t = left;
    }
    // EINTR is retried with the time left (SA_RESTART-like): io_uring task work in the
    // same process interrupts waits with no signal for us to act on.
    const int t0 = t;
    const uint64_t start = t0 > 0 ? NowMs() : 0;
    int k;
    while ((k = epoll_wait(ep_, events_, kMaxEvents, t)) < 0) {
      if (errno != EINTR) return -1;
      if (t0 > 0) {
        const uint64_t spent = NowMs() - start;
        t = spent >= static_cast<uint64_t>(t0) ? 0 : t0 - static_cast<int>(spent);
      }
    }
    for (int i = 0; i < k; ++i) {
      const uint64_t key = events_[i].data.u64;
      if (key == kWakeKey) {
        n += OnWakeEvent();
        continue;
      }
      const int fd = static_cast<int>(key & 0xffffffffu);
      const uint32_t gen = static_cast<uint32_t>(key >> 32);
      if (static_cast<std::size_t>(fd) >= slots_.size() || slots_[fd].gen != gen) continue;
      if (slots_[fd].kind == kListener) {
        n += AcceptSome(fd);
      } else if (slots_[fd].kind == kConn) {
        n += ConnEvent(fd, events_[i].events);
      }
    }
    if (!backoff_.empty() && NowMs() >= backoff_until_) EndBackoff();
    n += Dispatch();
    return n;
  }

  void Wake() noexcept override {
    // Coalesced: only the Wake that finds no wake pending touches the eventfd. Poll
    // clears the flag after draining the eventfd and before OnWake, so a Wake that
    // finds it set is covered by that OnWake.
    if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
      const uint64_t one = 1;
      ssize_t r;
      do {
        r = write(efd_, &one, sizeof one);
      } while (r < 0 && errno == EINTR);
    }
  }

 private:
  bool Live(int fd, uint64_t token) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < slots_.size() && slots_[fd].kind == kConn &&
           slots_[fd].token == token;
  }

  Status Take(int fd, uint8_t kind, uint64_t token) noexcept {
    if (fd < 0) return Status::kInvalidArgument;
    if (static_cast<std::size_t>(fd) >= slots_.size()) {
      try {
        slots_.resize(static_cast<std::size_t>(fd) + 1 + slots_.size() / 2);
      } catch (const std::bad_alloc&) {
        return Status::kOutOfMemory;
      }
    }
    Slot& s = slots_[fd];
    if (s.kind != kFree) return Status::kInvalidArgument;
    s.kind = kind;
    s.token = token;
    s.flags = 0;
    s.mask = 0;
    s.send_ptr = nullptr;
    s.send_left = 0;
    ++s.gen;
    return Status::kOk;
  }

  void Free(int fd) noexcept {
    Slot& s = slots_[fd];
    s.kind = kFree;
    s.flags = 0;
    s.send_ptr = nullptr;
    s.send_left = 0;
    ++s.gen;
  }

  Status Register(int fd) noexcept {
    Slot& s = slots_[fd];
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = (uint64_t{s.gen} << 32) | static_cast<uint32_t>(fd);
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) != 0) {
      const int err = errno;
      Free(fd);
      return (err == ENOMEM || err == ENOSPC) ? Status::kResourceExhausted
                                              : Status::kInvalidArgument;
    }
    s.mask = EPOLLIN;
    s.flags |= kInEpoll;
    return Status::kOk;
  }

  // Brings the epoll registration in line with what the socket waits for. A socket
  // that waits for nothing after EPOLLERR/EPOLLHUP leaves epoll, since those two cannot
  // be masked and would make every Poll return at once; ResumeReading or a Send that
  // needs EPOLLOUT registers it again.
  void UpdateInterest(int fd) noexcept {
    Slot& s = slots_[fd];
    uint32_t want = 0;
    if ((s.flags & kReading) && !(s.flags & kHung)) want |= EPOLLIN;
    if (s.flags & kSending) want |= EPOLLOUT;
    if (want == 0 && (s.flags & kErrSeen)) {
      if (s.flags & kInEpoll) epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
      s.flags &= static_cast<uint8_t>(~kInEpoll);
      s.mask = 0;
      return;
    }
    if ((s.flags & kInEpoll) && want == s.mask) return;
    epoll_event e{};
    e.events = want;
    e.data.u64 = (uint64_t{s.gen} << 32) | static_cast<uint32_t>(fd);
    const int op = (s.flags & kInEpoll) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ep_, op, fd, &e) == 0) {
      s.flags |= kInEpoll;
      s.mask = want;
    }
  }

  void Defer(Ev ev, int fd, int err) noexcept {
    try {
      deferred_.push_back(Deferred{ev, fd, slots_[fd].gen, slots_[fd].token, err});
    } catch (const std::bad_alloc&) {
      // Nothing sane to report through; a lost OnClosed leaks the handler's state for
      // one socket, which beats taking the process down.
    }
  }

  int Dispatch() noexcept {
    if (deferred_.empty()) return 0;
    spare_.swap(deferred_);  // callbacks may defer more: those wait for the next round
    int n = 0;
    for (const Deferred& d : spare_) {
      if (d.ev == Ev::kClosed) {
        handler_->OnClosed(d.token);
        ++n;
        continue;
      }
      const Slot& s = slots_[d.fd];
      if (s.kind != kConn || s.gen != d.gen) continue;  // closed since: only OnClosed
      if (d.ev == Ev::kSent) handler_->OnSent(d.token, d.err);
      else handler_->OnHangup(d.token, d.err);
      ++n;
    }
    spare_.clear();
    return n;
  }

  int OnWakeEvent() noexcept {
    uint64_t v;
    while (read(efd_, &v, sizeof v) < 0 && errno == EINTR) {
    }
    wake_pending_.store(false, std::memory_order_release);
    handler_->OnWake();
    return 1;
  }

  int AcceptSome(int fd) noexcept {
    const uint32_t gen = slots_[fd].gen;
    const uint64_t token = slots_[fd].token;
    int n = 0;
    for (int i = 0; i < kAcceptsPerTurn; ++i) {
      const int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c >= 0) {
        handler_->OnAccept(token, c);
        ++n;
        if (slots_[fd].gen != gen) break;  // removed from inside OnAccept
        continue;
      }
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      // The connection died in the backlog or was refused by a filter: take the next.
      if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM) continue;
      // Out of fds or memory, or a listener gone bad: back off rather than spin on a
      // level-triggered readiness that accept cannot consume.
      StartBackoff(fd);
      break;
    }
    return n;
  }

  void StartBackoff(int fd) noexcept {
    Slot& s = slots_[fd];
    try {
      backoff_.push_back(fd);
    } catch (const std::bad_alloc&) {
      return;  // stays watched: a busy loop until memory returns, not a lost listener
    }
    epoll_event e{};
    e.data.u64 = (uint64_t{s.gen} << 32) | static_cast<uint32_t>(fd);
    epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e);
    s.mask = 0;
    s.flags |= kBackoff;
    if (backoff_.size() == 1) backoff_until_ = NowMs() + kAcceptBackoffMs;
  }

  void EndBackoff() noexcept {
    for (int fd : backoff_) {
      Slot& s = slots_[fd];
      if (s.kind != kListener || !(s.flags & kBackoff)) continue;  // removed meanwhile
      s.flags &= static_cast<uint8_t>(~kBackoff);
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.u64 = (uint64_t{s.gen} << 32) | static_cast<uint32_t>(fd);
      if (epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e) == 0) s.mask = EPOLLIN;
    }
    backoff_.clear();
  }

  int ConnEvent(int fd, uint32_t events) noexcept {
    const uint32_t gen = slots_[fd].gen;
    int n = 0;
    if (events & (EPOLLERR | EPOLLHUP)) slots_[fd].flags |= kErrSeen;
    if ((slots_[fd].flags & kSending) && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      n += ContinueSend(fd);
    }
    if (slots_[fd].gen != gen) return n;
    const uint8_t f = slots_[fd].flags;
    if ((f & kReading) && !(f & kHung) && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
      n += ReadSome(fd);
    }
    if (slots_[fd].gen == gen) UpdateInterest(fd);
    return n;
  }

  int ContinueSend(int fd) noexcept {
    Slot& s = slots_[fd];
    while (s.send_left > 0) {
      const ssize_t w = send(fd, s.send_ptr, s.send_left, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        s.send_ptr += w;
        s.send_left -= static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
      return FinishSend(fd, w < 0 ? errno : EIO);
    }
    return FinishSend(fd, 0);
  }

  int FinishSend(int fd, int err) noexcept {
    Slot& s = slots_[fd];
    s.flags &= static_cast<uint8_t>(~kSending);
    s.send_ptr = nullptr;
    s.send_left = 0;
    UpdateInterest(fd);  // before the callback: it may Send again
    handler_->OnSent(s.token, err);
    return 1;
  }

  int ReadSome(int fd) noexcept {
    const uint32_t gen = slots_[fd].gen;
    const uint64_t token = slots_[fd].token;
    int n = 0;
    for (int i = 0; i < kReadsPerTurn; ++i) {
      const ssize_t r = recv(fd, scratch_, buffer_bytes_, 0);
      if (r > 0) {
        handler_->OnData(token, scratch_, static_cast<std::size_t>(r));
        ++n;
        // Closed or paused from inside OnData; a short read means the socket is drained.
        if (slots_[fd].gen != gen || !(slots_[fd].flags & kReading)) break;
        if (static_cast<std::size_t>(r) < buffer_bytes_) break;
        continue;
      }
      int err = 0;
      if (r < 0) {
        err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) break;
      }
      slots_[fd].flags |= kHung;
      handler_->OnHangup(token, err);
      ++n;
      break;
    }
    return n;
  }

  Handler* handler_;
  const uint32_t buffer_bytes_;
  uint8_t* scratch_ = nullptr;
  int ep_ = -1;
  int efd_ = -1;
  std::atomic<bool> wake_pending_{false};
  std::vector<Slot> slots_;
  std::vector<Deferred> deferred_;
  std::vector<Deferred> spare_;
  std::vector<int> backoff_;
  uint64_t backoff_until_ = 0;
  epoll_event events_[kMaxEvents];
};

}  // namespace

Status CreateEpollReactor(const ReactorOptions& options, Handler* handler,
                          std::unique_ptr<Reactor>* out) noexcept {
  std::unique_ptr<EpollReactor> r(new (std::nothrow) EpollReactor(handler, options.buffer_bytes));
  if (!r) return Status::kOutOfMemory;
  const Status st = r->Init();
  if (!Ok(st)) return st;
  *out = std::move(r);
  return Status::kOk;
}

}  // namespace myelin::io
