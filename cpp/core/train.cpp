// Trainer: which tensors train, their master copies, the optimizer, and the
// files (trained weights, optimizer state). The forward and backward of the
// examples are in train_graph.cpp.
#include "train.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include "error.h"
#include "safetensors.h"

namespace focus {

namespace {

std::vector<float> to_float(const Weight& w) {
  std::vector<float> out(size_t(w.rows * w.cols));
  for (size_t i = 0; i < out.size(); ++i) out[i] = load_as_f32(w.data, w.dtype, i);
  return out;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
      continue;
    }
    o += c;
  }
  return o;
}

// One tensor to write: bytes from a pointer (not copied).
struct OutTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t nbytes;
};

// Writes a safetensors file atomically (a temporary file in the same folder,
// then rename): a reader that has the old file mapped keeps its bytes, and an
// interrupted write leaves the old file whole.
void write_safetensors(const std::string& path, std::vector<OutTensor> ts, const std::string& metadata) {
  std::sort(ts.begin(), ts.end(), [](const OutTensor& a, const OutTensor& b) { return a.name < b.name; });
  std::string h = "{\"__metadata__\":{" + metadata + "}";
  size_t off = 0;
  for (const OutTensor& t : ts) {
    h += ",\"" + json_escape(t.name) + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) h += (i ? "," : "") + std::to_string(t.shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + t.nbytes) + "]}";
    off += t.nbytes;
  }
  h += "}";
  while (h.size() % 8) h += ' ';  // the data section starts 8-byte aligned
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    FOCUS_CHECK(f.good(), tmp, ": cannot create the file (", std::strerror(errno), ")");
    const uint64_t n = h.size();
    uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = uint8_t(n >> (8 * i));
    f.write(reinterpret_cast<const char*>(le), 8);
    f.write(h.data(), std::streamsize(h.size()));
    for (const OutTensor& t : ts) f.write(static_cast<const char*>(t.data), std::streamsize(t.nbytes));
    f.flush();
    if (!f.good()) {
      std::remove(tmp.c_str());
      throw Error(str(tmp, ": writing failed (disk full?)"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    throw Error(str(path, ": cannot write (", std::strerror(e), ")"));
  }
}

}  // namespace

Trainer::Trainer(std::shared_ptr<Model> model, bool all_params, bool recompute)
    : model_(std::move(model)), all_(all_params), recompute_(recompute) {
  FOCUS_CHECK(model_->backend().can_train(), "training is not implemented on the ", model_->backend().name(),
              " backend yet; load the model with backend \"cpu\" to train it");
  std::lock_guard<std::mutex> lock(model_->run_mutex_);
  FOCUS_CHECK(!model_->has_trainer_, "this model already has a trainer; dispose it first");
  make_params();
  arena_ = std::make_unique<TrainArena>(model_->backend());
  model_->has_trainer_ = true;
}

Trainer::~Trainer() {
  pool_.reset();
  arena_.reset();
  std::lock_guard<std::mutex> lock(model_->run_mutex_);
  model_->has_trainer_ = false;
}

const TrainParam* Trainer::find(const std::string& name) const {
  for (const auto& p : params_)
    if (p->name == name) return p.get();
  return nullptr;
}

float* Trainer::grad_of(const Weight& w) const {
  auto it = by_data_.find(w.data);
  return it == by_data_.end() ? nullptr : it->second->g.data();
}

// A candidate tensor (FocusLLM's beacon_* projections), by checkpoint name
// (or an optimizer moment's "m." / "v." name).
static bool is_candidate_name(const std::string& name) { return name.find(".beacon_") != std::string::npos; }

// Gives `slot` a float32 master copy named `name` (initialised from the
// slot's current weight) and points the slot at it; with all_slots, every
// other slot of the model that shares the old data (tied embeddings, absent
// candidates aliasing their base) follows.
void Trainer::make_params() {
  Model& M = *model_;
  const ModelConfig& c = M.cfg_;
  ModelWeights& W = M.w_;
  std::vector<Weight*> every{&W.embed, &W.norm, &W.lm_head};
  for (LayerWeights& L : W.layers)
    for (Weight* w : {&L.attn_norm, &L.ffn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.bo, &L.cq,
                      &L.ck, &L.cv, &L.co, &L.cbq, &L.cbk, &L.cbv, &L.cbo, &L.w_gate, &L.w_up, &L.w_down, &L.c_up,
                      &L.c_down})
      every.push_back(w);

  auto add = [&](Weight* slot, const std::string& name, bool follow_aliases) {
    if (slot->empty()) return;
    for (const auto& p : params_)
      if (p->name == name) return;  // already trainable (an alias reached first)
    auto p = std::make_unique<TrainParam>();
    p->name = name;
    p->in_checkpoint = M.ck_->find(name) != nullptr;
    const TensorView* tv = M.ck_->find(name);
    p->shape = tv ? tv->shape : (slot->cols == 1 ? std::vector<int64_t>{slot->rows}
                                                 : std::vector<int64_t>{slot->rows, slot->cols});
    p->numel = slot->rows * slot->cols;
    auto& master = M.masters_[name];
    if (!master) master = std::make_unique<std::vector<float>>(to_float(*slot));  // else: trained before
    p->w = master->data();
    p->g.assign(size_t(p->numel), 0.0f);
    p->m.assign(size_t(p->numel), 0.0f);
    p->v.assign(size_t(p->numel), 0.0f);
    const void* old = slot->data;
    Weight nw = *slot;
    nw.data = p->w;
    nw.dtype = DType::F32;
    if (follow_aliases) {
      for (Weight* w : every)
        if (w->data == old) *w = Weight{nw.data, DType::F32, w->rows, w->cols, w->name};
    } else {
      *slot = nw;
    }
    by_data_[p->w] = p.get();
    params_.push_back(std::move(p));
  };

  if (all_) {
    // Every tensor the model loaded, by its checkpoint name, except the
    // candidate ones: the lm loss never reads them, so they would get no
    // gradient and only weight decay (as torch's AdamW skips a parameter
    // whose grad is None, they are not parameters here and stay as loaded).
    for (Weight* w : every)
      if (!w->empty() && M.ck_->find(w->name) && !is_candidate_name(w->name)) add(w, w->name, true);
    return;
  }
  // Candidate projections per beacon_param, default q k v o (the official
  // recipe; a candidate MLP needs beacon_param to list "mlp").
  std::vector<std::string> keys;
  if (c.has_beacon_param) {
    for (const char* k : {"q", "k", "v", "o", "mlp"})
      if (c.beacon_listed(k)) keys.push_back(k);
  } else {
    keys = {"q", "k", "v", "o"};
  }
  FOCUS_CHECK(!keys.empty(), M.ck_->dir(), "/config.json: beacon_param lists no candidate projection to train");
  cand_keys_ = keys;
  auto listed = [&](const char* k) { return std::find(keys.begin(), keys.end(), k) != keys.end(); };
  for (int i = 0; i < c.n_layers; ++i) {
    LayerWeights& L = W.layers[size_t(i)];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    struct Proj {
      const char *key, *name;
      Weight *cand, *bcand, *bbase;
    } projs[] = {{"q", "q_proj", &L.cq, &L.cbq, &L.bq},
                 {"k", "k_proj", &L.ck, &L.cbk, &L.bk},
                 {"v", "v_proj", &L.cv, &L.cbv, &L.bv},
                 {"o", "o_proj", &L.co, &L.cbo, &L.bo}};
    for (Proj& pr : projs) {
      if (!listed(pr.key)) continue;
      const std::string n = p + "self_attn.beacon_" + pr.name;
      add(pr.cand, n + ".weight", false);
      // A candidate bias trains where the base projection has one.
      if (!pr.bbase->empty()) add(pr.bcand, n + ".bias", false);
    }
    if (listed("mlp")) {
      add(&L.c_up, p + "mlp.beacon_up_proj.weight", false);
      add(&L.c_down, p + "mlp.beacon_down_proj.weight", false);
    }
  }
}

void Trainer::zero_grad() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& p : params_) std::fill(p->g.begin(), p->g.end(), 0.0f);
}

double Trainer::grad_norm() const {
  double s = 0;
  for (const auto& p : params_) s += model_->backend().sum_squares(p->g.data(), p->numel);
  return std::sqrt(s);
}

void Trainer::adamw(const AdamWStep& in) {
  FOCUS_CHECK(std::isfinite(in.lr) && in.lr >= 0, "AdamW: lr must be a finite number >= 0, got ", in.lr);
  FOCUS_CHECK(in.beta1 >= 0 && in.beta1 < 1 && in.beta2 >= 0 && in.beta2 < 1, "AdamW: betas must be in [0, 1), got ",
              in.beta1, ", ", in.beta2);
  FOCUS_CHECK(in.eps > 0 && std::isfinite(in.eps), "AdamW: eps must be > 0, got ", in.eps);
  FOCUS_CHECK(std::isfinite(in.weight_decay) && in.weight_decay >= 0, "AdamW: weightDecay must be >= 0, got ",
              in.weight_decay);
  FOCUS_CHECK(std::isfinite(in.grad_scale), "AdamW: gradScale must be finite, got ", in.grad_scale);
  std::lock_guard<std::mutex> lock(mutex_);
  // Inference runs read the weights: update them between runs, not during one.
  std::lock_guard<std::mutex> run_lock(model_->run_mutex_);
  AdamWStep s = in;
  s.t = step_ + 1;
  for (auto& p : params_) model_->backend().adamw(p->w, p->g.data(), p->m.data(), p->v.data(), p->numel, s);
  ++step_;
}

void Trainer::save_weights(const std::string& path) const {
  model_->check_files();  // the frozen tensors are copied from the memory maps
  const Checkpoint& ck = *model_->ck_;
  std::vector<OutTensor> out;
  std::set<std::string> done;
  for (const auto& p : params_) {
    out.push_back({p->name, "F32", p->shape, p->w, size_t(p->numel) * 4});
    done.insert(p->name);
  }
  for (const auto& [name, t] : ck.tensors())
    if (!done.count(name)) out.push_back({name, t.dtype_name, t.shape, t.data, t.nbytes});
  write_safetensors(path, std::move(out), "\"format\":\"pt\",\"producer\":\"focusllm train\"");
}

void Trainer::save_state(const std::string& path) const {
  std::vector<OutTensor> out;
  for (const auto& p : params_) {
    out.push_back({"m." + p->name, "F32", p->shape, p->m.data(), size_t(p->numel) * 4});
    out.push_back({"v." + p->name, "F32", p->shape, p->v.data(), size_t(p->numel) * 4});
  }
  const int64_t step = step_;
  out.push_back({"step", "I64", {1}, &step, 8});
  write_safetensors(path, std::move(out),
                    str("\"format\":\"focusllm-optimizer\",\"params\":\"", all_ ? "all" : "candidate", "\""));
}

void Trainer::load_state(const std::string& path) {
  MappedFile f(path);
  std::vector<TensorView> ts;
  parse_safetensors(f.data(), f.size(), path, &ts);
  std::map<std::string, const TensorView*> by;
  for (const TensorView& t : ts) by[t.name] = &t;
  auto get = [&](const std::string& name, int64_t numel, const char* dtype) -> const TensorView& {
    auto it = by.find(name);
    FOCUS_CHECK(it != by.end(), path, ": missing tensor '", name, "' (optimizer state of another model or run?)");
    FOCUS_CHECK(it->second->dtype_name == dtype && it->second->numel() == numel, path, ": tensor '", name,
                "' has dtype ", it->second->dtype_name, " and ", it->second->numel(), " elements, expected ", dtype,
                " and ", numel);
    return *it->second;
  };
  const TensorView& st = get("step", 1, "I64");
  int64_t step;
  std::memcpy(&step, st.data, 8);
  FOCUS_CHECK(step >= 0, path, ": negative step ", step);
  // A --params all run saved before candidate tensors were left out of it
  // holds their (decay-only) moments too: those are dropped.
  size_t stale = 0;
  if (all_)
    for (const auto& kv : by)
      if (is_candidate_name(kv.first)) ++stale;
  FOCUS_CHECK(by.size() - stale == 2 * params_.size() + 1, path, ": holds ", by.size() - stale,
              " tensors, this trainer has ", params_.size(), " trainable tensors (", 2 * params_.size() + 1,
              " expected)");
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& p : params_) {
    const TensorView& m = get("m." + p->name, p->numel, "F32");
    const TensorView& v = get("v." + p->name, p->numel, "F32");
    std::memcpy(p->m.data(), m.data, m.nbytes);
    std::memcpy(p->v.data(), v.data, v.nbytes);
  }
  step_ = step;
}

}  // namespace focus
