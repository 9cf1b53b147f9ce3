// HDR histograms for JS. A histogram is shared by every thread that attaches to its
// id: the process-wide registry below maps ids to weak references (it is process-wide
// by nature: worker threads are separate environments of one process). Each JS thread
// records into an exclusive shard exposed as a Float64Array over native memory; the
// shard's finalizer releases the slot and drops the thread's reference, so shard memory
// never outlives its histogram and never escapes without a finalizer.
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "hist/histogram.h"
#include "thread_start.h"

namespace myelin::binding {
namespace {

class Registry {
 public:
  uint32_t Add(const std::shared_ptr<Histogram>& h) {
    std::lock_guard<std::mutex> g(mu_);
    // Sweep expired entries as ids are handed out, so the map stays bounded by the
    // number of live histograms.
    for (auto it = map_.begin(); it != map_.end();) it = it->second.expired() ? map_.erase(it) : std::next(it);
    uint32_t id = ++next_;
    map_[id] = h;
    return id;
  }
  std::shared_ptr<Histogram> Find(uint32_t id) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = map_.find(id);
    return it == map_.end() ? nullptr : it->second.lock();
  }

 private:
  std::mutex mu_;
  uint32_t next_ = 0;
  std::unordered_map<uint32_t, std::weak_ptr<Histogram>> map_;
};

Registry& GlobalRegistry() {
  static Registry* r = new Registry();  // never destroyed: outlives every environment
  return *r;
}

struct ShardLease {
  std::shared_ptr<Histogram> hist;
  uint32_t slot;
};

void ReleaseLease(Napi::Env, void*, ShardLease* lease) {
  lease->hist->ReleaseShard(lease->slot);
  delete lease;
}

class HistogramWrap : public Napi::ObjectWrap<HistogramWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Histogram",
                       {
                           StaticMethod("attach", &HistogramWrap::Attach),
                           InstanceMethod("acquireShard", &HistogramWrap::AcquireShard),
                           InstanceMethod("releaseShard", &HistogramWrap::ReleaseShard),
#ifdef MYELIN_TEST_HOOKS
                           InstanceMethod("recordNative", &HistogramWrap::RecordNative),
#endif
                           InstanceMethod("snapshot", &HistogramWrap::Snapshot),
                           InstanceMethod("valueAtPercentile", &HistogramWrap::ValueAtPercentile),
                           InstanceMethod("reset", &HistogramWrap::Reset),
                           InstanceMethod("close", &HistogramWrap::Close),
                           InstanceAccessor("id", &HistogramWrap::Id, nullptr),
                       });
  }

  // new Histogram() creates one; Histogram.attach(id) (below) shares an existing one.
  explicit HistogramWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HistogramWrap>(info) {
    if (info.Length() > 0 && info[0].IsExternal()) {
      auto* h = info[0].As<Napi::External<std::shared_ptr<Histogram>>>().Data();
      hist_ = *h;
      id_ = info[1].As<Napi::Number>().Uint32Value();
      return;
    }
    Status s = Histogram::Create(&hist_);
    if (!Ok(s)) ThrowStatus(info.Env(), s, "Histogram()");
    id_ = GlobalRegistry().Add(hist_);
  }

 private:
  Histogram* Checked(Napi::Env env) {
    if (!hist_) throw MakeError(env, Status::kClosed, "Histogram handle is closed");
    return hist_.get();
  }

  static Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id = ArgU32(info, 0, "id");
    std::shared_ptr<Histogram> h = GlobalRegistry().Find(id);
    if (!h) throw MakeError(env, Status::kNotFound, "Histogram.attach(" + std::to_string(id) + "): no live histogram has this id");
    std::shared_ptr<Histogram> copy = h;
    auto ext = Napi::External<std::shared_ptr<Histogram>>::New(env, &copy);
    return AddonOf(env)->histogram_ctor.New({ext, Napi::Number::New(env, id)});
  }

  // acquireShard() -> Float64Array over an exclusive shard (layout in histogram.h).
  Napi::Value AcquireShard(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Histogram* h = Checked(env);
    double* shard = nullptr;
    uint32_t slot = 0;
    Status s = h->AcquireShard(&shard, &slot);
    if (!Ok(s)) ThrowStatus(env, s, "Histogram.acquireShard (at most " + std::to_string(kMaxShards) + " writers at once)");
    auto* lease = new ShardLease{hist_, slot};
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, shard, kShardDoubles * sizeof(double), ReleaseLease, lease);
    return Napi::Float64Array::New(env, kShardDoubles, ab, 0);
  }

  // releaseShard(shard): detaching the buffer drops V8's hold, which runs the lease's
  // finalizer (slot released, counts kept). Releasing twice does nothing.
  Napi::Value ReleaseShard(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto shard = ArgTypedArrayOf<double>(info, 0, "shard", napi_float64_array, "Float64Array");
    Napi::ArrayBuffer ab = shard.ArrayBuffer();
    if (!ab.IsDetached()) ab.Detach();
    return env.Undefined();
  }

#ifdef MYELIN_TEST_HOOKS
  // recordNative(value, times = 1, threads = 0), test build only: records from native
  // code (the bucket math the JS recorder must match); with threads > 0, from that many
  // native threads at once. If a thread start is refused, the threads already started
  // are joined (their records stay) and ERR_RESOURCE_EXHAUSTED is thrown.
  Napi::Value RecordNative(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Histogram* h = Checked(env);
    double v = ArgNumber(info, 0, "value");
    if (v < 0) ThrowInvalid(env, "value must be non-negative");
    uint32_t times = info.Length() > 1 && !info[1].IsUndefined() ? ArgU32(info, 1, "times") : 1;
    uint32_t threads = info.Length() > 2 && !info[2].IsUndefined() ? ArgU32(info, 2, "threads", 64) : 0;
    const uint64_t value = v >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(v);
    if (threads == 0) {
      for (uint32_t i = 0; i < times; ++i) h->Record(value);
      return env.Undefined();
    }
    std::vector<std::thread> ts;
    ts.reserve(threads);  // so push_back never throws with a started thread in hand
    try {
      for (uint32_t t = 0; t < threads; ++t)
        ts.push_back(StartThread(env, "Histogram.recordNative", [h, value, times] {
          for (uint32_t i = 0; i < times; ++i) h->Record(value);
        }));
    } catch (...) {
      for (auto& t : ts) t.join();
      throw;
    }
    for (auto& t : ts) t.join();
    return env.Undefined();
  }
#endif

  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Histogram* h = Checked(env);
    Status s = h->SnapshotInto(&snap_);
    if (!Ok(s)) ThrowStatus(env, s, "Histogram.snapshot");
    Napi::Object o = Napi::Object::New(env);
    o.Set("count", Napi::Number::New(env, static_cast<double>(snap_.count())));
    o.Set("sum", Napi::Number::New(env, snap_.sum()));
    o.Set("min", Napi::Number::New(env, static_cast<double>(snap_.min())));
    o.Set("max", Napi::Number::New(env, static_cast<double>(snap_.max())));
    o.Set("mean", Napi::Number::New(env, snap_.mean()));
    o.Set("p50", Napi::Number::New(env, snap_.ValueAtPercentile(50)));
    o.Set("p90", Napi::Number::New(env, snap_.ValueAtPercentile(90)));
    o.Set("p99", Napi::Number::New(env, snap_.ValueAtPercentile(99)));
    o.Set("p999", Napi::Number::New(env, snap_.ValueAtPercentile(99.9)));
    return o;
  }

  Napi::Value ValueAtPercentile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Histogram* h = Checked(env);
    double p = ArgNumber(info, 0, "percentile");
    if (p < 0 || p > 100) ThrowInvalid(env, "percentile must be within 0..100");
    Status s = h->SnapshotInto(&snap_);
    if (!Ok(s)) ThrowStatus(env, s, "Histogram.valueAtPercentile");
    return Napi::Number::New(env, snap_.ValueAtPercentile(p));
  }

  Napi::Value Reset(const Napi::CallbackInfo& info) {
    Checked(info.Env())->Reset();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    hist_.reset();
    return info.Env().Undefined();
  }

  Napi::Value Id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), id_); }

  std::shared_ptr<Histogram> hist_;
  uint32_t id_ = 0;
  HistogramSnapshot snap_;
};

}  // namespace

void InitHistogram(Napi::Env env, Napi::Object exports, MyelinAddon* addon) {
  Napi::Function ctor = HistogramWrap::Define(env);
  addon->histogram_ctor = Napi::Persistent(ctor);
  exports.Set("Histogram", ctor);
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("subBucketHalfCountMagnitude", Napi::Number::New(env, kSubBucketHalfCountMagnitude));
  layout.Set("subBucketCount", Napi::Number::New(env, kSubBucketCount));
  layout.Set("bucketCount", Napi::Number::New(env, kBucketCount));
  layout.Set("countsLen", Napi::Number::New(env, kCountsLen));
  layout.Set("shardDoubles", Napi::Number::New(env, kShardDoubles));
  layout.Set("highestTrackable", Napi::Number::New(env, static_cast<double>(kHighestTrackable)));
  exports.Set("histogramLayout", layout);
}

}  // namespace myelin::binding
