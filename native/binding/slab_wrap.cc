// Slab blocks as JS ArrayBuffers. Ownership: each block escapes as an external
// ArrayBuffer whose finalizer frees it, so slab memory never reaches JS without one.
// The Slab itself lives in a refcounted holder: the wrap holds one reference and every
// outstanding block another, so a block collected after slab.close() (or after the
// environment went away) still frees into a live slab. release(block) detaches the
// buffer at once, which drops V8's hold without waiting for a GC; Node then runs the
// finalizer from an immediate, so the block is back in the slab one loop turn later.
#include <atomic>
#include <memory>
#include <vector>

#include "addon.h"
#include "alloc/slab.h"
#include "errors.h"

namespace myelin::binding {
namespace {

struct SlabHolder {
  std::unique_ptr<Slab> slab;
  std::atomic<int64_t> refs{1};
  void Unref() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

void FreeBlock(Napi::Env, void* data, SlabHolder* holder) {
  holder->slab->Free(data);
  holder->Unref();
}

class SlabWrap : public Napi::ObjectWrap<SlabWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Slab",
                       {
                           InstanceMethod("alloc", &SlabWrap::Alloc),
                           InstanceMethod("release", &SlabWrap::Release),
                           InstanceMethod("classSizeFor", &SlabWrap::ClassSizeFor),
                           InstanceMethod("stats", &SlabWrap::Stats),
                           InstanceMethod("close", &SlabWrap::Close),
                       });
  }

  // new Slab({ sizeClasses?, chunkBytes?, maxBytes? })
  explicit SlabWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SlabWrap>(info) {
    Napi::Env env = info.Env();
    SlabOptions opts;
    std::vector<uint32_t> classes;
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      if (!info[0].IsObject()) ThrowInvalid(env, "Slab(options): options must be an object");
      Napi::Object o = info[0].As<Napi::Object>();
      Napi::Value sc = o.Get("sizeClasses");
      if (!sc.IsUndefined()) {
        if (!sc.IsArray()) ThrowInvalid(env, "Slab(options): sizeClasses must be an array of byte sizes");
        Napi::Array a = sc.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) {
          Napi::Value v = a.Get(i);
          double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
          if (!(d >= 1 && d <= (1 << 24)) || d != static_cast<double>(static_cast<uint32_t>(d)))
            ThrowInvalid(env, "Slab(options): sizeClasses[" + std::to_string(i) + "] must be a positive integer");
          classes.push_back(static_cast<uint32_t>(d));
        }
        opts.class_sizes = classes;
      }
      Napi::Value cb = o.Get("chunkBytes");
      if (!cb.IsUndefined()) {
        double d = cb.IsNumber() ? cb.As<Napi::Number>().DoubleValue() : -1;
        if (!(d >= 1) || d != static_cast<double>(static_cast<uint64_t>(d)))
          ThrowInvalid(env, "Slab(options): chunkBytes must be a positive integer");
        opts.chunk_bytes = static_cast<size_t>(d);
      }
      Napi::Value mb = o.Get("maxBytes");
      if (!mb.IsUndefined()) {
        double d = mb.IsNumber() ? mb.As<Napi::Number>().DoubleValue() : -1;
        if (!(d >= 0) || d != static_cast<double>(static_cast<uint64_t>(d)))
          ThrowInvalid(env, "Slab(options): maxBytes must be a non-negative integer");
        opts.max_bytes = static_cast<size_t>(d);
      }
    }
    std::unique_ptr<Slab> slab;
    Status s = Slab::Create(opts, &slab);
    if (!Ok(s)) ThrowStatus(env, s, "Slab(options)");
    holder_ = new SlabHolder();
    holder_->slab = std::move(slab);
  }

  ~SlabWrap() override { Drop(); }

 private:
  void Drop() noexcept {
    if (holder_) {
      holder_->Unref();
      holder_ = nullptr;
    }
  }

  Slab* Checked(Napi::Env env) {
    if (!holder_) throw MakeError(env, Status::kClosed, "Slab is closed");
    return holder_->slab.get();
  }

  // alloc(bytes) -> ArrayBuffer of the class size; ERR_INVALID_ARGUMENT over the
  // largest class, ERR_OUT_OF_MEMORY at maxBytes or when memory runs out.
  Napi::Value Alloc(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Slab* slab = Checked(env);
    uint32_t bytes = ArgU32(info, 0, "bytes");
    if (bytes > slab->largest_class())
      ThrowInvalid(env, "alloc(" + std::to_string(bytes) + "): largest size class is " +
                            std::to_string(slab->largest_class()) + " bytes");
    void* p = slab->Allocate(bytes);
    if (!p) ThrowStatus(env, Status::kOutOfMemory, "alloc(" + std::to_string(bytes) + ")");
    holder_->refs.fetch_add(1, std::memory_order_relaxed);
    return Napi::ArrayBuffer::New(env, p, slab->ClassSizeFor(bytes), FreeBlock, holder_);
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArrayBuffer()) ThrowInvalid(env, "release(block): block must be an ArrayBuffer from alloc()");
    Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
    if (ab.IsDetached()) return env.Undefined();  // released twice: nothing to do
    ab.Detach();
    return env.Undefined();
  }

  Napi::Value ClassSizeFor(const Napi::CallbackInfo& info) {
    Slab* slab = Checked(info.Env());
    return Napi::Number::New(info.Env(), static_cast<double>(slab->ClassSizeFor(ArgU32(info, 0, "bytes"))));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SlabStats st = Checked(env)->Stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("chunks", Napi::Number::New(env, static_cast<double>(st.chunks)));
    o.Set("freeChunks", Napi::Number::New(env, static_cast<double>(st.free_chunks)));
    o.Set("bytesReserved", Napi::Number::New(env, static_cast<double>(st.bytes_reserved)));
    o.Set("blocksInUse", Napi::Number::New(env, static_cast<double>(st.blocks_in_use)));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Drop();
    return info.Env().Undefined();
  }

  SlabHolder* holder_ = nullptr;
};

}  // namespace

void InitSlab(Napi::Env env, Napi::Object exports, MyelinAddon*) {
  Napi::Function ctor = SlabWrap::Define(env);
  exports.Set("Slab", ctor);
}

}  // namespace myelin::binding
