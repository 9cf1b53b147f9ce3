// LoadClient: the JS handle of io::LoadClient (native/src/io/load_client.h), the load
// generator of `myelin bench gateway`. JS only configures, starts, polls and stops it:
// frames, connections and latency records never cross.
//
//   const lc = new addon.LoadClient({ port, mode: 'ingest' | 'idle' | 'latency', ... });
//   lc.start();                    // threads connect and upgrade; stats().phase 'connecting' -> 'ready'
//   lc.go(durationMs, warmupMs);   // the load phase; phase 'running' -> 'done'
//   lc.stats();                    // counters and latency percentiles (ns), any time
//   lc.stop();                     // joins the threads; idempotent (also the env cleanup hook)
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "hist/histogram.h"
#include "io/load_client.h"
#include "thread_start.h"

namespace myelin::binding {
namespace {

const char* PhaseName(io::LoadPhase p) {
  switch (p) {
    case io::LoadPhase::kConnecting: return "connecting";
    case io::LoadPhase::kReady: return "ready";
    case io::LoadPhase::kRunning: return "running";
    case io::LoadPhase::kDone: return "done";
  }
  return "unknown";
}

class LoadWrap : public Napi::ObjectWrap<LoadWrap>, public Handle {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "LoadClient",
                       {
                           InstanceMethod("start", &LoadWrap::Start),
                           InstanceMethod("go", &LoadWrap::Go),
                           InstanceMethod("stats", &LoadWrap::Stats),
                           InstanceMethod("stop", &LoadWrap::StopJs),
                       });
  }

  explicit LoadWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LoadWrap>(info), reg_(info.Env(), this) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) ThrowInvalid(env, "LoadClient(options)");
    Napi::Object o = info[0].As<Napi::Object>();
    io::LoadOptions opts;
    auto num = [&](const char* k, double def, double lo, double hi) -> double {
      Napi::Value v = o.Get(k);
      if (v.IsUndefined()) return def;
      if (!v.IsNumber()) ThrowInvalid(env, std::string(k) + " must be a number");
      const double d = v.As<Napi::Number>().DoubleValue();
      if (!(d >= lo && d <= hi)) ThrowInvalid(env, std::string(k) + " is out of range");
      return d;
    };
    auto str = [&](const char* k, const std::string& def) -> std::string {
      Napi::Value v = o.Get(k);
      if (v.IsUndefined()) return def;
      if (!v.IsString()) ThrowInvalid(env, std::string(k) + " must be a string");
      return v.As<Napi::String>().Utf8Value();
    };
    opts.host = str("host", opts.host);
    opts.port = static_cast<uint16_t>(num("port", 0, 1, 65535));
    opts.path = str("path", opts.path);
    const std::string mode = str("mode", "ingest");
    if (mode == "ingest") opts.mode = io::LoadMode::kIngest;
    else if (mode == "idle") opts.mode = io::LoadMode::kIdle;
    else if (mode == "latency") opts.mode = io::LoadMode::kLatency;
    else ThrowInvalid(env, "mode must be 'ingest', 'idle' or 'latency'");
    const std::string backend = str("io", "epoll");
    if (backend == "epoll") opts.backend = io::Backend::kEpoll;
    else if (backend == "io_uring") opts.backend = io::Backend::kIoUring;
    else ThrowInvalid(env, "io must be 'epoll' or 'io_uring'");
    opts.connections = static_cast<uint32_t>(num("connections", opts.connections, 1, 1 << 20));
    opts.threads = static_cast<uint32_t>(num("threads", opts.threads, 1, 64));
    opts.batch = static_cast<uint32_t>(num("batch", opts.batch, 1, 1 << 16));
    opts.pub_frame = str("pubFrame", "");
    opts.sub_frame = str("subFrame", "");
    opts.pub_prefix = str("pubPrefix", "");
    opts.pub_suffix = str("pubSuffix", "");
    opts.rate = num("rate", opts.rate, 1e-3, 1e8);
    Status s = io::LoadClient::Create(opts, &client_);
    if (!Ok(s)) ThrowStatus(env, s, "LoadClient: bad options (a port, connections, and the frame for the mode)");
  }

  ~LoadWrap() override { Close(); }

  void Close() noexcept override {
    if (!client_) return;
    client_->Stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
    client_.reset();
  }

 private:
  io::LoadClient* Checked(Napi::Env env) {
    if (!client_) throw MakeError(env, Status::kClosed, "LoadClient is stopped");
    return client_.get();
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    io::LoadClient* c = Checked(env);
    if (!threads_.empty()) ThrowInvalid(env, "LoadClient: start() was already called");
    const uint32_t n = c->threads() + (c->has_publisher() ? 1 : 0);
    threads_.reserve(n);
    try {
      for (uint32_t i = 0; i < c->threads(); ++i)
        threads_.push_back(StartThread(env, "LoadClient.start", [c, i] { c->Run(i); }));
      if (c->has_publisher()) threads_.push_back(StartThread(env, "LoadClient.start", [c] { c->RunPublisher(); }));
    } catch (...) {
      Close();
      throw;
    }
    return env.Undefined();
  }

  Napi::Value Go(const Napi::CallbackInfo& info) {
    io::LoadClient* c = Checked(info.Env());
    const uint32_t duration = ArgU32(info, 0, "durationMs");
    const uint32_t warmup = info.Length() > 1 && !info[1].IsUndefined() ? ArgU32(info, 1, "warmupMs") : 0;
    c->Go(duration, warmup);
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    io::LoadClient* c = Checked(env);
    const io::LoadStats st = c->Stats();
    Napi::Object o = Napi::Object::New(env);
    auto set = [&](Napi::Object& t, const char* k, double v) { t.Set(k, Napi::Number::New(env, v)); };
    o.Set("phase", Napi::String::New(env, PhaseName(st.phase)));
    set(o, "upgraded", static_cast<double>(st.upgraded));
    set(o, "failed", static_cast<double>(st.failed));
    set(o, "closed", static_cast<double>(st.closed));
    set(o, "sent", static_cast<double>(st.sent));
    set(o, "received", static_cast<double>(st.received));
    set(o, "recorded", static_cast<double>(st.recorded));
    set(o, "bytesIn", static_cast<double>(st.bytes_in));
    set(o, "publisherLagNs", static_cast<double>(st.publisher_lag_ns));
    if (const Histogram* h = c->histogram()) {
      const HistogramSnapshot snap = h->Snapshot();
      Napi::Object l = Napi::Object::New(env);
      set(l, "count", static_cast<double>(snap.count()));
      set(l, "min", static_cast<double>(snap.min()));
      set(l, "mean", snap.mean());
      set(l, "p50", snap.ValueAtPercentile(50));
      set(l, "p99", snap.ValueAtPercentile(99));
      set(l, "p999", snap.ValueAtPercentile(99.9));
      set(l, "max", static_cast<double>(snap.max()));
      o.Set("latency", l);
    }
    return o;
  }

  Napi::Value StopJs(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  HandleRegistration reg_;
  std::unique_ptr<io::LoadClient> client_;
  std::vector<std::thread> threads_;
};

}  // namespace

void InitLoad(Napi::Env env, Napi::Object exports, MyelinAddon*) {
  exports.Set("LoadClient", LoadWrap::Define(env));
}

}  // namespace myelin::binding
