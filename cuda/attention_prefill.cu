// Fused chunk attention (prefill): every segment of the batch with more than
// kAttnDecodeMaxQ queries, in ONE launch. FocusLLM ingest runs 16-200 chunks of
// chunkSize + promptCap + 1 tokens, each its own causal sequence (the segment
// table makes the attention block-diagonal); the local sequence sees a fully
// visible candidate prefix before its causal part. Both are the same loop here:
// query i of a segment sees virtual keys [0, off + i], off = n_prefix + q_index.
//
// FlashAttention-2 scheme: a block per (query tile, head), K/V tiles streamed
// through shared memory with cp.async (double-buffered), QKᵀ and PV on tensor
// cores (mma.sync m16n8k16), online softmax in registers, no score matrix in
// memory. Tiles past the tile's last query's causal limit are never loaded; a
// warp skips the tiles its own 16 queries cannot see. Heads sharing a KV head
// are consecutive block indices, so they run together and share K/V in L2.
#include "attention_impl.cuh"

namespace focus::cuda::attn {

// ---- kernels ---------------------------------------------------------------

// grid: n_items * n_heads blocks, block b = (item b / n_heads, head b % n_heads)
template <class T, int HDP>
__global__ void __launch_bounds__(PrefillCfg<HDP>::kThreads, PrefillCfg<HDP>::kMinBlocks)
    attention_prefill_kernel(const AttnKernelArgs a, const PrefillItem* __restrict__ items) {
  using C = PrefillCfg<HDP>;
  constexpr int kLds = C::kLds;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int head = int(blockIdx.x) % a.n_heads;
  const PrefillItem it = items[int(blockIdx.x) / a.n_heads];
  const AttnSegment seg = a.segs[it.seg];
  const int n_rows = min(C::kBM, seg.n_q - it.q0);  // valid queries of this tile
  const int off = seg.n_prefix + seg.q_index;       // query i sees keys [0, off + i]
  const int n_keys = off + it.q0 + n_rows;          // keys of the tile's last query
  const KeySource<T> src = key_source<T>(seg, a, head / a.group, n_keys);
  const bool vec = a.vec != 0;

  T* smem = dynamic_smem<T>();
  // stage b: K tile at smem + b * kStageElems, V tile kBN rows after it
  auto sk = [&](int b) { return smem + b * C::kStageElems; };
  auto sv = [&](int b) { return smem + b * C::kStageElems + C::kBN * kLds; };
  T* sq = C::kQRegs ? sk(1) : smem + 2 * C::kStageElems;

  // Q tile (kBM, head_dim) and the first K/V tile.
  const T* q = static_cast<const T*>(a.q);
  const int64_t row0 = int64_t(seg.q_row) + it.q0;
  load_rows<HDP, C::kBM, C::kThreads>(
      sq,
      [&](int r) -> const T* {
        return r < n_rows ? q + (row0 + r) * a.q_dim + int64_t(head) * a.head_dim : nullptr;
      },
      a.head_dim, vec, tid);
  load_kv_tile<HDP, C::kBN, C::kThreads>(sk(0), sv(0), src, 0, a.head_dim, vec, tid);
  cp_async_commit();
  cp_async_wait<0>();
  block_sync();

  WarpAttn<T, HDP, C::kQRegs> w;
  w.init();
  const T* sqw = sq + warp * 16 * kLds;
  w.load_q(sqw, lane);
  if constexpr (C::kQRegs) block_sync();  // the Q tile lives in stage 1, reloaded below

  // Causal limits (exclusive) of this thread's rows g, g+8 and of the warp.
  const int i0 = it.q0 + warp * 16;  // first query of the warp
  const int lim0 = off + i0 + (lane >> 2) + 1, lim1 = lim0 + 8;
  const int warp_lim_min = off + i0 + 1;
  const int warp_lim_max = warp * 16 < n_rows ? off + i0 + 16 : 0;  // 0: no valid row, skip all
  const int n_tiles = (n_keys + C::kBN - 1) / C::kBN;
  for (int t = 0; t < n_tiles; ++t) {
    if (t + 1 < n_tiles)
      load_kv_tile<HDP, C::kBN, C::kThreads>(sk((t + 1) & 1), sv((t + 1) & 1), src, (t + 1) * C::kBN, a.head_dim,
                                             vec, tid);
    cp_async_commit();
    cp_async_wait<1>();  // tile t has landed; tile t + 1 may still be in flight
    block_sync();
#pragma unroll
    for (int h = 0; h < C::kBN / C::kNB; ++h) {  // kNB keys per softmax step
      const int key0 = t * C::kBN + h * C::kNB;
      if (key0 < warp_lim_max)
        w.template step<C::kNB>(sqw, sk(t & 1) + h * C::kNB * kLds, sv(t & 1) + h * C::kNB * kLds, key0, lim0, lim1,
                                key0 + C::kNB > warp_lim_min, a.scale_log2, lane);
    }
    block_sync();  // stage t & 1 is reloaded in the next iteration
  }
  w.finish();

  // out[row, head, :] = o / l for the valid rows; pairs of columns per thread.
  T* out = static_cast<T*>(a.out);
  const int t4 = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int local = warp * 16 + (lane >> 2) + 8 * r;  // row within the tile
    if (local >= n_rows) continue;
    const float inv = w.l[r] > 0.f ? 1.f / w.l[r] : 0.f;
    T* dst = out + (row0 + local) * a.q_dim + int64_t(head) * a.head_dim;
#pragma unroll
    for (int d = 0; d < HDP / 8; ++d) {
      const int col = d * 8 + 2 * t4;
      if (col < a.head_dim)
        *reinterpret_cast<uint32_t*>(dst + col) = pack2<T>(w.o[d][2 * r] * inv, w.o[d][2 * r + 1] * inv);
    }
  }
}

// ---- launchers -------------------------------------------------------------

namespace {

template <class T, int HDP>
void launch_prefill_hdp(const PrefillLaunch& l, cudaStream_t stream) {
  using C = PrefillCfg<HDP>;
  FOCUS_CHECK(C::kSmemBytes <= attn_smem_optin(), "attention: the prefill kernel for head_dim ", l.k.head_dim,
              " needs ", C::kSmemBytes, " bytes of shared memory per block; this device allows ", attn_smem_optin());
  FOCUS_CHECK(int64_t(l.n_items) * l.k.n_heads <= INT32_MAX, "attention: too many prefill tiles (", l.n_items,
              " x ", l.k.n_heads, " heads)");
  auto* kernel = &attention_prefill_kernel<T, HDP>;
  attn_set_smem(kernel, C::kSmemBytes);
  FOCUS_ATTN_LAUNCH(kernel, dim3(unsigned(l.n_items) * unsigned(l.k.n_heads)), dim3(C::kThreads), C::kSmemBytes,
                    stream, l.k, l.items);
  attn_check_launch("attention_prefill_kernel");
}

}  // namespace

template <class T>
void launch_attention_prefill(const PrefillLaunch& l, cudaStream_t stream) {
  if (l.n_items == 0) return;
  switch (l.hdp) {  // the one place head_dim becomes a template parameter
    case 16: return launch_prefill_hdp<T, 16>(l, stream);
    case 32: return launch_prefill_hdp<T, 32>(l, stream);
    case 64: return launch_prefill_hdp<T, 64>(l, stream);
    case 128: return launch_prefill_hdp<T, 128>(l, stream);
    case 256: return launch_prefill_hdp<T, 256>(l, stream);
    default: throw Error(str("attention: internal: no prefill kernel for padded head_dim ", l.hdp));
  }
}

template void launch_attention_prefill<__nv_bfloat16>(const PrefillLaunch&, cudaStream_t);
template void launch_attention_prefill<__half>(const PrefillLaunch&, cudaStream_t);

}  // namespace focus::cuda::attn
