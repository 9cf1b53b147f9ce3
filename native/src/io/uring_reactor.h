// The io_uring backend of Reactor (reactor.h), over the raw syscalls (no liburing).
// Private to native/src/io: reactor.cc probes with the wrappers below and calls
// CreateUringReactor once IoUringUsable() said yes and the options are validated.
#pragma once

#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>

#include "io/reactor.h"

namespace myelin::io {

// The raw syscalls. Each returns what the syscall returns (-1 and errno on failure).
inline int UringSetup(unsigned entries, io_uring_params* p) noexcept {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}
inline int UringEnter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                      const void* arg, std::size_t argsz) noexcept {
  return static_cast<int>(
      syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz));
}
inline int UringRegister(int fd, unsigned opcode, const void* arg, unsigned nr_args) noexcept {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, opcode, arg, nr_args));
}

// How received data gets its buffers. kRing is the design: a provided-buffer ring
// (IORING_REGISTER_PBUF_RING) that the reactor refills with a store. kLegacy uses
// IORING_OP_PROVIDE_BUFFERS (an SQE per refill); it exists because some kernels accept
// the ring registration yet never select from it (seen on 6.18.44 in a Firecracker VM:
// every recv ends ENOBUFS), and the functional probe falls back to it there.
enum class UringBuffers : uint8_t { kNone, kRing, kLegacy };
// Probed once (with IoUringUsable), cached. kNone: io_uring is not usable.
UringBuffers UringBufferMode() noexcept;

// options are already validated; handler is not null; IoUringUsable() is true.
Status CreateUringReactor(const ReactorOptions& options, Handler* handler,
                          std::unique_ptr<Reactor>* out) noexcept;

}  // namespace myelin::io
