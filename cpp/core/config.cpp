#include "config.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "error.h"
#include "json.h"

namespace focus {

bool ModelConfig::beacon_listed(const std::string& p) const {
  return std::find(beacon_param.begin(), beacon_param.end(), p) != beacon_param.end();
}

std::vector<double> ModelConfig::rope_inv_freq() const {
  const int half = head_dim / 2;
  std::vector<double> f(half);
  for (int i = 0; i < half; ++i) f[i] = 1.0 / std::pow(rope_theta, double(2 * i) / double(head_dim));
  if (rope_scaling == RopeScaling::Linear) {
    for (double& x : f) x /= rope_factor;
  } else if (rope_scaling == RopeScaling::Llama3) {
    // Llama 3.1: long wavelengths are divided by the factor, short ones kept,
    // and the band between is interpolated smoothly.
    const double low_wavelen = rope_original_max_pos / rope_low_freq_factor;
    const double high_wavelen = rope_original_max_pos / rope_high_freq_factor;
    for (double& x : f) {
      const double wavelen = 2.0 * M_PI / x;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        x /= rope_factor;
      } else {
        double smooth = (rope_original_max_pos / wavelen - rope_low_freq_factor) /
                        (rope_high_freq_factor - rope_low_freq_factor);
        x = (1.0 - smooth) * x / rope_factor + smooth * x;
      }
    }
  }
  return f;
}

namespace {

struct Reader {
  const Json& root;
  const std::string& where;

  const Json* field(const char* key) const { return root.get(key); }

  [[noreturn]] void bad(const char* key, const std::string& why) const {
    throw Error(str(where, ": field '", key, "' ", why));
  }

  int integer(const char* key, bool required, int dflt, int min_value) const {
    const Json* v = field(key);
    if (!v || v->is_null()) {
      if (required) bad(key, "is missing");
      return dflt;
    }
    int64_t x;
    if (!v->as_int64(&x)) bad(key, str("must be an integer, got ", Json::type_name(v->type())));
    if (x < min_value) bad(key, str("must be at least ", min_value, ", got ", x));
    if (x > 0x7fffffff) bad(key, str("is ", v->as_string(), "; at most 2147483647 is supported"));
    return int(x);
  }

  double number(const char* key, double dflt, bool positive) const {
    const Json* v = field(key);
    if (!v || v->is_null()) return dflt;
    if (!v->is_number() || !std::isfinite(v->as_number())) bad(key, "must be a finite number");
    if (positive && !(v->as_number() > 0)) bad(key, str("must be positive, got ", v->as_number()));
    return v->as_number();
  }

  bool boolean(const char* key, bool dflt) const {
    const Json* v = field(key);
    if (!v || v->is_null()) return dflt;
    if (!v->is_bool()) bad(key, "must be true or false");
    return v->as_bool();
  }
};

}  // namespace

ModelConfig parse_config(const std::string& text, const std::string& where) {
  Json root = Json::parse(text, where);
  if (!root.is_object()) throw Error(where + ": expected a JSON object");
  Reader r{root, where};
  ModelConfig c;
  c.vocab_size = r.integer("vocab_size", true, 0, 1);
  c.hidden_size = r.integer("hidden_size", true, 0, 1);
  c.intermediate_size = r.integer("intermediate_size", true, 0, 1);
  c.n_layers = r.integer("num_hidden_layers", true, 0, 1);
  c.n_heads = r.integer("num_attention_heads", true, 0, 1);
  c.n_kv_heads = r.integer("num_key_value_heads", false, c.n_heads, 1);
  if (c.n_heads % c.n_kv_heads != 0)
    r.bad("num_key_value_heads", str("(", c.n_kv_heads, ") must divide num_attention_heads (", c.n_heads, ")"));
  if (root.get("head_dim") && !root.get("head_dim")->is_null()) {
    c.head_dim = r.integer("head_dim", true, 0, 2);
  } else {
    if (c.hidden_size % c.n_heads != 0)
      r.bad("hidden_size", str("(", c.hidden_size, ") is not a multiple of num_attention_heads (", c.n_heads, ")"));
    c.head_dim = c.hidden_size / c.n_heads;
  }
  if (c.head_dim % 2 != 0) r.bad("head_dim", str("must be even for rotary embeddings, got ", c.head_dim));
  // Sizes far beyond any real model would overflow the arithmetic of the
  // shape checks and buffers: refuse them by name.
  const int64_t kMaxWidth = int64_t(1) << 20;
  if (c.hidden_size > kMaxWidth) r.bad("hidden_size", str("is ", c.hidden_size, "; at most ", kMaxWidth, " is supported"));
  if (c.intermediate_size > kMaxWidth)
    r.bad("intermediate_size", str("is ", c.intermediate_size, "; at most ", kMaxWidth, " is supported"));
  if (c.vocab_size > (1 << 24)) r.bad("vocab_size", str("is ", c.vocab_size, "; at most ", 1 << 24, " is supported"));
  if (c.n_layers > 4096) r.bad("num_hidden_layers", str("is ", c.n_layers, "; at most 4096 is supported"));
  if (c.head_dim > 1024) r.bad("head_dim", str("is ", c.head_dim, "; at most 1024 is supported"));
  if (int64_t(c.n_heads) * c.head_dim > kMaxWidth)
    r.bad("num_attention_heads", str("times head_dim is ", int64_t(c.n_heads) * c.head_dim, "; at most ", kMaxWidth,
                                     " is supported"));
  c.rms_norm_eps = float(r.number("rms_norm_eps", 1e-6, true));
  // Computed in float32: a value that rounds to 0 or infinity there would
  // divide by zero (NaN on an all-zero row).
  if (!(c.rms_norm_eps >= FLT_MIN && c.rms_norm_eps <= 1.0f))
    r.bad("rms_norm_eps", str("is ", r.field("rms_norm_eps")->as_number(), "; it must be in [", FLT_MIN, ", 1]"));
  c.rope_theta = r.number("rope_theta", 10000.0, true);
  // Below 1 the rotary frequencies grow instead of decay (and tiny values
  // overflow them to infinity): no LLaMA has that.
  if (c.rope_theta < 1.0) r.bad("rope_theta", str("is ", c.rope_theta, "; it must be at least 1"));
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.attention_bias = r.boolean("attention_bias", false);
  if (r.boolean("mlp_bias", false)) r.bad("mlp_bias", "is true: MLP biases are not supported");
  c.max_position_embeddings = r.integer("max_position_embeddings", false, 0, 0);
  if (const Json* act = root.get("hidden_act")) {
    if (!act->is_string() || act->as_string() != "silu")
      r.bad("hidden_act", "must be \"silu\" (LLaMA's SwiGLU MLP)");
  }
  if (const Json* mt = root.get("model_type")) {
    static const char* ok[] = {"llama", "mistral", "focusllm", "activation_beacon", "beacon"};
    bool known = false;
    if (mt->is_string())
      for (const char* k : ok) known = known || mt->as_string() == k;
    if (!known) r.bad("model_type", "must name a LLaMA-family model (\"llama\" or \"mistral\")");
  }
  // Token ids must be ids of the vocabulary (a cast once turned 4294967298
  // into 2).
  c.bos_token_id = r.integer("bos_token_id", false, 1, 0);
  if (c.bos_token_id >= c.vocab_size)
    r.bad("bos_token_id", str("is ", c.bos_token_id, ", not a token id below vocab_size (", c.vocab_size, ")"));
  if (const Json* e = root.get("eos_token_id")) {
    if (e->is_array()) {
      for (const Json& x : e->items()) {
        int64_t v;
        if (!x.as_int64(&v) || v < 0) r.bad("eos_token_id", "must be an integer or a list of integers");
        if (v >= c.vocab_size)
          r.bad("eos_token_id", str("holds ", x.as_string(), ", not a token id below vocab_size (",
                                    c.vocab_size, ")"));
        c.eos_token_ids.push_back(int(v));
      }
    } else if (!e->is_null()) {
      c.eos_token_ids.push_back(r.integer("eos_token_id", true, 0, 0));
      if (c.eos_token_ids[0] >= c.vocab_size)
        r.bad("eos_token_id", str("is ", c.eos_token_ids[0], ", not a token id below vocab_size (", c.vocab_size, ")"));
    }
  } else if (c.vocab_size > 2) {
    // LLaMA's </s>, when the vocabulary has that id (fuzzing found a
    // 2-token vocabulary that got an end token outside it).
    c.eos_token_ids.push_back(2);
  }
  if (const Json* rs = root.get("rope_scaling"); rs && !rs->is_null()) {
    if (!rs->is_object()) r.bad("rope_scaling", "must be an object or null");
    const Json* type = rs->get("rope_type");
    if (!type) type = rs->get("type");
    if (!type || !type->is_string()) r.bad("rope_scaling", "has no 'type' / 'rope_type'");
    Reader sr{*rs, where};
    const std::string& t = type->as_string();
    // A factor stretches positions: below 1 it is not a scaling that any
    // checkpoint was trained with (Transformers documents factor >= 1), and a
    // tiny one (5e-324) overflows the frequencies to infinity.
    if (t == "linear") {
      c.rope_scaling = RopeScaling::Linear;
      c.rope_factor = sr.number("factor", 1.0, true);
      if (c.rope_factor < 1.0) r.bad("rope_scaling", str("factor is ", c.rope_factor, "; it must be at least 1"));
    } else if (t == "llama3") {
      c.rope_scaling = RopeScaling::Llama3;
      c.rope_factor = sr.number("factor", 8.0, true);
      c.rope_low_freq_factor = sr.number("low_freq_factor", 1.0, true);
      c.rope_high_freq_factor = sr.number("high_freq_factor", 4.0, true);
      c.rope_original_max_pos = sr.number("original_max_position_embeddings", 8192.0, true);
      if (c.rope_factor < 1.0) r.bad("rope_scaling", str("factor is ", c.rope_factor, "; it must be at least 1"));
      if (c.rope_original_max_pos < 1.0)
        r.bad("rope_scaling", str("original_max_position_embeddings is ", c.rope_original_max_pos,
                                  "; it must be at least 1"));
      if (!(c.rope_high_freq_factor > c.rope_low_freq_factor))
        r.bad("rope_scaling", "high_freq_factor must be larger than low_freq_factor");
    } else if (t == "default") {
      c.rope_scaling = RopeScaling::None;
    } else {
      r.bad("rope_scaling", str("has type '", t, "'; supported: linear, llama3"));
    }
  }
  if (const Json* bp = root.get("beacon_param"); bp && !bp->is_null()) {
    if (!bp->is_array()) r.bad("beacon_param", "must be a list such as [\"q\", \"k\", \"v\", \"o\"]");
    c.has_beacon_param = true;
    for (const Json& x : bp->items()) {
      if (!x.is_string()) r.bad("beacon_param", "must be a list of strings");
      c.beacon_param.push_back(x.as_string());
    }
  }
  if (const Json* td = root.get("torch_dtype"); td && td->is_string()) c.torch_dtype = td->as_string();
  // The last line of defence for the rotary table: whatever combination of
  // the fields above, every frequency must be a finite positive number.
  for (double f : c.rope_inv_freq())
    if (!(std::isfinite(f) && f > 0))
      r.bad(c.rope_scaling == RopeScaling::None ? "rope_theta" : "rope_scaling",
            str("gives a rotary frequency of ", f, "; check rope_theta and rope_scaling"));
  return c;
}

ModelConfig load_config(const std::string& dir) {
  std::string path = dir + "/config.json";
  return parse_config(read_text_file(path), path);
}

}  // namespace focus
