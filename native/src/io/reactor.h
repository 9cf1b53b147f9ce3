// Reactor: one I/O thread's event loop over non-blocking sockets, with two backends
// behind one completion-style interface:
//   - epoll (level-triggered readiness; reads go into one per-reactor scratch buffer,
//     writes are tried at once and finished on EPOLLOUT);
//   - io_uring through the raw syscalls (no liburing): multishot accept, multishot
//     recv into a provided-buffer ring (IORING_REGISTER_PBUF_RING), send SQEs, an
//     eventfd for Wake, cancellation by fd.
// Either way a connection owns no read buffer while idle: data arrives in memory the
// reactor owns and lends to Handler::OnData for the duration of the call.
//
// Threading: one thread calls every method except Wake, which any thread may call.
// Handler callbacks run only inside Poll, never inside another Reactor method, so the
// handler may call Send/Close/etc. from a callback without re-entrancy.
//
// Tokens are the handler's: a u64 it chooses per socket (a slot and a generation) and
// gets back in every callback for that socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/status.h"

namespace myelin::io {

enum class Backend : uint8_t { kEpoll, kIoUring };

const char* BackendName(Backend b) noexcept;  // "epoll" or "io_uring"

// Whether this kernel and process allow the io_uring features the backend needs
// (setup, provided-buffer rings, multishot accept and recv). Probed once, cached.
bool IoUringUsable() noexcept;

class Handler {
 public:
  virtual ~Handler() = default;
  // The listener registered with `listener_token` accepted a connection. fd is
  // non-blocking and close-on-exec; the handler Attach()es it or closes it itself.
  virtual void OnAccept(uint64_t listener_token, int fd) noexcept = 0;
  // Bytes arrived. data is owned by the reactor, writable (the WebSocket reader unmasks
  // in place), and valid only during this call: copy what must outlive it.
  virtual void OnData(uint64_t token, uint8_t* data, std::size_t len) noexcept = 0;
  // The peer closed its side (err == 0) or the socket failed (err = errno). No more
  // OnData follows for this token; the handler calls Close when it is done with it.
  virtual void OnHangup(uint64_t token, int err) noexcept = 0;
  // A Send finished: every byte written (err == 0), or failed (err = errno).
  virtual void OnSent(uint64_t token, int err) noexcept = 0;
  // Close(fd, token) has finished: the kernel holds no buffer of this socket any more,
  // so the handler may now free what it gave to Send. Exactly once per Close.
  virtual void OnClosed(uint64_t token) noexcept = 0;
  // Wake() was called since the last OnWake (calls coalesce).
  virtual void OnWake() noexcept = 0;
};

struct ReactorOptions {
  Backend backend = Backend::kEpoll;
  uint32_t queue_depth = 4096;     // io_uring SQ entries (CQ is twice that)
  uint32_t buffer_count = 512;     // io_uring provided buffers (power of two)
  uint32_t buffer_bytes = 16384;   // bytes per provided buffer / the epoll scratch buffer
};

class Reactor {
 public:
  // kUnsupported when io_uring is asked for and unusable; kResourceExhausted when the
  // kernel refuses memory, fds or rings; kInvalidArgument for bad options.
  static Status Create(const ReactorOptions& options, Handler* handler,
                       std::unique_ptr<Reactor>* out) noexcept;
  virtual ~Reactor() = default;

  virtual Backend backend() const noexcept = 0;

  // fd is bound, listening and non-blocking. Accepts until RemoveListener.
  virtual Status AddListener(int fd, uint64_t token) noexcept = 0;
  // Stops accepting on fd (the caller closes it after the next Poll).
  virtual void RemoveListener(int fd) noexcept = 0;

  // Starts reading a connected non-blocking socket.
  virtual Status Attach(int fd, uint64_t token) noexcept = 0;
  // Stops and restarts reading (backpressure). Data already received may still arrive
  // in the same Poll turn after PauseReading; none after that turn.
  virtual void PauseReading(int fd, uint64_t token) noexcept = 0;
  virtual void ResumeReading(int fd, uint64_t token) noexcept = 0;

  // Writes data[0, len) completely (partial writes are continued), then OnSent. data
  // must stay valid and unchanged until OnSent or OnClosed. At most one Send in flight
  // per socket: the handler coalesces what it has to write meanwhile.
  virtual void Send(int fd, uint64_t token, const uint8_t* data, std::size_t len) noexcept = 0;

  // Cancels reads and any Send, closes fd, then (possibly in a later Poll) OnClosed.
  virtual void Close(int fd, uint64_t token) noexcept = 0;

  // Waits up to timeout_ms (-1: no limit, 0: do not block) for events and dispatches
  // them. Returns the number of callbacks made, or -1 on an unrecoverable error.
  virtual int Poll(int timeout_ms) noexcept = 0;

  // Any thread: makes a blocked or the next Poll return after calling OnWake.
  virtual void Wake() noexcept = 0;
};

}  // namespace myelin::io
