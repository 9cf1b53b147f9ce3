// LoadClient: the WebSocket load generator behind `myelin bench gateway`, built from the
// project's own reactor and framing so that it ships in the addon and costs the server
// under test little: frames are built and masked once, up front, and written in large
// batches; replies are read by one MessageReader (client side) per connection.
//
// Modes (one per client):
//   kIngest   every connection writes the same pre-masked batch (`batch` copies of one
//             `pub` frame) again as soon as the previous write finished, until the run's
//             deadline. `sent` counts frames whose write completed.
//   kIdle     connections upgrade and then stay silent (server memory per connection).
//   kLatency  every connection subscribes (sends `sub_frame` once); one more connection,
//             on its own thread with a blocking socket, publishes open loop at `rate`
//             per second: frame i is due at t0 + i / rate and carries that due time (ns,
//             CLOCK_MONOTONIC) as `pub_prefix <due> pub_suffix`. Subscribers find the
//             first `"t":` in each received text message and record now - due in the
//             histogram, so a late send or a queue anywhere shows (no coordinated
//             omission). Records start after the warm-up.
//
// Threads: `threads` reactor threads share the connections round-robin; Start() is
// called on none of them: the caller runs Run(i) on thread i (and RunPublisher on one
// more in kLatency mode), so the binding owns thread creation. Every counter is an
// atomic the caller may read at any time.
//
// Phases: kConnecting -> kReady (every connection upgraded or failed) -> Go() ->
// kRunning -> kDone (deadline passed, in-flight writes finished, plus a 300 ms grace
// for deliveries in kLatency mode). Stop() ends the threads in any phase.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "io/reactor.h"

namespace myelin {
class Histogram;
}

namespace myelin::io {

enum class LoadMode : uint8_t { kIngest, kIdle, kLatency };
enum class LoadPhase : uint8_t { kConnecting, kReady, kRunning, kDone };

struct LoadOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path = "/ws";
  LoadMode mode = LoadMode::kIngest;
  Backend backend = Backend::kEpoll;
  uint32_t connections = 100;
  uint32_t threads = 1;
  uint32_t batch = 64;        // kIngest: frames per write
  std::string pub_frame;      // kIngest: the text payload of one frame (unmasked JSON)
  std::string sub_frame;      // kLatency: the text payload each subscriber sends once
  std::string pub_prefix;     // kLatency: publisher frame = prefix + due-ns + suffix
  std::string pub_suffix;
  double rate = 1000;         // kLatency: publishes per second
};

struct LoadStats {
  LoadPhase phase = LoadPhase::kConnecting;
  uint64_t upgraded = 0;      // connections that completed the handshake
  uint64_t failed = 0;        // connections that could not connect or upgrade
  uint64_t closed = 0;        // upgraded connections the server closed
  uint64_t sent = 0;          // frames written (kIngest) or published (kLatency)
  uint64_t received = 0;      // text messages received
  uint64_t recorded = 0;      // latency samples recorded (after the warm-up)
  uint64_t bytes_in = 0;
  uint64_t publisher_lag_ns = 0;  // kLatency: worst (now - due) when a frame was written
};

class LoadClient {
 public:
  // kInvalidArgument for bad options (no connections, no frame for the mode, a bad
  // host); kOutOfMemory.
  static Status Create(const LoadOptions& options, std::unique_ptr<LoadClient>* out) noexcept;
  ~LoadClient();

  uint32_t threads() const noexcept { return static_cast<uint32_t>(workers_.size()); }
  bool has_publisher() const noexcept { return options_.mode == LoadMode::kLatency; }

  // Thread bodies; each returns after Stop() (or on an unrecoverable reactor error).
  void Run(uint32_t thread) noexcept;
  void RunPublisher() noexcept;

  // Any thread: starts the load phase for duration_ms; latency samples start after
  // warmup_ms. Ignored unless the phase is kReady.
  void Go(uint32_t duration_ms, uint32_t warmup_ms) noexcept;
  void Stop() noexcept;

  LoadStats Stats() const noexcept;
  // The latency histogram (ns); null outside kLatency mode.
  const Histogram* histogram() const noexcept { return hist_.get(); }

  struct Worker;

 private:
  LoadClient() = default;
  friend struct Worker;
  uint64_t DeadlineNs() const noexcept { return deadline_ns_.load(std::memory_order_acquire); }

  LoadOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::shared_ptr<Histogram> hist_;
  std::vector<uint8_t> batch_;      // kIngest: `batch` masked frames back to back
  std::vector<uint8_t> sub_;        // kLatency: the masked sub frame
  std::string upgrade_;             // the HTTP upgrade request
  uint32_t addr_ = 0;               // IPv4, network order
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> go_ns_{0};        // 0 until Go()
  std::atomic<uint64_t> deadline_ns_{0};  // 0 until Go()
  std::atomic<uint64_t> record_from_ns_{0};
  std::atomic<uint32_t> settled_{0};      // connections upgraded or failed
  std::atomic<uint32_t> workers_done_{0}; // workers whose run phase has finished
  std::atomic<bool> publisher_ready_{false};
  std::atomic<bool> publisher_done_{false};
  std::atomic<bool> publisher_failed_{false};
  std::atomic<int> publisher_fd_{-1};      // for Stop's shutdown of a blocked write
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> publisher_lag_{0};
};

// CLOCK_MONOTONIC in nanoseconds: the clock of the due times carried in kLatency frames.
uint64_t MonotonicNs() noexcept;

}  // namespace myelin::io
