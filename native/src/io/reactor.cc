// Backend names, the io_uring capability probe, and Reactor::Create's dispatch.
#include "io/reactor.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "io/epoll_reactor.h"
#include "io/uring_reactor.h"

namespace myelin::io {

const char* BackendName(Backend b) noexcept {
  return b == Backend::kIoUring ? "io_uring" : "epoll";
}

namespace {

// Multishot recv (the one feature without a probe bit of its own) arrived in Linux 6.0,
// after PBUF_RING and multishot accept (5.19); the release string is the only witness.
bool KernelAtLeast(int want_major, int want_minor) noexcept {
  utsname u;
  if (uname(&u) != 0) return false;
  char* end = nullptr;
  const long major = std::strtol(u.release, &end, 10);
  if (end == u.release || *end != '.') return false;
  const long minor = std::strtol(end + 1, nullptr, 10);
  return major > want_major || (major == want_major && minor >= want_minor);
}

bool OpSupported(const io_uring_probe* probe, unsigned op) noexcept {
  return op <= probe->last_op && (probe->ops[op].flags & IO_URING_OP_SUPPORTED) != 0;
}

// On the probe ring fd: one byte sent over a socketpair must come back through a
// multishot recv in a provided buffer, with the multishot still armed. ring: from a
// registered buffer ring (bgid 1), else from IORING_OP_PROVIDE_BUFFERS (bgid 2).
bool MultishotRecvWorks(int fd, const io_uring_params& p, bool ring) noexcept {
  const std::size_t sq_bytes = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
  const std::size_t cq_bytes = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  const std::size_t ring_bytes = sq_bytes > cq_bytes ? sq_bytes : cq_bytes;
  const std::size_t sqes_bytes = p.sq_entries * sizeof(io_uring_sqe);
  const long page = sysconf(_SC_PAGESIZE);
  const std::size_t pg = static_cast<std::size_t>(page);
  // FEAT_SINGLE_MMAP is older than anything that passes the version check.
  void* rings = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                     IORING_OFF_SQ_RING);
  void* sqes = mmap(nullptr, sqes_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                    IORING_OFF_SQES);
  void* mem = mmap(nullptr, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int sv[2] = {-1, -1};
  bool ok = rings != MAP_FAILED && sqes != MAP_FAILED && mem != MAP_FAILED &&
            (p.features & IORING_FEAT_SINGLE_MMAP) &&
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0;
  const uint16_t bgid = ring ? 1 : 2;
  auto* r = static_cast<uint8_t*>(rings);
  auto* sqe_arr = static_cast<io_uring_sqe*>(sqes);
  auto* array = ok ? reinterpret_cast<uint32_t*>(r + p.sq_off.array) : nullptr;
  auto* sq_tail = ok ? reinterpret_cast<uint32_t*>(r + p.sq_off.tail) : nullptr;
  uint32_t tail = ok ? *sq_tail : 0;
  auto push = [&](const io_uring_sqe& e) {
    const uint32_t i = tail & (p.sq_entries - 1);
    sqe_arr[i] = e;
    array[i] = i;
    ++tail;
    __atomic_store_n(sq_tail, tail, __ATOMIC_RELEASE);
  };
  uint8_t* data = static_cast<uint8_t*>(mem) + pg;
  if (ok && ring) {
    auto* br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg;
    std::memset(&reg, 0, sizeof reg);
    reg.ring_addr = reinterpret_cast<uint64_t>(br);
    reg.ring_entries = 1;
    reg.bgid = bgid;
    ok = UringRegister(fd, IORING_REGISTER_PBUF_RING, &reg, 1) == 0;
    if (ok) {
      br->bufs[0].addr = reinterpret_cast<uint64_t>(data);
      br->bufs[0].len = 64;
      br->bufs[0].bid = 0;
      __atomic_store_n(&br->tail, uint16_t{1}, __ATOMIC_RELEASE);
    }
  } else if (ok) {
    io_uring_sqe e;
    std::memset(&e, 0, sizeof e);
    e.opcode = IORING_OP_PROVIDE_BUFFERS;
    e.fd = 1;
    e.addr = reinterpret_cast<uint64_t>(data);
    e.len = 64;
    e.buf_group = bgid;
    e.user_data = 1;
    push(e);
  }
  if (ok) {
    io_uring_sqe e;
    std::memset(&e, 0, sizeof e);
    e.opcode = IORING_OP_RECV;
    e.fd = sv[0];
    e.ioprio = IORING_RECV_MULTISHOT;
    e.flags = IOSQE_BUFFER_SELECT;
    e.buf_group = bgid;
    e.user_data = 2;
    push(e);
    const char byte = 'x';
    ok = write(sv[1], &byte, 1) == 1;
  }
  bool got = false;
  for (int round = 0; ok && !got && round < 2; ++round) {
    __kernel_timespec ts{0, 100 * 1000 * 1000};
    io_uring_getevents_arg arg;
    std::memset(&arg, 0, sizeof arg);
    arg.sigmask_sz = _NSIG / 8;
    arg.ts = reinterpret_cast<uint64_t>(&ts);
    const unsigned to_submit =
        tail - __atomic_load_n(reinterpret_cast<uint32_t*>(r + p.sq_off.head), __ATOMIC_ACQUIRE);
    UringEnter(fd, to_submit, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
    auto* cq_head = reinterpret_cast<uint32_t*>(r + p.cq_off.head);
    auto* cq_tail = reinterpret_cast<uint32_t*>(r + p.cq_off.tail);
    auto* cqes = reinterpret_cast<io_uring_cqe*>(r + p.cq_off.cqes);
    uint32_t head = *cq_head;
    while (head != __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) {
      const io_uring_cqe c = cqes[head & (p.cq_entries - 1)];
      ++head;
      if (c.user_data != 2) continue;
      got = true;
      ok = c.res == 1 && (c.flags & IORING_CQE_F_BUFFER) && (c.flags & IORING_CQE_F_MORE) &&
           data[0] == 'x';
    }
    __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
  }
  ok = ok && got;
  // Leaves the probe ring with an armed recv: closing the ring fd cancels it.
  if (sv[0] >= 0) close(sv[0]);
  if (sv[1] >= 0) close(sv[1]);
  if (mem != MAP_FAILED) munmap(mem, 2 * pg);
  if (sqes != MAP_FAILED) munmap(sqes, sqes_bytes);
  if (rings != MAP_FAILED) munmap(rings, ring_bytes);
  return ok;
}

// A throwaway ring: io_uring_setup answers (not disabled by sysctl, seccomp or an old
// kernel), the opcodes the backend issues are known, the wait takes a timeout
// (EXT_ARG), and a multishot recv gets a provided buffer (see MultishotRecvWorks).
UringBuffers ProbeIoUring() noexcept {
  if (!KernelAtLeast(6, 0)) return UringBuffers::kNone;
  io_uring_params p;
  std::memset(&p, 0, sizeof p);
  const int fd = UringSetup(8, &p);
  if (fd < 0) return UringBuffers::kNone;
  bool ok = (p.features & IORING_FEAT_EXT_ARG) && (p.features & IORING_FEAT_NODROP);

  constexpr unsigned kProbeOps = 256;
  const std::size_t probe_bytes = sizeof(io_uring_probe) + kProbeOps * sizeof(io_uring_probe_op);
  auto* probe = static_cast<io_uring_probe*>(std::calloc(1, probe_bytes));
  if (!probe) ok = false;
  if (ok && UringRegister(fd, IORING_REGISTER_PROBE, probe, kProbeOps) != 0) ok = false;
  if (ok) {
    for (unsigned op : {IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND, IORING_OP_READ,
                        IORING_OP_ASYNC_CANCEL}) {
      if (!OpSupported(probe, op)) ok = false;
    }
  }
  std::free(probe);

  if (!ok) {
    close(fd);
    return UringBuffers::kNone;
  }
  UringBuffers mode = UringBuffers::kNone;
  if (MultishotRecvWorks(fd, p, /*ring=*/true)) mode = UringBuffers::kRing;
  else if (MultishotRecvWorks(fd, p, /*ring=*/false)) mode = UringBuffers::kLegacy;
  close(fd);
  return mode;
}

bool PowerOfTwo(uint32_t v) noexcept { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

UringBuffers UringBufferMode() noexcept {
  // A function-local static: initialised once, thread-safe, and the probe cannot throw.
  static const UringBuffers mode = ProbeIoUring();
  return mode;
}

bool IoUringUsable() noexcept { return UringBufferMode() != UringBuffers::kNone; }

Status Reactor::Create(const ReactorOptions& options, Handler* handler,
                       std::unique_ptr<Reactor>* out) noexcept {
  if (!handler || !out) return Status::kInvalidArgument;
  // Checked for both backends so one options object means the same on either. Limits:
  // the kernel's (32768 SQ entries, 32768 entries in a buffer ring) and a buffer size
  // that a u32 length and one mapping hold comfortably.
  if (options.queue_depth == 0 || options.queue_depth > 32768) return Status::kInvalidArgument;
  if (!PowerOfTwo(options.buffer_count) || options.buffer_count > 32768) {
    return Status::kInvalidArgument;
  }
  if (options.buffer_bytes == 0 || options.buffer_bytes > (1u << 24)) {
    return Status::kInvalidArgument;
  }
  switch (options.backend) {
    case Backend::kEpoll:
      return CreateEpollReactor(options, handler, out);
    case Backend::kIoUring:
      if (!IoUringUsable()) return Status::kUnsupported;
      return CreateUringReactor(options, handler, out);
  }
  return Status::kInvalidArgument;
}

}  // namespace myelin::io
