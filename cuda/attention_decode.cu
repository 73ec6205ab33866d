// Split-KV decoding: segments of at most kAttnDecodeMaxQ queries against long
// caches (FocusLLM parallel candidate decoding: every chunk runs 2 new tokens
// over its ~2561 cached keys; native decode: 1 token over the whole context).
//
// This is memory-bound: each K/V byte should cross the memory bus once. A block
// holds 16 query rows = (query, head) pairs of one decode group (queries over
// the same keys, see DecodeGroup) and one GQA group of heads, so K/V is read
// once for all of them; the rows go through the same tensor-core tile engine
// as prefill (a 16-row tile costs no more than a 1-row one). The warps of a
// block split each 16*kWarps-key tile between them and merge their softmax
// states through shared memory at the end. When the groups are too few to
// fill the machine, the planner splits each group's keys over several blocks;
// those write (m, l, unnormalised o) partials that a second small kernel
// combines.
#include "attention_impl.cuh"

namespace focus::cuda::attn {

// ---- kernels ---------------------------------------------------------------

namespace {

// Query index, head within the GQA group, of row r of a row tile.
struct RowMap {
  int qi, h;
};
__device__ __forceinline__ RowMap map_row(int mtile, int r, int group) {
  const int x = mtile * 16 + r;
  return {x / group, x % group};
}

}  // namespace

// grid: n_units * n_kv_heads blocks, block b = (unit b / n_kv_heads, kv head b % n_kv_heads)
template <class T, int HDP>
__global__ void __launch_bounds__(DecodeCfg<HDP>::kThreads, DecodeCfg<HDP>::kMinBlocks)
    attention_decode_kernel(const AttnKernelArgs a, const DecodeGroup* __restrict__ groups,
                            const DecodeUnit* __restrict__ units, float* __restrict__ part_o,
                            float* __restrict__ part_ml) {
  using C = DecodeCfg<HDP>;
  constexpr int kLds = C::kLds;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int kvh = int(blockIdx.x) % a.n_kv_heads;
  const DecodeUnit u = units[int(blockIdx.x) / a.n_kv_heads];
  const DecodeGroup& grp = groups[u.group];
  const int n_q = grp.n_q;
  const AttnSegment seg = a.segs[grp.seg];
  // Keys >= k_end belong to the next split: they load as zeros and are masked.
  const KeySource<T> src = key_source<T>(seg, a, kvh, u.k_end);
  const bool vec = a.vec != 0;

  T* smem = dynamic_smem<T>();
  // stage b: K tile at smem + b * kStageElems, V tile kBN rows after it
  auto sk = [&](int b) { return smem + b * C::kStageElems; };
  auto sv = [&](int b) { return smem + b * C::kStageElems + C::kBN * kLds; };
  T* sq = smem + 2 * C::kStageElems;

  const T* q = static_cast<const T*>(a.q);
  load_rows<HDP, 16, C::kThreads>(
      sq,
      [&](int r) -> const T* {
        const RowMap m = map_row(u.mtile, r, a.group);
        return m.qi < n_q ? q + int64_t(grp.row[m.qi]) * a.q_dim + int64_t(kvh * a.group + m.h) * a.head_dim
                          : nullptr;
      },
      a.head_dim, vec, tid);
  load_kv_tile<HDP, C::kBN, C::kThreads>(sk(0), sv(0), src, u.k_begin, a.head_dim, vec, tid);
  cp_async_commit();
  cp_async_wait<0>();
  block_sync();

  WarpAttn<T, HDP, C::kQRegs> w;
  w.init();
  w.load_q(sq, lane);

  // Visible keys (exclusive) of this thread's rows and the least of all 16;
  // rows past the group's queries see every key of the unit (their Q is zero
  // and their output is dropped).
  auto row_lim = [&](int r) {
    const RowMap m = map_row(u.mtile, r, a.group);
    return m.qi < n_q ? min(grp.n_vis[m.qi], u.k_end) : u.k_end;
  };
  const int lim0 = row_lim(lane >> 2), lim1 = row_lim((lane >> 2) + 8);
  int lim_min = u.k_end;
  for (int r = 0; r < 16; ++r) lim_min = min(lim_min, row_lim(r));

  const int n_tiles = (u.k_end - u.k_begin + C::kBN - 1) / C::kBN;
  for (int t = 0; t < n_tiles; ++t) {
    if (t + 1 < n_tiles)
      load_kv_tile<HDP, C::kBN, C::kThreads>(sk((t + 1) & 1), sv((t + 1) & 1), src, u.k_begin + (t + 1) * C::kBN,
                                             a.head_dim, vec, tid);
    cp_async_commit();
    cp_async_wait<1>();
    block_sync();
    const int key0 = u.k_begin + t * C::kBN + warp * 16;  // this warp's 16 keys of the tile
    if (key0 < u.k_end)
      w.template step<16>(sq, sk(t & 1) + warp * 16 * kLds, sv(t & 1) + warp * 16 * kLds, key0, lim0, lim1,
                          key0 + 16 > lim_min, a.scale_log2, lane);
    block_sync();  // also guards the merge buffer, which aliases the stages
  }
  w.finish();

  // Merge the warps: so (kWarps, 16, kLdo) unnormalised outputs, sml (kWarps, 16, 2) = (m, l).
  float* so = reinterpret_cast<float*>(smem);
  float* sml = so + C::kWarps * 16 * C::kLdo;
  {
    const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int d = 0; d < HDP / 8; ++d) {
      const int col = d * 8 + 2 * t4;
      so[(warp * 16 + g) * C::kLdo + col] = w.o[d][0];
      so[(warp * 16 + g) * C::kLdo + col + 1] = w.o[d][1];
      so[(warp * 16 + g + 8) * C::kLdo + col] = w.o[d][2];
      so[(warp * 16 + g + 8) * C::kLdo + col + 1] = w.o[d][3];
    }
    if (t4 == 0) {
      sml[(warp * 16 + g) * 2] = w.m[0];
      sml[(warp * 16 + g) * 2 + 1] = w.l[0];
      sml[(warp * 16 + g + 8) * 2] = w.m[1];
      sml[(warp * 16 + g + 8) * 2 + 1] = w.l[1];
    }
  }
  block_sync();
  T* out = static_cast<T*>(a.out);
  for (int idx = tid; idx < 16 * a.head_dim; idx += C::kThreads) {
    const int r = idx / a.head_dim, d = idx % a.head_dim;
    const RowMap rm = map_row(u.mtile, r, a.group);
    if (rm.qi >= n_q) continue;
    float mx = -INFINITY;
#pragma unroll
    for (int v = 0; v < C::kWarps; ++v) mx = fmaxf(mx, sml[(v * 16 + r) * 2]);
    float l = 0.f, o = 0.f;
    if (mx != -INFINITY) {  // else no warp saw a visible key (only possible in a split)
#pragma unroll
      for (int v = 0; v < C::kWarps; ++v) {
        const float sc = exp2f(sml[(v * 16 + r) * 2] - mx);
        l += sml[(v * 16 + r) * 2 + 1] * sc;
        o += so[(v * 16 + r) * C::kLdo + d] * sc;
      }
    }
    if (u.part < 0) {
      const int64_t row = grp.row[rm.qi];
      out[row * a.q_dim + int64_t(kvh * a.group + rm.h) * a.head_dim + d] = from_float<T>(l > 0.f ? o / l : 0.f);
    } else {
      const int64_t pr = (int64_t(u.part) * a.n_kv_heads + kvh) * 16 + r;
      part_o[pr * a.head_dim + d] = o;
      if (d == 0) {
        part_ml[pr * 2] = mx;
        part_ml[pr * 2 + 1] = l;
      }
    }
  }
}

// Combines the n_split partials of a row tile: out = Σ o_s 2^(m_s - m) / Σ l_s 2^(m_s - m).
// grid: n_combines * n_kv_heads blocks.
template <class T>
__global__ void __launch_bounds__(128)
    attention_combine_kernel(const AttnKernelArgs a, const DecodeGroup* __restrict__ groups,
                             const CombineItem* __restrict__ items, const float* __restrict__ part_o,
                             const float* __restrict__ part_ml) {
  const int kvh = int(blockIdx.x) % a.n_kv_heads;
  const CombineItem c = items[int(blockIdx.x) / a.n_kv_heads];
  const DecodeGroup& grp = groups[c.group];
  T* out = static_cast<T*>(a.out);
  for (int idx = int(threadIdx.x); idx < 16 * a.head_dim; idx += 128) {
    const int r = idx / a.head_dim, d = idx % a.head_dim;
    const RowMap rm = map_row(c.mtile, r, a.group);
    if (rm.qi >= grp.n_q) continue;
    auto slot = [&](int s) { return (int64_t(c.part0 + s) * a.n_kv_heads + kvh) * 16 + r; };
    float mx = -INFINITY;
    for (int s = 0; s < c.n_split; ++s) mx = fmaxf(mx, part_ml[slot(s) * 2]);
    float l = 0.f, o = 0.f;
    if (mx != -INFINITY) {  // the split holding key 0 always has a finite max
      for (int s = 0; s < c.n_split; ++s) {
        const float sc = exp2f(part_ml[slot(s) * 2] - mx);
        l += part_ml[slot(s) * 2 + 1] * sc;
        o += part_o[slot(s) * a.head_dim + d] * sc;
      }
    }
    const int64_t row = grp.row[rm.qi];
    out[row * a.q_dim + int64_t(kvh * a.group + rm.h) * a.head_dim + d] = from_float<T>(l > 0.f ? o / l : 0.f);
  }
}

// ---- launchers -------------------------------------------------------------

namespace {

template <class T, int HDP>
void launch_decode_hdp(const DecodeLaunch& l, cudaStream_t stream) {
  using C = DecodeCfg<HDP>;
  FOCUS_CHECK(C::kSmemBytes <= attn_smem_optin(), "attention: the decode kernel for head_dim ", l.k.head_dim,
              " needs ", C::kSmemBytes, " bytes of shared memory per block; this device allows ", attn_smem_optin());
  auto* kernel = &attention_decode_kernel<T, HDP>;
  attn_set_smem(kernel, C::kSmemBytes);
  FOCUS_ATTN_LAUNCH(kernel, dim3(unsigned(l.n_units) * unsigned(l.k.n_kv_heads)), dim3(C::kThreads),
                    C::kSmemBytes, stream, l.k, l.groups, l.units, l.part_o, l.part_ml);
  attn_check_launch("attention_decode_kernel");
}

}  // namespace

template <class T>
void launch_attention_decode(const DecodeLaunch& l, cudaStream_t stream) {
  if (l.n_units == 0) return;
  FOCUS_CHECK(int64_t(l.n_units) * l.k.n_kv_heads <= INT32_MAX, "attention: too many decode blocks");
  switch (l.hdp) {  // the one place head_dim becomes a template parameter
    case 16: launch_decode_hdp<T, 16>(l, stream); break;
    case 32: launch_decode_hdp<T, 32>(l, stream); break;
    case 64: launch_decode_hdp<T, 64>(l, stream); break;
    case 128: launch_decode_hdp<T, 128>(l, stream); break;
    case 256: launch_decode_hdp<T, 256>(l, stream); break;
    default: throw Error(str("attention: internal: no decode kernel for padded head_dim ", l.hdp));
  }
  if (l.n_combines > 0) {
    auto* kernel = &attention_combine_kernel<T>;
    FOCUS_ATTN_LAUNCH(kernel, dim3(unsigned(l.n_combines) * unsigned(l.k.n_kv_heads)), dim3(128), 0, stream, l.k,
                      l.groups, l.combines, l.part_o, l.part_ml);
    attn_check_launch("attention_combine_kernel");
  }
}

template void launch_attention_decode<__nv_bfloat16>(const DecodeLaunch&, cudaStream_t);
template void launch_attention_decode<__half>(const DecodeLaunch&, cudaStream_t);

}  // namespace focus::cuda::attn
