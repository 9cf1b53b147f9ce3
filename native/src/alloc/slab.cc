#include "alloc/slab.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>

// Slow paths stay out of line so the fast paths compile to leaf functions with no
// register saves (inlined, AllocateSlow made Allocate push six registers every call).
#if defined(__GNUC__)
#define MYELIN_SLAB_NOINLINE __attribute__((noinline))
#define MYELIN_SLAB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define MYELIN_SLAB_NOINLINE
#define MYELIN_SLAB_UNLIKELY(x) (x)
#endif

namespace myelin {
namespace slab_internal {

struct ThreadCache;

// What a free block holds. On a chunk's local list only `next` is used. On a remote list
// the block is a node that also carries up to kNodeItems more freed blocks, so the owner
// reads one line per 8 blocks when it drains, not a dependent miss per block (the items
// are only written, never read). One type for both so the compiler sees the aliasing.
inline constexpr uint32_t kNodeItems = 7;
struct FreeBlock {
  FreeBlock* next;
  FreeBlock* items[kNodeItems];  // remote nodes only; null-terminated when fewer
};
static_assert(sizeof(FreeBlock) == kCacheLine, "every block holds a node");

// Where a chunk sits. Every chunk held by a cache is in exactly one of current (one per
// class), the avail list or the full list; a pooled chunk is in Core::pool.
enum class ChunkState : uint8_t {
  kPooled,   // fully free, in Core::pool, not bound to a class
  kCurrent,  // the class's allocation chunk
  kAvail,    // has at least one block on local_free
  kFull,     // local_free empty and never-used space exhausted; remote frees may be pending
};

struct Chunk {
  // Line 0: written by the owning cache when it takes the chunk, before any block escapes,
  // and unchanged until every block is back (used == 0). Read by every freeing thread.
  alignas(kCacheLine) ThreadCache* cache = nullptr;
  uint32_t class_index = 0;
  uint32_t block_size = 0;
  Chunk* all_next = nullptr;  // Core::all_chunks; set once under Core::mu

  // Line 1: owner-only, except `used`, which Stats() reads without the owner's help.
  alignas(kCacheLine) FreeBlock* local_free = nullptr;
  uint32_t bump = 0;  // offset of the first never-used block
  uint32_t end = 0;   // offset past the last block
  // Blocks handed out and not returned to the owner. One writer (the owner), so updates
  // are a relaxed load and store, never a locked RMW.
  std::atomic<uint32_t> used{0};
  ChunkState state = ChunkState::kPooled;
  Chunk* prev = nullptr;  // links in the owner's avail/full list; `next` also for the pool
  Chunk* next = nullptr;
};
static_assert(sizeof(Chunk) == kSlabChunkHeader, "chunk header is the reserved two lines");

struct ClassCache {
  Chunk* current = nullptr;
  Chunk* avail = nullptr;  // doubly linked
  Chunk* full = nullptr;   // doubly linked
  // Avail chunks with used == 0. One is kept so a class that oscillates around a chunk
  // boundary does not bounce a chunk through the pool (mutex + re-carve) every cycle.
  uint32_t empty_avail = 0;
};
inline constexpr uint32_t kKeepEmptyPerClass = 1;

// Remote frees wait in the freeing thread's cache and go out 64 at a time, packed into
// nodes. Measured with native/bench/slab_bench.cc, slab.cross_thread (AMD EPYC, 2 vCPU
// shared): one CAS per free 17.3 ns CPU per pair; batched as a list 15.1; as nodes 13.2.
inline constexpr uint32_t kRemoteBatch = 64;

struct ThreadCache {
  // Any thread pushes (CAS); only the owner takes, and always the whole list (exchange),
  // so there is no ABA. Own line: remote freers write it, the owner's state must not share.
  alignas(kCacheLine) std::atomic<FreeBlock*> remote_head{nullptr};

  // Owner-only below. Ownership moves only under Core::mu (attach, orphan, adopt).
  alignas(kCacheLine) Core* core = nullptr;
  ThreadCache* all_next = nullptr;     // Core::all_caches, under Core::mu
  ThreadCache* orphan_next = nullptr;  // Core::orphans, under Core::mu
  ClassCache cls[kSlabMaxSizeClasses];
  // This thread's frees of out_owner's blocks, pushed to its remote list as nodes in
  // one CAS per kRemoteBatch, or earlier when the owner changes, this cache takes its
  // slow allocation path, or it is released. At most kRemoteBatch - 1 blocks wait here.
  ThreadCache* out_owner = nullptr;
  uint32_t out_count = 0;
  FreeBlock* out[kRemoteBatch];
};

// Shared between the Slab and every thread that holds a cache of it. Refcounted so a
// thread exiting after ~Slab can still lock `mu` and see `alive == false`.
struct Core {
  std::atomic<uint32_t> refs{1};  // the Slab + one per thread-local entry
  // Cleared under mu by ~Slab. Read under mu by thread exit, racily by pruning.
  std::atomic<bool> alive{true};

  // Immutable after Create.
  uint32_t class_count = 0;
  uint32_t class_sizes[kSlabMaxSizeClasses] = {};
  uint32_t blocks_per_chunk[kSlabMaxSizeClasses] = {};
  std::size_t chunk_bytes = 0;
  uintptr_t chunk_mask = 0;
  std::size_t max_bytes = 0;
  uint8_t* class_of = nullptr;  // owned

  mutable std::mutex mu;
  // Guarded by mu.
  Chunk* all_chunks = nullptr;  // every chunk ever reserved; freed by ~Slab
  Chunk* pool = nullptr;        // singly linked through Chunk::next
  std::size_t chunk_count = 0;
  std::size_t pool_count = 0;
  ThreadCache* all_caches = nullptr;
  ThreadCache* orphans = nullptr;
  std::size_t cache_count = 0;

  ~Core() { delete[] class_of; }
};

namespace {

inline Chunk* ChunkOf(const void* p, uintptr_t mask) noexcept {
  return reinterpret_cast<Chunk*>(reinterpret_cast<uintptr_t>(p) & mask);
}

void ListPush(Chunk** head, Chunk* c) noexcept {
  c->prev = nullptr;
  c->next = *head;
  if (*head) (*head)->prev = c;
  *head = c;
}

void ListUnlink(Chunk** head, Chunk* c) noexcept {
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    *head = c->next;
  }
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
}

void UnrefCore(Core* core) noexcept {
  if (core->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete core;
}

// Pushes the node chain first..last (linked through next) onto owner's remote list.
void PushRemote(ThreadCache* owner, FreeBlock* first, FreeBlock* last) noexcept {
  FreeBlock* head = owner->remote_head.load(std::memory_order_relaxed);
  do {
    last->next = head;
  } while (!owner->remote_head.compare_exchange_weak(head, first, std::memory_order_release,
                                                      std::memory_order_relaxed));
}

// Packs the waiting blocks into nodes (every 8th block carries the 7 after it) and
// pushes them with one CAS. Only the node blocks are written. Out of line: inlined, it
// made Free save three registers on every call.
MYELIN_SLAB_NOINLINE void FlushOut(ThreadCache* tc) noexcept {
  const uint32_t n = tc->out_count;
  if (n == 0) return;
  FreeBlock* first = nullptr;
  FreeBlock* last = nullptr;
  for (uint32_t i = 0; i < n; i += kNodeItems + 1) {
    FreeBlock* node = tc->out[i];
    uint32_t k = 0;
    for (; k < kNodeItems && i + 1 + k < n; ++k) node->items[k] = tc->out[i + 1 + k];
    if (k < kNodeItems) node->items[k] = nullptr;
    node->next = nullptr;
    if (last) {
      last->next = node;
    } else {
      first = node;
    }
    last = node;
  }
  PushRemote(tc->out_owner, first, last);
  tc->out_count = 0;
}

// Called by the owner after a block went back onto c->local_free and the chunk is not the
// current one. Moves full -> avail; an empty avail chunk beyond the one kept goes to
// `spill` for the caller to hand to the pool.
void OnReturned(ClassCache& cc, Chunk* c, uint32_t used, Chunk** spill) noexcept {
  if (c->state == ChunkState::kFull) {
    ListUnlink(&cc.full, c);
    c->state = ChunkState::kAvail;
    ListPush(&cc.avail, c);
  } else if (c->state != ChunkState::kAvail) {
    return;
  }
  if (used != 0) return;
  if (cc.empty_avail < kKeepEmptyPerClass) {
    ++cc.empty_avail;
    return;
  }
  ListUnlink(&cc.avail, c);
  c->state = ChunkState::kPooled;
  c->next = *spill;
  *spill = c;
}

// Owner-only. Returns one block to its chunk's local list.
inline void ReturnLocal(ThreadCache* tc, Chunk* c, FreeBlock* b, Chunk** spill) noexcept {
  b->next = c->local_free;
  c->local_free = b;
  const uint32_t used = c->used.load(std::memory_order_relaxed) - 1;
  c->used.store(used, std::memory_order_relaxed);
  if (c->state != ChunkState::kCurrent && (c->state == ChunkState::kFull || used == 0)) {
    OnReturned(tc->cls[c->class_index], c, used, spill);
  }
}

// Owner-only: takes every remotely freed block back in one exchange.
void Drain(ThreadCache* tc, Chunk** spill) noexcept {
  FreeBlock* node = tc->remote_head.exchange(nullptr, std::memory_order_acquire);
  const uintptr_t mask = tc->core->chunk_mask;
  while (node) {
    // Read the node before ReturnLocal reuses its first word as a local-list link.
    FreeBlock* next = node->next;
    FreeBlock* items[kNodeItems];
    uint32_t k = 0;
    for (; k < kNodeItems && node->items[k]; ++k) items[k] = node->items[k];
    ReturnLocal(tc, ChunkOf(node, mask), node, spill);
    for (uint32_t j = 0; j < k; ++j) ReturnLocal(tc, ChunkOf(items[j], mask), items[j], spill);
    node = next;
  }
}

// Owner (or holder of mu for an orphan): drains, then moves every fully free chunk,
// current ones included, to `spill`.
void Trim(ThreadCache* tc, Chunk** spill) noexcept {
  FlushOut(tc);
  Drain(tc, spill);
  for (uint32_t i = 0; i < tc->core->class_count; ++i) {
    ClassCache& cc = tc->cls[i];
    for (Chunk* c = cc.avail; c;) {
      Chunk* next = c->next;
      if (c->used.load(std::memory_order_relaxed) == 0) {
        ListUnlink(&cc.avail, c);
        c->state = ChunkState::kPooled;
        c->next = *spill;
        *spill = c;
      }
      c = next;
    }
    cc.empty_avail = 0;
    if (cc.current && cc.current->used.load(std::memory_order_relaxed) == 0) {
      cc.current->state = ChunkState::kPooled;
      cc.current->next = *spill;
      *spill = cc.current;
      cc.current = nullptr;
    }
  }
}

void FlushSpillLocked(Core* core, Chunk* spill) noexcept {
  while (spill) {
    Chunk* next = spill->next;
    spill->next = core->pool;
    core->pool = spill;
    ++core->pool_count;
    spill = next;
  }
}

void FlushSpill(Core* core, Chunk* spill) noexcept {
  if (!spill) return;
  std::lock_guard<std::mutex> lock(core->mu);
  FlushSpillLocked(core, spill);
}

// Owner-only, after a local free into a chunk that is full or became empty.
MYELIN_SLAB_NOINLINE void LocalFreeSlow(Core* core, ThreadCache* tc, Chunk* c,
                                        uint32_t used) noexcept {
  Chunk* spill = nullptr;
  OnReturned(tc->cls[c->class_index], c, used, &spill);
  FlushSpill(core, spill);
}

// A chunk from the pool, or a fresh one within max_bytes; bound to (tc, ci) as current.
Chunk* TakeChunk(Core* core, ThreadCache* tc, uint32_t ci) noexcept {
  Chunk* c = nullptr;
  {
    std::lock_guard<std::mutex> lock(core->mu);
    if (core->pool) {
      c = core->pool;
      core->pool = c->next;
      --core->pool_count;
    } else if (core->max_bytes == 0 ||
               (core->chunk_count + 1) * core->chunk_bytes <= core->max_bytes) {
      // Aligned to its own size so ChunkOf is a mask. Under the lock so the cap check
      // and the reservation are one step; this runs once per chunk_bytes of growth.
      void* mem = std::aligned_alloc(core->chunk_bytes, core->chunk_bytes);
      if (mem) {
        c = new (mem) Chunk();
        c->all_next = core->all_chunks;
        core->all_chunks = c;
        ++core->chunk_count;
      }
    }
  }
  if (!c) return nullptr;
  // The chunk is ours alone now: no block of it is out (pooled chunks have used == 0).
  c->cache = tc;
  c->class_index = ci;
  c->block_size = core->class_sizes[ci];
  c->local_free = nullptr;
  c->bump = static_cast<uint32_t>(kSlabChunkHeader);
  c->end = static_cast<uint32_t>(kSlabChunkHeader + core->blocks_per_chunk[ci] * c->block_size);
  c->used.store(0, std::memory_order_relaxed);
  c->state = ChunkState::kCurrent;
  c->prev = c->next = nullptr;
  return c;
}

inline void* AllocFrom(Chunk* c) noexcept {
  FreeBlock* b = c->local_free;
  if (b) {
    c->local_free = b->next;
  } else if (c->bump < c->end) {
    b = reinterpret_cast<FreeBlock*>(reinterpret_cast<char*>(c) + c->bump);
    c->bump += c->block_size;
  } else {
    return nullptr;
  }
  c->used.store(c->used.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return b;
}

// Makes the first avail chunk of the class its current one (the caller has already moved
// the exhausted current to the full list). nullptr when avail is empty.
Chunk* PromoteAvail(ClassCache& cc) noexcept {
  Chunk* c = cc.avail;
  if (!c) return nullptr;
  ListUnlink(&cc.avail, c);
  if (c->used.load(std::memory_order_relaxed) == 0) --cc.empty_avail;
  c->state = ChunkState::kCurrent;
  cc.current = c;
  return c;
}

// The current chunk of class ci had no block on its local list. Order of resort: the
// current chunk's never-used space, the avail list, the remote frees, the pool or a
// fresh chunk; at the cap, every empty chunk this cache and the orphans hold.
MYELIN_SLAB_NOINLINE void* AllocateSlow(ThreadCache* tc, uint32_t ci) noexcept {
  Core* core = tc->core;
  ClassCache& cc = tc->cls[ci];
  if (Chunk* c = cc.current) {
    if (void* p = AllocFrom(c)) return p;
    c->state = ChunkState::kFull;
    ListPush(&cc.full, c);
    cc.current = nullptr;
  }
  // An avail chunk has a block on local_free by definition, so AllocFrom succeeds.
  if (Chunk* c = PromoteAvail(cc)) return AllocFrom(c);
  Chunk* spill = nullptr;
  FlushOut(tc);
  Drain(tc, &spill);
  FlushSpill(core, spill);
  if (Chunk* c = PromoteAvail(cc)) return AllocFrom(c);
  if (Chunk* c = TakeChunk(core, tc, ci)) {
    cc.current = c;
    return AllocFrom(c);
  }
  spill = nullptr;
  Trim(tc, &spill);
  {
    std::lock_guard<std::mutex> lock(core->mu);
    FlushSpillLocked(core, spill);
    // Orphans are owned by nobody; holding mu makes us their owner for the trim.
    for (ThreadCache* o = core->orphans; o; o = o->orphan_next) {
      Chunk* orphan_spill = nullptr;
      Trim(o, &orphan_spill);
      FlushSpillLocked(core, orphan_spill);
    }
  }
  if (Chunk* c = PromoteAvail(cc)) return AllocFrom(c);
  if (Chunk* c = TakeChunk(core, tc, ci)) {
    cc.current = c;
    return AllocFrom(c);
  }
  return nullptr;
}

// --- per-thread registry -------------------------------------------------------------
//
// Each thread keeps a list of (core, cache) entries, one per slab it allocated from or
// freed into; an entry holds a reference on the core so the core (and its mutex)
// outlives the entry. The last lookup is cached in trivially destructible thread_locals
// so the hot path is one compare. Invariant: t_last_core and t_last_tc are both null or
// both set, and set only while this thread holds an entry (so a reference) for
// t_last_core, so that address cannot be reused by another core while it is cached.

struct TlsEntry {
  Core* core;
  ThreadCache* tc;
  TlsEntry* next;
};

thread_local Core* t_last_core = nullptr;
thread_local ThreadCache* t_last_tc = nullptr;
// Set when this thread's registry is torn down; later calls on this thread neither
// attach a cache nor touch the destroyed list.
thread_local bool t_exiting = false;

void ReleaseCacheLocked(Core* core, ThreadCache* tc) noexcept {
  Chunk* spill = nullptr;
  Trim(tc, &spill);
  FlushSpillLocked(core, spill);
  tc->orphan_next = core->orphans;
  core->orphans = tc;
}

struct TlsCaches {
  TlsEntry* head = nullptr;
  ~TlsCaches() {
    t_exiting = true;
    t_last_core = nullptr;
    t_last_tc = nullptr;
    while (head) {
      TlsEntry* e = head;
      head = e->next;
      {
        std::lock_guard<std::mutex> lock(e->core->mu);
        if (e->core->alive.load(std::memory_order_relaxed)) ReleaseCacheLocked(e->core, e->tc);
      }
      UnrefCore(e->core);
      delete e;
    }
  }
};
thread_local TlsCaches t_caches;

ThreadCache* AttachCache(Core* core) noexcept {
  std::lock_guard<std::mutex> lock(core->mu);
  if (ThreadCache* tc = core->orphans) {
    core->orphans = tc->orphan_next;
    tc->orphan_next = nullptr;
    return tc;
  }
  ThreadCache* tc = new (std::nothrow) ThreadCache();
  if (!tc) return nullptr;
  tc->core = core;
  tc->all_next = core->all_caches;
  core->all_caches = tc;
  ++core->cache_count;
  return tc;
}

// Drops entries of destroyed slabs so a thread that outlives many slabs does not grow.
void PruneDead(TlsCaches& list) noexcept {
  for (TlsEntry** link = &list.head; *link;) {
    TlsEntry* e = *link;
    if (e->core->alive.load(std::memory_order_acquire)) {
      link = &e->next;
      continue;
    }
    *link = e->next;
    if (t_last_core == e->core) {
      t_last_core = nullptr;
      t_last_tc = nullptr;
    }
    UnrefCore(e->core);
    delete e;
  }
}

// This thread's cache for core if it has one; never attaches.
ThreadCache* FindCache(Core* core) noexcept {
  if (t_last_core == core && t_last_tc) return t_last_tc;
  if (t_exiting) return nullptr;
  for (TlsEntry* e = t_caches.head; e; e = e->next) {
    if (e->core == core) return e->tc;
  }
  return nullptr;
}

// This thread's cache for core, attaching one (adopting an orphan first) if it has none.
// nullptr when the thread is exiting or out of memory.
MYELIN_SLAB_NOINLINE ThreadCache* CacheForSlow(Core* core) noexcept {
  if (t_exiting) return nullptr;
  TlsCaches& list = t_caches;
  for (TlsEntry* e = list.head; e; e = e->next) {
    if (e->core == core) {
      t_last_core = core;
      t_last_tc = e->tc;
      return e->tc;
    }
  }
  PruneDead(list);
  TlsEntry* e = new (std::nothrow) TlsEntry;
  if (!e) return nullptr;
  ThreadCache* tc = AttachCache(core);
  if (!tc) {
    delete e;
    return nullptr;
  }
  core->refs.fetch_add(1, std::memory_order_relaxed);
  *e = TlsEntry{core, tc, list.head};
  list.head = e;
  t_last_core = core;
  t_last_tc = tc;
  return tc;
}

// A remote free that starts a batch for a new owner, completes one, or comes from a
// thread without a cache (which pushes a node of one).
MYELIN_SLAB_NOINLINE void RemoteFreeSlow(ThreadCache* mine, ThreadCache* owner,
                                         FreeBlock* b) noexcept {
  if (!mine) {
    b->items[0] = nullptr;
    return PushRemote(owner, b, b);
  }
  if (mine->out_owner != owner) {
    FlushOut(mine);
    mine->out_owner = owner;
  }
  mine->out[mine->out_count++] = b;
  if (mine->out_count == kRemoteBatch) FlushOut(mine);
}

// Free by a thread whose cache for core is `mine` (nullptr: it has none, which happens
// only while the thread is exiting or when a cache could not be allocated).
inline void FreeAs(Core* core, ThreadCache* mine, void* p) noexcept {
  Chunk* c = ChunkOf(p, core->chunk_mask);
  ThreadCache* owner = c->cache;
  FreeBlock* b = static_cast<FreeBlock*>(p);
  if (owner != mine) {
    // Another thread's chunk (or an orphan's): only the owner's remote list is ours to
    // touch, and nothing of the chunk's owner-side line is read here.
    if (MYELIN_SLAB_UNLIKELY(!mine || mine->out_owner != owner ||
                             mine->out_count + 1 == kRemoteBatch)) {
      return RemoteFreeSlow(mine, owner, b);
    }
    mine->out[mine->out_count++] = b;
    return;
  }
  b->next = c->local_free;
  c->local_free = b;
  const uint32_t used = c->used.load(std::memory_order_relaxed) - 1;
  c->used.store(used, std::memory_order_relaxed);
  const ChunkState state = c->state;
  if (MYELIN_SLAB_UNLIKELY(state != ChunkState::kCurrent &&
                           (state == ChunkState::kFull || used == 0))) {
    LocalFreeSlow(core, mine, c, used);
  }
}

// A thread that frees gets a cache too (it may adopt an orphan), so its remote frees
// are batched.
MYELIN_SLAB_NOINLINE void FreeWithLookup(Core* core, void* p) noexcept {
  FreeAs(core, CacheForSlow(core), p);
}

MYELIN_SLAB_NOINLINE void* AllocateWithLookup(Core* core, uint32_t ci) noexcept {
  ThreadCache* tc = CacheForSlow(core);
  if (!tc) return nullptr;
  if (Chunk* c = tc->cls[ci].current) {
    if (void* p = AllocFrom(c)) return p;
  }
  return AllocateSlow(tc, ci);
}

}  // namespace
}  // namespace slab_internal

using slab_internal::Chunk;
using slab_internal::Core;
using slab_internal::FreeBlock;
using slab_internal::ThreadCache;

Status Slab::Create(const SlabOptions& options, std::unique_ptr<Slab>* out) noexcept {
  if (!out) return Status::kInvalidArgument;
  static constexpr uint32_t kDefaultClasses[] = {64, 128, 256, 512, 1024, 2048, 4096};
  std::span<const uint32_t> sizes =
      options.class_sizes.empty() ? std::span<const uint32_t>(kDefaultClasses)
                                  : options.class_sizes;
  const std::size_t chunk = options.chunk_bytes;
  if (sizes.size() > kSlabMaxSizeClasses) return Status::kInvalidArgument;
  if (chunk == 0 || (chunk & (chunk - 1)) != 0 || chunk > (std::size_t{1} << 30)) {
    return Status::kInvalidArgument;
  }
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0 || sizes[i] % kCacheLine != 0) return Status::kInvalidArgument;
    if (i > 0 && sizes[i] <= sizes[i - 1]) return Status::kInvalidArgument;
  }
  const std::size_t largest = sizes.back();
  if (kSlabChunkHeader + largest > chunk) return Status::kInvalidArgument;
  if (options.max_bytes != 0 && options.max_bytes < chunk) return Status::kInvalidArgument;

  Core* core = new (std::nothrow) Core();
  if (!core) return Status::kOutOfMemory;
  const std::size_t table_len = largest / kCacheLine + 1;
  core->class_of = new (std::nothrow) uint8_t[table_len];
  Slab* slab = core->class_of ? new (std::nothrow) Slab() : nullptr;
  if (!slab) {
    delete core;
    return Status::kOutOfMemory;
  }
  core->class_count = static_cast<uint32_t>(sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    core->class_sizes[i] = sizes[i];
    core->blocks_per_chunk[i] = static_cast<uint32_t>((chunk - kSlabChunkHeader) / sizes[i]);
  }
  // class_of[k] = smallest class holding k cache lines; k == 0 (bytes == 0) -> class 0.
  uint32_t ci = 0;
  for (std::size_t k = 0; k < table_len; ++k) {
    while (k * kCacheLine > sizes[ci]) ++ci;
    core->class_of[k] = static_cast<uint8_t>(ci);
  }
  core->chunk_bytes = chunk;
  core->chunk_mask = ~static_cast<uintptr_t>(chunk - 1);
  core->max_bytes = options.max_bytes;

  slab->core_ = core;
  slab->class_of_ = core->class_of;
  slab->max_class_bytes_ = largest;
  slab->chunk_mask_ = core->chunk_mask;
  out->reset(slab);
  return Status::kOk;
}

Slab::~Slab() {
  Core* core = core_;
  if (!core) return;
  {
    std::lock_guard<std::mutex> lock(core->mu);
    core->alive.store(false, std::memory_order_release);
    for (Chunk* c = core->all_chunks; c;) {
      Chunk* next = c->all_next;
      c->~Chunk();
      std::free(c);
      c = next;
    }
    for (ThreadCache* t = core->all_caches; t;) {
      ThreadCache* next = t->all_next;
      delete t;
      t = next;
    }
    core->all_chunks = core->pool = nullptr;
    core->all_caches = core->orphans = nullptr;
    core->chunk_count = core->pool_count = core->cache_count = 0;
  }
  slab_internal::UnrefCore(core);
}

void* Slab::Allocate(std::size_t bytes) noexcept {
  if (bytes > max_class_bytes_) return nullptr;
  const uint32_t ci = class_of_[(bytes + kCacheLine - 1) / kCacheLine];
  // t_last_core == core_ implies t_last_tc != nullptr (the registry's invariant).
  if (MYELIN_SLAB_UNLIKELY(slab_internal::t_last_core != core_)) {
    return slab_internal::AllocateWithLookup(core_, ci);
  }
  ThreadCache* tc = slab_internal::t_last_tc;
  if (Chunk* c = tc->cls[ci].current) {
    if (FreeBlock* b = c->local_free) {
      c->local_free = b->next;
      c->used.store(c->used.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return b;
    }
  }
  return slab_internal::AllocateSlow(tc, ci);
}

void Slab::Free(void* p) noexcept {
  if (!p) return;
  if (MYELIN_SLAB_UNLIKELY(slab_internal::t_last_core != core_)) {
    return slab_internal::FreeWithLookup(core_, p);
  }
  slab_internal::FreeAs(core_, slab_internal::t_last_tc, p);
}

void Slab::FlushRemoteFrees() noexcept {
  if (ThreadCache* tc = slab_internal::FindCache(core_)) slab_internal::FlushOut(tc);
}

std::size_t Slab::ClassSizeFor(std::size_t bytes) const noexcept {
  if (bytes > max_class_bytes_) return 0;
  return core_->class_sizes[class_of_[(bytes + kCacheLine - 1) / kCacheLine]];
}

SlabStats Slab::Stats() const noexcept {
  SlabStats s;
  std::lock_guard<std::mutex> lock(core_->mu);
  s.chunks = core_->chunk_count;
  s.free_chunks = core_->pool_count;
  s.bytes_reserved = core_->chunk_count * core_->chunk_bytes;
  s.thread_caches = core_->cache_count;
  for (const Chunk* c = core_->all_chunks; c; c = c->all_next) {
    s.blocks_in_use += c->used.load(std::memory_order_relaxed);
  }
  return s;
}

}  // namespace myelin
