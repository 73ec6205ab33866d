// The backend interface: memory plus a dozen model-agnostic ops. The CPU
// backend (cpp/cpu/) and the CUDA backend (cuda/) implement it; the model
// runner (model.cpp) is written once against it.
//
// Conventions
// - Matrices are row-major. A token row of activations is `dim` contiguous
//   elements of act_dtype(); "(n, dim)" below means n such rows.
// - Every pointer handed to an op is backend memory (host memory for the CPU
//   backend, device memory for CUDA), including the small tables (ids,
//   positions, KV destinations, attention segments); `*_host` arguments are
//   host copies of the same tables for launch planning.
// - Ops are ordered: each sees the results of the ops issued before it.
//   download() waits for everything issued before it.
// - Float32 accumulation everywhere, whatever the storage type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"

namespace focus {

struct TensorView;

// A weight tensor resident on a backend: (rows, cols) row-major, rows = output
// features, cols = input features; vectors (norm weights, biases) have cols 1.
struct Weight {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const char* name = "";  // for messages; points into the model's name table
  bool empty() const { return data == nullptr; }
};

// Where one token's key and value rows go: addresses for layer 0, and the
// distance in elements between consecutive layers (0 = the same buffer is
// reused by every layer, as scratch is).
struct KvDst {
  void* k;
  void* v;
  int64_t layer_stride;
  int32_t dtype;  // DType of the destination
  int32_t pad_;
};

// One group of consecutive query rows that share a key sequence. The keys a
// query sees are
//   prefix keys [0, n_prefix)  - all of them (the candidate tokens), then
//   main keys   [0, q_index + i] for query i of the group (causal).
// Main keys are the sequence's cache followed by its new tokens, already
// rotated; prefix keys are rotated too (at positions 0..n_prefix-1).
struct AttnSegment {
  int32_t q_row;     // first query row in the activations
  int32_t n_q;       // number of consecutive query rows
  int32_t q_index;   // main-key index of the first query
  int32_t n_prefix;  // fully visible prefix keys (0 = none)
  const void* k_main;  // (>= q_index + n_q, kv_dim) at layer 0
  const void* v_main;
  int64_t main_layer_stride;  // elements
  const void* k_prefix;       // (n_prefix, kv_dim) at layer 0
  const void* v_prefix;
  int64_t prefix_k_layer_stride;
  int64_t prefix_v_layer_stride;
  int32_t main_dtype;
  int32_t prefix_dtype;
};

struct AttnArgs {
  const AttnSegment* segs = nullptr;       // backend memory, n_seg entries
  const AttnSegment* segs_host = nullptr;  // the same, on the host
  int n_seg = 0;
  int n_rows = 0;  // total query rows (rows of q and out)
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int layer = 0;
  float scale = 1.0f;  // softmax scale, 1/sqrt(head_dim)
};

// Token sampling. temperature 0: greedy (the lowest index among equal
// maxima). Otherwise weights exp((logit - max) / temperature) over a kept set
// that is a prefix of the order "descending logit, ties to the lower index":
// the top_k first (0 = all), then the shortest prefix of those whose weight
// reaches top_p of theirs. The draw, with the caller's uniform number u in
// [0, 1), is the first kept token in vocabulary order whose running weight
// reaches u times the kept total. CPU, CUDA and lib/sampling.ts agree up to
// rounding.
struct SampleParams {
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
};

// Attention for training, over contiguous float32 keys and values: one entry
// per sequence. Its queries are rows [q_row, q_row + n_q) of q/out, its keys
// rows [key_row, key_row + n_keys) of k/v (already rotated); query i sees its
// keys [0, q_key0 + i]: everything before q_key0 (a constant cache, or the
// candidate prefix) fully, its own keys causally. q_key0 + n_q <= n_keys, and
// the key ranges of the sequences of one call do not overlap.
struct TrainAttnSeq {
  int32_t q_row, n_q;
  int64_t key_row;
  int32_t n_keys, q_key0;
};

// One AdamW update (decoupled weight decay, bias-corrected moments):
//   g' = g * grad_scale;  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2
//   w -= lr * (m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps) + weight_decay * w)
struct AdamWStep {
  float lr = 0, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0, grad_scale = 1;
  int64_t t = 1;  // the step number, from 1
};

enum class Epilogue {
  Store,     // out = x · wᵀ (+ bias)
  Add,       // out += x · wᵀ (+ bias): the residual add, fused
  StoreF32,  // like Store, but out is float32 whatever act_dtype() is (logits)
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;         // "cpu", "cuda"
  virtual std::string description() const = 0;  // device / threads, for info
  virtual DType act_dtype() const = 0;          // activations, scratch KV, candidate KVs

  // ---- memory --------------------------------------------------------------
  // Throws OutOfMemory naming `what` and the bytes needed when it does not fit.
  virtual void* alloc(size_t bytes, const char* what) = 0;
  virtual void dealloc(void* p) = 0;
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void fill_zero(void* dst, size_t bytes) = 0;
  virtual void sync() = 0;
  // Bytes still available for allocations (device memory on CUDA).
  virtual size_t free_bytes() const = 0;

  // Makes a checkpoint tensor usable by the ops. The CPU backend computes on
  // the memory map directly; CUDA converts to its 16-bit type and uploads.
  virtual Weight load_weight(const TensorView& t, const char* name) = 0;
  virtual void release_weight(Weight& w) = 0;
  // Bytes a weight of this shape and file dtype takes on the backend.
  virtual size_t weight_bytes(DType file_dtype, int64_t numel) const = 0;

  // Rotary frequencies (head_dim/2), set once per model.
  virtual void set_rope(const std::vector<double>& inv_freq, int head_dim) = 0;

  // Called once before any weight is loaded, with the storage type of most of
  // the checkpoint's weights (a 16-bit backend picks F16 or BF16 from it).
  virtual void configure(DType weights_dtype) {}

  // ---- ops ---------------------------------------------------------------
  // out (n, table.cols) = table[ids[i]]
  virtual void embedding(void* out, const Weight& table, const int32_t* ids, int n) = 0;
  // out (n, dim) = x / rms(x) * w, dim = w.rows; out may alias x
  virtual void rms_norm(void* out, const void* x, const Weight& w, int n, float eps) = 0;
  // out (m, w.rows) = or += x (m, w.cols) · wᵀ + bias (bias may be null or empty)
  virtual void matmul(void* out, const void* x, int m, const Weight& w, const Weight* bias, Epilogue e) = 0;
  // Row-split matmul: rows [0, split) use (w1, b1), rows [split, m) use (w2,
  // b2) - the candidate projections. Backends may do it in one launch.
  virtual void matmul_split(void* out, const void* x, int m, int split, const Weight& w1, const Weight* b1,
                            const Weight& w2, const Weight* b2, Epilogue e) {
    const size_t es = dtype_size(e == Epilogue::StoreF32 ? DType::F32 : act_dtype());
    const size_t xs = dtype_size(act_dtype());
    if (split > 0) matmul(out, x, split, w1, b1, e);
    if (m > split)
      matmul(static_cast<char*>(out) + size_t(split) * size_t(w1.rows) * es,
             static_cast<const char*>(x) + size_t(split) * size_t(w1.cols) * xs, m - split, w2, b2, e);
  }
  // Several row-split matmuls that read the same x (m, cols) and split, and
  // write different outputs (none reads another's output): q, k and v, or
  // gate and up. Each gives the same numbers as its own matmul_split; a
  // backend may run them as one parallel region (the CPU does at decode,
  // where the wake-up and tail of a region cost as much as a small matrix).
  struct SplitJob {
    void* out;
    const Weight* w1;
    const Weight* b1;
    const Weight* w2;
    const Weight* b2;
  };
  virtual void matmul_split_group(const void* x, int m, int split, const SplitJob* jobs, int n_jobs, Epilogue e) {
    for (int j = 0; j < n_jobs; ++j)
      matmul_split(jobs[j].out, x, m, split, *jobs[j].w1, jobs[j].b1, *jobs[j].w2, jobs[j].b2, e);
  }
  // table (n, head_dim): cos of pos[i] * inv_freq in the first half, sin in
  // the second half, float32, angles computed in double
  virtual void rope_table(float* table, const int32_t* pos, int n) = 0;
  // Rotates x (n, n_heads * head_dim) in place, rotate-half convention (HF
  // LLaMA): dim j pairs with dim j + head_dim/2.
  virtual void rope(void* x, int n, int n_heads, const float* table) = 0;
  // Writes k and v rows (n, kv_dim) to dst[i] at `layer`, converting to the
  // destination's dtype.
  virtual void kv_store(const void* k, const void* v, const KvDst* dst, int n, int kv_dim, int layer) = 0;
  // out (n_rows, n_heads * head_dim): softmax(q kᵀ * scale) v per segment.
  virtual void attention(void* out, const void* q, const AttnArgs& a) = 0;
  // out (n) = silu(gate) * up; out may alias gate
  virtual void swiglu(void* out, const void* gate, const void* up, int64_t n) = 0;
  // out (n, dim) = x[rows[i]]
  virtual void gather_rows(void* out, const void* x, const int32_t* rows, int n, int dim) = 0;
  // out (rows): one token per row of logits (rows, vocab) float32, drawn with
  // uniforms[row] (see SampleParams). out and uniforms are backend memory.
  virtual void sample(int32_t* out, const float* logits, int rows, int vocab, const SampleParams& p,
                      const float* uniforms) = 0;

  // ---- training -----------------------------------------------------------
  // Float32 activations and gradients. Every *_backward ADDS into the
  // gradients it is given (null = not wanted); cpu/ops.h has the formulas.
  // The CPU backend implements them; a backend without them says so.
  virtual bool can_train() const { return false; }
  // dx (m, w.cols) += dout · w;  dw (w.rows, w.cols) += doutᵀ · x;  dbias += Σ_rows dout
  virtual void matmul_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x, int m,
                               const Weight& w) { no_training(); }
  virtual void rms_norm_backward(float* dx, float* dw, const float* dout, const float* x, const Weight& w, int n,
                                 float eps) { no_training(); }
  // Rotates d (n, n_heads * head_dim) in place by minus the table's angles.
  virtual void rope_backward(float* d, int n, int n_heads, const float* table) { no_training(); }
  virtual void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                               int64_t n) { no_training(); }
  virtual void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int n, int dim) {
    no_training();
  }
  // losses[i] = logsumexp(logits[i]) - logits[i][targets[i]]; dlogits = (softmax - onehot) * weights[i]
  virtual void cross_entropy(float* dlogits, double* losses, const float* logits, const int32_t* targets,
                             const float* weights, int n, int vocab) { no_training(); }
  // out (rows, q_dim), lse (rows, n_heads); see TrainAttnSeq.
  virtual void attention_train_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                                       const TrainAttnSeq* seqs, int n_seq, const AttnArgs& shape) {
    no_training();
  }
  virtual void attention_train_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                                        const float* lse, const float* q, const float* k, const float* v,
                                        const TrainAttnSeq* seqs, int n_seq, const AttnArgs& shape) {
    no_training();
  }
  // out (cols, rows) = xᵀ, x (rows, cols) float32
  virtual void transpose(float* out, const float* x, int rows, int cols) { no_training(); }
  virtual void adamw(float* w, const float* g, float* m, float* v, int64_t n, const AdamWStep& s) { no_training(); }
  // Σ x², accumulated in double
  virtual double sum_squares(const float* x, int64_t n) { no_training(); return 0; }

 protected:
  [[noreturn]] void no_training() const;
};

// The CPU backend with `threads` threads (1..1024).
std::unique_ptr<Backend> make_cpu_backend(int threads);
// The instruction set the CPU kernels use here ("avx512", "avx2", "generic");
// throws when FOCUSLLM_CPU_ISA asks for one this CPU or build lacks.
std::string cpu_kernel_isa();

// The CUDA backend when compiled in and a device is usable; throws an Error
// saying why not otherwise.
std::unique_ptr<Backend> make_cuda_backend(int device);
bool cuda_compiled();
// Empty when a CUDA device is usable, else why not (not compiled, no driver, ...).
std::string cuda_unavailable_reason();

}  // namespace focus
