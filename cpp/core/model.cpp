#include "model.h"

#include <sys/stat.h>
#include "workspace.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>

#include "error.h"

namespace focus {

// ---- KV storage -------------------------------------------------------------

// a * b * ..., or throws OutOfMemory when the product does not fit in 62 bits.
static size_t checked_product(std::initializer_list<uint64_t> xs, const char* what) {
  uint64_t r = 1;
  for (uint64_t x : xs) {
    if (x != 0 && r > (uint64_t(1) << 62) / x)
      throw OutOfMemory(str("out of memory: ", what, " would need more than 2^62 bytes"), SIZE_MAX, 0);
    r *= x;
  }
  return size_t(r);
}

// Keys and values are two allocations that must fit together: checked one
// by one, each half fits where the whole does not (and host allocations are
// only committed when written, so the second would not fail either). The
// error reports the whole.
static void check_fits(const Backend& be, size_t bytes, const std::string& what) {
  const size_t avail = be.free_bytes();
  if (bytes > avail)
    throw OutOfMemory(str("out of memory: ", what, " needs ", format_bytes(bytes), " (", bytes,
                          " bytes, keys and values) but only ", format_bytes(avail), " are available"),
                      bytes, avail);
}

size_t KvPool::bytes_needed(const ModelConfig& c, int64_t n_slot, int64_t capacity, DType dtype) {
  FOCUS_CHECK(n_slot >= 0 && capacity >= 0, "KV pool: negative size");
  return checked_product({2, uint64_t(n_slot), uint64_t(c.n_layers), uint64_t(capacity), uint64_t(c.kv_dim()),
                          dtype_size(dtype)},
                         "KV cache pool");
}

KvPool::KvPool(std::shared_ptr<Backend> be, const ModelConfig& c, int n_slot, int capacity, DType dtype)
    : be_(std::move(be)), n_slot_(n_slot), capacity_(capacity), n_layer_(c.n_layers), kv_dim_(c.kv_dim()),
      dtype_(dtype) {
  FOCUS_CHECK(n_slot >= 1, "KV pool: slots must be at least 1, got ", n_slot);
  FOCUS_CHECK(capacity >= 1, "KV pool: capacity must be at least 1 token, got ", capacity);
  bytes_ = bytes_needed(c, n_slot, capacity, dtype);
  check_fits(*be_, bytes_, str("a KV cache pool of ", n_slot, " x ", capacity, " tokens"));
  k_ = be_->alloc(bytes_ / 2, "KV cache pool (keys)");
  try {
    v_ = be_->alloc(bytes_ / 2, "KV cache pool (values)");
  } catch (...) {
    be_->dealloc(k_);
    throw;
  }
  length.assign(size_t(n_slot), 0);
}

KvPool::~KvPool() {
  be_->dealloc(k_);
  be_->dealloc(v_);
}

size_t CandidateSet::bytes_needed(const ModelConfig& c, int64_t n_slot, DType dtype) {
  FOCUS_CHECK(n_slot >= 0, "candidate set: negative size");
  return checked_product({2, uint64_t(c.n_layers), uint64_t(n_slot), uint64_t(c.kv_dim()), dtype_size(dtype)},
                         "candidate KVs");
}

CandidateSet::CandidateSet(std::shared_ptr<Backend> be, const ModelConfig& c, int n_slot)
    : be_(std::move(be)), n_slot_(n_slot), kv_dim_(c.kv_dim()), dtype_(be_->act_dtype()) {
  FOCUS_CHECK(n_slot >= 1, "candidate set: slots must be at least 1, got ", n_slot);
  bytes_ = bytes_needed(c, n_slot, dtype_);
  check_fits(*be_, bytes_, str("a candidate set of ", n_slot, " slots"));
  k_ = be_->alloc(bytes_ / 2, "candidate KVs (keys)");
  try {
    v_ = be_->alloc(bytes_ / 2, "candidate KVs (values)");
  } catch (...) {
    be_->dealloc(k_);
    throw;
  }
  filled.assign(size_t(n_slot), 0);
}

CandidateSet::~CandidateSet() {
  be_->dealloc(k_);
  be_->dealloc(v_);
}

// ---- weights ----------------------------------------------------------------

Weight Model::weight(const Checkpoint& ck, const std::string& name, std::vector<int64_t> shape, bool required) {
  const TensorView* t = ck.find(name);
  if (!t) {
    if (required) throw Error(str(ck.dir(), ": missing tensor '", name, "'"));
    return Weight{};
  }
  if (!t->dtype_supported)
    throw Error(str(t->file, ": tensor '", name, "' has dtype ", t->dtype_name, "; supported: F32, F16, BF16"));
  if (t->shape != shape) {
    TensorView expect;
    expect.shape = shape;
    throw Error(str(t->file, ": tensor '", name, "' has shape ", t->shape_str(), " but config.json implies ",
                    expect.shape_str()));
  }
  names_.push_back(std::make_unique<std::string>(name));
  Weight w = be_->load_weight(*t, names_.back()->c_str());
  owned_.push_back(w);
  info_.backend_weight_bytes += be_->weight_bytes(t->dtype, t->numel());
  return w;
}

namespace {

// The layer index of "model.layers.<i>.<rest>", or -1 for other names.
int64_t layer_of(const std::string& name) {
  static const std::string kPrefix = "model.layers.";
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return -1;
  size_t i = kPrefix.size();
  int64_t v = 0;
  const size_t start = i;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && i - start < 12) v = v * 10 + (name[i++] - '0');
  if (i == start || i >= name.size() || name[i] != '.') return -1;
  return v;
}

// Tensors of FocusLLM / LLaMA checkpoints that no forward reads.
bool known_unused(const std::string& name) {
  static const std::string kInvFreq = ".rotary_emb.inv_freq";  // older Transformers saved this buffer
  return name == "model.beacon_embed_tokens.weight" ||
         (name.size() > kInvFreq.size() && name.compare(name.size() - kInvFreq.size(), kInvFreq.size(), kInvFreq) == 0);
}

std::string list_layers(const std::vector<int>& ls) {
  std::string s;
  for (size_t i = 0; i < ls.size() && i < 8; ++i) s += (i ? ", " : "") + std::to_string(ls[i]);
  if (ls.size() > 8) s += str(", ... (", ls.size(), " layers)");
  return s;
}

}  // namespace

void Model::load_weights(const Checkpoint& ck) {
  const ModelConfig& c = cfg_;
  const int64_t dim = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), inter = c.intermediate_size;
  // A config with fewer layers than the checkpoint would run a truncated
  // model: the layers present must be exactly 0 .. num_hidden_layers-1 (the
  // missing ones are caught below, by name).
  for (const auto& [name, t] : ck.tensors()) {
    const int64_t l = layer_of(name);
    if (l >= c.n_layers)
      throw Error(str(ck.dir(), "/config.json: field 'num_hidden_layers' is ", c.n_layers, " but ", t.file,
                      " holds tensor '", name, "' of layer ", l));
  }
  auto count = [&](const Weight& w, bool candidate) {
    if (w.empty()) return;
    (candidate ? info_.n_candidate_params : info_.n_params) += w.rows * w.cols;
  };
  w_.embed = weight(ck, "model.embed_tokens.weight", {c.vocab_size, dim}, true);
  count(w_.embed, false);
  w_.norm = weight(ck, "model.norm.weight", {dim}, true);
  count(w_.norm, false);
  if (c.tie_word_embeddings) {
    w_.lm_head = w_.embed;
  } else {
    w_.lm_head = weight(ck, "lm_head.weight", {c.vocab_size, dim}, true);
    count(w_.lm_head, false);
  }
  // A candidate projection is used when beacon_param lists it (or there is no
  // beacon_param) and its tensors are present; otherwise the base one is.
  // Present means in every layer: a checkpoint that has them in some layers
  // only (a tensor lost or misspelt) is broken, not a model to run.
  auto wanted = [&](const char* p) { return !c.has_beacon_param || c.beacon_listed(p); };
  static const char* keys[] = {"q", "k", "v", "o", "mlp"};
  static const char* cand_names[] = {"self_attn.beacon_q_proj.weight", "self_attn.beacon_k_proj.weight",
                                     "self_attn.beacon_v_proj.weight", "self_attn.beacon_o_proj.weight",
                                     "mlp.beacon_up_proj.weight"};
  std::vector<int> with[5], without[5];  // layers with / without each candidate projection (wanted ones)
  w_.layers.resize(size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    LayerWeights& L = w_.layers[size_t(i)];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    L.attn_norm = weight(ck, p + "input_layernorm.weight", {dim}, true);
    L.ffn_norm = weight(ck, p + "post_attention_layernorm.weight", {dim}, true);
    L.wq = weight(ck, p + "self_attn.q_proj.weight", {qd, dim}, true);
    L.wk = weight(ck, p + "self_attn.k_proj.weight", {kvd, dim}, true);
    L.wv = weight(ck, p + "self_attn.v_proj.weight", {kvd, dim}, true);
    L.wo = weight(ck, p + "self_attn.o_proj.weight", {dim, qd}, true);
    const bool ab = c.attention_bias;
    L.bq = weight(ck, p + "self_attn.q_proj.bias", {qd}, ab);
    L.bk = weight(ck, p + "self_attn.k_proj.bias", {kvd}, ab);
    L.bv = weight(ck, p + "self_attn.v_proj.bias", {kvd}, ab);
    L.bo = weight(ck, p + "self_attn.o_proj.bias", {dim}, false);
    L.w_gate = weight(ck, p + "mlp.gate_proj.weight", {inter, dim}, true);
    L.w_up = weight(ck, p + "mlp.up_proj.weight", {inter, dim}, true);
    L.w_down = weight(ck, p + "mlp.down_proj.weight", {dim, inter}, true);
    for (const Weight* w : {&L.attn_norm, &L.ffn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.bo,
                            &L.w_gate, &L.w_up, &L.w_down})
      count(*w, false);

    struct Proj {
      const char* key;
      const char* name;
      int64_t rows, cols;
      Weight *base, *bbase, *cand, *bcand;
    } projs[] = {{"q", "q_proj", qd, dim, &L.wq, &L.bq, &L.cq, &L.cbq},
                 {"k", "k_proj", kvd, dim, &L.wk, &L.bk, &L.ck, &L.cbk},
                 {"v", "v_proj", kvd, dim, &L.wv, &L.bv, &L.cv, &L.cbv},
                 {"o", "o_proj", dim, qd, &L.wo, &L.bo, &L.co, &L.cbo}};
    for (int j = 0; j < 4; ++j) {
      Proj& pr = projs[j];
      std::string n = p + "self_attn.beacon_" + pr.name;
      *pr.cand = *pr.base;
      *pr.bcand = *pr.bbase;
      if (!wanted(pr.key)) continue;
      if (!ck.find(n + ".weight")) {
        without[j].push_back(i);
        continue;
      }
      *pr.cand = weight(ck, n + ".weight", {pr.rows, pr.cols}, true);
      count(*pr.cand, true);
      // Candidate biases follow the base ones: with attention_bias, q/k/v
      // candidate projections carry their own.
      const bool need_bias = ab && j < 3;
      Weight b = weight(ck, n + ".bias", {pr.rows}, need_bias);
      if (!b.empty()) {
        *pr.bcand = b;
        count(b, true);
      }
      with[j].push_back(i);
    }
    L.c_up = L.w_up;
    L.c_down = L.w_down;
    const bool has_up = ck.find(p + "mlp.beacon_up_proj.weight"), has_down = ck.find(p + "mlp.beacon_down_proj.weight");
    if (wanted("mlp")) {
      if (has_up || has_down) {
        // Both or neither: a half-present candidate MLP is a broken checkpoint.
        L.c_up = weight(ck, p + "mlp.beacon_up_proj.weight", {inter, dim}, true);
        L.c_down = weight(ck, p + "mlp.beacon_down_proj.weight", {dim, inter}, true);
        count(L.c_up, true);
        count(L.c_down, true);
        with[4].push_back(i);
      } else {
        without[4].push_back(i);
      }
    }
  }
  // Every tensor the model did not read, but those known to be unused.
  std::set<std::string> used;
  for (const auto& n : names_) used.insert(*n);
  for (const auto& [name, t] : ck.tensors())
    if (!used.count(name) && !known_unused(name)) info_.unused_tensors.push_back(name);
  std::sort(info_.unused_tensors.begin(), info_.unused_tensors.end());
  for (int j = 0; j < 5; ++j) {
    if (!with[j].empty() && !without[j].empty()) {
      const int l = without[j][0];
      std::string hint;  // a misspelt name in that layer, if any
      const std::string lp = "model.layers." + std::to_string(l) + ".";
      for (const std::string& u : info_.unused_tensors)
        if (u.compare(0, lp.size(), lp) == 0 && u.find("beacon") != std::string::npos)
          hint += (hint.empty() ? "; that layer has '" : "', '") + u;
      if (!hint.empty()) hint += "', which is not a tensor name the model knows";
      throw Error(str(ck.dir(), ": candidate projection '", keys[j], "' is in layers ", list_layers(with[j]),
                      " but missing in layers ", list_layers(without[j]), " (no tensor '", lp, cand_names[j], "'",
                      hint, "); a checkpoint holds a candidate projection in every layer or in none"));
    }
    if (!with[j].empty()) info_.candidate_present.push_back(keys[j]);
  }
  info_.file_bytes = ck.total_bytes();
}

void Model::check_files() const { ck_->check_unchanged(); }

Model::Model(const std::string& dir, std::shared_ptr<Backend> be, const ModelOptions& opts) : be_(std::move(be)) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) throw Error(str(dir, ": no such model folder"));
  if (!S_ISDIR(st.st_mode)) throw Error(str(dir, ": not a folder (expected a folder with config.json and *.safetensors)"));
  cfg_ = load_config(dir);
  if (opts.override_beacon_param) {
    cfg_.has_beacon_param = true;
    cfg_.beacon_param = opts.beacon_param;
  }
  ck_ = std::make_unique<Checkpoint>(dir);
  {
    // The storage type most of the parameters have decides a 16-bit backend's type.
    std::map<std::string, double> by_type;  // element counts (double: no overflow on absurd shapes)
    for (const auto& [name, t] : ck_->tensors()) by_type[t.dtype_name] += double(t.numel());
    double best = -1;
    for (const auto& [t, n] : by_type)
      if (n > best) best = n, info_.dtype = t;
    DType d = DType::F32;
    dtype_from_name(info_.dtype, &d);
    be_->configure(d);
  }
  try {
    load_weights(*ck_);
  } catch (...) {
    for (Weight& w : owned_) be_->release_weight(w);
    throw;
  }
  be_->set_rope(cfg_.rope_inv_freq(), cfg_.head_dim);
  FOCUS_CHECK(opts.max_batch_tokens >= 0, "option maxBatchTokens must be positive, got ", opts.max_batch_tokens);
  max_batch_tokens_ = opts.max_batch_tokens > 0 ? opts.max_batch_tokens : (be_->name() == "cpu" ? 1024 : 16384);
}

}  // namespace focus
