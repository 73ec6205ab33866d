// Argument conversion between JavaScript values and engine types: integer
// options and arguments checked against their ranges (an Error naming them
// otherwise), cache dtypes, and the model config as typings/native.d.ts
// describes it.
#include <cstdint>
#include <string>

#include "common.h"

namespace focus::napi {

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

}  // namespace focus::napi
