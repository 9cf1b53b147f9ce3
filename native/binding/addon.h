// Per-environment state of the addon. The addon is context-aware: the main thread and
// every worker that loads it get their own MyelinAddon (Napi::Addon instance data), so
// nothing here is static.
//
// Teardown: every wrap that owns a thread, a thread-safe function or shared memory is
// a Handle registered in the environment's HandleSet. The env cleanup hook closes them
// all (joining threads) before V8 goes away, which is what makes worker.terminate()
// safe. Close() is idempotent, so a user's close() followed by the hook is harmless.
// The HandleSet is shared_ptr-owned because wraps may be finalized after the addon's
// instance data during teardown.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>
#include <unordered_set>

namespace myelin::binding {

class Handle {
 public:
  virtual ~Handle() = default;
  virtual void Close() noexcept = 0;
};

class HandleSet {
 public:
  void Add(Handle* h) {
    std::lock_guard<std::mutex> g(mu_);
    handles_.insert(h);
  }
  void Remove(Handle* h) {
    std::lock_guard<std::mutex> g(mu_);
    handles_.erase(h);
  }
  void CloseAll() noexcept;

 private:
  std::mutex mu_;
  std::unordered_set<Handle*> handles_;
};

#ifdef MYELIN_TEST_HOOKS
// Test build only: the next `fail` thread starts after `pass` successful ones fail as a
// refused thread does (thread_start.h). Touched only on the environment's JS thread,
// which is the only thread that starts threads.
struct ThreadStartFaults {
  uint32_t pass = 0;
  uint32_t fail = 0;
  bool NextStartFails() {
    if (fail == 0) return false;
    if (pass > 0) {
      --pass;
      return false;
    }
    --fail;
    return true;
  }
};
#endif

class MyelinAddon : public Napi::Addon<MyelinAddon> {
 public:
  MyelinAddon(Napi::Env env, Napi::Object exports);
#ifdef MYELIN_TEST_HOOKS
  ThreadStartFaults thread_start_faults;
#endif

  std::shared_ptr<HandleSet> handles() const { return handles_; }
  // The TS MyelinError class, registered by lib/internal/native.ts at load.
  Napi::FunctionReference error_class;
  // Histogram.attach() constructs wraps from C++.
  Napi::FunctionReference histogram_ctor;

 private:
  Napi::Value SetErrorClass(const Napi::CallbackInfo& info);
  Napi::Value StatusTable(const Napi::CallbackInfo& info);
#ifdef MYELIN_TEST_HOOKS
  Napi::Value FailThreadStarts(const Napi::CallbackInfo& info);
  Napi::Value ThrowNative(const Napi::CallbackInfo& info);
#endif
  std::shared_ptr<HandleSet> handles_;
};

inline MyelinAddon* AddonOf(Napi::Env env) { return env.GetInstanceData<MyelinAddon>(); }

// Registers a handle for the life of a wrap; unregisters on destruction.
class HandleRegistration {
 public:
  HandleRegistration(Napi::Env env, Handle* h) : set_(AddonOf(env)->handles()), h_(h) { set_->Add(h_); }
  ~HandleRegistration() { set_->Remove(h_); }
  HandleRegistration(const HandleRegistration&) = delete;
  HandleRegistration& operator=(const HandleRegistration&) = delete;

 private:
  std::shared_ptr<HandleSet> set_;
  Handle* h_;
};

// Each wrap file defines one of these; addon.cc calls them in order.
void InitRing(Napi::Env env, Napi::Object exports, MyelinAddon* addon);
void InitSlab(Napi::Env env, Napi::Object exports, MyelinAddon* addon);
void InitHistogram(Napi::Env env, Napi::Object exports, MyelinAddon* addon);
void InitJson(Napi::Env env, Napi::Object exports, MyelinAddon* addon);
void InitMatcher(Napi::Env env, Napi::Object exports, MyelinAddon* addon);
void InitCpu(Napi::Env env, Napi::Object exports, MyelinAddon* addon);
void InitGateway(Napi::Env env, Napi::Object exports, MyelinAddon* addon);
void InitLoad(Napi::Env env, Napi::Object exports, MyelinAddon* addon);

}  // namespace myelin::binding
