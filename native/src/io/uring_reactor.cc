// The io_uring backend, over the raw syscalls: multishot accept, multishot recv into a
// provided-buffer ring, one send SQE at a time per socket, a read SQE on an eventfd for
// Wake, and cancellation by fd.
//
// Invariants:
//   - slots_[fd] describes fd. user_data = op kind | slot gen (24 bits) | fd, and the
//     slot's gen changes whenever it is taken or freed, so a CQE of an earlier use of
//     the same fd number is recognised and dropped (its buffer returned, an accepted fd
//     closed).
//   - A connection's fd is closed only when none of its ops is in flight (s.inflight
//     counts recv, send and cancel SQEs until their last CQE). Until then the number
//     cannot be reused, cancel-by-fd cannot hit a stranger, and OnClosed follows the
//     close: the kernel then holds nothing of the socket's, the Send data included.
//   - SQEs are prepared by any method and submitted by Poll's one io_uring_enter
//     (earlier only when the SQ is full). What could not get an SQE waits in todo_.
//   - Provided buffers return to the ring right after OnData. A recv that ended with
//     ENOBUFS is re-armed from todo_ after the turn's CQEs (and so their buffers) are
//     done, never in a loop. Data that arrives after PauseReading, in a turn after it
//     (a race the cancel loses), is held with its buffer and delivered after
//     ResumeReading, so nothing is lost and nothing arrives while paused.
//   - Setup prefers SINGLE_ISSUER|DEFER_TASKRUN: completions are posted only inside our
//     own io_uring_enter, so no CQE appears while callbacks run. The ring starts
//     disabled and is enabled by the first thread that submits, so Create may run on
//     another thread than the one that polls.
//   - EMFILE/ENFILE on accept: the multishot accept ends and is re-armed after
//     kAcceptBackoffMs, leaving pending connections in the backlog meanwhile.
#include <errno.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <new>
#include <vector>

#include "io/uring_reactor.h"

namespace myelin::io {
namespace {

constexpr int kAcceptBackoffMs = 100;
constexpr uint16_t kBufGroup = 0;
constexpr std::size_t kMaxSendChunk = 1u << 30;

enum Op : uint8_t {
  kOpWake = 1,
  kOpAccept = 2,
  kOpListenerCancel = 3,
  kOpRecv = 4,
  kOpSend = 5,
  kOpCancel = 6,  // a connection's cancel: counted in its inflight
  kOpDrain = 7,   // the destructor's cancel-everything
  kOpProvide = 8, // UringBuffers::kLegacy: buffers handed (back) to the kernel
};

constexpr uint64_t Ud(Op op, int fd, uint32_t gen) noexcept {
  return (uint64_t{op} << 56) | (uint64_t{gen & 0xffffffu} << 32) | static_cast<uint32_t>(fd);
}

enum : uint8_t { kFree = 0, kConn = 1, kListener = 2 };
enum : uint16_t {
  kReading = 1 << 0,
  kHung = 1 << 1,           // EOF or a read error reported: no more OnData
  kClosing = 1 << 2,        // Close called; fd closes when inflight reaches 0
  kRecvArmed = 1 << 3,      // the multishot recv (or accept for a listener) is in flight
  kRecvCancelSent = 1 << 4,
  kSendActive = 1 << 5,     // a Send not yet reported by OnSent
  kSendInflight = 1 << 6,
  kCloseCancelSent = 1 << 7,
  kInTodo = 1 << 8,
  kHeld = 1 << 9,           // held_ has data of this socket
  kStarved = 1 << 10,       // recv ended with ENOBUFS: re-arm after the turn
  kBackoff = 1 << 11,       // listener: accept re-armed when the backoff ends
};

struct Slot {
  uint64_t token = 0;
  const uint8_t* send_ptr = nullptr;
  std::size_t send_left = 0;
  uint32_t gen = 0;
  uint16_t inflight = 0;
  uint16_t flags = 0;
  uint8_t kind = kFree;
};

enum class Ev : uint8_t { kSent, kClosed };
struct Deferred {
  Ev ev;
  int fd;
  uint32_t gen;
  uint64_t token;
  int err;
};

struct Held {
  int fd;
  uint32_t gen;
  uint16_t bid;
  uint32_t len;
};

uint64_t NowMs() noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

template <typename T>
T LoadAcquire(const T* p) noexcept {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <typename T>
void StoreRelease(T* p, T v) noexcept {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

class UringReactor final : public Reactor {
 public:
  UringReactor(Handler* h, const ReactorOptions& o) noexcept
      : handler_(h),
        buf_count_(o.buffer_count),
        buf_bytes_(o.buffer_bytes),
        legacy_(UringBufferMode() == UringBuffers::kLegacy) {}

  ~UringReactor() override {
    if (ring_fd_ >= 0) {
      Drain();
      close(ring_fd_);
    }
    for (std::size_t fd = 0; fd < slots_.size(); ++fd) {
      if (slots_[fd].kind == kConn) close(static_cast<int>(fd));
    }
    if (sq_ptr_ && sq_ptr_ != MAP_FAILED) munmap(sq_ptr_, sq_bytes_);
    if (cq_ptr_ && cq_ptr_ != MAP_FAILED && cq_ptr_ != sq_ptr_) munmap(cq_ptr_, cq_bytes_);
    if (sqes_ && sqes_ != MAP_FAILED) munmap(sqes_, sqes_bytes_);
    if (br_ && br_ != MAP_FAILED) munmap(br_, br_bytes_);
    if (bufs_ && bufs_ != MAP_FAILED) munmap(bufs_, bufs_bytes_);
    if (efd_ >= 0) close(efd_);
  }

  Status Init(uint32_t queue_depth) noexcept {
    try {
      deferred_.reserve(64);
      spare_.reserve(64);
      todo_.reserve(64);
      todo_spare_.reserve(64);
    } catch (const std::bad_alloc&) {
      return Status::kOutOfMemory;
    }
    Status st = SetupRing(queue_depth);
    if (!Ok(st)) return st;
    st = SetupBuffers();
    if (!Ok(st)) return st;
    // Blocking on purpose: io_uring answers EAGAIN instead of waiting on an O_NONBLOCK
    // file it reads with the read opcode. Wake never blocks on it (it writes 1 at most
    // once per OnWake).
    efd_ = eventfd(0, EFD_CLOEXEC);
    if (efd_ < 0) return Status::kResourceExhausted;
    ArmWake();
    return Status::kOk;
  }

  Backend backend() const noexcept override { return Backend::kIoUring; }

  Status AddListener(int fd, uint64_t token) noexcept override {
    Status st = Take(fd, kListener, token);
    if (!Ok(st)) return st;
    Sync(fd);
    return Status::kOk;
  }

  void RemoveListener(int fd) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size() || slots_[fd].kind != kListener) {
      return;
    }
    Slot& s = slots_[fd];
    if (s.flags & kRecvArmed) {
      // By user_data, not by fd: the caller may close the listener before the cancel is
      // submitted. The accept's last CQE then carries a stale gen and is dropped.
      if (io_uring_sqe* sqe = GetSqe()) {
        sqe->opcode = IORING_OP_ASYNC_CANCEL;
        sqe->fd = -1;
        sqe->addr = Ud(kOpAccept, fd, s.gen);
        sqe->user_data = Ud(kOpListenerCancel, fd, s.gen);
      }
    }
    Free(fd);
  }

  Status Attach(int fd, uint64_t token) noexcept override {
    Status st = Take(fd, kConn, token);
    if (!Ok(st)) return st;
    slots_[fd].flags = kReading;
    Sync(fd);
    return Status::kOk;
  }

  void PauseReading(int fd, uint64_t token) noexcept override {
    if (!Live(fd, token)) return;
    slots_[fd].flags &= static_cast<uint16_t>(~kReading);
    Sync(fd);
  }

  void ResumeReading(int fd, uint64_t token) noexcept override {
    if (!Live(fd, token)) return;
    slots_[fd].flags |= kReading;
    Sync(fd);
  }

  void Send(int fd, uint64_t token, const uint8_t* data, std::size_t len) noexcept override {
    if (!Live(fd, token)) return;
    Slot& s = slots_[fd];
    // A second Send while one is in flight breaks the contract; refused with EBUSY.
    if (s.flags & kSendActive) return Defer(Ev::kSent, fd, EBUSY);
    if (len == 0) return Defer(Ev::kSent, fd, 0);
    s.send_ptr = data;
    s.send_left = len;
    s.flags |= kSendActive;
    Sync(fd);
  }

  void Close(int fd, uint64_t token) noexcept override {
    if (!Live(fd, token)) return;
    slots_[fd].flags |= kClosing;
    slots_[fd].flags &= static_cast<uint16_t>(~kReading);
    Sync(fd);
  }

  int Poll(int timeout_ms) noexcept override {
    if (!EnsureEnabled()) return -1;
    // Internal completions (a cancel, a buffer handed back, a re-arm) make no callback,
    // and a wait can end in EINTR with no signal for us (the kernel's task work): keep
    // waiting until a callback is made or the time is up, like SA_RESTART.
    const uint64_t deadline = timeout_ms > 0 ? NowMs() + static_cast<uint64_t>(timeout_ms) : 0;
    int wait = timeout_ms;
    for (;;) {
      const int n = Turn(wait);
      if (n != 0 || timeout_ms == 0) return n;
      if (timeout_ms > 0) {
        const uint64_t now = NowMs();
        if (now >= deadline) return 0;
        wait = static_cast<int>(deadline - now);
      }
    }
  }

  void Wake() noexcept override {
    // Coalesced: only the Wake that finds no wake pending touches the eventfd. The wake
    // CQE means the read drained the counter; the flag is cleared after that and before
    // OnWake, so a Wake that finds it set is covered by that OnWake.
    if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
      const uint64_t one = 1;
      ssize_t r;
      do {
        r = write(efd_, &one, sizeof one);
      } while (r < 0 && errno == EINTR);
    }
  }

 private:
  // One submit-and-wait with the callbacks around it. -1: the ring failed.
  int Turn(int timeout_ms) noexcept {
    int n = Dispatch();
    if (!held_.empty()) n += DeliverHeld();
    if (!backoff_.empty() && NowMs() >= backoff_until_) EndBackoff();
    RunTodo();
    if (!wake_armed_) ArmWake();
    const bool ready = LoadAcquire(cq_ktail_) != *cq_khead_;
    int t = (n > 0 || !deferred_.empty() || ready) ? 0 : timeout_ms;
    if (!backoff_.empty()) {
      const uint64_t now = NowMs();
      const int left = backoff_until_ > now ? static_cast<int>(backoff_until_ - now) : 0;
      if (t < 0 || t > left) t = left;
    }
    if (!SubmitAndWait(t)) return -1;
    n += Reap();
    // With NODROP, CQEs that found the CQ full wait in the kernel until an enter with
    // GETEVENTS flushes them.
    for (int i = 0; i < 8 && (LoadAcquire(sq_kflags_) & IORING_SQ_CQ_OVERFLOW); ++i) {
      if (!SubmitAndWait(0)) return -1;
      n += Reap();
    }
    RunTodo();
    n += Dispatch();
    return n;
  }

  // ---- setup -------------------------------------------------------------------------

  Status SetupRing(uint32_t queue_depth) noexcept {
    // Most capable first; an older kernel answers EINVAL to a flag it does not know.
    const uint32_t kBase = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    const uint32_t attempts[] = {
        kBase | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
        kBase | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        kBase,
    };
    io_uring_params p;
    int err = EINVAL;
    for (uint32_t flags : attempts) {
      std::memset(&p, 0, sizeof p);
      p.flags = flags;
      p.cq_entries = queue_depth * 2;
      ring_fd_ = UringSetup(queue_depth, &p);
      if (ring_fd_ >= 0) break;
      err = errno;
      if (err != EINVAL) break;
    }
    if (ring_fd_ < 0) {
      return err == EINVAL ? Status::kUnsupported
             : err == EPERM ? Status::kPermissionDenied
                            : Status::kResourceExhausted;
    }
    enabled_ = !(p.flags & IORING_SETUP_R_DISABLED);

    sq_bytes_ = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
    cq_bytes_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    const bool single = p.features & IORING_FEAT_SINGLE_MMAP;
    if (single) sq_bytes_ = cq_bytes_ = (sq_bytes_ > cq_bytes_ ? sq_bytes_ : cq_bytes_);
    sq_ptr_ = mmap(nullptr, sq_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   ring_fd_, IORING_OFF_SQ_RING);
    if (sq_ptr_ == MAP_FAILED) return Status::kResourceExhausted;
    if (single) {
      cq_ptr_ = sq_ptr_;
    } else {
      cq_ptr_ = mmap(nullptr, cq_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                     ring_fd_, IORING_OFF_CQ_RING);
      if (cq_ptr_ == MAP_FAILED) return Status::kResourceExhausted;
    }
    sqes_bytes_ = p.sq_entries * sizeof(io_uring_sqe);
    sqes_ = static_cast<io_uring_sqe*>(mmap(nullptr, sqes_bytes_, PROT_READ | PROT_WRITE,
                                            MAP_SHARED | MAP_POPULATE, ring_fd_,
                                            IORING_OFF_SQES));
    if (sqes_ == MAP_FAILED) return Status::kResourceExhausted;

    auto* sq = static_cast<uint8_t*>(sq_ptr_);
    auto* cq = static_cast<uint8_t*>(cq_ptr_);
    sq_khead_ = reinterpret_cast<uint32_t*>(sq + p.sq_off.head);
    sq_ktail_ = reinterpret_cast<uint32_t*>(sq + p.sq_off.tail);
    sq_kflags_ = reinterpret_cast<uint32_t*>(sq + p.sq_off.flags);
    sq_mask_ = *reinterpret_cast<uint32_t*>(sq + p.sq_off.ring_mask);
    sq_entries_ = p.sq_entries;
    // SQEs are used in ring order, so the indirection array is the identity.
    auto* array = reinterpret_cast<uint32_t*>(sq + p.sq_off.array);
    for (uint32_t i = 0; i < sq_entries_; ++i) array[i] = i;
    sqe_tail_ = *sq_ktail_;
    cq_khead_ = reinterpret_cast<uint32_t*>(cq + p.cq_off.head);
    cq_ktail_ = reinterpret_cast<uint32_t*>(cq + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<uint32_t*>(cq + p.cq_off.ring_mask);
    cq_entries_ = p.cq_entries;
    cqes_ = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
    return Status::kOk;
  }

  Status SetupBuffers() noexcept {
    if (legacy_) {
      bufs_bytes_ = std::size_t{buf_count_} * buf_bytes_;
      bufs_ = static_cast<uint8_t*>(mmap(nullptr, bufs_bytes_, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      if (bufs_ == MAP_FAILED) return Status::kResourceExhausted;
      try {
        returns_.reserve(buf_count_);
      } catch (const std::bad_alloc&) {
        return Status::kOutOfMemory;
      }
      io_uring_sqe* sqe = GetSqe();
      if (!sqe) return Status::kResourceExhausted;
      sqe->opcode = IORING_OP_PROVIDE_BUFFERS;
      sqe->fd = static_cast<int>(buf_count_);
      sqe->addr = reinterpret_cast<uint64_t>(bufs_);
      sqe->len = buf_bytes_;
      sqe->off = 0;
      sqe->buf_group = kBufGroup;
      sqe->user_data = Ud(kOpProvide, 0, 0);
      return Status::kOk;
    }
    br_bytes_ = buf_count_ * sizeof(io_uring_buf);
    br_ = static_cast<io_uring_buf_ring*>(mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE,
                                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (br_ == MAP_FAILED) return Status::kResourceExhausted;
    bufs_bytes_ = std::size_t{buf_count_} * buf_bytes_;
    bufs_ = static_cast<uint8_t*>(mmap(nullptr, bufs_bytes_, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (bufs_ == MAP_FAILED) return Status::kResourceExhausted;
    io_uring_buf_reg reg;
    std::memset(&reg, 0, sizeof reg);
    reg.ring_addr = reinterpret_cast<uint64_t>(br_);
    reg.ring_entries = buf_count_;
    reg.bgid = kBufGroup;
    if (UringRegister(ring_fd_, IORING_REGISTER_PBUF_RING, &reg, 1) != 0) {
      return errno == ENOMEM ? Status::kResourceExhausted : Status::kUnsupported;
    }
    br_tail_ = 0;
    for (uint32_t i = 0; i < buf_count_; ++i) PutBuffer(static_cast<uint16_t>(i));
    PublishBuffers();
    return Status::kOk;
  }

  // The ring starts disabled when it is single-issuer: the thread that first submits
  // becomes its issuer.
  bool EnsureEnabled() noexcept {
    if (enabled_) return true;
    if (UringRegister(ring_fd_, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) != 0) return false;
    enabled_ = true;
    return true;
  }

  // ---- rings -------------------------------------------------------------------------

  void PutBuffer(uint16_t bid) noexcept {
    io_uring_buf* b = &br_->bufs[br_tail_ & (buf_count_ - 1)];
    b->addr = reinterpret_cast<uint64_t>(bufs_ + std::size_t{bid} * buf_bytes_);
    b->len = buf_bytes_;
    b->bid = bid;
    ++br_tail_;
  }
  void PublishBuffers() noexcept { StoreRelease(&br_->tail, br_tail_); }
  void ReturnBuffer(uint16_t bid) noexcept {
    if (legacy_) {
      // An SQE now, so it precedes any re-arm that expects the buffer back.
      if (!returns_.empty() || !ProvideOne(bid)) returns_.push_back(bid);  // reserved: no throw
      return;
    }
    PutBuffer(bid);
    PublishBuffers();
  }

  bool ProvideOne(uint16_t bid) noexcept {
    io_uring_sqe* sqe = GetSqe();
    if (!sqe) return false;
    sqe->opcode = IORING_OP_PROVIDE_BUFFERS;
    sqe->fd = 1;
    sqe->addr = reinterpret_cast<uint64_t>(bufs_ + std::size_t{bid} * buf_bytes_);
    sqe->len = buf_bytes_;
    sqe->off = bid;
    sqe->buf_group = kBufGroup;
    sqe->user_data = Ud(kOpProvide, 0, 0);
    return true;
  }

  void FlushReturns() noexcept {
    std::size_t done = 0;
    while (done < returns_.size() && ProvideOne(returns_[done])) ++done;
    returns_.erase(returns_.begin(), returns_.begin() + static_cast<std::ptrdiff_t>(done));
  }

  io_uring_sqe* GetSqe() noexcept {
    if (sqe_tail_ - LoadAcquire(sq_khead_) >= sq_entries_) {
      if (!EnsureEnabled()) return nullptr;
      Submit(0, 0, nullptr);
      if (sqe_tail_ - LoadAcquire(sq_khead_) >= sq_entries_) return nullptr;
    }
    io_uring_sqe* sqe = &sqes_[sqe_tail_ & sq_mask_];
    std::memset(sqe, 0, sizeof *sqe);
    ++sqe_tail_;
    ++ops_inflight_;
    return sqe;
  }

  // One io_uring_enter: submits every prepared SQE and, with GETEVENTS, runs deferred
  // completions and waits for min_complete of them (up to ts). False on an error that
  // retrying cannot fix.
  bool Submit(unsigned min_complete, unsigned flags, const __kernel_timespec* ts) noexcept {
    StoreRelease(sq_ktail_, sqe_tail_);
    const unsigned to_submit = sqe_tail_ - LoadAcquire(sq_khead_);
    io_uring_getevents_arg arg;
    const void* argp = nullptr;
    std::size_t argsz = 0;
    if (ts) {
      std::memset(&arg, 0, sizeof arg);
      arg.sigmask_sz = _NSIG / 8;
      arg.ts = reinterpret_cast<uint64_t>(ts);
      argp = &arg;
      argsz = sizeof arg;
      flags |= IORING_ENTER_EXT_ARG;
    }
    const int r = UringEnter(ring_fd_, to_submit, min_complete, flags, argp, argsz);
    if (r >= 0) return true;
    // Interrupted, timed out, or short of memory/CQ room for a moment: the next Poll
    // tries again.
    return errno == EINTR || errno == ETIME || errno == EAGAIN || errno == EBUSY;
  }

  bool SubmitAndWait(int timeout_ms) noexcept {
    if (timeout_ms == 0) return Submit(0, IORING_ENTER_GETEVENTS, nullptr);
    if (timeout_ms < 0) return Submit(1, IORING_ENTER_GETEVENTS, nullptr);
    __kernel_timespec ts;
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
    return Submit(1, IORING_ENTER_GETEVENTS, &ts);
  }

  int Reap() noexcept {
    int n = 0;
    uint32_t head = *cq_khead_;
    // Bounded: with COOP_TASKRUN the kernel may keep posting while callbacks run.
    for (uint32_t budget = cq_entries_; budget > 0; --budget) {
      if (head == LoadAcquire(cq_ktail_)) break;
      const io_uring_cqe c = cqes_[head & cq_mask_];
      ++head;
      StoreRelease(cq_khead_, head);
      n += Complete(c.user_data, c.res, c.flags);
    }
    return n;
  }

  // ---- slots -------------------------------------------------------------------------

  bool Live(int fd, uint64_t token) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < slots_.size() && slots_[fd].kind == kConn &&
           slots_[fd].token == token && !(slots_[fd].flags & kClosing);
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
    s.inflight = 0;
    s.send_ptr = nullptr;
    s.send_left = 0;
    s.gen = (s.gen + 1) & 0xffffffu;
    return Status::kOk;
  }

  void Free(int fd) noexcept {
    Slot& s = slots_[fd];
    s.kind = kFree;
    s.flags = 0;
    s.inflight = 0;
    s.send_ptr = nullptr;
    s.send_left = 0;
    s.gen = (s.gen + 1) & 0xffffffu;
  }

  void Todo(int fd) noexcept {
    Slot& s = slots_[fd];
    if (s.flags & kInTodo) return;
    try {
      todo_.push_back(fd);
      s.flags |= kInTodo;
    } catch (const std::bad_alloc&) {
    }
  }

  void RunTodo() noexcept {
    if (!returns_.empty()) FlushReturns();
    if (todo_.empty()) return;
    todo_spare_.swap(todo_);
    for (int fd : todo_spare_) {
      Slot& s = slots_[fd];
      s.flags &= static_cast<uint16_t>(~kInTodo);
      // Buffers were all returned during the turn (or are held, a handful at most).
      if (s.flags & kStarved) {
        if (held_.size() >= buf_count_) {  // every buffer held: wait for a Resume
          Todo(fd);
          continue;
        }
        s.flags &= static_cast<uint16_t>(~kStarved);
      }
      Sync(fd);
    }
    todo_spare_.clear();
  }

  // Issues whatever SQEs the slot's state calls for; what finds the SQ full waits in
  // todo_. Never calls the handler.
  void Sync(int fd) noexcept {
    Slot& s = slots_[fd];
    if (s.kind == kListener) {
      if (!(s.flags & (kRecvArmed | kBackoff))) {
        io_uring_sqe* sqe = GetSqe();
        if (!sqe) return Todo(fd);
        sqe->opcode = IORING_OP_ACCEPT;
        sqe->fd = fd;
        sqe->ioprio = IORING_ACCEPT_MULTISHOT;
        sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
        sqe->user_data = Ud(kOpAccept, fd, s.gen);
        s.flags |= kRecvArmed;
      }
      return;
    }
    if (s.kind != kConn) return;
    if (s.flags & kClosing) {
      if (s.inflight == 0) return Finish(fd);
      if (!(s.flags & kCloseCancelSent) && (s.flags & (kRecvArmed | kSendInflight))) {
        io_uring_sqe* sqe = GetSqe();
        if (!sqe) return Todo(fd);
        sqe->opcode = IORING_OP_ASYNC_CANCEL;
        sqe->fd = fd;
        sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
        sqe->user_data = Ud(kOpCancel, fd, s.gen);
        s.flags |= kCloseCancelSent;
        ++s.inflight;
      }
      return;
    }
    const bool want_read = (s.flags & kReading) && !(s.flags & (kHung | kStarved));
    if (want_read && !(s.flags & kRecvArmed)) {
      io_uring_sqe* sqe = GetSqe();
      if (!sqe) return Todo(fd);
      sqe->opcode = IORING_OP_RECV;
      sqe->fd = fd;
      sqe->ioprio = IORING_RECV_MULTISHOT;
      sqe->flags = IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBufGroup;
      sqe->user_data = Ud(kOpRecv, fd, s.gen);
      s.flags |= kRecvArmed;
      s.flags &= static_cast<uint16_t>(~kRecvCancelSent);
      ++s.inflight;
    } else if (!(s.flags & kReading) && (s.flags & kRecvArmed) && !(s.flags & kRecvCancelSent)) {
      io_uring_sqe* sqe = GetSqe();
      if (!sqe) return Todo(fd);
      sqe->opcode = IORING_OP_ASYNC_CANCEL;
      sqe->fd = -1;
      sqe->addr = Ud(kOpRecv, fd, s.gen);
      sqe->user_data = Ud(kOpCancel, fd, s.gen);
      s.flags |= kRecvCancelSent;
      ++s.inflight;
    }
    if ((s.flags & kSendActive) && !(s.flags & kSendInflight)) {
      io_uring_sqe* sqe = GetSqe();
      if (!sqe) return Todo(fd);
      sqe->opcode = IORING_OP_SEND;
      sqe->fd = fd;
      sqe->addr = reinterpret_cast<uint64_t>(s.send_ptr);
      sqe->len = static_cast<uint32_t>(s.send_left < kMaxSendChunk ? s.send_left : kMaxSendChunk);
      sqe->msg_flags = MSG_NOSIGNAL;
      sqe->user_data = Ud(kOpSend, fd, s.gen);
      s.flags |= kSendInflight;
      ++s.inflight;
    }
  }

  // A closing socket with nothing in flight: close the fd, give back what data it still
  // held, and let the handler know.
  void Finish(int fd) noexcept {
    if (slots_[fd].flags & kHeld) DropHeld(fd);
    close(fd);
    Defer(Ev::kClosed, fd, 0);
    Free(fd);
  }

  void Defer(Ev ev, int fd, int err) noexcept {
    try {
      deferred_.push_back(Deferred{ev, fd, slots_[fd].gen, slots_[fd].token, err});
    } catch (const std::bad_alloc&) {
    }
  }

  int Dispatch() noexcept {
    if (deferred_.empty()) return 0;
    spare_.swap(deferred_);
    int n = 0;
    for (const Deferred& d : spare_) {
      if (d.ev == Ev::kClosed) {
        handler_->OnClosed(d.token);
        ++n;
        continue;
      }
      const Slot& s = slots_[d.fd];
      if (s.kind != kConn || s.gen != d.gen || (s.flags & kClosing)) continue;
      handler_->OnSent(d.token, d.err);
      ++n;
    }
    spare_.clear();
    return n;
  }

  // ---- held data (see the invariants) -------------------------------------------------

  void Hold(int fd, uint16_t bid, uint32_t len) noexcept {
    try {
      held_.push_back(Held{fd, slots_[fd].gen, bid, len});
      slots_[fd].flags |= kHeld;
    } catch (const std::bad_alloc&) {
      // Bytes would be lost, so the stream is broken: say so (Poll is on the stack).
      ReturnBuffer(bid);
      slots_[fd].flags |= kHung;
      handler_->OnHangup(slots_[fd].token, ENOMEM);
    }
  }

  int DeliverHeld() noexcept {
    int n = 0;
    std::size_t keep = 0;
    for (std::size_t i = 0; i < held_.size(); ++i) {
      const Held h = held_[i];
      const Slot& s = slots_[h.fd];
      const bool mine = s.kind == kConn && s.gen == h.gen && !(s.flags & kClosing);
      if (!mine) {
        ReturnBuffer(h.bid);
        continue;
      }
      // Keep order: once one entry of a socket waits, so do its later ones.
      bool blocked = !(s.flags & kReading);
      for (std::size_t j = 0; j < keep && !blocked; ++j) blocked = held_[j].fd == h.fd;
      if (blocked) {
        held_[keep++] = h;
        continue;
      }
      handler_->OnData(s.token, bufs_ + std::size_t{h.bid} * buf_bytes_, h.len);
      ReturnBuffer(h.bid);
      ++n;
    }
    held_.resize(keep);
    for (std::size_t fd = 0; fd < slots_.size(); ++fd) {
      if (slots_[fd].flags & kHeld) slots_[fd].flags &= static_cast<uint16_t>(~kHeld);
    }
    for (const Held& h : held_) slots_[h.fd].flags |= kHeld;
    return n;
  }

  void DropHeld(int fd) noexcept {
    std::size_t keep = 0;
    for (std::size_t i = 0; i < held_.size(); ++i) {
      if (held_[i].fd == fd) ReturnBuffer(held_[i].bid);
      else held_[keep++] = held_[i];
    }
    held_.resize(keep);
    slots_[fd].flags &= static_cast<uint16_t>(~kHeld);
  }

  // ---- completions ---------------------------------------------------------------------

  int Complete(uint64_t ud, int32_t res, uint32_t flags) noexcept {
    const Op op = static_cast<Op>(ud >> 56);
    const int fd = static_cast<int>(ud & 0xffffffffu);
    const uint32_t gen = static_cast<uint32_t>(ud >> 32) & 0xffffffu;
    const bool more = flags & IORING_CQE_F_MORE;
    if (!more) --ops_inflight_;
    const bool has_buf = flags & IORING_CQE_F_BUFFER;
    const uint16_t bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);

    if (op == kOpWake) return WakeDone();
    if (op == kOpDrain || op == kOpListenerCancel || op == kOpProvide) return 0;
    const bool known = fd >= 0 && static_cast<std::size_t>(fd) < slots_.size() &&
                       slots_[fd].gen == gen && slots_[fd].kind != kFree;
    if (op == kOpAccept) {
      if (!known || slots_[fd].kind != kListener) {
        if (res >= 0) close(res);  // the listener was removed: nobody wants it
        return 0;
      }
      return AcceptDone(fd, res, more);
    }
    if (!known || slots_[fd].kind != kConn) {
      if (has_buf) ReturnBuffer(bid);
      return 0;
    }
    if (!more) --slots_[fd].inflight;
    switch (op) {
      case kOpRecv:
        return RecvDone(fd, res, more, has_buf, bid);
      case kOpSend:
        return SendDone(fd, res);
      case kOpCancel:
        // A cancel that found its target running (not just armed) cannot stop it; on a
        // closing socket, shutting it down makes the op finish by itself.
        if (res == -EALREADY && (slots_[fd].flags & kClosing)) shutdown(fd, SHUT_RDWR);
        Sync(fd);
        return 0;
      default:
        if (has_buf) ReturnBuffer(bid);
        return 0;
    }
  }

  int WakeDone() noexcept {
    wake_armed_ = false;
    if (draining_) return 0;
    wake_pending_.store(false, std::memory_order_release);
    ArmWake();
    handler_->OnWake();
    return 1;
  }

  void ArmWake() noexcept {
    if (wake_armed_) return;
    io_uring_sqe* sqe = GetSqe();
    if (!sqe) return;  // SQ full: Poll tries again before it waits
    sqe->opcode = IORING_OP_READ;
    sqe->fd = efd_;
    sqe->addr = reinterpret_cast<uint64_t>(&wake_buf_);
    sqe->len = sizeof wake_buf_;
    sqe->off = ~uint64_t{0};
    sqe->user_data = Ud(kOpWake, 0, 0);
    wake_armed_ = true;
  }

  int AcceptDone(int fd, int32_t res, bool more) noexcept {
    int n = 0;
    if (!more) slots_[fd].flags &= static_cast<uint16_t>(~kRecvArmed);
    const uint32_t gen = slots_[fd].gen;
    if (res >= 0) {
      handler_->OnAccept(slots_[fd].token, res);
      n = 1;
    } else if (res != -ECANCELED && res != -EINTR && res != -ECONNABORTED && !more) {
      StartBackoff(fd);  // out of fds or memory, or a broken listener: no hot re-arm
    }
    if (!more && slots_[fd].gen == gen && slots_[fd].kind == kListener) Sync(fd);
    return n;
  }

  void StartBackoff(int fd) noexcept {
    try {
      backoff_.push_back(fd);
    } catch (const std::bad_alloc&) {
      return;
    }
    slots_[fd].flags |= kBackoff;
    if (backoff_.size() == 1) backoff_until_ = NowMs() + kAcceptBackoffMs;
  }

  void EndBackoff() noexcept {
    for (int fd : backoff_) {
      Slot& s = slots_[fd];
      if (s.kind != kListener || !(s.flags & kBackoff)) continue;
      s.flags &= static_cast<uint16_t>(~kBackoff);
      Sync(fd);
    }
    backoff_.clear();
  }

  int RecvDone(int fd, int32_t res, bool more, bool has_buf, uint16_t bid) noexcept {
    int n = 0;
    if (!more) {
      slots_[fd].flags &= static_cast<uint16_t>(~(kRecvArmed | kRecvCancelSent));
    }
    const uint32_t gen = slots_[fd].gen;
    if (res > 0 && has_buf) {
      const uint16_t f = slots_[fd].flags;
      if (f & (kClosing | kHung)) {
        ReturnBuffer(bid);
      } else if (!(f & kReading) || (f & kHeld)) {
        Hold(fd, bid, static_cast<uint32_t>(res));
      } else {
        handler_->OnData(slots_[fd].token, bufs_ + std::size_t{bid} * buf_bytes_,
                         static_cast<std::size_t>(res));
        ReturnBuffer(bid);
        n = 1;
      }
    } else {
      if (has_buf) ReturnBuffer(bid);
      if (res == -ENOBUFS) {
        slots_[fd].flags |= kStarved;
        Todo(fd);
        return 0;
      }
      if (res != -ECANCELED && res != -EINTR && !(slots_[fd].flags & (kHung | kClosing))) {
        // res == 0: the peer's FIN; res < 0: the socket failed.
        slots_[fd].flags |= kHung;
        handler_->OnHangup(slots_[fd].token, res < 0 ? -res : 0);
        n = 1;
      }
    }
    if (!more && slots_[fd].gen == gen) Sync(fd);  // re-arm, or finish a close
    return n;
  }

  int SendDone(int fd, int32_t res) noexcept {
    Slot& s = slots_[fd];
    s.flags &= static_cast<uint16_t>(~kSendInflight);
    if (s.flags & kClosing) {
      Sync(fd);
      return 0;
    }
    if (res > 0 && static_cast<std::size_t>(res) < s.send_left) {
      s.send_ptr += res;
      s.send_left -= static_cast<std::size_t>(res);
      Sync(fd);
      return 0;
    }
    if (res == -EINTR || res == -EAGAIN) {  // nothing written: try again
      Sync(fd);
      return 0;
    }
    s.flags &= static_cast<uint16_t>(~kSendActive);
    s.send_ptr = nullptr;
    s.send_left = 0;
    const uint64_t token = s.token;
    const int err = res >= 0 ? 0 : -res;
    Sync(fd);  // before the callback, which may Send again or Close
    handler_->OnSent(token, err);
    return 1;
  }

  // Before the ring closes: cancel everything and collect the completions, so the
  // kernel writes into no buffer after it is unmapped. Only the issuer thread may enter;
  // elsewhere closing the ring does the cancelling.
  void Drain() noexcept {
    draining_ = true;
    if (!enabled_) return;
    if (io_uring_sqe* sqe = GetSqe()) {
      sqe->opcode = IORING_OP_ASYNC_CANCEL;
      sqe->fd = -1;
      sqe->cancel_flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
      sqe->user_data = Ud(kOpDrain, 0, 0);
    }
    for (int i = 0; i < 20 && ops_inflight_ > 0; ++i) {
      __kernel_timespec ts{0, 10 * 1000 * 1000};
      StoreRelease(sq_ktail_, sqe_tail_);
      io_uring_getevents_arg arg;
      std::memset(&arg, 0, sizeof arg);
      arg.sigmask_sz = _NSIG / 8;
      arg.ts = reinterpret_cast<uint64_t>(&ts);
      const unsigned to_submit = sqe_tail_ - LoadAcquire(sq_khead_);
      if (UringEnter(ring_fd_, to_submit, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg,
                     sizeof arg) < 0 &&
          errno != ETIME && errno != EINTR) {
        return;
      }
      uint32_t head = *cq_khead_;
      while (head != LoadAcquire(cq_ktail_)) {
        const io_uring_cqe c = cqes_[head & cq_mask_];
        ++head;
        if (!(c.flags & IORING_CQE_F_MORE)) --ops_inflight_;
        const Op op = static_cast<Op>(c.user_data >> 56);
        if (op == kOpAccept && c.res >= 0) close(c.res);
      }
      StoreRelease(cq_khead_, head);
    }
  }

  Handler* handler_;
  const uint32_t buf_count_;
  const uint32_t buf_bytes_;
  const bool legacy_;            // UringBuffers::kLegacy
  std::vector<uint16_t> returns_;  // kLegacy: buffers waiting for an SQE to go back
  int ring_fd_ = -1;
  int efd_ = -1;
  bool enabled_ = false;
  bool draining_ = false;
  bool wake_armed_ = false;
  std::atomic<bool> wake_pending_{false};
  uint64_t wake_buf_ = 0;
  uint64_t ops_inflight_ = 0;  // SQEs whose last CQE has not come: the destructor waits

  void* sq_ptr_ = nullptr;
  void* cq_ptr_ = nullptr;
  std::size_t sq_bytes_ = 0, cq_bytes_ = 0, sqes_bytes_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  uint32_t* sq_khead_ = nullptr;
  uint32_t* sq_ktail_ = nullptr;
  uint32_t* sq_kflags_ = nullptr;
  uint32_t sq_mask_ = 0, sq_entries_ = 0;
  uint32_t sqe_tail_ = 0;  // ours; published to *sq_ktail_ at submit
  uint32_t* cq_khead_ = nullptr;
  uint32_t* cq_ktail_ = nullptr;
  uint32_t cq_mask_ = 0, cq_entries_ = 0;
  io_uring_cqe* cqes_ = nullptr;

  io_uring_buf_ring* br_ = nullptr;
  std::size_t br_bytes_ = 0;
  uint16_t br_tail_ = 0;
  uint8_t* bufs_ = nullptr;
  std::size_t bufs_bytes_ = 0;

  std::vector<Slot> slots_;
  std::vector<Deferred> deferred_, spare_;
  std::vector<int> todo_, todo_spare_;
  std::vector<Held> held_;
  std::vector<int> backoff_;
  uint64_t backoff_until_ = 0;
};

}  // namespace

Status CreateUringReactor(const ReactorOptions& options, Handler* handler,
                          std::unique_ptr<Reactor>* out) noexcept {
  std::unique_ptr<UringReactor> r(new (std::nothrow) UringReactor(handler, options));
  if (!r) return Status::kOutOfMemory;
  const Status st = r->Init(options.queue_depth);
  if (!Ok(st)) return st;
  *out = std::move(r);
  return Status::kOk;
}

}  // namespace myelin::io
