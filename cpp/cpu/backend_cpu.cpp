// The CPU backend: host memory, float32 activations, weights read in place
// from the memory-mapped checkpoint.
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "../core/error.h"
#include "../core/safetensors.h"
#include "ops.h"

namespace focus {

namespace {

// MemAvailable from /proc/meminfo, capped by a cgroup v2 memory limit.
size_t host_available_bytes() {
  size_t avail = 0;
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb;
  std::string unit;
  while (f >> key >> kb) {
    std::getline(f, unit);
    if (key == "MemAvailable:") {
      avail = kb * 1024;
      break;
    }
  }
  std::ifstream cg("/sys/fs/cgroup/memory.max"), cu("/sys/fs/cgroup/memory.current");
  std::string max_s;
  size_t cur = 0;
  if (cg >> max_s && max_s != "max" && cu >> cur) {
    size_t lim = std::strtoull(max_s.c_str(), nullptr, 10);
    if (lim > cur && (avail == 0 || lim - cur < avail)) avail = lim - cur;
  }
  return avail ? avail : size_t(1) << 40;
}

class CpuBackend final : public Backend {
 public:
  // Resolves the instruction set first: a bad FOCUSLLM_CPU_ISA fails here,
  // before any thread starts.
  explicit CpuBackend(int threads) : pool_((cpu::kernels(), threads)) {}

  std::string name() const override { return "cpu"; }
  std::string description() const override {
    return str("CPU, ", pool_.size(), pool_.size() == 1 ? " thread, " : " threads, ", cpu::cpu_isa_name());
  }
  DType act_dtype() const override { return DType::F32; }

  void* alloc(size_t bytes, const char* what) override {
    size_t avail = host_available_bytes();
    if (bytes > avail)
      throw OutOfMemory(str("out of memory: ", what, " needs ", format_bytes(bytes), " (", bytes, " bytes) but only ",
                            format_bytes(avail), " are available"),
                        bytes, avail);
    // Big buffers (KV pools, workspaces, training activations) are 2 MiB
    // aligned and asked to use transparent huge pages: on the VMs this was
    // measured on, first touch of fresh 4 KiB pages runs at 0.3 GB/s, of
    // huge pages at 4-12 GB/s.
    constexpr size_t kHuge = size_t(2) << 20;
    void* p;
    if (bytes >= 2 * kHuge) {
      p = std::aligned_alloc(kHuge, (bytes + kHuge - 1) & ~(kHuge - 1));
#ifdef MADV_HUGEPAGE
      if (p) ::madvise(p, (bytes + kHuge - 1) & ~(kHuge - 1), MADV_HUGEPAGE);
#endif
    } else {
      p = std::aligned_alloc(64, (bytes + 63) & ~size_t(63));
    }
    if (!p)
      throw OutOfMemory(str("out of memory: ", what, " needs ", format_bytes(bytes), " (", bytes, " bytes)"), bytes,
                        avail);
    return p;
  }
  void dealloc(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void copy(void* dst, const void* src, size_t n) override { std::memmove(dst, src, n); }
  void fill_zero(void* dst, size_t n) override { std::memset(dst, 0, n); }
  void sync() override {}
  size_t free_bytes() const override { return host_available_bytes(); }

  Weight load_weight(const TensorView& t, const char* name) override {
    Weight w;
    w.data = t.data;
    w.dtype = t.dtype;
    w.rows = t.shape.empty() ? 1 : t.shape[0];
    w.cols = t.shape.size() >= 2 ? t.shape[1] : 1;
    w.name = name;
    return w;
  }
  void release_weight(Weight& w) override { w.data = nullptr; }
  size_t weight_bytes(DType, int64_t) const override { return 0; }  // mapped, not copied

  void set_rope(const std::vector<double>& inv_freq, int head_dim) override {
    inv_freq_ = inv_freq;
    head_dim_ = head_dim;
  }

  void embedding(void* out, const Weight& table, const int32_t* ids, int n) override {
    cpu::embedding(pool_, f(out), table, ids, n);
  }
  void rms_norm(void* out, const void* x, const Weight& w, int n, float eps) override {
    cpu::rms_norm(pool_, f(out), cf(x), w, n, eps);
  }
  void matmul(void* out, const void* x, int m, const Weight& w, const Weight* bias, Epilogue e) override {
    cpu::matmul(pool_, f(out), cf(x), m, w, bias, e == Epilogue::Add);
  }
  void matmul_split_group(const void* x, int m, int split, const SplitJob* jobs, int n_jobs, Epilogue e) override {
    std::vector<cpu::MatmulJob> parts;
    parts.reserve(size_t(2 * n_jobs));
    for (int j = 0; j < n_jobs; ++j) {
      const SplitJob& s = jobs[j];
      if (split > 0) parts.push_back({f(s.out), cf(x), split, s.w1, s.b1});
      if (m > split)
        parts.push_back({f(s.out) + int64_t(split) * s.w1->rows, cf(x) + int64_t(split) * s.w1->cols, m - split, s.w2,
                         s.b2});
    }
    cpu::matmul_group(pool_, parts.data(), int(parts.size()), e == Epilogue::Add);
  }
  void rope_table(float* table, const int32_t* pos, int n) override {
    cpu::rope_table(pool_, table, pos, n, inv_freq_.data(), head_dim_);
  }
  void rope(void* x, int n, int n_heads, const float* table) override {
    cpu::rope(pool_, f(x), n, n_heads, head_dim_, table);
  }
  void kv_store(const void* k, const void* v, const KvDst* dst, int n, int kv_dim, int layer) override {
    cpu::kv_store(pool_, cf(k), cf(v), dst, n, kv_dim, layer);
  }
  void attention(void* out, const void* q, const AttnArgs& a) override { cpu::attention(pool_, f(out), cf(q), a); }
  void swiglu(void* out, const void* gate, const void* up, int64_t n) override {
    cpu::swiglu(pool_, f(out), cf(gate), cf(up), n);
  }
  void gather_rows(void* out, const void* x, const int32_t* rows, int n, int dim) override {
    cpu::gather_rows(pool_, f(out), cf(x), rows, n, dim);
  }
  void sample(int32_t* out, const float* logits, int rows, int vocab, const SampleParams& p,
              const float* uniforms) override {
    cpu::sample(pool_, out, logits, rows, vocab, p, uniforms);
  }

  // ---- training ----
  bool can_train() const override { return true; }
  void matmul_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x, int m,
                       const Weight& w) override {
    cpu::matmul_backward(pool_, dx, dw, dbias, dout, x, m, w);
  }
  void rms_norm_backward(float* dx, float* dw, const float* dout, const float* x, const Weight& w, int n,
                         float eps) override {
    cpu::rms_norm_backward(pool_, dx, dw, dout, x, w, n, eps);
  }
  void rope_backward(float* d, int n, int n_heads, const float* table) override {
    cpu::rope_backward(pool_, d, n, n_heads, head_dim_, table);
  }
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                       int64_t n) override {
    cpu::swiglu_backward(pool_, dgate, dup, dout, gate, up, n);
  }
  void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int n, int dim) override {
    cpu::embedding_backward(pool_, dtable, dout, ids, n, dim);
  }
  void cross_entropy(float* dlogits, double* losses, const float* logits, const int32_t* targets,
                     const float* weights, int n, int vocab) override {
    cpu::cross_entropy(pool_, dlogits, losses, logits, targets, weights, n, vocab);
  }
  void attention_train_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                               const TrainAttnSeq* seqs, int n_seq, const AttnArgs& a) override {
    cpu::attention_train_forward(pool_, out, lse, q, k, v, seqs, n_seq, a.n_heads, a.n_kv_heads, a.head_dim, a.scale);
  }
  void attention_train_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                                const float* lse, const float* q, const float* k, const float* v,
                                const TrainAttnSeq* seqs, int n_seq, const AttnArgs& a) override {
    cpu::attention_train_backward(pool_, dq, dk, dv, dout, out, lse, q, k, v, seqs, n_seq, a.n_heads, a.n_kv_heads,
                                  a.head_dim, a.scale);
  }
  void transpose(float* out, const float* x, int rows, int cols) override {
    cpu::transpose(pool_, out, x, rows, cols);
  }
  void adamw(float* w, const float* g, float* m, float* v, int64_t n, const AdamWStep& s) override {
    cpu::adamw(pool_, w, g, m, v, n, s);
  }
  double sum_squares(const float* x, int64_t n) override { return cpu::sum_squares(pool_, x, n); }

 private:
  static float* f(void* p) { return static_cast<float*>(p); }
  static const float* cf(const void* p) { return static_cast<const float*>(p); }

  cpu::ThreadPool pool_;
  std::vector<double> inv_freq_;
  int head_dim_ = 0;
};

}  // namespace

std::string cpu_kernel_isa() { return cpu::cpu_isa_name(); }

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  if (threads < 1 || threads > 1024)
    throw Error(str("option threads must be an integer from 1 to 1024, got ", threads));
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace focus
