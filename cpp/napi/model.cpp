// The Model binding: loadModel() (off the main thread) and the Model object's
// methods. Runs and KV copies are in run.cpp, the handles they take in
// handles.cpp.
#include <memory>
#include <string>

#include "common.h"

namespace focus::napi {

namespace {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f =
        DefineClass(env, "Model",
                    {InstanceMethod("run", &ModelWrap::Run), InstanceMethod("runSample", &ModelWrap::RunSample),
                     InstanceMethod("createKvPool", &ModelWrap::CreateKvPool),
                     InstanceMethod("createCandidateSet", &ModelWrap::CreateCandidateSet),
                     InstanceMethod("createTrainer", &ModelWrap::CreateTrainer),
                     InstanceMethod("kvRead", &ModelWrap::KvRead), InstanceMethod("kvWrite", &ModelWrap::KvWrite),
                     InstanceMethod("dispose", &ModelWrap::Dispose),
                     InstanceAccessor("disposed", &ModelWrap::Disposed, nullptr),
                     InstanceAccessor("scratchBytes", &ModelWrap::ScratchBytes, nullptr),
                     InstanceAccessor("lastRunMs", &ModelWrap::LastRunMs, nullptr)});
    data(env).model = Napi::Persistent(f);
    exports.Set("Model", f);
  }
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}

  std::shared_ptr<Model> model;

  Model& get() const { return *held(); }
  // A reference of its own, for a run: reading the arguments runs JS
  // (getters) that may dispose the model.
  std::shared_ptr<Model> held() const {
    if (!model) throw Error("this model has been disposed");
    return model;
  }

 private:
  // run(batch, control?) / runSample(batch, params, uniforms, control?): run.cpp
  Napi::Value Run(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return run_batch(info, held(), false); });
  }
  Napi::Value RunSample(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return run_batch(info, held(), true); });
  }
  // kvRead(pool, slot, length) / kvWrite(pool, slot, bytes, length): run.cpp
  Napi::Value KvRead(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return kv_copy(info, held(), false); });
  }
  Napi::Value KvWrite(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return kv_copy(info, held(), true); });
  }
  Napi::Value CreateKvPool(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Model& m = get();
      if (info.Length() < 3 || !info[2].IsString())
        throw Error("createKvPool(slots, capacity, dtype) expects two numbers and a dtype string");
      const int slots = int_arg(info, 0, "createKvPool: slots", 1, 1 << 24);
      const int cap = int_arg(info, 1, "createKvPool: capacity", 1, 1 << 30);
      DType t = parse_dtype(info[2].As<Napi::String>().Utf8Value(), m.backend().act_dtype());
      if (m.backend().name() != "cpu" && t != m.backend().act_dtype())
        throw Error(str("the ", m.backend().name(), " backend keeps caches in ", dtype_js(m.backend().act_dtype())));
      return wrap_kv_pool(info.Env(), std::make_shared<KvPool>(m.backend_ptr(), m.config(), slots, cap, t));
    });
  }
  Napi::Value CreateCandidateSet(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Model& m = get();
      const int slots = int_arg(info, 0, "createCandidateSet: slots", 1, 1 << 24);
      return wrap_candidate_set(info.Env(), std::make_shared<CandidateSet>(m.backend_ptr(), m.config(), slots));
    });
  }
  Napi::Value CreateTrainer(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return create_trainer(info, held());
    });
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    model.reset();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !model); }
  Napi::Value ScratchBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), model ? double(model->scratch_bytes()) : 0.0);
  }
  Napi::Value LastRunMs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), model ? model->last_run_ms() : 0.0);
  }
};

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string dir, std::string backend, int threads, int device, ModelOptions opts)
      : PromiseWorker(env), dir_(std::move(dir)), backend_(std::move(backend)), threads_(threads), device_(device),
        opts_(std::move(opts)) {}

 protected:
  void work() override {
    std::shared_ptr<Backend> be;
    if (backend_ == "cpu") be = make_cpu_backend(threads_);
    else be = make_cuda_backend(device_);
    model_ = std::make_shared<Model>(dir_, be, opts_);
  }
  void resolve() override {
    Napi::Env env = Env();
    Napi::Object o = data(env).model.New({});
    ModelWrap::Unwrap(o)->model = model_;
    const ModelInfo& mi = model_->info();
    o.Set("config", config_to_js(env, model_->config()));
    Napi::Object info = Napi::Object::New(env);
    info.Set("parameters", double(mi.n_params));
    info.Set("candidateParameters", double(mi.n_candidate_params));
    info.Set("dtype", mi.dtype);
    info.Set("fileBytes", double(mi.file_bytes));
    info.Set("backendWeightBytes", double(mi.backend_weight_bytes));
    Napi::Array cp = Napi::Array::New(env, mi.candidate_present.size());
    for (size_t i = 0; i < mi.candidate_present.size(); ++i) cp.Set(uint32_t(i), mi.candidate_present[i]);
    info.Set("candidateProjections", cp);
    Napi::Array unused = Napi::Array::New(env, mi.unused_tensors.size());
    for (size_t i = 0; i < mi.unused_tensors.size(); ++i) unused.Set(uint32_t(i), mi.unused_tensors[i]);
    info.Set("unusedTensors", unused);
    info.Set("actDtype", dtype_js(model_->backend().act_dtype()));
    info.Set("maxBatchTokens", model_->max_batch_tokens());
    o.Set("info", info);
    o.Set("backend", model_->backend().name());
    o.Set("backendDescription", model_->backend().description());
    deferred_.Resolve(o);
  }

 private:
  std::string dir_, backend_;
  int threads_, device_;
  ModelOptions opts_;
  std::shared_ptr<Model> model_;
};

}  // namespace

void init_model(Napi::Env env, Napi::Object exports) { ModelWrap::Init(env, exports); }

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throw Error("loadModel(dir, options) expects a folder path");
    Napi::Object o = info.Length() >= 2 && info[1].IsObject() ? info[1].As<Napi::Object>()
                                                              : Napi::Object::New(info.Env());
    std::string backend = "cpu";
    Napi::Value b = o.Get("backend");
    if (!b.IsUndefined()) {
      if (!b.IsString()) throw Error("option backend must be \"cpu\" or \"cuda\"");
      backend = b.As<Napi::String>().Utf8Value();
      if (backend != "cpu" && backend != "cuda")
        throw Error(str("option backend must be \"cpu\" or \"cuda\", got \"", backend, "\""));
    }
    int threads = int_option(o, "threads", 1, 0, 1 << 20);
    if (threads < 1 || threads > 1024) throw Error(str("option threads must be an integer from 1 to 1024, got ", threads));
    int device = int_option(o, "device", 0, 0, 1024);
    ModelOptions mo;
    mo.max_batch_tokens = int_option(o, "maxBatchTokens", 0, 0, 1 << 24);
    Napi::Value bp = o.Get("beaconParam");
    if (!bp.IsUndefined() && !bp.IsNull()) {
      if (!bp.IsArray()) throw Error("option beaconParam must be a list such as [\"q\", \"k\", \"v\", \"o\"]");
      Napi::Array a = bp.As<Napi::Array>();
      mo.override_beacon_param = true;
      for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value x = a.Get(i);
        if (!x.IsString()) throw Error("option beaconParam must be a list of strings");
        mo.beacon_param.push_back(x.As<Napi::String>().Utf8Value());
      }
    }
    auto* w = new LoadWorker(info.Env(), info[0].As<Napi::String>().Utf8Value(), backend, threads, device, std::move(mo));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

}  // namespace focus::napi
