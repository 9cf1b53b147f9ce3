// Slab: a size-class allocator for event records, so the hot path never calls malloc.
//
// Memory shape
//   chunk (chunk_bytes, aligned to chunk_bytes, so ChunkOf(p) = p & ~(chunk_bytes-1))
//   +---------------------------+--------+--------+-----+--------+------+
//   | header (kSlabChunkHeader) | block0 | block1 | ... | blockN | tail |
//   +---------------------------+--------+--------+-----+--------+------+
//   Every chunk serves one size class; every class size is a multiple of kCacheLine and
//   the header is too, so every block starts on a cache line.
//
// Threads
//   Each (thread, Slab) pair that allocates or frees owns a thread cache; each chunk
//   belongs to exactly one cache.
//   - Allocate pops from the owning cache's current chunk: no atomics, no locks.
//   - Free by the chunk's owner pushes onto that chunk's local free list: no atomics.
//   - Free by any other thread collects the block in the freeing thread's cache; every 64
//     frees (or on FlushRemoteFrees) they go onto the owning cache's remote-free list (an
//     MPSC stack) with one CAS, packed 8 blocks to a node. The owner takes the whole list
//     with one exchange when its local lists run dry, reading one line per 8 blocks.
//   - A thread that exits drains its cache, returns fully free chunks to the slab pool
//     and leaves the cache orphaned with its partly used chunks; the next thread that
//     needs a cache for this slab adopts it. Blocks of an orphaned cache stay freeable
//     from any thread (they go to its remote list until someone adopts it).
//   The slab-wide mutex is taken only to move chunks between a cache and the pool, to
//   attach or release a cache, and by Stats(): once per chunk_bytes of churn at most.
//   At max_bytes, Allocate first takes back the empty chunks of its own cache and of the
//   orphans; what other live threads hold (one empty chunk per class, blocks waiting in
//   their batches) is out of reach, so the cap can answer nullptr a little early.
//
// Cost (native/bench/slab_bench.cc, AMD EPYC 2 vCPU shared, g++ 12 -O2): 4.9 ns per
// alloc+free pair on one thread (glibc malloc 11.7); 13.2 ns CPU per pair when one thread
// allocates and another frees (glibc 28).
//
// Ownership: the Slab owns every chunk; blocks are views into them and die with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/cache_line.h"
#include "common/status.h"

namespace myelin {

inline constexpr std::size_t kSlabMaxSizeClasses = 16;
// Bytes reserved at the start of each chunk for its header (two cache lines: one read by
// every freeing thread, one written by the owner, so they do not false-share).
inline constexpr std::size_t kSlabChunkHeader = 2 * kCacheLine;

struct SlabOptions {
  // Block sizes in bytes: strictly ascending, each a non-zero multiple of kCacheLine, at
  // most kSlabMaxSizeClasses of them. Empty means 64,128,256,512,1024,2048,4096. Read
  // only during Create; the span need not outlive it.
  std::span<const uint32_t> class_sizes{};
  // Power of two, >= kSlabChunkHeader + the largest class, <= 1 GiB.
  std::size_t chunk_bytes = 64 * 1024;
  // Cap on bytes reserved for chunks; 0 = unbounded. Otherwise >= chunk_bytes.
  std::size_t max_bytes = 0;
};

struct SlabStats {
  std::size_t chunks = 0;          // chunks reserved (held by caches or pooled)
  std::size_t free_chunks = 0;     // fully free chunks in the slab pool
  std::size_t bytes_reserved = 0;  // chunks * chunk_bytes
  // Blocks handed out and not yet returned to their owner. Approximate: blocks freed by
  // another thread count until the owner drains its remote list.
  std::size_t blocks_in_use = 0;
  std::size_t thread_caches = 0;  // caches ever created (attached or orphaned)
};

namespace slab_internal {
struct Core;
}  // namespace slab_internal

class Slab {
 public:
  // kInvalidArgument for options outside the ranges above; kOutOfMemory.
  static Status Create(const SlabOptions& options, std::unique_ptr<Slab>* out) noexcept;

  // Releases every chunk, including blocks still allocated. Precondition: no thread is
  // inside Allocate/Free on this slab, and none will call them again. Threads that used
  // it may still be alive, and may exit concurrently with this destructor: their
  // thread-exit hook synchronises on the slab's mutex and skips a destroyed slab.
  ~Slab();
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;

  // A block of ClassSizeFor(bytes) bytes, kCacheLine-aligned; bytes == 0 gets the
  // smallest class. nullptr when bytes exceeds the largest class, when max_bytes is
  // reached, on out of memory, or when called from a thread that is already running its
  // thread-exit destructors.
  void* Allocate(std::size_t bytes) noexcept;
  // p must come from Allocate on this slab and not have been freed; nullptr is ignored.
  // Any thread may free any block. A thread's first call attaches a cache for it, as
  // Allocate does: frees of other threads' blocks are batched there (see below).
  void Free(void* p) noexcept;

  // A thread's frees of blocks owned by other threads wait in its cache, at most 63 per
  // slab, and go to their owners in one push per 64, or when this thread allocates past
  // its local blocks, or exits. Call this before the thread goes idle for long so the
  // owners can reuse those blocks now. Cheap when nothing waits.
  void FlushRemoteFrees() noexcept;

  // Block size Allocate(bytes) would return; 0 when bytes exceeds the largest class.
  std::size_t ClassSizeFor(std::size_t bytes) const noexcept;
  std::size_t largest_class() const noexcept { return max_class_bytes_; }
  std::size_t chunk_bytes() const noexcept { return chunk_mask_ ? ~chunk_mask_ + 1 : 0; }

  // Takes the slab mutex; safe from any thread, concurrently with Allocate/Free.
  SlabStats Stats() const noexcept;

 private:
  Slab() = default;

  // Hot configuration copied out of core_ so Allocate/Free touch one object.
  slab_internal::Core* core_ = nullptr;  // owned; shared with thread-exit hooks (refcount)
  const uint8_t* class_of_ = nullptr;    // class index by ceil(bytes / kCacheLine); in core_
  std::size_t max_class_bytes_ = 0;
  uintptr_t chunk_mask_ = 0;  // ~(chunk_bytes - 1)
};

}  // namespace myelin
