// GatewayServer: the JS handle of io::Server (native/src/io/server.h). Setup, thread
// start/stop, wake-ups and stats cross here; events never do: they travel through the
// ByteRings in the SharedArrayBuffers JS passes in, one wake-up per batch each way.
//
// Ownership: the wrap holds references to every ring buffer until Close() has joined
// the I/O threads, so the memory outlives every native access to it.
// Wake-ups to JS: one thread-safe function; the I/O thread calls it only on an
// idle-to-busy transition of a ring (byte_ring.h), so calls are per batch.
#include <atomic>
#include <initializer_list>
#include <utility>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "io/records.h"
#include "io/server.h"
#include "queue/byte_ring.h"
#include "thread_start.h"

namespace myelin::binding {
namespace {

class GatewayWrap : public Napi::ObjectWrap<GatewayWrap>, public Handle, public io::JsWaker {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "GatewayServer",
                       {
                           InstanceMethod("listen", &GatewayWrap::Listen),
                           InstanceMethod("wake", &GatewayWrap::WakeJsCall),
                           InstanceMethod("stopAccepting", &GatewayWrap::StopAccepting),
                           InstanceMethod("closeWebSockets", &GatewayWrap::CloseWebSockets),
                           InstanceMethod("close", &GatewayWrap::CloseJs),
                           InstanceMethod("stats", &GatewayWrap::Stats),
                           InstanceAccessor("backend", &GatewayWrap::BackendName, nullptr),
                       });
  }

  // new GatewayServer(options, rings: [{ ingress: Uint8Array, egress: Uint8Array }], onWake(thread))
  explicit GatewayWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GatewayWrap>(info), reg_(info.Env(), this) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsArray() || !info[2].IsFunction())
      ThrowInvalid(env, "GatewayServer(options, rings, onWake)");
    Napi::Object o = info[0].As<Napi::Object>();
    io::ServerOptions opts;
    auto num = [&](const char* k, uint32_t def) -> uint32_t {
      Napi::Value v = o.Get(k);
      if (v.IsUndefined()) return def;
      if (!v.IsNumber()) ThrowInvalid(env, std::string(k) + " must be a number");
      double d = v.As<Napi::Number>().DoubleValue();
      if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
        ThrowInvalid(env, std::string(k) + " must be an integer from 0 to 2^32-1");
      return static_cast<uint32_t>(d);
    };
    Napi::Value host = o.Get("host");
    if (host.IsString()) opts.host = host.As<Napi::String>().Utf8Value();
    uint32_t port = num("port", 8080);
    if (port > 65535) ThrowInvalid(env, "port must be from 0 to 65535");
    opts.port = static_cast<uint16_t>(port);
    opts.io_threads = num("ioThreads", 1);
    Napi::Value backend = o.Get("io");
    std::string b = backend.IsString() ? backend.As<Napi::String>().Utf8Value() : "epoll";
    if (b == "io_uring") opts.backend = io::Backend::kIoUring;
    else if (b == "epoll") opts.backend = io::Backend::kEpoll;
    else ThrowInvalid(env, "io must be 'epoll' or 'io_uring'");
    opts.pin_threads = o.Get("pin").ToBoolean();
    opts.max_connections = num("maxConnections", opts.max_connections);
    opts.max_payload_bytes = num("maxPayloadBytes", opts.max_payload_bytes);
    opts.max_head_bytes = num("maxHeadBytes", opts.max_head_bytes);
    opts.max_headers = num("maxHeaders", opts.max_headers);
    opts.max_buffered_bytes = num("maxBufferedBytes", opts.max_buffered_bytes);
    opts.head_timeout_ms = num("headTimeoutMs", opts.head_timeout_ms);
    opts.idle_timeout_ms = num("idleTimeoutMs", opts.idle_timeout_ms);
    opts.ping_interval_ms = num("pingIntervalMs", opts.ping_interval_ms);
    opts.pub_per_second = num("pubPerSecond", 0);
    opts.pub_per_second_per_token = num("pubPerSecondPerToken", 0);
    Napi::Value tokens = o.Get("tokens");
    if (tokens.IsArray()) {
      Napi::Array a = tokens.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value t = a.Get(i);
        if (!t.IsString()) ThrowInvalid(env, "tokens must be strings");
        opts.tokens.push_back(t.As<Napi::String>().Utf8Value());
      }
    }
    Napi::Array rings = info[1].As<Napi::Array>();
    std::vector<io::ThreadRings> tr;
    for (uint32_t i = 0; i < rings.Length(); ++i) {
      Napi::Value rv = rings.Get(i);
      if (!rv.IsObject()) ThrowInvalid(env, "rings[i] must be { ingress, egress }");
      Napi::Object r = rv.As<Napi::Object>();
      Napi::Value in = r.Get("ingress"), eg = r.Get("egress");
      if (!in.IsTypedArray() || !eg.IsTypedArray()) ThrowInvalid(env, "rings[i].ingress/egress must be Uint8Arrays");
      Napi::Uint8Array ia = in.As<Napi::Uint8Array>(), ea = eg.As<Napi::Uint8Array>();
      tr.push_back({ia.Data(), ia.ByteLength(), ea.Data(), ea.ByteLength()});
      buffers_.push_back(Napi::Persistent(in.As<Napi::Object>()));
      buffers_.push_back(Napi::Persistent(eg.As<Napi::Object>()));
    }
    Status s = io::Server::Create(opts, tr, this, &server_);
    if (!Ok(s))
      ThrowStatus(env, s,
                  s == Status::kUnsupported ? "GatewayServer: io_uring is not usable on this system"
                                            : "GatewayServer: bad options or rings");
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "myelin.gateway.wake", 0, 1);
    live_ = std::make_shared<std::atomic<bool>>(true);
  }

  ~GatewayWrap() override { Close(); }

  // io::JsWaker, on an I/O thread.
  void WakeJs(uint32_t thread) noexcept override {
    std::shared_ptr<std::atomic<bool>> live = live_;
    tsfn_.NonBlockingCall([live, thread](Napi::Env env, Napi::Function cb) {
      if (!live->load(std::memory_order_acquire)) return;
      try {
        cb.Call({Napi::Number::New(env, thread)});
      } catch (const Napi::Error& e) {
        napi_fatal_exception(env, e.Value());
      }
    });
  }

  void Close() noexcept override {
    if (closed_) return;
    closed_ = true;
    if (server_) {
      server_->Stop();
      for (auto& t : threads_)
        if (t.joinable()) t.join();
      threads_.clear();
      final_ = server_->Stats();  // stats() still answers after close, with the last counts
      server_.reset();
    }
    if (live_) live_->store(false, std::memory_order_release);
    if (tsfn_) {
      tsfn_.Release();
      tsfn_ = Napi::ThreadSafeFunction();
    }
    // buffers_ are released with the wrap (their Reset needs the JS thread, which
    // Close always runs on: from close(), the finalizer or the env cleanup hook).
    for (auto& b : buffers_) b.Reset();
    buffers_.clear();
  }

 private:
  io::Server* Checked(Napi::Env env) {
    if (closed_ || !server_) throw MakeError(env, Status::kClosed, "GatewayServer is closed");
    return server_.get();
  }

  // listen() -> port; binds and starts the I/O threads.
  Napi::Value Listen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    io::Server* s = Checked(env);
    if (!threads_.empty()) ThrowInvalid(env, "GatewayServer: listen() was already called");
    std::string error;
    uint16_t port = 0;
    Status st = s->Listen(&error, &port);
    if (!Ok(st)) throw MakeError(env, st, error);
    threads_.reserve(s->threads());
    for (uint32_t i = 0; i < s->threads(); ++i) {
      try {
        threads_.push_back(StartThread(env, "GatewayServer.listen", [s, i] { s->Run(i); }));
      } catch (...) {
        s->Stop();
        for (auto& t : threads_)
          if (t.joinable()) t.join();
        threads_.clear();
        throw;
      }
    }
    return Napi::Number::New(env, port);
  }

  Napi::Value WakeJsCall(const Napi::CallbackInfo& info) {
    io::Server* s = Checked(info.Env());
    s->Wake(ArgU32(info, 0, "thread"));
    return info.Env().Undefined();
  }

  Napi::Value StopAccepting(const Napi::CallbackInfo& info) {
    Checked(info.Env())->StopAccepting();
    return info.Env().Undefined();
  }

  Napi::Value CloseWebSockets(const Napi::CallbackInfo& info) {
    uint32_t code = ArgU32(info, 0, "code", 4999);
    Checked(info.Env())->CloseWebSockets(static_cast<uint16_t>(code));
    return info.Env().Undefined();
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    io::ServerStats st = closed_ ? final_ : Checked(env)->Stats();
    Napi::Object o = Napi::Object::New(env);
    auto set = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    set("accepted", st.accepted);
    set("refused", st.refused);
    set("open", st.open);
    set("websockets", st.websockets);
    set("httpRequests", st.http_requests);
    set("framesIn", st.frames_in);
    set("framesOut", st.frames_out);
    set("bytesIn", st.bytes_in);
    set("bytesOut", st.bytes_out);
    set("eventsIn", st.events_in);
    set("errorsSent", st.errors_sent);
    set("rateLimited", st.rate_limited);
    set("authFailures", st.auth_failures);
    set("ingressStalls", st.ingress_stalls);
    set("stateBytes", st.state_bytes);
    Napi::Object closes = Napi::Object::New(env);
    for (int i = 0; i < io::kCloseReasonCount; ++i)
      closes.Set(io::CloseReasonName(static_cast<io::CloseReason>(i)),
                 Napi::Number::New(env, static_cast<double>(st.closes[i])));
    o.Set("closes", closes);
    return o;
  }

  Napi::Value BackendName(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), server_ ? io::BackendName(server_->backend()) : "closed");
  }

  HandleRegistration reg_;
  std::unique_ptr<io::Server> server_;
  std::vector<std::thread> threads_;
  std::vector<Napi::ObjectReference> buffers_;
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<std::atomic<bool>> live_;
  io::ServerStats final_;
  bool closed_ = false;
};

Napi::Value IoUringUsableJs(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), io::IoUringUsable());
}

}  // namespace

// The record and ring layout as the native side compiled it, for
// test/gateway-records.test.ts to compare with lib/gateway/records.ts and
// lib/bus/byte-ring.ts.
Napi::Object Layout(Napi::Env env) {
  auto obj = [&](std::initializer_list<std::pair<const char*, double>> kv) {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& [k, v] : kv) o.Set(k, Napi::Number::New(env, v));
    return o;
  };
  Napi::Object l = Napi::Object::New(env);
  l.Set("inHeader", Napi::Number::New(env, io::kIngressHeader));
  l.Set("outHeader", Napi::Number::New(env, io::kEgressHeader));
  l.Set("noPriority", Napi::Number::New(env, io::kNoPriority));
  l.Set("in", obj({{"PUB", io::kInPub}, {"SUB", io::kInSub}, {"UNSUB", io::kInUnsub}, {"REQ", io::kInReq},
                   {"WS_CLOSED", io::kInWsClosed}, {"HTTP_REQUEST", io::kInHttpRequest},
                   {"HTTP_CLOSED", io::kInHttpClosed}, {"EVENTS_END", io::kInEventsEnd}}));
  l.Set("inFlag", obj({{"HTTP", io::kInFlagHttp}, {"TOKEN_SHIFT", io::kInFlagTokenShift}}));
  l.Set("out", obj({{"HTTP", io::kOutHttp}, {"WS_TEXT", io::kOutWsText}, {"FANOUT", io::kOutFanout},
                    {"WS_CLOSE", io::kOutWsClose}, {"CLOSE", io::kOutClose}}));
  l.Set("outFlag", obj({{"END", io::kOutFlagEnd}, {"CLOSE_AFTER", io::kOutFlagCloseAfter}}));
  l.Set("ring", obj({{"HEADER_BYTES", kByteRingHeaderBytes}, {"WRITE", ByteRingWord::kWrite},
                     {"READ", ByteRingWord::kRead}, {"DATA_SEQ", ByteRingWord::kDataSeq},
                     {"CONSUMER_SLEEPING", ByteRingWord::kConsumerSleeping}, {"ROOM_SEQ", ByteRingWord::kRoomSeq},
                     {"PRODUCER_WAITING", ByteRingWord::kProducerWaiting}, {"DONE", ByteRingWord::kDone},
                     {"CLOSED", ByteRingWord::kClosed}, {"BUSY", ByteRingWord::kBusy}, {"WRAP", kByteRingWrap}}));
  return l;
}

void InitGateway(Napi::Env env, Napi::Object exports, MyelinAddon*) {
  exports.Set("GatewayServer", GatewayWrap::Define(env));
  exports.Set("gatewayLayout", Layout(env));
  exports.Set("ioUringUsable", Napi::Function::New(env, IoUringUsableJs, "ioUringUsable"));
}

}  // namespace myelin::binding
