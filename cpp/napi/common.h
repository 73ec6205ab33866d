// Shared by the binding's files (addon.cpp, train.cpp): errors, the
// asynchronous worker, and the per-environment constructors.
#pragma once

#include <napi.h>

#include <exception>
#include <memory>

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

// The RunControl behind a JS value (undefined/null: none); throws naming `what` otherwise.
std::shared_ptr<RunControl> run_control_arg(Napi::Env env, const Napi::Value& v, const char* what);

// Trainer (train.cpp)
void init_trainer(Napi::Env env, Napi::Object exports);
Napi::Value create_trainer(const Napi::CallbackInfo& info, std::shared_ptr<Model> model);

}  // namespace focus::napi
