// Internals shared by the attention kernels (attention_prefill.cu,
// attention_decode.cu) and their planner (attention.cu): the work tables the
// planner uploads, the kernel parameter blocks, and the warp-level tile engine
// (tensor-core QKᵀ and PV, online softmax in registers) both kernels are built
// from. Not part of the backend's interface: include attention.cuh instead.
//
// Conventions
// - A "key" is a row of the virtual sequence prefix ++ main: virtual index j <
//   n_prefix is prefix row j, else main row j - n_prefix. A query that sees
//   `lim` keys sees virtual keys [0, lim).
// - Shared-memory tiles are row-major with kLds = HDP + 8 elements per row:
//   the 16-byte pad puts the 8 rows an ldmatrix reads in 8 different 4-bank
//   groups for every HDP that is a multiple of 16 (no bank conflicts).
// - HDP is head_dim rounded up to 16, 32, 64, 128 or 256; columns past
//   head_dim are zero in shared memory and never stored.
// - Scores are kept in log2 units (q·k * scale * log2 e) so exp2 is one
//   instruction; the running maxima m of partial results are in those units.
//
// Every device primitive that is PTX (cp.async, ldmatrix, mma.sync, shuffles,
// barriers) goes through the functions below; built with
// FOCUS_ATTN_EMULATE, they are the CPU emulator's (test/cpp/
// cuda_attention_test.cu), which runs these same kernels without a GPU.
#pragma once

#include <cmath>
#include <cstdint>

#include "attention.cuh"
#include "common.cuh"

// Everything here is in focus::cuda::attn, away from the other ops' helpers.
namespace focus::cuda::attn {

// ---- work tables (built on the host, uploaded into the workspace) ------------

struct PrefillItem {  // one query tile of one prefill segment; the grid adds the head
  int32_t seg;
  int32_t q0;  // first query of the tile (segment-relative)
};

// Decode queries that read the same keys (same segment key source: main and
// prefix pointers and strides). The runner's parallel candidate decoding
// yields two one-query segments per chunk over one cache: grouped, the cache
// is read once. Rows of a block: x = 16 * mtile + r -> query x / G, head
// (kv_head * G + x % G) of the GQA group of G heads.
constexpr int kGroupMaxQ = 16;
struct DecodeGroup {
  int32_t seg;     // a segment of the group: its key source
  int32_t n_q;     // queries, 1..kGroupMaxQ, with n_q * G <= 16 when G <= 16
  int32_t n_keys;  // max of n_vis: keys the group reads
  int32_t m_tiles; // ceil(n_q * G / 16): blocks of 16 rows
  int32_t row[kGroupMaxQ];    // activation row of each query
  int32_t n_vis[kGroupMaxQ];  // keys each query sees: n_prefix + q_index + i + 1
};

struct DecodeUnit {  // keys [k_begin, k_end) of one row tile of one group; the grid adds the KV head
  int32_t group;
  int32_t mtile;
  int32_t k_begin;  // a multiple of the decode key tile
  int32_t k_end;
  int32_t part;  // partial-result slot, or -1 when the unit covers all keys and writes out directly
  int32_t pad_;
};

struct CombineItem {  // the n_split partial slots [part0, part0 + n_split) of one row tile
  int32_t group;
  int32_t mtile;
  int32_t part0;
  int32_t n_split;
};

// Partial results of split-KV units, float32, per (slot, kv_head, row r < 16):
//   part_o  (n_slot, n_kv_heads, 16, head_dim): unnormalised Σ 2^(s - m) v
//   part_ml (n_slot, n_kv_heads, 16, 2): (m, l = Σ 2^(s - m)); m = -inf, l = 0
//           when the row sees none of the unit's keys

// ---- kernel parameters -----------------------------------------------------

struct AttnKernelArgs {
  const AttnSegment* segs = nullptr;  // device
  const void* q = nullptr;            // (n_rows, q_dim)
  void* out = nullptr;                // (n_rows, q_dim)
  int n_heads = 0, n_kv_heads = 0, group = 1;  // group = n_heads / n_kv_heads
  int head_dim = 0, kv_dim = 0, q_dim = 0;
  int layer = 0;
  float scale_log2 = 0;  // softmax scale * log2(e)
  int vec = 0;           // every row start 16-byte aligned and head_dim % 8 == 0: cp.async path
};

struct PrefillLaunch {
  AttnKernelArgs k;
  const PrefillItem* items = nullptr;  // device, longest first
  int n_items = 0;
  int hdp = 0;
};

struct DecodeLaunch {
  AttnKernelArgs k;
  const DecodeGroup* groups = nullptr;  // device
  const DecodeUnit* units = nullptr;    // device, longest first
  int n_units = 0;
  const CombineItem* combines = nullptr;  // device
  int n_combines = 0;
  float* part_o = nullptr;
  float* part_ml = nullptr;
  int hdp = 0;
};

// Launchers (T = __nv_bfloat16 or __half); throw on launch failure.
template <class T>
void launch_attention_prefill(const PrefillLaunch& l, cudaStream_t stream);
template <class T>
void launch_attention_decode(const DecodeLaunch& l, cudaStream_t stream);

// Tile shapes, shared with the planner.
template <int HDP>
struct PrefillCfg {
  static_assert(HDP % 16 == 0 && HDP >= 16 && HDP <= 256, "HDP: 16..256, multiple of 16");
  // HDP <= 128: 8 warps x 16 query rows, Q fragments held in registers (HDP/4
  // registers), 64-key tiles; one 128-row tile amortises each K/V tile read
  // from L2 over 128 queries. HDP = 256: the output accumulator alone is 128
  // registers, so Q is re-read from shared memory and tiles are smaller to
  // stay under the 99 KB per block of sm_86/sm_89. At HDP = 128 a block
  // takes ~216 registers a thread: one block (8 warps) per multiprocessor.
  static constexpr int kWarps = HDP <= 128 ? 8 : 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBM = 16 * kWarps;
  static constexpr int kBN = HDP <= 128 ? 64 : 16;
  // Keys per softmax step: at HDP = 64 a tile is taken in two halves, which
  // halves the score registers and fits two blocks per multiprocessor in 128
  // registers a thread.
  static constexpr int kNB = HDP == 64 ? 32 : kBN;
  static constexpr int kMinBlocks = HDP <= 64 ? 2 : 1;
  static_assert(kBN % kNB == 0, "whole steps per tile");
  static constexpr bool kQRegs = HDP <= 128;
  static constexpr int kLds = HDP + 8;
  static constexpr int kStageElems = 2 * kBN * kLds;  // K tile then V tile
  // With Q in registers the Q tile is staged in stage 1, free until the loop.
  static constexpr int kSmemElems = 2 * kStageElems + (kQRegs ? 0 : kBM * kLds);
  static constexpr size_t kSmemBytes = size_t(kSmemElems) * 2;
  static_assert(!kQRegs || kBM * kLds <= kStageElems, "Q tile must fit in stage 1");
};

template <int HDP>
struct DecodeCfg {
  static_assert(HDP % 16 == 0 && HDP >= 16 && HDP <= 256, "HDP: 16..256, multiple of 16");
  // Every warp holds the same 16 rows and takes its own 16 keys of each tile;
  // the warps' partial results are merged through shared memory at the end.
  static constexpr int kWarps = HDP <= 128 ? 4 : 2;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBN = 16 * kWarps;
  static constexpr bool kQRegs = HDP <= 128;
  static constexpr int kLds = HDP + 8;
  static constexpr int kStageElems = 2 * kBN * kLds;
  // Three blocks per multiprocessor (<= 170 registers; 74 KB of shared
  // memory each at HDP = 128, so three on sm_90, two on sm_80) keep ~100 KB
  // of K/V in flight per multiprocessor, several times what the DRAM latency
  // needs at full bandwidth.
  static constexpr int kMinBlocks = HDP <= 128 ? 3 : 1;
  static constexpr int kLdo = HDP + 4;  // float row stride of the merge buffer
  static constexpr size_t kMergeBytes = size_t(kWarps) * 16 * (kLdo + 2) * 4;
  static constexpr size_t kStagesBytes = size_t(2 * kStageElems) * 2;
  static constexpr size_t kSmemBytes = kStagesBytes + size_t(16 * kLds) * 2;  // + Q tile
  static_assert(kMergeBytes <= kStagesBytes, "merge buffer aliases the K/V stages");
};

// ---- device primitives ---------------------------------------------------------

#ifndef FOCUS_ATTN_EMULATE

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// 16 bytes global -> shared, bypassing L1 (K/V rows are read once per block).
__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}
// The "memory" clobbers keep the compiler from moving shared-memory accesses
// across the group boundaries (a barrier follows each wait anyway).
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// c (16x8, f32) += a (16x16, row) · b (16x8, col)
template <class T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ float shfl_xor(float v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }
__device__ __forceinline__ void block_sync() { __syncthreads(); }
template <class T>
__device__ __forceinline__ T* dynamic_smem() {
  extern __shared__ __align__(16) unsigned char attn_smem[];
  return reinterpret_cast<T*>(attn_smem);
}
#define FOCUS_ATTN_LAUNCH(kernel, grid, block, smem, stream, ...) \
  kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)

#else  // FOCUS_ATTN_EMULATE: provided by the emulator

void cp_async16(void* dst, const void* src);
void cp_async_commit();
void emu_cp_async_wait(int n);
template <int N>
inline void cp_async_wait() {
  emu_cp_async_wait(N);
}
void ldmatrix_x4(uint32_t (&r)[4], const void* p);
void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p);
void emu_mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, bool bf16);
template <class T>
inline void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  emu_mma16816(c, a, b0, b1, TypeOf<T>::value == DType::BF16);
}
float shfl_xor(float v, int mask);
void block_sync();
void* emu_dynamic_smem();
template <class T>
inline T* dynamic_smem() {
  return static_cast<T*>(emu_dynamic_smem());
}
#define FOCUS_ATTN_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::focus::cuda::attn::emu_launch((kernel), (grid), (block), (smem), __VA_ARGS__)

#endif

// Host side: device queries, table upload and kernel set-up (replaced by the
// emulator too).
int attn_sm_count();            // multiprocessors of the current device
size_t attn_smem_optin();       // max dynamic shared memory per block
void attn_upload(void* dst, const void* src, size_t bytes, cudaStream_t stream);
void attn_check_launch(const char* what);
#ifndef FOCUS_ATTN_EMULATE
// Raises the kernel's dynamic shared-memory limit to `bytes` on the current
// device, once per (kernel, device), not at every launch.
void attn_set_smem_once(const void* kernel, size_t bytes);
template <class K>
void attn_set_smem(K* kernel, size_t bytes) {
  attn_set_smem_once(reinterpret_cast<const void*>(kernel), bytes);
}
#else
template <class K>
void attn_set_smem(K*, size_t) {}
#endif

// ---- small device helpers --------------------------------------------------------

template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// One KV head of one segment at one layer.
template <class T>
struct KeySource {
  const T* kp = nullptr;  // prefix row 0 (null without prefix)
  const T* vp = nullptr;
  const T* km = nullptr;  // main row 0
  const T* vm = nullptr;
  int n_prefix = 0;
  int n_keys = 0;  // virtual rows [0, n_keys) may be read; later ones read as zero
  int64_t ld = 0;  // kv_dim: elements between rows
};

template <class T>
__device__ __forceinline__ KeySource<T> key_source(const AttnSegment& s, const AttnKernelArgs& a, int kv_head,
                                                    int n_keys) {
  KeySource<T> r;
  const int64_t h = int64_t(kv_head) * a.head_dim;
  r.km = static_cast<const T*>(s.k_main) + int64_t(a.layer) * s.main_layer_stride + h;
  r.vm = static_cast<const T*>(s.v_main) + int64_t(a.layer) * s.main_layer_stride + h;
  if (s.n_prefix > 0) {
    r.kp = static_cast<const T*>(s.k_prefix) + int64_t(a.layer) * s.prefix_k_layer_stride + h;
    r.vp = static_cast<const T*>(s.v_prefix) + int64_t(a.layer) * s.prefix_v_layer_stride + h;
  }
  r.n_prefix = s.n_prefix;
  r.n_keys = n_keys;
  r.ld = a.kv_dim;
  return r;
}

// Columns [col, col + 8) of a row into shared memory (16 bytes); zeros where
// the row is absent (null) or past head_dim. vec: cp.async (then head_dim % 8
// == 0 and the source is 16-byte aligned); otherwise 4-byte loads, which an
// even head_dim and even strides keep aligned.
template <class T>
__device__ __forceinline__ void copy_chunk(T* dst, const T* row, int col, int head_dim, bool vec) {
  if (row != nullptr && col < head_dim) {
    if (vec) {
      cp_async16(dst, row + col);
      return;
    }
    uint32_t w[4];
#pragma unroll
    for (int p = 0; p < 4; ++p)
      w[p] = col + 2 * p < head_dim ? *reinterpret_cast<const uint32_t*>(row + col + 2 * p) : 0u;
    *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
  } else {
    *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
  }
}

// ROWS rows into a (ROWS, kLds) tile; row_ptr(r) gives row r's start or null.
// Thread tid always copies the same 16-byte column chunk, of rows tid /
// kChunks, + THREADS / kChunks, ...
template <int HDP, int ROWS, int THREADS, class T, class RowPtr>
__device__ __forceinline__ void load_rows(T* s, RowPtr row_ptr, int head_dim, bool vec, int tid) {
  constexpr int kChunks = HDP / 8, kLds = HDP + 8, kRowStep = THREADS / kChunks;
  static_assert(THREADS % kChunks == 0, "a thread keeps its column chunk");
  const int col = (tid % kChunks) * 8;
#pragma unroll
  for (int i = 0; i < (ROWS + kRowStep - 1) / kRowStep; ++i) {
    const int r = tid / kChunks + i * kRowStep;
    if (ROWS % kRowStep == 0 || r < ROWS) copy_chunk(s + r * kLds + col, row_ptr(r), col, head_dim, vec);
  }
}

// Keys [key0, key0 + ROWS) of src into a K tile and a V tile.
template <int HDP, int ROWS, int THREADS, class T>
__device__ __forceinline__ void load_kv_tile(T* sk, T* sv, const KeySource<T>& src, int key0, int head_dim, bool vec,
                                             int tid) {
  constexpr int kChunks = HDP / 8, kLds = HDP + 8, kRowStep = THREADS / kChunks;
  static_assert(THREADS % kChunks == 0, "a thread keeps its column chunk");
  const int col = (tid % kChunks) * 8;
#pragma unroll
  for (int i = 0; i < (ROWS + kRowStep - 1) / kRowStep; ++i) {
    const int r = tid / kChunks + i * kRowStep, j = key0 + r;
    if (ROWS % kRowStep == 0 || r < ROWS) {
      const T *k = nullptr, *v = nullptr;
      if (j < src.n_keys) {
        const bool pre = j < src.n_prefix;
        const int64_t at = int64_t(pre ? j : j - src.n_prefix) * src.ld;
        k = (pre ? src.kp : src.km) + at;
        v = (pre ? src.vp : src.vm) + at;
      }
      copy_chunk(sk + r * kLds + col, k, col, head_dim, vec);
      copy_chunk(sv + r * kLds + col, v, col, head_dim, vec);
    }
  }
}

// ---- the warp tile engine ----------------------------------------------------------
//
// One warp, 16 query rows, online softmax over key tiles it is handed.
// mma.sync m16n8k16 fragments (g = lane / 4, t = lane % 4):
//   A 16x16: a0 (g, 2t..2t+1) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..)
//   B 16x8:  b0 (k 2t..2t+1, n g) b1 (k 2t+8.., n g)
//   C 16x8:  c0 c1 (g, 2t..2t+1)  c2 c3 (g+8, 2t..2t+1)
// so each thread owns rows g and g+8 of S and O. The S accumulators of two
// adjacent 8-key blocks are exactly the A fragment of P for the PV product.
template <class T, int HDP, bool kQRegs>
struct WarpAttn {
  static constexpr int kLds = HDP + 8;
  static constexpr int kKSteps = HDP / 16;  // k-steps of QKᵀ
  static constexpr int kDBlocks = HDP / 8;  // 8-column blocks of O

  float o[kDBlocks][4];  // unnormalised output, rows g, g+8
  float m[2];            // running max of rows g, g+8 (log2 units), -inf before any visible key
  float l[2];            // this thread's share of the running sums; finish() adds the quad's
  uint32_t qf[kQRegs ? kKSteps : 1][4];

  __device__ __forceinline__ void init() {
#pragma unroll
    for (int d = 0; d < kDBlocks; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    m[0] = m[1] = -INFINITY;
    l[0] = l[1] = 0.f;
  }

  // sq: this warp's 16 rows of the Q tile.
  __device__ __forceinline__ void load_q(const T* sq, int lane) {
    if constexpr (kQRegs) {
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) ldmatrix_x4(qf[kk], sq + (lane & 15) * kLds + kk * 16 + (lane >> 4) * 8);
    }
  }

  // Keys [key0, key0 + NB): sk, sv point at their rows. Row g sees keys < lim0,
  // row g+8 keys < lim1; `mask` false promises all NB keys are visible to
  // all 16 rows. Must be called by all 32 lanes together.
  template <int NB>
  __device__ __forceinline__ void step(const T* sq, const T* sk, const T* sv, int key0, int lim0, int lim1,
                                       bool mask, float scale_log2, int lane) {
    static_assert(NB % 16 == 0, "whole PV k-steps");
    float s[NB / 8][4];
#pragma unroll
    for (int j = 0; j < NB / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      uint32_t a[4];
      if constexpr (kQRegs) {
        a[0] = qf[kk][0], a[1] = qf[kk][1], a[2] = qf[kk][2], a[3] = qf[kk][3];
      } else {
        ldmatrix_x4(a, sq + (lane & 15) * kLds + kk * 16 + (lane >> 4) * 8);
      }
#pragma unroll
      for (int n2 = 0; n2 < NB / 16; ++n2) {
        // matrices: keys +0..7 | +8..15 (lane bit 4) x columns +0..7 | +8..15 (lane bit 3)
        uint32_t b[4];
        ldmatrix_x4(b, sk + (n2 * 16 + (lane & 7) + ((lane >> 4) << 3)) * kLds + kk * 16 + ((lane >> 3) & 1) * 8);
        mma16816<T>(s[2 * n2], a, b[0], b[1]);
        mma16816<T>(s[2 * n2 + 1], a, b[2], b[3]);
      }
    }

    // Raw scores, masked to -inf; the scale (> 0, checked on the host) is
    // applied to the maxima and folded into exp2's argument (one FFMA).
    const int t = lane & 3;
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < NB / 8; ++j) {
      if (mask) {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (key0 + j * 8 + 2 * t + (e & 1) >= (e < 2 ? lim0 : lim1)) s[j][e] = -INFINITY;
      }
      mx0 = fmaxf(mx0, fmaxf(s[j][0], s[j][1]));
      mx1 = fmaxf(mx1, fmaxf(s[j][2], s[j][3]));
    }
    mx0 = fmaxf(mx0, shfl_xor(mx0, 1));
    mx0 = fmaxf(mx0, shfl_xor(mx0, 2));
    mx1 = fmaxf(mx1, shfl_xor(mx1, 1));
    mx1 = fmaxf(mx1, shfl_xor(mx1, 2));
    // A row with no visible key so far keeps m = -inf; subtracting 0 instead
    // of -inf keeps its p = 0 and alpha = 0 free of NaN.
    const float n0 = fmaxf(m[0], mx0 * scale_log2), n1 = fmaxf(m[1], mx1 * scale_log2);
    const float u0 = n0 == -INFINITY ? 0.f : n0, u1 = n1 == -INFINITY ? 0.f : n1;
    const float alpha0 = exp2f(m[0] - u0), alpha1 = exp2f(m[1] - u1);
    m[0] = n0;
    m[1] = n1;

    float sum0 = 0.f, sum1 = 0.f;
    uint32_t pa[NB / 16][4];
#pragma unroll
    for (int j = 0; j < NB / 8; ++j) {
      const float p0 = exp2f(fmaf(s[j][0], scale_log2, -u0)), p1 = exp2f(fmaf(s[j][1], scale_log2, -u0));
      const float p2 = exp2f(fmaf(s[j][2], scale_log2, -u1)), p3 = exp2f(fmaf(s[j][3], scale_log2, -u1));
      sum0 += p0 + p1;
      sum1 += p2 + p3;
      pa[j / 2][(j & 1) * 2 + 0] = pack2<T>(p0, p1);  // even block: a0 a1, odd block: a2 a3
      pa[j / 2][(j & 1) * 2 + 1] = pack2<T>(p2, p3);
    }
    l[0] = l[0] * alpha0 + sum0;
    l[1] = l[1] * alpha1 + sum1;
#pragma unroll
    for (int d = 0; d < kDBlocks; ++d) {
      o[d][0] *= alpha0;
      o[d][1] *= alpha0;
      o[d][2] *= alpha1;
      o[d][3] *= alpha1;
    }
#pragma unroll
    for (int kk = 0; kk < NB / 16; ++kk) {
#pragma unroll
      for (int n2 = 0; n2 < HDP / 16; ++n2) {
        // transposed matrices: keys +0..7 | +8..15 (lane bit 3) x columns +0..7 | +8..15 (lane bit 4)
        uint32_t b[4];
        ldmatrix_x4_trans(b, sv + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kLds + n2 * 16 + (lane >> 4) * 8);
        mma16816<T>(o[2 * n2], pa[kk], b[0], b[1]);
        mma16816<T>(o[2 * n2 + 1], pa[kk], b[2], b[3]);
      }
    }
  }

  // Sums l over the quad that shares each row. All 32 lanes.
  __device__ __forceinline__ void finish() {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l[r] += shfl_xor(l[r], 1);
      l[r] += shfl_xor(l[r], 2);
    }
  }
};

}  // namespace focus::cuda::attn
