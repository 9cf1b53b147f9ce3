// Slab allocator: class boundaries, alignment, reuse, cross-thread frees, thread exit,
// several slabs at once, the byte cap, and a 4-thread handoff stress that also runs
// under -fsanitize=thread.
#include "alloc/slab.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <latch>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "check.h"

using myelin::Slab;
using myelin::SlabOptions;
using myelin::SlabStats;
using myelin::Status;

namespace {

using myelin::test::kSanitized;


std::unique_ptr<Slab> MakeSlab(const SlabOptions& o = {}) {
  std::unique_ptr<Slab> s;
  Status st = Slab::Create(o, &s);
  CHECK_EQ(st, Status::kOk);
  CHECK(s != nullptr);
  return s;
}

// The tag is written at both ends of a block so a block handed out twice, or two
// overlapping blocks, show up as a mismatch.
void Stamp(void* p, std::size_t size, uint64_t tag) {
  std::memcpy(p, &tag, sizeof tag);
  std::memcpy(static_cast<char*>(p) + size - sizeof tag, &tag, sizeof tag);
}

bool StampIs(const void* p, std::size_t size, uint64_t tag) {
  uint64_t a, b;
  std::memcpy(&a, p, sizeof a);
  std::memcpy(&b, static_cast<const char*>(p) + size - sizeof b, sizeof b);
  return a == tag && b == tag;
}

}  // namespace

TEST(CreateRejectsBadOptions) {
  std::unique_ptr<Slab> s;
  CHECK_EQ(Slab::Create({}, nullptr), Status::kInvalidArgument);

  const uint32_t not_multiple[] = {64, 100};
  SlabOptions o;
  o.class_sizes = not_multiple;
  CHECK_EQ(Slab::Create(o, &s), Status::kInvalidArgument);

  const uint32_t descending[] = {128, 64};
  o.class_sizes = descending;
  CHECK_EQ(Slab::Create(o, &s), Status::kInvalidArgument);

  const uint32_t zero[] = {0, 64};
  o.class_sizes = zero;
  CHECK_EQ(Slab::Create(o, &s), Status::kInvalidArgument);

  uint32_t too_many[myelin::kSlabMaxSizeClasses + 1];
  for (std::size_t i = 0; i < std::size(too_many); ++i) too_many[i] = 64 * (i + 1);
  o.class_sizes = too_many;
  CHECK_EQ(Slab::Create(o, &s), Status::kInvalidArgument);

  o = SlabOptions{};
  o.chunk_bytes = 3 * 4096;  // not a power of two
  CHECK_EQ(Slab::Create(o, &s), Status::kInvalidArgument);
  o.chunk_bytes = 4096;  // header + a 4096 B block does not fit
  CHECK_EQ(Slab::Create(o, &s), Status::kInvalidArgument);

  o = SlabOptions{};
  o.max_bytes = o.chunk_bytes - 1;
  CHECK_EQ(Slab::Create(o, &s), Status::kInvalidArgument);
  CHECK(s == nullptr);

  o.max_bytes = o.chunk_bytes;
  CHECK_EQ(Slab::Create(o, &s), Status::kOk);
  CHECK(s != nullptr);
}

TEST(ClassBoundaries) {
  auto s = MakeSlab();
  CHECK_EQ(s->ClassSizeFor(0), 64u);
  CHECK_EQ(s->ClassSizeFor(1), 64u);
  CHECK_EQ(s->ClassSizeFor(64), 64u);
  CHECK_EQ(s->ClassSizeFor(65), 128u);
  CHECK_EQ(s->ClassSizeFor(129), 256u);
  CHECK_EQ(s->ClassSizeFor(2049), 4096u);
  CHECK_EQ(s->ClassSizeFor(4096), 4096u);
  CHECK_EQ(s->ClassSizeFor(4097), 0u);
  CHECK_EQ(s->ClassSizeFor(SIZE_MAX), 0u);
  CHECK_EQ(s->largest_class(), 4096u);
  CHECK_EQ(s->chunk_bytes(), 64u * 1024);

  for (std::size_t bytes : {0, 1, 64, 65, 4096}) {
    void* p = s->Allocate(bytes);
    CHECK(p != nullptr);
    s->Free(p);
  }
  CHECK(s->Allocate(4097) == nullptr);
  CHECK(s->Allocate(SIZE_MAX) == nullptr);
  s->Free(nullptr);  // ignored

  const uint32_t custom[] = {64, 192, 640};
  SlabOptions o;
  o.class_sizes = custom;
  o.chunk_bytes = 4096;
  auto c = MakeSlab(o);
  CHECK_EQ(c->ClassSizeFor(65), 192u);
  CHECK_EQ(c->ClassSizeFor(192), 192u);
  CHECK_EQ(c->ClassSizeFor(193), 640u);
  CHECK_EQ(c->ClassSizeFor(641), 0u);
  void* p = c->Allocate(600);
  CHECK(p != nullptr);
  CHECK_EQ(reinterpret_cast<uintptr_t>(p) % myelin::kCacheLine, 0u);
  c->Free(p);
}

TEST(AlignedBlocksHoldTheirWholeSize) {
  auto s = MakeSlab();
  std::vector<std::pair<unsigned char*, std::size_t>> blocks;
  unsigned char fill = 1;
  for (std::size_t bytes : {1, 64, 100, 128, 200, 256, 511, 512, 1000, 2048, 3000, 4096}) {
    for (int i = 0; i < 40; ++i) {  // > 15 so the 4096 class spans several chunks
      auto* p = static_cast<unsigned char*>(s->Allocate(bytes));
      CHECK(p != nullptr);
      if (!p) return;
      CHECK_EQ(reinterpret_cast<uintptr_t>(p) % myelin::kCacheLine, 0u);
      const std::size_t size = s->ClassSizeFor(bytes);
      std::memset(p, fill, size);
      blocks.emplace_back(p, size);
      fill = static_cast<unsigned char>(fill % 250 + 1);
    }
  }
  // Check after every block is written: an overlap would have clobbered an earlier one.
  fill = 1;
  bool intact = true;
  for (auto& [p, size] : blocks) {
    for (std::size_t k = 0; k < size; ++k) intact &= p[k] == fill;
    fill = static_cast<unsigned char>(fill % 250 + 1);
  }
  CHECK(intact);
  CHECK_EQ(s->Stats().blocks_in_use, blocks.size());
  for (auto& [p, size] : blocks) s->Free(p);
  CHECK_EQ(s->Stats().blocks_in_use, 0u);
}

TEST(ReuseKeepsChunkCountBounded) {
  auto s = MakeSlab();
  std::mt19937_64 rng(42);
  std::vector<void*> live;
  std::size_t chunks_after_first = 0;
  for (int cycle = 0; cycle < 2000; ++cycle) {
    for (int i = 0; i < 200; ++i) {
      void* p = s->Allocate(rng() % 4097);
      CHECK(p != nullptr);
      live.push_back(p);
    }
    std::shuffle(live.begin(), live.end(), rng);
    for (void* p : live) s->Free(p);
    live.clear();
    if (cycle == 0) chunks_after_first = s->Stats().chunks;
  }
  SlabStats st = s->Stats();
  CHECK_EQ(st.blocks_in_use, 0u);
  // 200 random-size blocks need at most ~1 chunk per class plus the 4096 class's
  // spill-over; what matters is that 2000 cycles did not add any.
  CHECK(st.chunks <= chunks_after_first + 7);
  CHECK(st.chunks <= 40u);
}

TEST(CrossThreadFreeReusesChunks) {
  auto s = MakeSlab();
  const std::size_t n = kSanitized ? 200000 : 1000000;
  std::vector<void*> blocks(n);
  for (std::size_t i = 0; i < n; ++i) {
    blocks[i] = s->Allocate(64);
    if (!blocks[i]) break;
    Stamp(blocks[i], 64, i);
  }
  CHECK(blocks[n - 1] != nullptr);
  const SlabStats before = s->Stats();
  CHECK_EQ(before.blocks_in_use, n);

  std::atomic<std::size_t> bad{0};
  std::thread b([&] {
    for (std::size_t i = 0; i < n; ++i) {
      if (!StampIs(blocks[i], 64, i)) bad.fetch_add(1);
      s->Free(blocks[i]);
    }
  });
  b.join();
  CHECK_EQ(bad.load(), 0u);
  // Remote frees wait on the owner's list until it runs dry: still counted as in use.
  CHECK_EQ(s->Stats().blocks_in_use, n);

  for (std::size_t i = 0; i < n; ++i) {
    blocks[i] = s->Allocate(64);
    if (!blocks[i]) break;
  }
  CHECK(blocks[n - 1] != nullptr);
  const SlabStats after = s->Stats();
  CHECK_EQ(after.chunks, before.chunks);
  CHECK_EQ(after.blocks_in_use, n);
  for (void* p : blocks) s->Free(p);
  CHECK_EQ(s->Stats().blocks_in_use, 0u);
}

TEST(ThreadExitWithLiveBlocks) {
  auto s = MakeSlab();
  void* own = s->Allocate(64);  // this thread's own cache, so it does not adopt below
  const std::size_t n = 20000;
  std::vector<void*> blocks(n);
  std::thread a([&] {
    for (std::size_t i = 0; i < n; ++i) {
      blocks[i] = s->Allocate(128);
      if (blocks[i]) Stamp(blocks[i], 128, i);
    }
  });
  a.join();  // a's cache is now orphaned, holding every chunk of its blocks
  const SlabStats orphaned = s->Stats();
  CHECK_EQ(orphaned.thread_caches, 2u);
  CHECK_EQ(orphaned.blocks_in_use, n + 1);

  // Free half from this thread: remote frees into the orphan.
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; i += 2) {
    bad += !StampIs(blocks[i], 128, i);
    s->Free(blocks[i]);
  }
  s->FlushRemoteFrees();
  // A new thread adopts the orphan, drains its remote list and reuses exactly those.
  std::thread c([&] {
    std::vector<void*> again;
    for (std::size_t i = 0; i < n / 2; ++i) again.push_back(s->Allocate(128));
    if (s->Stats().chunks != orphaned.chunks) bad += 1000000;
    for (void* p : again) s->Free(p);
    // The other half, freed by the thread that now owns their chunks.
    for (std::size_t i = 1; i < n; i += 2) {
      bad += !StampIs(blocks[i], 128, i);
      s->Free(blocks[i]);
    }
  });
  c.join();
  CHECK_EQ(bad, 0u);
  const SlabStats after = s->Stats();
  CHECK_EQ(after.thread_caches, 2u);  // adopted, not created
  CHECK_EQ(after.chunks, orphaned.chunks);
  CHECK_EQ(after.blocks_in_use, 1u);
  // c's exit returned every fully free chunk to the pool; only ours is held.
  CHECK_EQ(after.free_chunks, after.chunks - 1);
  s->Free(own);
}

TEST(FlushRemoteFreesHandsBlocksBack) {
  auto s = MakeSlab();
  std::vector<void*> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(s->Allocate(64));
  std::mutex mu;
  std::condition_variable cv;
  int phase = 0;
  std::thread b([&] {
    for (void* p : blocks) s->Free(p);  // 10 < one batch: they wait in b's cache
    std::unique_lock<std::mutex> lock(mu);
    phase = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return phase == 2; });
    s->FlushRemoteFrees();
    phase = 3;
    cv.notify_all();
    cv.wait(lock, [&] { return phase == 4; });
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return phase == 1; });
  // A class this thread has no chunk for takes the slow path, which drains.
  s->Free(s->Allocate(4096));
  CHECK_EQ(s->Stats().blocks_in_use, 10u);  // still waiting in b
  phase = 2;
  cv.notify_all();
  cv.wait(lock, [&] { return phase == 3; });
  s->Free(s->Allocate(2048));
  CHECK_EQ(s->Stats().blocks_in_use, 0u);
  phase = 4;
  cv.notify_all();
  lock.unlock();
  b.join();
}

TEST(ManyShortLivedThreads) {
  auto s = MakeSlab();
  std::vector<void*> survivors;
  std::mutex mu;
  for (int round = 0; round < 40; ++round) {
    std::thread t([&, round] {
      std::vector<void*> mine;
      for (int i = 0; i < 300; ++i) mine.push_back(s->Allocate((i * 37 + round) % 4097));
      std::lock_guard<std::mutex> lock(mu);
      for (std::size_t i = 0; i < mine.size(); ++i) {
        if (i % 10 == 0) {
          survivors.push_back(mine[i]);  // outlives its allocating thread
        } else {
          s->Free(mine[i]);
        }
      }
    });
    t.join();
  }
  for (void* p : survivors) CHECK(p != nullptr);
  CHECK_EQ(s->Stats().thread_caches, 1u);  // each thread adopted the previous one's cache
  for (void* p : survivors) s->Free(p);
}

TEST(TwoSlabsAtOnce) {
  auto a = MakeSlab();
  const uint32_t classes[] = {64, 256};
  SlabOptions o;
  o.class_sizes = classes;
  auto b = MakeSlab(o);
  std::vector<void*> from_a, from_b;
  for (int i = 0; i < 5000; ++i) {
    from_a.push_back(a->Allocate(100));
    from_b.push_back(b->Allocate(100));
    Stamp(from_a.back(), 128, i);
    Stamp(from_b.back(), 256, ~static_cast<uint64_t>(i));
  }
  std::atomic<int> bad{0};
  std::mutex mu;
  std::condition_variable cv;
  bool a_done = false, a_gone = false;
  std::thread t([&] {
    // Uses both slabs, keeps using b after a is destroyed, then exits: its exit hook must
    // skip the dead slab a.
    std::vector<void*> mine_a, mine_b;
    for (int i = 0; i < 1000; ++i) {
      mine_a.push_back(a->Allocate(64));
      mine_b.push_back(b->Allocate(64));
    }
    for (int i = 0; i < 5000; ++i) {
      if (!StampIs(from_a[i], 128, i)) bad.fetch_add(1);
      if (!StampIs(from_b[i], 256, ~static_cast<uint64_t>(i))) bad.fetch_add(1);
      a->Free(from_a[i]);
      b->Free(from_b[i]);
    }
    for (void* p : mine_a) a->Free(p);
    std::unique_lock<std::mutex> lock(mu);
    a_done = true;
    cv.notify_all();
    cv.wait(lock, [&] { return a_gone; });
    lock.unlock();
    for (void* p : mine_b) b->Free(p);
    // A slab created after a died makes this thread prune its registry entry for a.
    auto c = MakeSlab();
    void* p = c->Allocate(10);
    if (!p) bad.fetch_add(1);
    c->Free(p);
    for (int i = 0; i < 1000; ++i) b->Free(b->Allocate(200));
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return a_done; });
  }
  CHECK_EQ(a->Stats().thread_caches, 2u);
  a.reset();  // t is alive and still holds a registry entry for a
  {
    std::lock_guard<std::mutex> lock(mu);
    a_gone = true;
  }
  cv.notify_all();
  t.join();
  CHECK_EQ(bad.load(), 0);
  void* p = b->Allocate(64);
  CHECK(p != nullptr);
  b->Free(p);
  CHECK_EQ(b->Stats().blocks_in_use, 0u);  // the Allocate drained what t freed remotely
}

TEST(MaxBytesCapThenRecovers) {
  SlabOptions o;
  o.max_bytes = 4 * o.chunk_bytes;
  auto s = MakeSlab(o);
  std::vector<void*> big;
  while (void* p = s->Allocate(4096)) big.push_back(p);
  const std::size_t per_chunk = (o.chunk_bytes - myelin::kSlabChunkHeader) / 4096;
  CHECK_EQ(big.size(), 4 * per_chunk);
  CHECK_EQ(s->Stats().bytes_reserved, o.max_bytes);
  CHECK(s->Allocate(64) == nullptr);  // no chunk left for another class either

  s->Free(big.back());
  big.pop_back();
  CHECK(s->Allocate(4096) != nullptr);  // the freed block, same class
  for (void* p : big) s->Free(p);
  big.clear();

  // Every chunk is empty now, though held by this thread's 4096 class; a different class
  // must get them back.
  std::vector<void*> small;
  while (void* p = s->Allocate(64)) small.push_back(p);
  const std::size_t small_per_chunk = (o.chunk_bytes - myelin::kSlabChunkHeader) / 64;
  // The one 4096 block still out pins one chunk.
  CHECK_EQ(small.size(), 3 * small_per_chunk);
  CHECK_EQ(s->Stats().chunks, 4u);

  // Blocks freed by this thread after their allocating thread exited: the orphan's
  // chunks must come back when this thread hits the cap.
  for (void* p : small) s->Free(p);
  small.clear();
  std::vector<void*> handed;
  std::thread t([&] {
    while (void* p = s->Allocate(1024)) handed.push_back(p);
  });
  t.join();
  CHECK(!handed.empty());
  for (void* p : handed) s->Free(p);  // remote frees into the orphan
  while (void* p = s->Allocate(512)) small.push_back(p);
  CHECK(small.size() >= 3 * ((o.chunk_bytes - myelin::kSlabChunkHeader) / 512));
  for (void* p : small) s->Free(p);
}

TEST(DestroyWithLiveBlocksDoesNotLeak) {
  auto s = MakeSlab();
  for (int i = 0; i < 10000; ++i) CHECK(s->Allocate(i % 4097) != nullptr);
  std::thread t([&] {
    for (int i = 0; i < 10000; ++i) CHECK(s->Allocate(300) != nullptr);
  });
  t.join();
  s.reset();  // LeakSanitizer checks at exit that every chunk and cache went
}

// Four threads allocate random sizes, free some themselves and hand others to a random
// peer, which checks the stamp and frees. Run under -fsanitize=thread too.
TEST(FourThreadHandoffStress) {
  auto s = MakeSlab();
  constexpr int kThreads = 4;
  const int ops = kSanitized ? 60000 : 400000;
  struct Inbox {
    std::mutex mu;
    std::vector<std::pair<void*, uint64_t>> items;
  };
  Inbox inbox[kThreads];
  std::atomic<int> null_allocs{0}, bad{0}, running{kThreads};

  auto worker = [&](int id) {
    std::mt19937_64 rng(1234 + id);
    std::vector<std::pair<void*, uint64_t>> mine, received;
    uint64_t seq = 0;
    auto check_free = [&](std::pair<void*, uint64_t> item) {
      const std::size_t size = s->ClassSizeFor(item.second >> 48);
      if (!StampIs(item.first, size, item.second)) bad.fetch_add(1);
      s->Free(item.first);
    };
    for (int op = 0; op < ops; ++op) {
      const unsigned r = rng() % 100;
      if (r < 45 || mine.empty()) {
        const std::size_t bytes = rng() % 4097;
        void* p = s->Allocate(bytes);
        if (!p) {
          null_allocs.fetch_add(1);
          continue;
        }
        const uint64_t tag = (uint64_t{bytes} << 48) | (uint64_t(id) << 40) | seq++;
        Stamp(p, s->ClassSizeFor(bytes), tag);
        mine.emplace_back(p, tag);
      } else if (r < 70) {
        std::size_t k = rng() % mine.size();
        check_free(mine[k]);
        mine[k] = mine.back();
        mine.pop_back();
      } else if (r < 95) {
        std::size_t k = rng() % mine.size();
        Inbox& to = inbox[(id + 1 + rng() % (kThreads - 1)) % kThreads];
        std::lock_guard<std::mutex> lock(to.mu);
        to.items.push_back(mine[k]);
        mine[k] = mine.back();
        mine.pop_back();
      } else {
        {
          std::lock_guard<std::mutex> lock(inbox[id].mu);
          received.swap(inbox[id].items);
        }
        for (auto& item : received) check_free(item);
        received.clear();
      }
    }
    for (auto& item : mine) check_free(item);
    running.fetch_sub(1);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  // What peers handed over after a thread's last look: freed after every owner exited,
  // into orphaned caches, by a thread that exits (flushing) when done.
  std::thread([&] {
    for (auto& box : inbox) {
      for (auto& item : box.items) {
        const std::size_t size = s->ClassSizeFor(item.second >> 48);
        if (!StampIs(item.first, size, item.second)) bad.fetch_add(1);
        s->Free(item.first);
      }
    }
  }).join();
  CHECK_EQ(null_allocs.load(), 0);
  CHECK_EQ(bad.load(), 0);
  const SlabStats st = s->Stats();
  CHECK(st.thread_caches <= kThreads);
  CHECK(st.thread_caches >= 1u);
  // Every owner has exited, so each cache is an orphan; threads alive at the same time
  // adopt one each, and their exit drains the remote frees made above. Then every block
  // is back and every chunk is pooled.
  std::latch all_attached(kThreads);
  std::vector<std::thread> adopters;
  for (int i = 0; i < kThreads; ++i) {
    adopters.emplace_back([&] {
      void* p = s->Allocate(64);
      all_attached.arrive_and_wait();
      s->Free(p);
    });
  }
  for (auto& t : adopters) t.join();
  const SlabStats end = s->Stats();
  CHECK_EQ(end.blocks_in_use, 0u);
  CHECK_EQ(end.free_chunks, end.chunks);
}
