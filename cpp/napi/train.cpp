// N-API binding of the Trainer (typings/native.d.ts: Trainer). Every call
// that computes or touches files runs off the main thread; the trainer is
// held through a shared_ptr by the wrapper and by each run, so dispose()
// during a run frees it when the run ends.
#include <cmath>
#include <cstring>
#include <functional>

#include "../core/train.h"
#include "common.h"

namespace focus::napi {

namespace {

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(
        env, "Trainer",
        {InstanceMethod("accumulate", &TrainerWrap::Accumulate), InstanceMethod("zeroGrad", &TrainerWrap::ZeroGrad),
         InstanceMethod("gradNorm", &TrainerWrap::GradNorm), InstanceMethod("applyAdamW", &TrainerWrap::ApplyAdamW),
         InstanceMethod("getGradient", &TrainerWrap::GetGradient), InstanceMethod("getWeight", &TrainerWrap::GetWeight),
         InstanceMethod("saveWeights", &TrainerWrap::SaveWeights), InstanceMethod("saveState", &TrainerWrap::SaveState),
         InstanceMethod("loadState", &TrainerWrap::LoadState), InstanceMethod("dispose", &TrainerWrap::Dispose),
         InstanceMethod("exampleBytes", &TrainerWrap::ExampleBytes),
         InstanceAccessor("step", &TrainerWrap::Step, nullptr),
         InstanceAccessor("disposed", &TrainerWrap::Disposed, nullptr)});
    data(env).trainer = Napi::Persistent(f);
    exports.Set("Trainer", f);
  }
  explicit TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {}

  std::shared_ptr<Trainer> trainer;
  int busy = 0;  // runs in flight (main thread only)

 private:
  std::shared_ptr<Trainer> get() const {
    if (!trainer) throw Error("this trainer has been disposed");
    return trainer;
  }
  // Synchronous access to the buffers a run is using is refused.
  std::shared_ptr<Trainer> idle(const char* what) const {
    auto t = get();
    if (busy) throw Error(str(what, ": the trainer is busy with a run: await it first"));
    return t;
  }
  Napi::Value Accumulate(const Napi::CallbackInfo& info);
  Napi::Value ExampleBytes(const Napi::CallbackInfo& info);
  Napi::Value ApplyAdamW(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      idle("zeroGrad")->zero_grad();
      return info.Env().Undefined();
    });
  }
  Napi::Value GradNorm(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), idle("gradNorm")->grad_norm());
    });
  }
  Napi::Value Tensor(const Napi::CallbackInfo& info, bool grad) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto t = idle(grad ? "getGradient" : "getWeight");
      if (info.Length() < 1 || !info[0].IsString()) throw Error("expected a tensor name");
      const std::string name = info[0].As<Napi::String>().Utf8Value();
      const TrainParam* p = t->find(name);
      if (!p) throw Error(str("'", name, "' is not a trainable tensor of this trainer"));
      Napi::Float32Array a = Napi::Float32Array::New(info.Env(), size_t(p->numel));
      std::memcpy(a.Data(), grad ? p->g.data() : p->w, size_t(p->numel) * 4);
      return a;
    });
  }
  Napi::Value GetGradient(const Napi::CallbackInfo& info) { return Tensor(info, true); }
  Napi::Value GetWeight(const Napi::CallbackInfo& info) { return Tensor(info, false); }
  Napi::Value File(const Napi::CallbackInfo& info, int kind);
  Napi::Value SaveWeights(const Napi::CallbackInfo& info) { return File(info, 0); }
  Napi::Value SaveState(const Napi::CallbackInfo& info) { return File(info, 1); }
  Napi::Value LoadState(const Napi::CallbackInfo& info) { return File(info, 2); }
  Napi::Value Step(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), trainer ? double(trainer->step()) : 0.0);
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !trainer); }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    trainer.reset();
    return info.Env().Undefined();
  }
};

// A trainer run off the main thread; `fn` does the work, `out` makes the result.
class TrainWorker : public PromiseWorker {
 public:
  using Fn = std::function<std::vector<double>()>;
  TrainWorker(Napi::Env env, TrainerWrap* w, Napi::Object self, Fn fn)
      : PromiseWorker(env), wrap_(w), self_(Napi::Persistent(self)), fn_(std::move(fn)) {
    ++wrap_->busy;
  }
  std::vector<double> losses;
  bool return_losses = false;

 protected:
  void work() override { losses = fn_(); }
  void resolve() override {
    Napi::Env env = Env();
    if (!return_losses) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    Napi::Float64Array a = Napi::Float64Array::New(env, losses.size());
    if (!losses.empty()) std::memcpy(a.Data(), losses.data(), losses.size() * 8);
    deferred_.Resolve(a);
  }
  void done() override { --wrap_->busy; }

 private:
  TrainerWrap* wrap_;
  Napi::ObjectReference self_;  // keeps the wrapper (and wrap_) alive
  Fn fn_;
};

double num_field(const Napi::Object& o, const char* key, const std::string& where, bool required, double dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (required) throw Error(str(where, key, " is required"));
    return dflt;
  }
  if (!v.IsNumber()) throw Error(str(where, key, " must be a number"));
  return v.As<Napi::Number>().DoubleValue();
}

int int_field(const Napi::Object& o, const char* key, const std::string& where, bool required, int dflt) {
  const double d = num_field(o, key, where, required, dflt);
  if (!(d == std::floor(d)) || d < -2147483648.0 || d > 2147483647.0)
    throw Error(str(where, key, " must be an integer, got ", d));
  return int(d);
}

// One example from JS (NativeTrainExample); errors name the example and field.
TrainExample parse_example(const Napi::Value& item, const std::string& where) {
  TrainExample e;
  if (!item.IsObject()) throw Error(where + "not an object");
  Napi::Object o = item.As<Napi::Object>();
  Napi::Value kind = o.Get("kind");
  const std::string k = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : "";
  if (k != "focus" && k != "lm") throw Error(where + "kind must be 'focus' or 'lm'");
  e.kind = k == "lm" ? TrainExample::Kind::Lm : TrainExample::Kind::Focus;
  Napi::Value ids = o.Get("ids");
  if (!ids.IsTypedArray() || ids.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Error(where + "ids must be an Int32Array");
  Napi::Int32Array ia = ids.As<Napi::Int32Array>();
  e.ids.assign(ia.Data(), ia.Data() + ia.ElementLength());
  e.weight = float(num_field(o, "weight", where, false, 1.0));
  if (e.kind == TrainExample::Kind::Lm) e.loss_start = int_field(o, "lossStart", where, false, 1);
  if (e.kind == TrainExample::Kind::Focus) {
    Napi::Value loss = o.Get("loss");
    const std::string l = loss.IsString() ? loss.As<Napi::String>().Utf8Value() : "";
    if (l != "continuation" && l != "repetition") throw Error(where + "loss must be 'continuation' or 'repetition'");
    e.repetition = l == "repetition";
    e.s = int_field(o, "localStart", where, true, 0);
    e.l = int_field(o, "localSize", where, true, 0);
    e.chunk = int_field(o, "chunkSize", where, true, 0);
    e.prompt_cap = int_field(o, "promptCap", where, false, 512);
  }
  return e;
}

}  // namespace

// accumulate(examples, control?)
Napi::Value TrainerWrap::Accumulate(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto t = get();
    if (info.Length() < 1 || !info[0].IsArray()) throw Error("accumulate(examples) expects an array of examples");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<TrainExample> ex(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) ex[i] = parse_example(arr.Get(i), str("example ", i, ": "));
    t->validate(ex);  // errors before any work, synchronously
    std::shared_ptr<RunControl> ctl = info.Length() > 1 ? run_control_arg(env, info[1], "accumulate: control") : nullptr;
    auto exs = std::make_shared<std::vector<TrainExample>>(std::move(ex));
    auto* aw = new TrainWorker(env, this, Value(), [t, exs, ctl]() { return t->accumulate(*exs, ctl.get()); });
    aw->return_losses = true;
    Napi::Promise p = aw->promise();
    aw->Queue();
    return p;
  });
}

// exampleBytes(example)
Napi::Value TrainerWrap::ExampleBytes(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto t = get();
    if (info.Length() < 1) throw Error("exampleBytes(example) expects an example");
    return Napi::Number::New(info.Env(), double(t->example_bytes(parse_example(info[0], "example: "))));
  });
}

// applyAdamW({lr, beta1, beta2, eps, weightDecay, gradScale})
Napi::Value TrainerWrap::ApplyAdamW(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto t = idle("applyAdamW");
    if (info.Length() < 1 || !info[0].IsObject()) throw Error("applyAdamW(options) expects an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    const std::string where = "applyAdamW: option ";
    AdamWStep s;
    s.lr = float(num_field(o, "lr", where, true, 0));
    s.beta1 = float(num_field(o, "beta1", where, false, 0.9));
    s.beta2 = float(num_field(o, "beta2", where, false, 0.999));
    s.eps = float(num_field(o, "eps", where, false, 1e-8));
    s.weight_decay = float(num_field(o, "weightDecay", where, false, 0));
    s.grad_scale = float(num_field(o, "gradScale", where, false, 1));
    auto* w = new TrainWorker(info.Env(), this, Value(), [t, s]() {
      t->adamw(s);
      return std::vector<double>();
    });
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

// saveWeights(path) / saveState(path) / loadState(path)
Napi::Value TrainerWrap::File(const Napi::CallbackInfo& info, int kind) {
  return guard(info.Env(), [&]() -> Napi::Value {
    static const char* names[] = {"saveWeights", "saveState", "loadState"};
    auto t = idle(names[kind]);
    if (info.Length() < 1 || !info[0].IsString() || info[0].As<Napi::String>().Utf8Value().empty())
      throw Error(str(names[kind], "(path) expects a file path"));
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    TrainWorker::Fn fn = [t, path, kind]() {
      if (kind == 0) t->save_weights(path);
      else if (kind == 1) t->save_state(path);
      else t->load_state(path);
      return std::vector<double>();
    };
    auto* w = new TrainWorker(info.Env(), this, Value(), fn);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

Napi::Value create_trainer(const Napi::CallbackInfo& info, std::shared_ptr<Model> model) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Error("createTrainer(options) expects an options object with params 'candidate' or 'all'");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value pv = o.Get("params");
  const std::string params = pv.IsString() ? pv.As<Napi::String>().Utf8Value() : "";
  if (params != "candidate" && params != "all")
    throw Error("createTrainer: option params must be 'candidate' or 'all'");
  Napi::Value rv = o.Get("recompute");
  if (!rv.IsUndefined() && !rv.IsBoolean()) throw Error("createTrainer: option recompute must be a boolean");
  const bool recompute = rv.IsBoolean() && rv.As<Napi::Boolean>().Value();
  auto t = std::make_shared<Trainer>(model, params == "all", recompute);
  Napi::Object obj = data(env).trainer.New({});
  TrainerWrap::Unwrap(obj)->trainer = t;
  obj.Set("params", params);
  Napi::Array ts = Napi::Array::New(env, t->params().size());
  for (size_t i = 0; i < t->params().size(); ++i) {
    const TrainParam& p = *t->params()[i];
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", p.name);
    Napi::Array sh = Napi::Array::New(env, p.shape.size());
    for (size_t j = 0; j < p.shape.size(); ++j) sh.Set(uint32_t(j), double(p.shape[j]));
    d.Set("shape", sh);
    ts.Set(uint32_t(i), d);
  }
  obj.Set("tensors", ts);
  Napi::Array ck = Napi::Array::New(env, t->candidate_keys().size());
  for (size_t i = 0; i < t->candidate_keys().size(); ++i) ck.Set(uint32_t(i), t->candidate_keys()[i]);
  obj.Set("candidateParams", ck);
  return obj;
}

void init_trainer(Napi::Env env, Napi::Object exports) { TrainerWrap::Init(env, exports); }

}  // namespace focus::napi
