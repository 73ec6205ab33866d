// The single-threaded CPU kernels, compiled once per instruction set
// (kernels_generic.cpp, kernels_avx2.cpp, kernels_avx512.cpp, each including
// kernels_impl.h with its own compiler flags) and picked at run time by isa.cpp.
// The ops (matmul.cpp, attention.cpp, elementwise.cpp) split the work across
// the thread pool and call these on their share.
//
// This header is included by the per-ISA translation units, so it uses plain
// types only: any inline function or template it pulled in (std::vector, ...)
// could be emitted there with AVX-512 code and picked by the linker for the
// generic code as well.
#pragma once

#include <cstddef>
#include <cstdint>

namespace focus::cpu {

enum class Isa : int { Generic = 0, Avx2 = 1, Avx512 = 2 };

// One attention work item: `n_rows` consecutive query rows of one segment and
// the `group` query heads of each of `kv_heads` consecutive KV heads (more than
// one only when n_rows is 1). Keys are indexed prefix first (t < n_prefix:
// prefix row t), then main (row t - n_prefix); query row i sees keys
// t < n_prefix + q_index + i + 1.
struct AttnTask {
  const float* q;     // (n_rows, q_stride): row i's heads start at q + i*q_stride, (kv_heads*group, head_dim)
  float* out;         // same layout as q
  int64_t q_stride;   // elements between query rows (n_heads * head_dim)
  int n_rows, group, kv_heads, head_dim;
  float scale;
  int n_prefix, q_index;
  // Key/value rows of the first KV head, already offset to the layer and the
  // head (head g of the item is head_dim elements further); consecutive rows
  // are kv_stride elements apart. Dtypes are DType values.
  const void *k_prefix, *v_prefix;
  const void *k_main, *v_main;
  int prefix_dtype, main_dtype;
  int64_t kv_stride;
};

struct Kernels {
  const char* name;  // "generic", "avx2", "avx512"
  int gemm_mr, gemm_nr;  // register tile of the packed GEMM: rows of x, columns of a panel

  // n elements of dtype (DType value) to float32 and back (round to nearest
  // even, bit-identical to dtype.h's scalar conversions except NaN payloads).
  void (*to_f32)(float* out, const void* src, int dtype, int64_t n);
  void (*from_f32)(void* out, const float* src, int dtype, int64_t n);

  // Packs w (nn <= gemm_nr rows, kc columns, row stride ldw elements, any
  // dtype, unaligned) into panel (kc, gemm_nr) float32, transposed, with
  // columns nn.. zero.
  void (*gemm_pack)(float* panel, const void* w, int dtype, int64_t ldw, int nn, int kc);
  // c (m, nn) += a (m, kc) · panel, panel from gemm_pack; a and c have row
  // strides lda and ldc. When load_c is false c is overwritten instead; bias
  // (nn, may be null) is added.
  void (*gemm_panel)(float* c, int64_t ldc, const float* a, int64_t lda, int m, const float* panel, int kc, int nn,
                     const float* bias, bool load_c);
  // The small-m path: out (m, n) = or += x (m, K) · wᵀ + bias with w (n, K)
  // rows of dtype read once, converted on the fly; m <= 8.
  void (*gemv)(float* out, int64_t ldo, const float* x, int64_t ldx, int m, const void* w, int dtype, int64_t K,
               int64_t n, const float* bias, bool accumulate);

  // One attention item; scratch holds attention_scratch(rows*group, head_dim) floats.
  void (*attention)(const AttnTask& t, float* scratch);
  size_t (*attention_scratch)(int n_query_vectors, int head_dim);

  // One row: out (dim) = x / rms(x) * w; out may alias x.
  void (*rms_norm)(float* out, const float* x, const float* w, int dim, float eps);
  // One row of n_heads heads rotated in place by table (head_dim): cos | sin.
  void (*rope)(float* x, int n_heads, int head_dim, const float* table);
  // out (n) = silu(gate) * up; out may alias gate.
  void (*swiglu)(float* out, const float* gate, const float* up, int64_t n);

  // Benchmarks: `iters` rounds of kFmaChains independent vector FMAs on
  // registers only (2 * W * kFmaChains flops a round), for the machine's peak.
  // Returns a sum of the results so the loop cannot be dropped.
  float (*fma_loop)(int64_t iters);
  int fma_flops_per_iter;

  // ---- training --------------------------------------------------------------
  // Packs b (kc rows, nn <= gemm_nr columns, row stride ldb, any dtype) into
  // panel (kc, gemm_nr) float32 without transposing, columns nn.. zero: the
  // right operand of the backward's "NN" GEMMs, run by gemm_panel.
  void (*gemm_pack_nn)(float* panel, const void* b, int dtype, int64_t ldb, int nn, int kc);
  // p[j] = exp(s[j] * scale - shift) for j < n, returns the sum; p may alias s.
  float (*exp_sub_sum)(float* p, const float* s, int n, float scale, float shift);
};

const Kernels& kernels_generic();
// x86-64 with GCC/Clang: AVX2 and AVX-512 kernels too, picked at run time.
// Defining FOCUSLLM_NO_X86_DISPATCH builds the generic kernels only, as on
// other architectures.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(FOCUSLLM_NO_X86_DISPATCH)
#define FOCUSLLM_X86_DISPATCH 1
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
#endif

}  // namespace focus::cpu
