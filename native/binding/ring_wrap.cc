// SpscRing over JS-visible memory: the ring lives in a SharedArrayBuffer that JS
// threads read and write with the same layout (lib/internal/ring.ts). Items are u64.
//
// Ownership: the wrap holds a reference to the TypedArray whose buffer it maps, so the
// memory outlives every native thread that uses it; Close() joins those threads first.
// Wake-ups: watch(cb) arms a Notifier that the ring's pushes through THIS handle call
// (its native producer threads); the Notifier coalesces them into one
// thread-safe-function call until JS has run the callback.
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "queue/spsc_ring.h"
#include "thread_start.h"

namespace myelin::binding {
namespace {

using Ring = SpscRing<uint64_t>;

class RingWrap : public Napi::ObjectWrap<RingWrap>, public Handle, public Notifier {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SpscRing",
                       {
                           StaticMethod("bytesFor", &RingWrap::BytesFor),
                           InstanceMethod("push", &RingWrap::Push),
                           InstanceMethod("pop", &RingWrap::Pop),
                           InstanceMethod("size", &RingWrap::Size),
                           InstanceMethod("markClosed", &RingWrap::MarkClosed),
                           InstanceMethod("isClosed", &RingWrap::IsClosed),
                           InstanceMethod("watch", &RingWrap::Watch),
                           InstanceMethod("wake", &RingWrap::Wake),
                           InstanceMethod("unwatch", &RingWrap::Unwatch),
#ifdef MYELIN_TEST_HOOKS
                           InstanceMethod("startProducer", &RingWrap::StartProducer),
#endif
                           InstanceMethod("close", &RingWrap::CloseJs),
                           InstanceAccessor("capacity", &RingWrap::Capacity, nullptr),
                       });
  }

  // new SpscRing(view: TypedArray over the ring's (Shared)ArrayBuffer, capacity, init)
  explicit RingWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<RingWrap>(info), reg_(info.Env(), this) {
    Napi::Env env = info.Env();
    Napi::TypedArray view = ArgTypedArray(info, 0, "memory");
    uint32_t capacity = ArgU32(info, 1, "capacity");
    bool init = info.Length() > 2 && info[2].ToBoolean();
    Bytes mem = ArgBytes(info, 0, "memory");
    Status s = Ring::Attach(mem.data, mem.length, capacity, init, &ring_);
    if (!Ok(s))
      ThrowStatus(env, s,
                  "SpscRing: capacity must be a power of two from 1 to 2^30 and memory 8-byte aligned "
                  "with at least bytesFor(capacity) bytes");
    memory_ = Napi::Persistent(view.As<Napi::Object>());
    ring_->SetNotifier(this);
  }

  ~RingWrap() override { Close(); }

  void Close() noexcept override {
    if (closed_) return;
    closed_ = true;
    stop_.store(true, std::memory_order_release);
    if (ring_) {
      // Wake producers parked on not_full so they see stop_.
      ring_->header()->not_full.seq.fetch_add(1, std::memory_order_release);
      FutexWake(&ring_->header()->not_full.seq, 0x7fffffff);
    }
    for (auto& t : producers_)
      if (t.joinable()) t.join();
    producers_.clear();
    if (ring_) {
      ring_->ArmNotifier(false);
      ring_->SetNotifier(nullptr);
    }
    ReleaseWatch();
  }

  // Notifier: called on producer threads after a push while armed.
  // The queued call captures the shared WatchState, not `this`: it may run after the
  // wrap was closed and collected.
  void Notify() noexcept override {
    std::lock_guard<std::mutex> g(watch_mu_);
    std::shared_ptr<WatchState> w = watch_;
    if (!w || w->pending.exchange(true, std::memory_order_acq_rel)) return;
    tsfn_.NonBlockingCall([w](Napi::Env env, Napi::Function cb) {
      w->pending.store(false, std::memory_order_release);
      if (!w->live.load(std::memory_order_acquire)) return;
      // A throwing callback is an uncaught exception, as from any event callback:
      // napi_fatal_exception hands it to process 'uncaughtException' (Node 20 would
      // otherwise swallow it with a deprecation warning), and no C++ exception unwinds
      // out of a libuv callback.
      try {
        cb.Call({});
      } catch (const Napi::Error& e) {
        napi_fatal_exception(env, e.Value());
      }
    });
  }

 private:
  Ring* Checked(Napi::Env env) {
    if (closed_) throw MakeError(env, Status::kClosed, "SpscRing handle is closed");
    return ring_.get();
  }

  static Napi::Value BytesFor(const Napi::CallbackInfo& info) {
    uint32_t capacity = ArgU32(info, 0, "capacity", kRingMaxCapacity);
    if (!Ok(ValidateCapacity(capacity)))
      ThrowInvalid(info.Env(), "capacity must be a power of two from 1 to 2^30, got " + std::to_string(capacity));
    return Napi::Number::New(info.Env(), static_cast<double>(Ring::BytesFor(capacity)));
  }

  Napi::Value Push(const Napi::CallbackInfo& info) {
    Ring* r = Checked(info.Env());
    auto items = ArgTypedArrayOf<uint64_t>(info, 0, "items", napi_biguint64_array, "BigUint64Array");
    size_t n = items.ElementLength();
    if (info.Length() > 1 && !info[1].IsUndefined()) n = std::min<size_t>(n, ArgU32(info, 1, "count"));
    return Napi::Number::New(info.Env(), static_cast<double>(r->TryPushBulk(items.Data(), n)));
  }

  Napi::Value Pop(const Napi::CallbackInfo& info) {
    Ring* r = Checked(info.Env());
    auto out = ArgTypedArrayOf<uint64_t>(info, 0, "out", napi_biguint64_array, "BigUint64Array");
    return Napi::Number::New(info.Env(), static_cast<double>(r->TryPopBulk(out.Data(), out.ElementLength())));
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), Checked(info.Env())->Size());
  }
  Napi::Value Capacity(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ring_ ? ring_->capacity() : 0);
  }
  Napi::Value MarkClosed(const Napi::CallbackInfo& info) {
    Checked(info.Env())->Close();
    return info.Env().Undefined();
  }
  Napi::Value IsClosed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), Checked(info.Env())->closed());
  }

  // wake(): wakes native threads parked on either event count. JS sides call it after
  // bumping a seq word themselves, since Atomics.notify cannot reach an OS futex.
  Napi::Value Wake(const Napi::CallbackInfo& info) {
    Ring* r = Checked(info.Env());
    FutexWake(&r->header()->not_empty.seq, 0x7fffffff);
    FutexWake(&r->header()->not_full.seq, 0x7fffffff);
    return info.Env().Undefined();
  }

  // watch(cb): cb() runs on this thread's event loop after pushes through this handle.
  Napi::Value Watch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring* r = Checked(env);
    if (info.Length() < 1 || !info[0].IsFunction()) ThrowInvalid(env, "watch(callback): callback must be a function");
    ReleaseWatch();
    std::lock_guard<std::mutex> g(watch_mu_);
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "myelin.ring.watch", 0, 1);
    watch_ = std::make_shared<WatchState>();
    r->ArmNotifier(true);
    return env.Undefined();
  }

  Napi::Value Unwatch(const Napi::CallbackInfo& info) {
    if (ring_) ring_->ArmNotifier(false);
    ReleaseWatch();
    return info.Env().Undefined();
  }

  void ReleaseWatch() noexcept {
    std::lock_guard<std::mutex> g(watch_mu_);
    if (watch_) {
      watch_->live.store(false, std::memory_order_release);
      watch_.reset();
    }
    if (tsfn_) {
      tsfn_.Release();
      tsfn_ = Napi::ThreadSafeFunction();
    }
  }

#ifdef MYELIN_TEST_HOOKS
  // startProducer(count, batch = 64), test build only: a native thread pushes
  // 0..count-1 and then marks the ring closed, standing in for a native I/O thread so
  // tests can drive the wake-up and parking paths. A refused thread start throws
  // ERR_RESOURCE_EXHAUSTED and leaves the handle as it was.
  Napi::Value StartProducer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring* r = Checked(env);
    double count_d = ArgNumber(info, 0, "count");
    if (count_d < 0 || count_d > 9007199254740991.0 || count_d != static_cast<double>(static_cast<uint64_t>(count_d)))
      ThrowInvalid(env, "count must be a non-negative integer");
    uint32_t batch = info.Length() > 1 && !info[1].IsUndefined() ? ArgU32(info, 1, "batch", 1u << 16) : 64;
    if (batch == 0) ThrowInvalid(env, "batch must be at least 1");
    const uint64_t count = static_cast<uint64_t>(count_d);
    // Everything that can throw happens here, on the JS thread: the batch buffer (an
    // exception inside the thread body would terminate) and room for the std::thread
    // (a started, joinable thread must never be dropped).
    std::vector<uint64_t> buf(batch);
    producers_.reserve(producers_.size() + 1);
    producers_.push_back(StartThread(env, "SpscRing.startProducer", [this, r, count, batch, buf = std::move(buf)]() mutable {
      WaitOptions opts;
      for (uint64_t sent = 0; sent < count && !stop_.load(std::memory_order_acquire);) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(batch, count - sent));
        for (size_t i = 0; i < want; ++i) buf[i] = sent + i;
        size_t k = r->TryPushBulk(buf.data(), want);
        if (k == 0) {
          WaitUntil(
              r->header()->not_full, opts,
              [&] { return r->Size() < r->capacity(); },
              [&] { return stop_.load(std::memory_order_acquire) || r->closed(); });
          if (r->closed()) break;
        }
        sent += k;
      }
      if (!stop_.load(std::memory_order_acquire)) r->Close();
    }));
    return env.Undefined();
  }
#endif

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  HandleRegistration reg_;
  std::unique_ptr<Ring> ring_;
  Napi::ObjectReference memory_;
  Napi::ThreadSafeFunction tsfn_;
  struct WatchState {
    std::atomic<bool> pending{false};
    std::atomic<bool> live{true};
  };
  std::mutex watch_mu_;  // guards watch_ and tsfn_ between JS and producer threads
  std::shared_ptr<WatchState> watch_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> producers_;
  bool closed_ = false;
};

}  // namespace

void InitRing(Napi::Env env, Napi::Object exports, MyelinAddon*) {
  Napi::Function ctor = RingWrap::Define(env);
  exports.Set("SpscRing", ctor);
  exports.Set("ringHeaderBytes", Napi::Number::New(env, kRingHeaderBytes));
}

}  // namespace myelin::binding
