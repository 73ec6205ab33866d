// Model runs and KV copies (typings/native.d.ts: Model.run, runSample,
// kvRead, kvWrite): the batch read from JS on the main thread, the work done
// by an async worker, its result handed back as a typed array.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace focus::napi {

namespace {

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
    deferred_.Resolve(logits_array(env, std::move(logits_)));
  }

  // The logits as a Float32Array over the run's own buffer (an external
  // ArrayBuffer that frees it when collected): no fresh 128 KB+ allocation and
  // copy per decode step, which cost a third of a millisecond on the VMs this
  // was measured on. Where the runtime refuses external buffers (a V8 memory
  // sandbox), a copy.
  static Napi::Float32Array logits_array(Napi::Env env, std::vector<float> v) {
    const size_t n = v.size();
    if (n > 0) {
      auto* owned = new std::vector<float>(std::move(v));
      napi_value ab;
      const napi_status st = napi_create_external_arraybuffer(
          env, owned->data(), n * 4, [](napi_env, void*, void* hint) { delete static_cast<std::vector<float>*>(hint); },
          owned, &ab);
      if (st == napi_ok) return Napi::Float32Array::New(env, n, Napi::ArrayBuffer(env, ab), 0);
      v = std::move(*owned);
      delete owned;
    }
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, n * 4);
    if (n > 0) std::memcpy(buf.Data(), v.data(), n * 4);
    return Napi::Float32Array::New(env, n, buf, 0);
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

// One sequence of run(batch): tokens, optional pool/slot, candidate prefix,
// candidate slot, base pool, logits mode. The handles it points into are
// appended to pools/sets, which the worker holds for the run.
void read_seq(Napi::Env env, const Napi::Object& o, const std::string& where, SeqRun& s,
              std::vector<std::shared_ptr<KvPool>>& pools, std::vector<std::shared_ptr<CandidateSet>>& sets) {
  Napi::Value tv = o.Get("tokens");
  if (!tv.IsTypedArray() || tv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Error(where + "tokens must be an Int32Array");
  Napi::Int32Array ta = tv.As<Napi::Int32Array>();
  s.tokens.assign(ta.Data(), ta.Data() + ta.ElementLength());
  // An optional KvPool under `key` (kept alive in `pools` for the run).
  auto pool_of = [&](const char* key, const char* disposed) -> KvPool* {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return nullptr;
    std::shared_ptr<KvPool> sp;
    if (!unwrap_kv_pool(env, v, sp)) throw Error(str(where, key, " must be a KvPool"));
    if (!sp) throw Error(str(where, "its ", disposed, " has been disposed"));
    pools.push_back(sp);
    return sp.get();
  };
  s.pool = pool_of("pool", "KV cache pool");
  if (s.pool) s.slot = int_option(o, "slot", -1, 0, 1 << 30);
  auto set_of = [&](const char* key) -> CandidateSet* {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return nullptr;
    std::shared_ptr<CandidateSet> sp;
    if (!unwrap_candidate_set(env, v, sp)) throw Error(str(where, key, " must be a CandidateSet"));
    if (!sp) throw Error(str(where, "its ", key, " candidate set has been disposed"));
    sets.push_back(sp);
    return sp.get();
  };
  s.prefix = set_of("prefix");
  if (s.prefix) s.n_prefix = int_option(o, "nPrefix", 0, 1, 1 << 30);
  s.cand = set_of("cand");
  if (s.cand) s.cand_slot = int_option(o, "candSlot", -1, 0, 1 << 30);
  s.base = pool_of("base", "base KV cache pool");
  if (s.base) {
    s.base_slot = int_option(o, "baseSlot", -1, 0, 1 << 30);
    s.base_length = int_option(o, "baseLength", -1, 0, 1 << 30);
  }
  s.logits = LogitsMode(int_option(o, "logits", 0, 0, 2));
  s.logits_from = int_option(o, "logitsFrom", 0, 0, 1 << 30);
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

}  // namespace

// run(batch, control?) / runSample(batch, params, uniforms, control?)
Napi::Value run_batch(const Napi::CallbackInfo& info, std::shared_ptr<Model> model, bool sampling) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Error("run(batch) expects an array of sequences");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<SeqRun> batch(arr.Length());
  std::vector<std::shared_ptr<KvPool>> pools;
  std::vector<std::shared_ptr<CandidateSet>> sets;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const std::string where = str("sequence ", i, " of the batch: ");
    Napi::Value item = arr.Get(i);
    if (!item.IsObject()) throw Error(where + "not an object");
    read_seq(env, item.As<Napi::Object>(), where, batch[i], pools, sets);
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
  std::shared_ptr<RunControl> ctl = info.Length() > ci ? run_control_arg(env, info[ci], "run: control") : nullptr;
  auto* w = new RunWorker(env, std::move(model), std::move(batch), std::move(pools), std::move(sets), ctl);
  if (sampling) w->set_sampling(sp, std::move(uniforms));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// kvRead(pool, slot, length) / kvWrite(pool, slot, bytes, length)
Napi::Value kv_copy(const Napi::CallbackInfo& info, std::shared_ptr<Model> model, bool write) {
  Napi::Env env = info.Env();
  const char* name = write ? "kvWrite" : "kvRead";
  const char* usage = write ? "kvWrite(pool, slot, bytes, length)" : "kvRead(pool, slot, length)";
  std::shared_ptr<KvPool> pool;
  if (info.Length() < 1 || !unwrap_kv_pool(env, info[0], pool)) throw Error(str(usage, ": pool must be a KvPool"));
  if (!pool) throw Error(str(name, ": the KV cache pool has been disposed"));
  if (pool->in_use) throw Error(str(name, ": the KV cache pool is in use by a run: await the run first"));
  const int slot = int_arg(info, 1, write ? "kvWrite: slot" : "kvRead: slot", 0, pool->n_slot() - 1);
  Napi::Uint8Array buf;
  int length;
  if (write) {
    if (info.Length() < 3 || !info[2].IsTypedArray() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Error(str(usage, ": bytes must be a Uint8Array"));
    length = int_arg(info, 3, "kvWrite: length", 0, pool->capacity());
    buf = info[2].As<Napi::Uint8Array>();
    const size_t bytes = KvPool::bytes_needed(model->config(), 1, length, pool->dtype());
    if (buf.ByteLength() != bytes)
      throw Error(str("kvWrite: ", length, " tokens take ", bytes, " bytes, got ", buf.ByteLength()));
  } else {
    length = int_arg(info, 2, "kvRead: length", 0, pool->length[size_t(slot)]);
    buf = Napi::Uint8Array::New(env, KvPool::bytes_needed(model->config(), 1, length, pool->dtype()));
  }
  auto* w = new KvCopyWorker(env, std::move(model), pool, slot, length, buf, write);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace focus::napi
