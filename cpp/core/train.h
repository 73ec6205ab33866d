// Training: FocusLLM candidate-projection training (DESIGN 1b) and full
// causal-LM training, with exact float32 gradients.
//
// The Trainer makes some of a Model's tensors trainable: each gets a float32
// master copy, held by the Model, which the Model's own Weight slots are
// pointed at (so inference after training runs the trained weights), plus a
// gradient and the two AdamW moments, held here. Frozen tensors stay as
// loaded (memory-mapped, 16-bit ok).
//
// One accumulate() call runs forward + backward of a batch of examples (one
// after another; every op is multi-threaded) and adds each example's
// gradient into the gradient buffers; adamw() applies the update. All ops go
// through the Backend interface (core/backend.h, "training" section), so a
// backend that implements them trains too.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model.h"

namespace focus {

struct TrainExample {
  enum class Kind { Focus, Lm };
  Kind kind = Kind::Focus;
  std::vector<int32_t> ids;  // x, BOS first
  bool repetition = false;   // focus: memory = all of x (else x[0:s])
  int s = 0, l = 0, chunk = 0, prompt_cap = 512;  // focus geometry
  float weight = 1.0f;       // the example's gradient is multiplied by this
};

struct TrainParam {
  std::string name;             // checkpoint name
  std::vector<int64_t> shape;
  float* w = nullptr;           // master weight (held by the Model)
  int64_t numel = 0;
  std::vector<float> g, m, v;   // gradient and AdamW moments
  bool in_checkpoint = false;   // false: a new candidate tensor (copied from its base at the start)
};

class Trainer {
 public:
  // all_params: every tensor of the checkpoint (LM training); otherwise the
  // candidate projections per beacon_param. recompute: keep only each layer's
  // input and recompute the layer during the backward.
  Trainer(std::shared_ptr<Model> model, bool all_params, bool recompute);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  bool all_params() const { return all_; }
  const std::vector<std::unique_ptr<TrainParam>>& params() const { return params_; }
  const TrainParam* find(const std::string& name) const;
  int64_t step() const { return step_; }
  // What was trained, for config.json's beacon_param ("q", "k", "v", "o", "mlp"); empty for all-params.
  const std::vector<std::string>& candidate_keys() const { return cand_keys_; }

  // Checks every example before any work; throws naming the example and field.
  void validate(const std::vector<TrainExample>& ex) const;
  // Forward + backward of every example; gradients (times weight) accumulate.
  // Returns each example's loss. ctl: cancellation between examples and layers.
  std::vector<double> accumulate(const std::vector<TrainExample>& ex, RunControl* ctl = nullptr);
  void zero_grad();
  double grad_norm() const;
  void adamw(const AdamWStep& s);  // s.t is set from the step counter

  // One safetensors file with every tensor of the base checkpoint, the
  // trainable ones replaced by their float32 weights, new candidates added.
  void save_weights(const std::string& path) const;
  void save_state(const std::string& path) const;
  void load_state(const std::string& path);

 private:
  struct Graph;  // train_graph.cpp
  void make_params();
  float* grad_of(const Weight& w) const;  // null for frozen weights

  std::shared_ptr<Model> model_;
  bool all_ = false, recompute_ = false;
  std::vector<std::unique_ptr<TrainParam>> params_;
  std::map<const void*, TrainParam*> by_data_;  // master pointer -> param
  std::vector<std::string> cand_keys_;
  int64_t step_ = 0;
  std::mutex mutex_;
};

}  // namespace focus
