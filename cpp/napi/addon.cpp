// N-API binding: the only file set that includes napi.h. Mirrors
// typings/native.d.ts one to one.
//
// Every native object is held through a shared_ptr, by its JS wrapper and by
// any asynchronous run that uses it, so dispose() or garbage collection during
// a run frees the memory when the run ends, never under it.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/model.h"
#include "common.h"

namespace focus::napi {

namespace {

const char* const kVersion = "0.1.0";

int int_option(const Napi::Object& o, const char* key, int dflt, int lo, int hi) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Error(str("option ", key, " must be a number"));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == double(int64_t(d))) || d < lo || d > hi)
    throw Error(str("option ", key, " must be an integer from ", lo, " to ", hi, ", got ", d));
  return int(d);
}

// An integer argument in [lo, hi], or an Error naming it.
int int_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int lo, int hi) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Error(str(name, " must be a number"));
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d == double(int64_t(d))) || d < lo || d > hi)
    throw Error(str(name, " must be an integer from ", lo, " to ", hi, ", got ", d));
  return int(d);
}

Napi::Object config_to_js(Napi::Env env, const ModelConfig& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("vocabSize", c.vocab_size);
  o.Set("hiddenSize", c.hidden_size);
  o.Set("intermediateSize", c.intermediate_size);
  o.Set("numLayers", c.n_layers);
  o.Set("numHeads", c.n_heads);
  o.Set("numKvHeads", c.n_kv_heads);
  o.Set("headDim", c.head_dim);
  o.Set("rmsNormEps", c.rms_norm_eps);
  o.Set("ropeTheta", c.rope_theta);
  o.Set("ropeScaling", c.rope_scaling == RopeScaling::Linear   ? "linear"
                       : c.rope_scaling == RopeScaling::Llama3 ? "llama3"
                                                               : "none");
  o.Set("ropeFactor", c.rope_factor);
  o.Set("tieWordEmbeddings", c.tie_word_embeddings);
  o.Set("attentionBias", c.attention_bias);
  o.Set("bosTokenId", c.bos_token_id);
  Napi::Array eos = Napi::Array::New(env, c.eos_token_ids.size());
  for (size_t i = 0; i < c.eos_token_ids.size(); ++i) eos.Set(uint32_t(i), c.eos_token_ids[i]);
  o.Set("eosTokenIds", eos);
  o.Set("maxPositionEmbeddings", c.max_position_embeddings);
  Napi::Array bp = Napi::Array::New(env, c.beacon_param.size());
  for (size_t i = 0; i < c.beacon_param.size(); ++i) bp.Set(uint32_t(i), c.beacon_param[i]);
  o.Set("beaconParam", c.has_beacon_param ? Napi::Value(bp) : env.Null());
  o.Set("torchDtype", c.torch_dtype);
  return o;
}

DType parse_dtype(const std::string& s, DType act) {
  if (s == "f32") return DType::F32;
  if (s == "f16") return DType::F16;
  if (s == "bf16") return DType::BF16;
  if (s == "act") return act;
  throw Error(str("cache dtype must be one of f32, f16, bf16, got '", s, "'"));
}

const char* dtype_js(DType t) { return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "bf16"; }

}  // namespace

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

// ---- Model ---------------------------------------------------------------------

class RunWorker;

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
                     InstanceAccessor("scratchBytes", &ModelWrap::ScratchBytes, nullptr)});
    data(env).model = Napi::Persistent(f);
    exports.Set("Model", f);
  }
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}

  std::shared_ptr<Model> model;

  Model& get() const {
    if (!model) throw Error("this model has been disposed");
    return *model;
  }

 private:
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value RunSample(const Napi::CallbackInfo& info);
  Napi::Value RunImpl(const Napi::CallbackInfo& info, bool sampling);
  Napi::Value KvRead(const Napi::CallbackInfo& info);
  Napi::Value KvWrite(const Napi::CallbackInfo& info);
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
      auto pool = std::make_shared<KvPool>(m.backend_ptr(), m.config(), slots, cap, t);
      Napi::Object o = data(info.Env()).kv_pool.New({});
      KvPoolWrap::Unwrap(o)->pool = std::move(pool);
      return o;
    });
  }
  Napi::Value CreateCandidateSet(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Model& m = get();
      const int slots = int_arg(info, 0, "createCandidateSet: slots", 1, 1 << 24);
      auto set = std::make_shared<CandidateSet>(m.backend_ptr(), m.config(), slots);
      Napi::Object o = data(info.Env()).candidate_set.New({});
      CandidateSetWrap::Unwrap(o)->set = std::move(set);
      return o;
    });
  }
  Napi::Value CreateTrainer(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      std::shared_ptr<Model> keep = model;
      if (!keep) throw Error("this model has been disposed");
      return create_trainer(info, keep);
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
};

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string dir, std::string backend, int threads, int device, int max_batch)
      : PromiseWorker(env), dir_(std::move(dir)), backend_(std::move(backend)), threads_(threads), device_(device),
        max_batch_(max_batch) {}

 protected:
  void work() override {
    std::shared_ptr<Backend> be;
    if (backend_ == "cpu") be = make_cpu_backend(threads_);
    else be = make_cuda_backend(device_);
    ModelOptions opts;
    opts.max_batch_tokens = max_batch_;
    model_ = std::make_shared<Model>(dir_, be, opts);
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
  int threads_, device_, max_batch_;
  std::shared_ptr<Model> model_;
};

class RunWorker : public PromiseWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<Model> m, std::vector<SeqRun> batch,
            std::vector<std::shared_ptr<KvPool>> pools, std::vector<std::shared_ptr<CandidateSet>> sets,
            std::shared_ptr<RunControl> ctl)
      : PromiseWorker(env), model_(std::move(m)), batch_(std::move(batch)), pools_(std::move(pools)),
        sets_(std::move(sets)), ctl_(std::move(ctl)) {
    // Counted on the main thread, here and in done(): while a run is in
    // flight, JS may not read or change the lengths the run updates.
    for (auto& p : pools_) ++p->in_use;
    for (auto& c : sets_) ++c->in_use;
  }

  // Sample the requested rows on the backend instead of returning logits.
  void set_sampling(const SampleParams& p, std::vector<float> uniforms) {
    sampling_ = true;
    params_ = p;
    uniforms_ = std::move(uniforms);
  }

 protected:
  void work() override {
    if (sampling_) tokens_ = model_->run_sample(batch_, params_, uniforms_, ctl_.get());
    else logits_ = model_->run(batch_, ctl_.get());
  }
  void resolve() override {
    Napi::Env env = Env();
    if (sampling_) {
      Napi::Int32Array out = Napi::Int32Array::New(env, tokens_.size());
      if (!tokens_.empty()) std::memcpy(out.Data(), tokens_.data(), tokens_.size() * 4);
      deferred_.Resolve(out);
      return;
    }
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, logits_.size() * 4);
    if (!logits_.empty()) std::memcpy(buf.Data(), logits_.data(), logits_.size() * 4);
    deferred_.Resolve(Napi::Float32Array::New(env, logits_.size(), buf, 0));
  }

 private:
  void done() override {
    for (auto& p : pools_) --p->in_use;
    for (auto& c : sets_) --c->in_use;
  }

  std::shared_ptr<Model> model_;
  std::vector<SeqRun> batch_;
  std::vector<std::shared_ptr<KvPool>> pools_;  // what the batch points into
  std::vector<std::shared_ptr<CandidateSet>> sets_;
  std::shared_ptr<RunControl> ctl_;
  std::vector<float> logits_;
  bool sampling_ = false;
  SampleParams params_;
  std::vector<float> uniforms_;
  std::vector<int32_t> tokens_;
};

Napi::Value ModelWrap::Run(const Napi::CallbackInfo& info) { return RunImpl(info, false); }

Napi::Value ModelWrap::RunSample(const Napi::CallbackInfo& info) { return RunImpl(info, true); }

// run(batch, control?) / runSample(batch, params, uniforms, control?)
Napi::Value ModelWrap::RunImpl(const Napi::CallbackInfo& info, bool sampling) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    // Hold the model first: reading the batch runs JS (getters) that may dispose it.
    std::shared_ptr<Model> keep_model = model;
    if (!keep_model) throw Error("this model has been disposed");
    if (info.Length() < 1 || !info[0].IsArray()) throw Error("run(batch) expects an array of sequences");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<SeqRun> batch(arr.Length());
    std::vector<std::shared_ptr<KvPool>> pools;
    std::vector<std::shared_ptr<CandidateSet>> sets;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const std::string where = str("sequence ", i, " of the batch: ");
      Napi::Value item = arr.Get(i);
      if (!item.IsObject()) throw Error(where + "not an object");
      Napi::Object o = item.As<Napi::Object>();
      SeqRun& s = batch[i];
      Napi::Value tv = o.Get("tokens");
      if (!tv.IsTypedArray() || tv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        throw Error(where + "tokens must be an Int32Array");
      Napi::Int32Array ta = tv.As<Napi::Int32Array>();
      s.tokens.assign(ta.Data(), ta.Data() + ta.ElementLength());
      Napi::Value pv = o.Get("pool");
      if (!pv.IsUndefined() && !pv.IsNull()) {
        if (!pv.IsObject() || !pv.As<Napi::Object>().InstanceOf(data(env).kv_pool.Value()))
          throw Error(where + "pool must be a KvPool");
        auto& sp = KvPoolWrap::Unwrap(pv.As<Napi::Object>())->pool;
        if (!sp) throw Error(where + "its KV cache pool has been disposed");
        s.pool = sp.get();
        pools.push_back(sp);
        s.slot = int_option(o, "slot", -1, 0, 1 << 30);
      }
      auto set_of = [&](const char* key) -> CandidateSet* {
        Napi::Value v = o.Get(key);
        if (v.IsUndefined() || v.IsNull()) return nullptr;
        if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data(env).candidate_set.Value()))
          throw Error(str(where, key, " must be a CandidateSet"));
        auto& sp = CandidateSetWrap::Unwrap(v.As<Napi::Object>())->set;
        if (!sp) throw Error(str(where, "its ", key, " candidate set has been disposed"));
        sets.push_back(sp);
        return sp.get();
      };
      s.prefix = set_of("prefix");
      if (s.prefix) s.n_prefix = int_option(o, "nPrefix", 0, 1, 1 << 30);
      s.cand = set_of("cand");
      if (s.cand) s.cand_slot = int_option(o, "candSlot", -1, 0, 1 << 30);
      Napi::Value bv = o.Get("base");
      if (!bv.IsUndefined() && !bv.IsNull()) {
        if (!bv.IsObject() || !bv.As<Napi::Object>().InstanceOf(data(env).kv_pool.Value()))
          throw Error(where + "base must be a KvPool");
        auto& bp = KvPoolWrap::Unwrap(bv.As<Napi::Object>())->pool;
        if (!bp) throw Error(where + "its base KV cache pool has been disposed");
        s.base = bp.get();
        pools.push_back(bp);
        s.base_slot = int_option(o, "baseSlot", -1, 0, 1 << 30);
        s.base_length = int_option(o, "baseLength", -1, 0, 1 << 30);
      }
      s.logits = LogitsMode(int_option(o, "logits", 0, 0, 2));
      s.logits_from = int_option(o, "logitsFrom", 0, 0, 1 << 30);
    }
    const size_t ci = sampling ? 3 : 1;  // where the control argument is
    SampleParams sp;
    std::vector<float> uniforms;
    if (sampling) {
      if (info.Length() < 3 || !info[1].IsObject() || !info[2].IsTypedArray() ||
          info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw Error("runSample(batch, params, uniforms, control?) expects sampling params and a Float32Array");
      Napi::Object po = info[1].As<Napi::Object>();
      auto num = [&](const char* key, double dflt) {
        Napi::Value v = po.Get(key);
        if (v.IsUndefined()) return dflt;
        if (!v.IsNumber()) throw Error(str("sampling option ", key, " must be a number"));
        return v.As<Napi::Number>().DoubleValue();
      };
      sp.temperature = float(num("temperature", 0));
      sp.top_p = float(num("topP", 1));
      sp.top_k = int_option(po, "topK", 0, 0, 1 << 30);
      Napi::Float32Array ua = info[2].As<Napi::Float32Array>();
      uniforms.assign(ua.Data(), ua.Data() + ua.ElementLength());
    }
    std::shared_ptr<RunControl> ctl =
        info.Length() > ci ? run_control_arg(env, info[ci], "run: control") : nullptr;
    auto* w = new RunWorker(env, keep_model, std::move(batch), std::move(pools), std::move(sets), ctl);
    if (sampling) w->set_sampling(sp, std::move(uniforms));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

// kvRead(pool, slot, length) / kvWrite(pool, slot, bytes, length): a slot's
// first `length` tokens, (2, n_layer, length, kv_dim) in the pool's dtype,
// copied off the main thread. The JS buffer is allocated (read) or held
// (write) on the main thread and referenced until the copy is done.
class KvCopyWorker : public PromiseWorker {
 public:
  KvCopyWorker(Napi::Env env, std::shared_ptr<Model> m, std::shared_ptr<KvPool> pool, int slot, int length,
               Napi::Uint8Array buf, bool write)
      : PromiseWorker(env), model_(std::move(m)), pool_(std::move(pool)), slot_(slot), length_(length),
        bytes_(buf.Data()), write_(write) {
    buf_ = Napi::Persistent(buf);
    ++pool_->in_use;
  }

 protected:
  void work() override {
    if (write_) model_->kv_write(*pool_, slot_, bytes_, length_);
    else model_->kv_read(*pool_, slot_, length_, bytes_);
  }
  void resolve() override {
    if (write_) deferred_.Resolve(Env().Undefined());
    else deferred_.Resolve(buf_.Value());
  }

 private:
  void done() override { --pool_->in_use; }
  std::shared_ptr<Model> model_;
  std::shared_ptr<KvPool> pool_;
  int slot_, length_;
  uint8_t* bytes_;
  bool write_;
  Napi::Reference<Napi::Uint8Array> buf_;
};

Napi::Value ModelWrap::KvRead(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::shared_ptr<Model> keep = model;
    if (!keep) throw Error("this model has been disposed");
    if (info.Length() < 1 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(data(info.Env()).kv_pool.Value()))
      throw Error("kvRead(pool, slot, length): pool must be a KvPool");
    std::shared_ptr<KvPool> pool = KvPoolWrap::Unwrap(info[0].As<Napi::Object>())->pool;
    if (!pool) throw Error("kvRead: the KV cache pool has been disposed");
    if (pool->in_use) throw Error("kvRead: the KV cache pool is in use by a run: await the run first");
    const int slot = int_arg(info, 1, "kvRead: slot", 0, pool->n_slot() - 1);
    const int length = int_arg(info, 2, "kvRead: length", 0, pool->length[size_t(slot)]);
    const size_t bytes = KvPool::bytes_needed(keep->config(), 1, length, pool->dtype());
    Napi::Uint8Array buf = Napi::Uint8Array::New(info.Env(), bytes);
    auto* w = new KvCopyWorker(info.Env(), keep, pool, slot, length, buf, false);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

Napi::Value ModelWrap::KvWrite(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::shared_ptr<Model> keep = model;
    if (!keep) throw Error("this model has been disposed");
    if (info.Length() < 1 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(data(info.Env()).kv_pool.Value()))
      throw Error("kvWrite(pool, slot, bytes, length): pool must be a KvPool");
    std::shared_ptr<KvPool> pool = KvPoolWrap::Unwrap(info[0].As<Napi::Object>())->pool;
    if (!pool) throw Error("kvWrite: the KV cache pool has been disposed");
    if (pool->in_use) throw Error("kvWrite: the KV cache pool is in use by a run: await the run first");
    const int slot = int_arg(info, 1, "kvWrite: slot", 0, pool->n_slot() - 1);
    if (info.Length() < 3 || !info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Error("kvWrite(pool, slot, bytes, length): bytes must be a Uint8Array");
    const int length = int_arg(info, 3, "kvWrite: length", 0, pool->capacity());
    Napi::Uint8Array buf = info[2].As<Napi::Uint8Array>();
    const size_t bytes = KvPool::bytes_needed(keep->config(), 1, length, pool->dtype());
    if (buf.ByteLength() != bytes)
      throw Error(str("kvWrite: ", length, " tokens take ", bytes, " bytes, got ", buf.ByteLength()));
    auto* w = new KvCopyWorker(info.Env(), keep, pool, slot, length, buf, true);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

std::shared_ptr<RunControl> run_control_arg(Napi::Env env, const Napi::Value& v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  if (v.IsObject() && v.As<Napi::Object>().InstanceOf(data(env).run_control.Value()))
    return RunControlWrap::Unwrap(v.As<Napi::Object>())->ctl;
  throw Error(str(what, " must be a RunControl"));
}

// ---- module functions -------------------------------------------------------------

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
    int max_batch = int_option(o, "maxBatchTokens", 0, 0, 1 << 24);
    auto* w = new LoadWorker(info.Env(), info[0].As<Napi::String>().Utf8Value(), backend, threads, device, max_batch);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  RunControlWrap::Init(env, exports);
  KvPoolWrap::Init(env, exports);
  CandidateSetWrap::Init(env, exports);
  ModelWrap::Init(env, exports);
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
