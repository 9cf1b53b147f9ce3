#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "check.h"
#include "queue/mpmc_ring.h"
#include "queue/spsc_ring.h"

using namespace myelin;

TEST(spsc_rejects_bad_capacities) {
  std::unique_ptr<SpscRing<uint64_t>> r;
  CHECK_EQ(SpscRing<uint64_t>::Create(0, &r), Status::kInvalidArgument);
  CHECK_EQ(SpscRing<uint64_t>::Create(3, &r), Status::kInvalidArgument);
  CHECK_EQ(SpscRing<uint64_t>::Create(1000, &r), Status::kInvalidArgument);
  CHECK_EQ(SpscRing<uint64_t>::Create(uint64_t{1} << 31, &r), Status::kInvalidArgument);
  CHECK(!r);
  CHECK_EQ(SpscRing<uint64_t>::Create(1, &r), Status::kOk);
  CHECK(r && r->capacity() == 1);
}

TEST(spsc_fifo_full_empty) {
  std::unique_ptr<SpscRing<uint64_t>> r;
  CHECK_EQ(SpscRing<uint64_t>::Create(8, &r), Status::kOk);
  uint64_t v = 0;
  CHECK(!r->TryPop(&v));
  for (uint64_t i = 0; i < 8; ++i) CHECK(r->TryPush(i));
  CHECK(!r->TryPush(99));
  CHECK_EQ(r->Size(), 8u);
  for (uint64_t i = 0; i < 8; ++i) {
    CHECK(r->TryPop(&v));
    CHECK_EQ(v, i);
  }
  CHECK(!r->TryPop(&v));
}

TEST(spsc_order_across_wrap) {
  std::unique_ptr<SpscRing<uint64_t>> r;
  CHECK_EQ(SpscRing<uint64_t>::Create(8, &r), Status::kOk);
  uint64_t next = 0, expect = 0, buf[8];
  for (int round = 0; round < 1000; ++round) {
    uint64_t tmp[5];
    const size_t want = 1 + round % 5;
    for (size_t i = 0; i < want; ++i) tmp[i] = next + i;
    next += r->TryPushBulk(tmp, want);
    size_t m = r->TryPopBulk(buf, 1 + (round * 7) % 8);
    for (size_t i = 0; i < m; ++i) CHECK_EQ(buf[i], expect++);
  }
  size_t m;
  while ((m = r->TryPopBulk(buf, 8)) != 0)
    for (size_t i = 0; i < m; ++i) CHECK_EQ(buf[i], expect++);
  CHECK_EQ(expect, next);
}

// The u32 indices wrap after 2^32 operations; start them just below the wrap.
TEST(spsc_index_wraparound) {
  const uint32_t cap = 4;
  std::vector<uint64_t> storage((SpscRing<uint64_t>::BytesFor(cap) + 63) / 8 + 8);
  void* mem = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(storage.data()) + 63) & ~uintptr_t{63});
  auto* h = new (mem) RingHeader();
  h->capacity = cap;
  h->item_size = sizeof(uint64_t);
  h->write.store(0xfffffffeu);
  h->read.store(0xfffffffeu);
  std::unique_ptr<SpscRing<uint64_t>> r;
  CHECK_EQ(SpscRing<uint64_t>::Attach(mem, storage.size() * 8 - 64, cap, false, &r), Status::kOk);
  uint64_t v;
  for (uint64_t i = 0; i < 20; ++i) {
    CHECK(r->TryPush(i));
    CHECK(r->TryPush(i + 100));
    CHECK(r->TryPop(&v));
    CHECK_EQ(v, i);
    CHECK(r->TryPop(&v));
    CHECK_EQ(v, i + 100);
  }
  CHECK(h->write.load() < 100u);  // wrapped past zero
  for (int i = 0; i < 4; ++i) CHECK(r->TryPush(7));
  CHECK(!r->TryPush(7));
}

TEST(spsc_attach_checks_header) {
  alignas(64) static unsigned char mem[kRingHeaderBytes + 8 * 8];
  std::unique_ptr<SpscRing<uint64_t>> a, b;
  CHECK_EQ(SpscRing<uint64_t>::Attach(mem, sizeof(mem), 8, true, &a), Status::kOk);
  CHECK_EQ(SpscRing<uint64_t>::Attach(mem, sizeof(mem), 8, false, &b), Status::kOk);
  CHECK(a->TryPush(42));
  uint64_t v = 0;
  CHECK(b->TryPop(&v));
  CHECK_EQ(v, 42u);
  std::unique_ptr<SpscRing<uint32_t>> wrong_type;
  CHECK_EQ(SpscRing<uint32_t>::Attach(mem, sizeof(mem), 8, false, &wrong_type), Status::kInvalidArgument);
  std::unique_ptr<SpscRing<uint64_t>> c;
  CHECK_EQ(SpscRing<uint64_t>::Attach(mem, sizeof(mem), 16, true, &c), Status::kInvalidArgument);
  CHECK_EQ(SpscRing<uint64_t>::Attach(mem + 4, sizeof(mem) - 4, 4, true, &c), Status::kInvalidArgument);
  CHECK_EQ(SpscRing<uint64_t>::Attach(nullptr, 0, 4, true, &c), Status::kInvalidArgument);
}

TEST(spsc_blocking_pop_wakes_and_close) {
  std::unique_ptr<SpscRing<uint64_t>> r;
  CHECK_EQ(SpscRing<uint64_t>::Create(4, &r), Status::kOk);
  WaitOptions opts;
  opts.spin = 4;
  opts.yield = 1;  // park quickly so the futex path runs
  std::thread consumer([&] {
    uint64_t v = 0, sum = 0;
    Status s;
    while ((s = r->Pop(&v, opts)) == Status::kOk) sum += v;
    CHECK_EQ(s, Status::kClosed);
    CHECK_EQ(sum, 1000u * 999u / 2);
  });
  for (uint64_t i = 0; i < 1000; ++i) CHECK_EQ(r->Push(i, opts), Status::kOk);
  r->Close();
  r->Close();  // idempotent
  consumer.join();
  CHECK_EQ(r->Push(1), Status::kClosed);
}

TEST(spsc_pop_times_out) {
  std::unique_ptr<SpscRing<uint64_t>> r;
  CHECK_EQ(SpscRing<uint64_t>::Create(4, &r), Status::kOk);
  WaitOptions opts;
  opts.timeout_ns = 2'000'000;
  uint64_t v;
  CHECK_EQ(r->Pop(&v, opts), Status::kTimedOut);
  for (int i = 0; i < 4; ++i) CHECK(r->TryPush(1));
  CHECK_EQ(r->Push(1, opts), Status::kTimedOut);
}

// Readiness seen only in the re-check after announcing a waiter must end the wait.
// (It used to loop back to the top and spin; with the other side parked, forever.)
TEST(wait_until_returns_when_ready_at_the_recheck) {
  EventCount ec;
  WaitOptions opts;
  opts.spin = 0;
  opts.yield = 0;
  opts.timeout_ns = 50'000'000;  // a regression times out (kTimedOut) instead of hanging
  int calls = 0;
  // false at the entry check, true at the re-check after announcing, false after that.
  Status s = WaitUntil(
      ec, opts, [&] { return ++calls == 2; }, [&] { return calls > 10; });
  CHECK_EQ(s, Status::kOk);
  CHECK_EQ(calls, 2);
  CHECK_EQ(ec.waiters.load(), 0u);
}

struct CountingNotifier : Notifier {
  std::atomic<int> calls{0};
  void Notify() noexcept override { calls.fetch_add(1); }
};

TEST(spsc_notifier_only_when_armed) {
  std::unique_ptr<SpscRing<uint64_t>> r;
  CHECK_EQ(SpscRing<uint64_t>::Create(8, &r), Status::kOk);
  CountingNotifier n;
  r->SetNotifier(&n);
  r->TryPush(1);
  CHECK_EQ(n.calls.load(), 0);
  r->ArmNotifier(true);
  r->TryPush(2);
  r->TryPush(3);
  CHECK_EQ(n.calls.load(), 2);
  r->ArmNotifier(false);
  r->TryPush(4);
  CHECK_EQ(n.calls.load(), 2);
  r->SetNotifier(nullptr);
}

TEST(mpmc_rejects_bad_capacities) {
  std::unique_ptr<MpmcRing<uint64_t>> r;
  CHECK_EQ(MpmcRing<uint64_t>::Create(0, &r), Status::kInvalidArgument);
  CHECK_EQ(MpmcRing<uint64_t>::Create(6, &r), Status::kInvalidArgument);
  CHECK_EQ(MpmcRing<uint64_t>::Create(2, &r), Status::kOk);
}

TEST(mpmc_fifo_bulk_full_empty) {
  std::unique_ptr<MpmcRing<uint64_t>> r;
  CHECK_EQ(MpmcRing<uint64_t>::Create(8, &r), Status::kOk);
  uint64_t in[12], out[12];
  for (uint64_t i = 0; i < 12; ++i) in[i] = i;
  CHECK_EQ(r->TryPushBulk(in, 12), 8u);
  CHECK_EQ(r->TryPushBulk(in, 1), 0u);
  CHECK_EQ(r->TryPopBulk(out, 5), 5u);
  for (uint64_t i = 0; i < 5; ++i) CHECK_EQ(out[i], i);
  CHECK_EQ(r->TryPushBulk(in + 8, 4), 4u);
  CHECK_EQ(r->TryPopBulk(out, 12), 7u);
  const uint64_t want[] = {5, 6, 7, 8, 9, 10, 11};
  for (int i = 0; i < 7; ++i) CHECK_EQ(out[i], want[i]);
  CHECK_EQ(r->TryPopBulk(out, 1), 0u);
  CHECK_EQ(r->TryPushBulk(in, 0), 0u);
  CHECK_EQ(r->TryPopBulk(out, 0), 0u);
}

TEST(mpmc_blocking_close_drains) {
  std::unique_ptr<MpmcRing<uint64_t>> r;
  CHECK_EQ(MpmcRing<uint64_t>::Create(16, &r), Status::kOk);
  for (uint64_t i = 0; i < 10; ++i) CHECK(r->TryPush(i));
  r->Close();
  CHECK_EQ(r->Push(1), Status::kClosed);
  uint64_t buf[16];
  size_t got = 0;
  CHECK_EQ(r->PopBulk(buf, 16, &got), Status::kOk);
  CHECK_EQ(got, 10u);
  CHECK_EQ(r->PopBulk(buf, 16, &got), Status::kClosed);
}

TEST(mpmc_tiny_capacity_threads) {
  std::unique_ptr<MpmcRing<uint64_t>> r;
  CHECK_EQ(MpmcRing<uint64_t>::Create(2, &r), Status::kOk);
  constexpr uint64_t kPer = 20000;
  std::atomic<uint64_t> sum{0}, count{0};
  std::vector<std::thread> ts;
  for (int p = 0; p < 2; ++p)
    ts.emplace_back([&, p] {
      for (uint64_t i = 0; i < kPer; ++i) CHECK_EQ(r->Push(p * kPer + i), Status::kOk);
    });
  for (int c = 0; c < 2; ++c)
    ts.emplace_back([&] {
      uint64_t v;
      while (r->Pop(&v) == Status::kOk) {
        sum.fetch_add(v);
        count.fetch_add(1);
      }
    });
  ts[0].join();
  ts[1].join();
  r->Close();
  ts[2].join();
  ts[3].join();
  CHECK_EQ(count.load(), 2 * kPer);
  CHECK_EQ(sum.load(), (2 * kPer) * (2 * kPer - 1) / 2);
}
