// Shared by the binding's files (see addon.cpp for which does what): errors,
// the asynchronous worker, the per-environment constructors, and what each
// file offers the others.
#pragma once

#include <napi.h>

#include <exception>
#include <memory>
#include <string>

#include "../core/error.h"
#include "../core/model.h"

namespace focus::napi {

// Turns a C++ exception into a JS Error; OutOfMemory keeps its numbers.
inline Napi::Error to_js_error(Napi::Env env, const std::exception_ptr& ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const OutOfMemory& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("code", "ERR_FOCUSLLM_OUT_OF_MEMORY");
    err.Set("bytesNeeded", Napi::Number::New(env, double(e.needed)));
    err.Set("bytesAvailable", Napi::Number::New(env, double(e.available)));
    return err;
  } catch (const Cancelled& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("name", "AbortError");
    err.Set("code", "ABORT_ERR");
    return err;
  } catch (const std::bad_alloc&) {
    Napi::Error err = Napi::Error::New(env, "out of memory (a host allocation failed)");
    err.Set("code", "ERR_FOCUSLLM_OUT_OF_MEMORY");
    return err;
  } catch (const std::exception& e) {
    return Napi::Error::New(env, e.what());
  } catch (...) {
    return Napi::Error::New(env, "unknown native error");
  }
}

// Runs fn, converting C++ exceptions to a thrown JS Error.
template <class F>
inline Napi::Value guard(Napi::Env env, F&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    to_js_error(env, std::current_exception()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// Constructors per environment (worker threads each have their own), kept as
// instance data rather than statics so nothing outlives its environment.
struct AddonData {
  Napi::FunctionReference run_control, kv_pool, candidate_set, model, trainer;
};
inline AddonData& data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// Off-main-thread work with a promise; exceptions become rejections.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work();
    } catch (...) {
      error_ = std::current_exception();
      SetError("failed");  // replaced in OnError
    }
  }
  void OnError(const Napi::Error&) override {
    done();
    Napi::HandleScope scope(Env());
    deferred_.Reject(to_js_error(Env(), error_).Value());
  }
  void OnOK() override {
    done();
    resolve();
  }
  virtual void work() = 0;
  virtual void resolve() = 0;  // on the main thread, after success
  virtual void done() {}       // on the main thread, after success or failure

  Napi::Promise::Deferred deferred_;
  std::exception_ptr error_;
};

// ---- args.cpp: argument conversion ----

// options[key] as an integer in [lo, hi]; dflt when undefined or null.
int int_option(const Napi::Object& o, const char* key, int dflt, int lo, int hi);
// An integer argument in [lo, hi], or an Error naming it.
int int_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int lo, int hi);
Napi::Object config_to_js(Napi::Env env, const ModelConfig& c);
// "f32" | "f16" | "bf16" | "act" (the backend's activation dtype `act`).
DType parse_dtype(const std::string& s, DType act);
const char* dtype_js(DType t);

// ---- handles.cpp: RunControl, KvPool, CandidateSet ----

void init_handles(Napi::Env env, Napi::Object exports);
// The RunControl behind a JS value (undefined/null: none); throws naming `what` otherwise.
std::shared_ptr<RunControl> run_control_arg(Napi::Env env, const Napi::Value& v, const char* what);
// False when v is not a KvPool (CandidateSet); otherwise out = its object,
// null when disposed.
bool unwrap_kv_pool(Napi::Env env, const Napi::Value& v, std::shared_ptr<KvPool>& out);
bool unwrap_candidate_set(Napi::Env env, const Napi::Value& v, std::shared_ptr<CandidateSet>& out);
Napi::Object wrap_kv_pool(Napi::Env env, std::shared_ptr<KvPool> pool);
Napi::Object wrap_candidate_set(Napi::Env env, std::shared_ptr<CandidateSet> set);

// ---- model.cpp: loadModel and Model ----

void init_model(Napi::Env env, Napi::Object exports);
Napi::Value LoadModel(const Napi::CallbackInfo& info);

// ---- run.cpp: Model.run / runSample / kvRead / kvWrite, on a model the caller holds ----

Napi::Value run_batch(const Napi::CallbackInfo& info, std::shared_ptr<Model> model, bool sampling);
Napi::Value kv_copy(const Napi::CallbackInfo& info, std::shared_ptr<Model> model, bool write);

// ---- train.cpp: Trainer ----
void init_trainer(Napi::Env env, Napi::Object exports);
Napi::Value create_trainer(const Napi::CallbackInfo& info, std::shared_ptr<Model> model);

}  // namespace focus::napi
