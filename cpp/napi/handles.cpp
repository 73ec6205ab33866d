// The handles a model run takes: RunControl (cancel and progress), KvPool
// (per-sequence KV caches) and CandidateSet (candidate keys and values), and
// the functions that turn JS values back into them. Each wrapper holds its
// native object through a shared_ptr, as does any run that uses it.
#include <memory>
#include <string>

#include "common.h"

namespace focus::napi {

namespace {

// ---- RunControl -----------------------------------------------------------------

class RunControlWrap : public Napi::ObjectWrap<RunControlWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "RunControl",
                                   {InstanceMethod("cancel", &RunControlWrap::Cancel),
                                    InstanceAccessor("cancelled", &RunControlWrap::Cancelled, nullptr),
                                    InstanceAccessor("tokensDone", &RunControlWrap::Done, nullptr),
                                    InstanceAccessor("tokensTotal", &RunControlWrap::Total, nullptr)});
    data(env).run_control = Napi::Persistent(f);
    exports.Set("RunControl", f);
  }
  explicit RunControlWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<RunControlWrap>(info), ctl(std::make_shared<RunControl>()) {}

  std::shared_ptr<RunControl> ctl;

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    ctl->cancel = true;
    return info.Env().Undefined();
  }
  Napi::Value Cancelled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), ctl->cancel.load()); }
  Napi::Value Done(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(ctl->tokens_done)); }
  Napi::Value Total(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(ctl->tokens_total)); }
};

// ---- KvPool / CandidateSet --------------------------------------------------------

class KvPoolWrap : public Napi::ObjectWrap<KvPoolWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "KvPool",
                                   {InstanceMethod("length", &KvPoolWrap::Length),
                                    InstanceMethod("truncate", &KvPoolWrap::Truncate),
                                    InstanceMethod("dispose", &KvPoolWrap::Dispose),
                                    InstanceAccessor("slots", &KvPoolWrap::Slots, nullptr),
                                    InstanceAccessor("capacity", &KvPoolWrap::Capacity, nullptr),
                                    InstanceAccessor("bytes", &KvPoolWrap::Bytes, nullptr),
                                    InstanceAccessor("dtype", &KvPoolWrap::Dtype, nullptr),
                                    InstanceAccessor("disposed", &KvPoolWrap::Disposed, nullptr)});
    data(env).kv_pool = Napi::Persistent(f);
    exports.Set("KvPool", f);
  }
  explicit KvPoolWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvPoolWrap>(info) {}

  std::shared_ptr<KvPool> pool;

  KvPool& get() const {
    if (!pool) throw Error("this KV cache pool has been disposed");
    return *pool;
  }

 private:
  int slot_arg(const Napi::CallbackInfo& info) {
    KvPool& p = idle();
    return int_arg(info, 0, "slot", 0, p.n_slot() - 1);
  }
  // The pool, when no run is using it (its lengths change on the run's thread).
  KvPool& idle() const {
    KvPool& p = get();
    if (p.in_use) throw Error("this KV cache pool is in use by a run: await the run first");
    return p;
  }
  Napi::Value Length(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), get().length[size_t(slot_arg(info))]);
    });
  }
  Napi::Value Truncate(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      int s = slot_arg(info);
      int n = int_arg(info, 1, "truncate(slot, length): length", 0, get().length[size_t(s)]);
      get().length[size_t(s)] = n;
      return info.Env().Undefined();
    });
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    pool.reset();
    return info.Env().Undefined();
  }
  Napi::Value Slots(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool ? pool->n_slot() : 0); }
  Napi::Value Capacity(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), pool ? pool->capacity() : 0);
  }
  Napi::Value Bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), pool ? double(pool->bytes()) : 0);
  }
  Napi::Value Dtype(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), pool ? dtype_js(pool->dtype()) : "");
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !pool); }
};

class CandidateSetWrap : public Napi::ObjectWrap<CandidateSetWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "CandidateSet",
                                   {InstanceMethod("dispose", &CandidateSetWrap::Dispose),
                                    InstanceMethod("filled", &CandidateSetWrap::Filled),
                                    InstanceAccessor("slots", &CandidateSetWrap::Slots, nullptr),
                                    InstanceAccessor("bytes", &CandidateSetWrap::Bytes, nullptr),
                                    InstanceAccessor("disposed", &CandidateSetWrap::Disposed, nullptr)});
    data(env).candidate_set = Napi::Persistent(f);
    exports.Set("CandidateSet", f);
  }
  explicit CandidateSetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CandidateSetWrap>(info) {}

  std::shared_ptr<CandidateSet> set;

  CandidateSet& get() const {
    if (!set) throw Error("this candidate set has been disposed");
    return *set;
  }

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    set.reset();
    return info.Env().Undefined();
  }
  Napi::Value Filled(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if (get().in_use) throw Error("this candidate set is in use by a run: await the run first");
      int n = 0;
      for (uint8_t f : get().filled) n += f;
      return Napi::Number::New(info.Env(), n);
    });
  }
  Napi::Value Slots(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), set ? set->n_slot() : 0); }
  Napi::Value Bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), set ? double(set->bytes()) : 0);
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !set); }
};

}  // namespace

void init_handles(Napi::Env env, Napi::Object exports) {
  RunControlWrap::Init(env, exports);
  KvPoolWrap::Init(env, exports);
  CandidateSetWrap::Init(env, exports);
}

std::shared_ptr<RunControl> run_control_arg(Napi::Env env, const Napi::Value& v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  if (v.IsObject() && v.As<Napi::Object>().InstanceOf(data(env).run_control.Value()))
    return RunControlWrap::Unwrap(v.As<Napi::Object>())->ctl;
  throw Error(str(what, " must be a RunControl"));
}

bool unwrap_kv_pool(Napi::Env env, const Napi::Value& v, std::shared_ptr<KvPool>& out) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data(env).kv_pool.Value())) return false;
  out = KvPoolWrap::Unwrap(v.As<Napi::Object>())->pool;
  return true;
}

bool unwrap_candidate_set(Napi::Env env, const Napi::Value& v, std::shared_ptr<CandidateSet>& out) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data(env).candidate_set.Value())) return false;
  out = CandidateSetWrap::Unwrap(v.As<Napi::Object>())->set;
  return true;
}

Napi::Object wrap_kv_pool(Napi::Env env, std::shared_ptr<KvPool> pool) {
  Napi::Object o = data(env).kv_pool.New({});
  KvPoolWrap::Unwrap(o)->pool = std::move(pool);
  return o;
}

Napi::Object wrap_candidate_set(Napi::Env env, std::shared_ptr<CandidateSet> set) {
  Napi::Object o = data(env).candidate_set.New({});
  CandidateSetWrap::Unwrap(o)->set = std::move(set);
  return o;
}

}  // namespace focus::napi
