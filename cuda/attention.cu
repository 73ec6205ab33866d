// Attention over the segment table: argument checks, the launch plan (which
// segment goes to which kernel, the order of the prefill tiles, decode groups
// and their key splits), the workspace layout, and the dispatch on the 16-bit
// type. The kernels are in attention_prefill.cu and attention_decode.cu.
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "attention_impl.cuh"

namespace focus::cuda {

using namespace attn;

namespace {

// Decode blocks wanted in flight: about 4 per multiprocessor (a decode block
// is 2-4 warps and 40-75 KB of shared memory, so 2-3 fit at once, and a
// second wave evens out groups of unequal length). Below that, keys are split.
constexpr int kDecodeBlocksPerSm = 4;
// A split reads at least this many key tiles, so that the partial write and
// the combine stay small next to the keys read.
constexpr int kMinSplitTiles = 4;

int padded_head_dim(int hd) {
  for (int p : {16, 32, 64, 128, 256})
    if (hd <= p) return p;
  return 0;
}

template <template <int> class Cfg>
int cfg_value(int hdp, bool rows) {  // kBM (prefill) or kBN of Cfg<hdp>
  switch (hdp) {
    case 16: return rows ? Cfg<16>::kBM : Cfg<16>::kBN;
    case 32: return rows ? Cfg<32>::kBM : Cfg<32>::kBN;
    case 64: return rows ? Cfg<64>::kBM : Cfg<64>::kBN;
    case 128: return rows ? Cfg<128>::kBM : Cfg<128>::kBN;
    default: return rows ? Cfg<256>::kBM : Cfg<256>::kBN;
  }
}
template <int HDP>
struct DecodeBn {  // adapter: DecodeCfg has no kBM
  static constexpr int kBM = 0;
  static constexpr int kBN = DecodeCfg<HDP>::kBN;
};

// Checks everything that does not depend on the q/out pointers. dtype: the
// backend's type, or null when unknown (workspace sizing).
void validate(const AttnArgs& a, const DType* dtype) {
  FOCUS_CHECK(a.n_seg >= 0, "attention: n_seg = ", a.n_seg);
  FOCUS_CHECK(a.n_seg == 0 || (a.segs && a.segs_host), "attention: segment table missing (device or host copy)");
  FOCUS_CHECK(a.n_heads >= 1 && a.n_kv_heads >= 1 && a.n_heads % a.n_kv_heads == 0, "attention: ", a.n_heads,
              " query heads cannot share ", a.n_kv_heads, " KV heads evenly");
  FOCUS_CHECK(a.head_dim >= 2 && a.head_dim <= 256 && a.head_dim % 2 == 0, "attention: head_dim ", a.head_dim,
              " is not supported (even, 2..256)");
  FOCUS_CHECK(int64_t(a.n_heads) * a.head_dim <= INT32_MAX / 2, "attention: n_heads * head_dim too large");
  FOCUS_CHECK(a.n_rows >= 0 && a.layer >= 0, "attention: n_rows = ", a.n_rows, ", layer = ", a.layer);
  FOCUS_CHECK(std::isfinite(a.scale) && a.scale > 0, "attention: scale ", a.scale, " is not a positive number");
  for (int i = 0; i < a.n_seg; ++i) {
    const AttnSegment& s = a.segs_host[i];
    const std::string where = str("attention: segment ", i, ": ");
    FOCUS_CHECK(s.n_q >= 0, where, "n_q = ", s.n_q);
    if (s.n_q == 0) continue;
    FOCUS_CHECK(s.q_row >= 0 && int64_t(s.q_row) + s.n_q <= a.n_rows, where, "rows [", s.q_row, ", ",
                int64_t(s.q_row) + s.n_q, ") outside the ", a.n_rows, " query rows");
    FOCUS_CHECK(s.q_index >= 0 && s.n_prefix >= 0, where, "q_index = ", s.q_index, ", n_prefix = ", s.n_prefix);
    FOCUS_CHECK(int64_t(s.n_prefix) + s.q_index + s.n_q <= INT32_MAX - 256, where, "too many keys");
    FOCUS_CHECK(s.k_main && s.v_main && s.main_layer_stride >= 0, where, "main keys/values missing");
    if (dtype)
      FOCUS_CHECK(s.main_dtype == int32_t(*dtype), where, "main keys are ", dtype_name(DType(s.main_dtype)),
                  ", the backend computes in ", dtype_name(*dtype));
    if (s.n_prefix > 0) {
      FOCUS_CHECK(s.k_prefix && s.v_prefix && s.prefix_k_layer_stride >= 0 && s.prefix_v_layer_stride >= 0, where,
                  "prefix keys/values missing");
      if (dtype)
        FOCUS_CHECK(s.prefix_dtype == int32_t(*dtype), where, "prefix keys are ", dtype_name(DType(s.prefix_dtype)),
                    ", the backend computes in ", dtype_name(*dtype));
    }
  }
}

struct Plan {
  int hdp = 0;
  std::vector<PrefillItem> prefill;
  std::vector<DecodeGroup> groups;
  std::vector<DecodeUnit> units;
  std::vector<CombineItem> combines;
  int n_slots = 0;  // split-KV partial slots
  // workspace layout, bytes: tables [0, table_bytes), then the partials
  size_t o_prefill = 0, o_groups = 0, o_units = 0, o_combines = 0, table_bytes = 0;
  size_t o_part_o = 0, o_part_ml = 0, total = 0;
};

size_t take(size_t& used, size_t bytes) {
  const size_t off = (used + 255) & ~size_t(255);
  used = off + bytes;
  return off;
}

Plan make_plan(const AttnArgs& a, int sm_count) {
  Plan p;
  p.hdp = padded_head_dim(a.head_dim);
  const int G = a.n_heads / a.n_kv_heads;
  const int bm = cfg_value<PrefillCfg>(p.hdp, true), bn = cfg_value<DecodeBn>(p.hdp, false);

  // Prefill tiles: segment by segment, the segments with the most work first,
  // and in each segment the tile that sees the most keys first. The blocks in
  // flight then cover a few tiles x all heads of one or two segments, whose
  // K/V (42 MB for a 2561-token chunk of LLaMA-2-7B) stays in L2 across the
  // tiles of the segment instead of coming from DRAM once per tile; the short
  // tiles of the last segments fill the tail.
  {
    std::vector<int> order;
    std::vector<double> work(size_t(std::max(a.n_seg, 0)), 0.0);
    for (int i = 0; i < a.n_seg; ++i) {
      const AttnSegment& s = a.segs_host[i];
      if (s.n_q <= kAttnDecodeMaxQ) continue;
      order.push_back(i);
      work[size_t(i)] = double(s.n_q) * (double(s.n_prefix) + s.q_index + 0.5 * s.n_q);
    }
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return work[size_t(x)] > work[size_t(y)]; });
    for (int i : order) {
      const int n_q = a.segs_host[i].n_q;
      for (int q0 = (n_q - 1) / bm * bm; q0 >= 0; q0 -= bm) p.prefill.push_back({i, q0});
    }
  }

  // Decode groups: queries over the same key source share one pass over the
  // keys, up to 16 rows = queries x heads of the GQA group.
  const int qcap = G <= 16 ? std::min(kGroupMaxQ, 16 / G) : 1;
  using Source = std::tuple<const void*, const void*, int64_t, int, const void*, const void*, int64_t, int64_t>;
  std::map<Source, int> open;  // key source -> group still taking queries
  for (int i = 0; i < a.n_seg; ++i) {
    const AttnSegment& s = a.segs_host[i];
    if (s.n_q == 0 || s.n_q > kAttnDecodeMaxQ) continue;
    const bool pre = s.n_prefix > 0;
    const Source key{s.k_main, s.v_main, s.main_layer_stride, s.n_prefix, pre ? s.k_prefix : nullptr,
                     pre ? s.v_prefix : nullptr, pre ? s.prefix_k_layer_stride : 0, pre ? s.prefix_v_layer_stride : 0};
    for (int j = 0; j < s.n_q; ++j) {
      auto it = open.find(key);
      if (it == open.end() || p.groups[size_t(it->second)].n_q >= qcap) {
        DecodeGroup g{};
        g.seg = i;
        p.groups.push_back(g);
        open[key] = int(p.groups.size()) - 1;
        it = open.find(key);
      }
      DecodeGroup& g = p.groups[size_t(it->second)];
      g.row[g.n_q] = s.q_row + j;
      g.n_vis[g.n_q] = s.n_prefix + s.q_index + j + 1;
      g.n_keys = std::max(g.n_keys, g.n_vis[g.n_q]);
      ++g.n_q;
    }
  }
  int64_t base_blocks = 0;
  for (DecodeGroup& g : p.groups) {
    g.m_tiles = (g.n_q * G + 15) / 16;
    base_blocks += int64_t(g.m_tiles) * a.n_kv_heads;
  }
  // Split each group's keys when the groups alone cannot fill the machine.
  const int64_t target = int64_t(kDecodeBlocksPerSm) * std::max(sm_count, 1);
  const int64_t want = base_blocks > 0 && base_blocks < target ? (target + base_blocks - 1) / base_blocks : 1;
  std::vector<int> unit_keys;
  for (int gi = 0; gi < int(p.groups.size()); ++gi) {
    const DecodeGroup& g = p.groups[size_t(gi)];
    const int max_split = std::max(1, g.n_keys / (kMinSplitTiles * bn));
    int n_split = int(std::min<int64_t>(want, max_split));
    const int len = (g.n_keys + n_split - 1) / n_split;
    const int split_len = (len + bn - 1) / bn * bn;
    n_split = (g.n_keys + split_len - 1) / split_len;
    for (int mt = 0; mt < g.m_tiles; ++mt) {
      const int part0 = p.n_slots;
      if (n_split > 1) {
        p.combines.push_back({gi, mt, part0, n_split});
        p.n_slots += n_split;
      }
      for (int sp = 0; sp < n_split; ++sp) {
        const int kb = sp * split_len, ke = std::min(g.n_keys, kb + split_len);
        p.units.push_back({gi, mt, kb, ke, n_split > 1 ? part0 + sp : -1, 0});
        unit_keys.push_back(ke - kb);
      }
    }
  }
  {
    std::vector<int> order(p.units.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = int(i);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return unit_keys[size_t(x)] > unit_keys[size_t(y)]; });
    std::vector<DecodeUnit> sorted(order.size());
    for (size_t i = 0; i < order.size(); ++i) sorted[i] = p.units[size_t(order[i])];
    p.units.swap(sorted);
  }

  size_t used = 0;
  p.o_prefill = take(used, p.prefill.size() * sizeof(PrefillItem));
  p.o_groups = take(used, p.groups.size() * sizeof(DecodeGroup));
  p.o_units = take(used, p.units.size() * sizeof(DecodeUnit));
  p.o_combines = take(used, p.combines.size() * sizeof(CombineItem));
  p.table_bytes = used;
  const size_t rows = size_t(p.n_slots) * size_t(a.n_kv_heads) * 16;
  p.o_part_o = take(used, rows * size_t(a.head_dim) * 4);
  p.o_part_ml = take(used, rows * 2 * 4);
  p.total = used;
  return p;
}

bool aligned(const void* ptr, size_t n) { return reinterpret_cast<uintptr_t>(ptr) % n == 0; }

template <class T>
void run(const AttnKernelArgs& k, const Plan& p, unsigned char* ws, cudaStream_t stream) {
  if (!p.prefill.empty()) {
    PrefillLaunch l;
    l.k = k;
    l.items = reinterpret_cast<const PrefillItem*>(ws + p.o_prefill);
    l.n_items = int(p.prefill.size());
    l.hdp = p.hdp;
    launch_attention_prefill<T>(l, stream);
  }
  if (!p.units.empty()) {
    DecodeLaunch l;
    l.k = k;
    l.groups = reinterpret_cast<const DecodeGroup*>(ws + p.o_groups);
    l.units = reinterpret_cast<const DecodeUnit*>(ws + p.o_units);
    l.n_units = int(p.units.size());
    l.combines = reinterpret_cast<const CombineItem*>(ws + p.o_combines);
    l.n_combines = int(p.combines.size());
    l.part_o = reinterpret_cast<float*>(ws + p.o_part_o);
    l.part_ml = reinterpret_cast<float*>(ws + p.o_part_ml);
    l.hdp = p.hdp;
    launch_attention_decode<T>(l, stream);
  }
}

}  // namespace

size_t attention_workspace_bytes(const AttnArgs& a) {
  validate(a, nullptr);
  return make_plan(a, attn_sm_count()).total;
}

void attention(const AttnLaunch& l, cudaStream_t stream) {
  FOCUS_CHECK(l.args, "attention: no arguments");
  const AttnArgs& a = *l.args;
  FOCUS_CHECK(l.dtype == DType::BF16 || l.dtype == DType::F16, "attention: the CUDA kernels compute in BF16 or F16, not ",
              dtype_name(l.dtype));
  validate(a, &l.dtype);
  const Plan p = make_plan(a, attn_sm_count());
  if (p.prefill.empty() && p.units.empty()) return;
  FOCUS_CHECK(l.q && l.out, "attention: q or out is null");
  FOCUS_CHECK(l.workspace && l.workspace_bytes >= p.total, "attention: workspace of ", l.workspace_bytes,
              " bytes, these segments need ", p.total);

  // 16-byte cp.async loads need every row start 16-byte aligned; otherwise
  // 4-byte loads, which need 4-byte alignment (an even head_dim keeps the
  // column offsets even).
  const int kv_dim = a.n_kv_heads * a.head_dim;
  bool vec = a.head_dim % 8 == 0 && aligned(l.q, 16);
  bool ok4 = aligned(l.q, 4) && aligned(l.out, 4);
  for (int i = 0; i < a.n_seg; ++i) {
    const AttnSegment& s = a.segs_host[i];
    if (s.n_q == 0) continue;
    vec = vec && aligned(s.k_main, 16) && aligned(s.v_main, 16) && s.main_layer_stride % 8 == 0;
    ok4 = ok4 && aligned(s.k_main, 4) && aligned(s.v_main, 4) && s.main_layer_stride % 2 == 0;
    if (s.n_prefix > 0) {
      vec = vec && aligned(s.k_prefix, 16) && aligned(s.v_prefix, 16) && s.prefix_k_layer_stride % 8 == 0 &&
            s.prefix_v_layer_stride % 8 == 0;
      ok4 = ok4 && aligned(s.k_prefix, 4) && aligned(s.v_prefix, 4) && s.prefix_k_layer_stride % 2 == 0 &&
            s.prefix_v_layer_stride % 2 == 0;
    }
  }
  FOCUS_CHECK(ok4, "attention: q, out and every key/value buffer must be 4-byte aligned, with even layer strides");

  // Tables -> workspace: one host-to-device copy, ordered before the kernels.
  std::vector<unsigned char> host(p.table_bytes, 0);
  auto stage = [&](size_t off, const void* src, size_t bytes) {
    if (bytes) std::memcpy(host.data() + off, src, bytes);
  };
  stage(p.o_prefill, p.prefill.data(), p.prefill.size() * sizeof(PrefillItem));
  stage(p.o_groups, p.groups.data(), p.groups.size() * sizeof(DecodeGroup));
  stage(p.o_units, p.units.data(), p.units.size() * sizeof(DecodeUnit));
  stage(p.o_combines, p.combines.data(), p.combines.size() * sizeof(CombineItem));
  unsigned char* ws = static_cast<unsigned char*>(l.workspace);
  attn_upload(ws, host.data(), host.size(), stream);

  AttnKernelArgs k;
  k.segs = a.segs;
  k.q = l.q;
  k.out = l.out;
  k.n_heads = a.n_heads;
  k.n_kv_heads = a.n_kv_heads;
  k.group = a.n_heads / a.n_kv_heads;
  k.head_dim = a.head_dim;
  k.kv_dim = kv_dim;
  k.q_dim = a.n_heads * a.head_dim;
  k.layer = a.layer;
  k.scale_log2 = float(double(a.scale) * 1.4426950408889634);
  k.vec = vec ? 1 : 0;
  if (l.dtype == DType::BF16) run<__nv_bfloat16>(k, p, ws, stream);
  else run<__half>(k, p, ws, stream);
}

// ---- device queries (the CPU emulator has its own) ------------------------------

#ifndef FOCUS_ATTN_EMULATE
namespace attn {

int attn_sm_count() {
  int dev = 0, n = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return n;
}

size_t attn_smem_optin() {
  int dev = 0, n = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  return size_t(n);
}

void attn_upload(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  // From pageable memory the copy is staged before this returns, so `src`
  // may be freed right after.
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
}

void attn_set_smem_once(const void* kernel, size_t bytes) {
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, size_t> raised;  // (kernel, device) -> limit set
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  size_t& have = raised[{kernel, dev}];
  if (bytes <= have) return;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  have = bytes;
}

void attn_check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda_error(e, what, __FILE__, __LINE__);
}

}  // namespace attn
#endif

}  // namespace focus::cuda
