// N-API binding: the entry point. Only cpp/napi/ includes napi.h; together
// its files mirror typings/native.d.ts one to one:
//
//   addon.cpp    this entry: registration, version, readConfig, backends
//   args.cpp     argument conversion (integer options, dtypes, the config)
//   handles.cpp  RunControl, KvPool, CandidateSet
//   model.cpp    loadModel and the Model object
//   run.cpp      Model.run / runSample / kvRead / kvWrite (async workers)
//   train.cpp    Trainer
//
// Every native object is held through a shared_ptr, by its JS wrapper and by
// any asynchronous run that uses it, so dispose() or garbage collection during
// a run frees the memory when the run ends, never under it.
#include <napi.h>

#include <string>

#include "../core/error.h"
#include "../core/model.h"
#include "common.h"

namespace focus::napi {

namespace {

const char* const kVersion = "0.1.0";

Napi::Value ReadConfig(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throw Error("readConfig(dir) expects a folder path");
    return config_to_js(info.Env(), load_config(info[0].As<Napi::String>().Utf8Value()));
  });
}

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpu", true);
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", cuda_compiled());
  std::string why = cuda_unavailable_reason();
  cuda.Set("available", why.empty());
  cuda.Set("reason", why);
  o.Set("cuda", cuda);
  return o;
}

Napi::Value CpuDescription(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), str("kernels ", cpu_kernel_isa(), " (FOCUSLLM_CPU_ISA can force a lower level)"));
  });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  init_handles(env, exports);
  init_model(env, exports);
  init_trainer(env, exports);
  exports.Set("version", kVersion);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("readConfig", Napi::Function::New(env, ReadConfig));
  exports.Set("backends", Napi::Function::New(env, Backends));
  exports.Set("cpuDescription", Napi::Function::New(env, CpuDescription));
  return exports;
}

}  // namespace focus::napi

static Napi::Object InitFocusllm(Napi::Env env, Napi::Object exports) { return focus::napi::Init(env, exports); }

NODE_API_MODULE(focusllm, InitFocusllm)