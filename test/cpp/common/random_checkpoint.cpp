// Random-weight checkpoints for the C++ tests; why this writer exists beside
// bench/random-model.ts is in random_checkpoint.h.
#include "common/random_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "core/error.h"

namespace ftest {

using focus::DType;

namespace {

enum class Init { Proj, Norm, Embed };

struct Spec {
  std::string name;
  std::vector<int64_t> shape;  // (out, in) for projections, (n) for norms
  Init init;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

std::vector<Spec> specs(const CheckpointShape& s, bool cand, bool cand_mlp) {
  const int64_t hd = s.head_dim > 0 ? s.head_dim : s.hidden / s.heads;
  const int64_t dim = s.hidden, qd = s.heads * hd, kvd = s.kv_heads * hd, inter = s.inter;
  std::vector<Spec> v;
  v.push_back({"model.embed_tokens.weight", {s.vocab, dim}, Init::Embed});
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    v.push_back({p + "input_layernorm.weight", {dim}, Init::Norm});
    v.push_back({p + "post_attention_layernorm.weight", {dim}, Init::Norm});
    for (const char* pre : {"", "beacon_"}) {
      if (*pre && !cand) break;
      v.push_back({p + "self_attn." + pre + "q_proj.weight", {qd, dim}, Init::Proj});
      v.push_back({p + "self_attn." + pre + "k_proj.weight", {kvd, dim}, Init::Proj});
      v.push_back({p + "self_attn." + pre + "v_proj.weight", {kvd, dim}, Init::Proj});
      v.push_back({p + "self_attn." + pre + "o_proj.weight", {dim, qd}, Init::Proj});
    }
    v.push_back({p + "mlp.gate_proj.weight", {inter, dim}, Init::Proj});
    v.push_back({p + "mlp.up_proj.weight", {inter, dim}, Init::Proj});
    v.push_back({p + "mlp.down_proj.weight", {dim, inter}, Init::Proj});
    if (cand_mlp) {
      v.push_back({p + "mlp.beacon_up_proj.weight", {inter, dim}, Init::Proj});
      v.push_back({p + "mlp.beacon_down_proj.weight", {dim, inter}, Init::Proj});
    }
  }
  v.push_back({"model.norm.weight", {dim}, Init::Norm});
  v.push_back({"lm_head.weight", {s.vocab, dim}, Init::Proj});
  return v;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Elements [begin, end) of tensor `key`, written to out in dtype t. Counter
// based: element i's value is a function of (key, i) alone, two elements per
// 64-bit hash.
template <DType t>
void fill_as(char* out, const Spec& sp, uint64_t key, int64_t begin, int64_t end) {
  const float a = sp.init == Init::Proj ? float(std::sqrt(3.0 / double(sp.shape.back())))
                  : sp.init == Init::Norm ? 0.1f
                                          : 1.0f;
  const float base = sp.init == Init::Norm ? 1.0f : 0.0f;
  uint64_t h = 0;
  for (int64_t i = begin; i < end; ++i) {
    if (i == begin || (i & 1) == 0) h = splitmix64(key + uint64_t(i >> 1));
    const uint32_t bits = (i & 1) ? uint32_t(h >> 32) : uint32_t(h);
    const float x = base + a * (float(bits >> 8) * (1.0f / 8388608.0f) - 1.0f);  // u in [-1, 1), 24 bits
    const size_t j = size_t(i - begin);
    if constexpr (t == DType::F32) reinterpret_cast<float*>(out)[j] = x;
    else if constexpr (t == DType::F16) reinterpret_cast<uint16_t*>(out)[j] = focus::f32_to_f16(x);
    else reinterpret_cast<uint16_t*>(out)[j] = focus::f32_to_bf16(x);
  }
}

void fill(char* out, DType t, const Spec& sp, uint64_t key, int64_t begin, int64_t end) {
  switch (t) {
    case DType::F32: return fill_as<DType::F32>(out, sp, key, begin, end);
    case DType::F16: return fill_as<DType::F16>(out, sp, key, begin, end);
    case DType::BF16: return fill_as<DType::BF16>(out, sp, key, begin, end);
  }
}

const char* st_dtype(DType t) { return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : "BF16"; }
const char* torch_dtype(DType t) { return t == DType::F32 ? "float32" : t == DType::F16 ? "float16" : "bfloat16"; }

std::string stamp_text(const CheckpointShape& s, DType dtype, bool cand, bool cand_mlp, uint64_t seed) {
  std::ostringstream o;
  o << "{\"vocab\": " << s.vocab << ", \"hidden\": " << s.hidden << ", \"inter\": " << s.inter
    << ", \"layers\": " << s.layers << ", \"heads\": " << s.heads << ", \"kv_heads\": " << s.kv_heads
    << ", \"head_dim\": " << s.head_dim << ", \"dtype\": \"" << st_dtype(dtype) << "\", \"candidates\": " << cand
    << ", \"candidate_mlp\": " << cand_mlp << ", \"seed\": " << seed
    << ", \"data_bytes\": " << random_checkpoint_bytes(s, dtype, cand, cand_mlp) << "}\n";
  return o.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) throw focus::Error("cannot write " + path);
}

}  // namespace

size_t random_checkpoint_bytes(const CheckpointShape& s, DType dtype, bool candidates, bool candidate_mlp) {
  size_t n = 0;
  for (const Spec& sp : specs(s, candidates, candidate_mlp)) n += size_t(sp.numel()) * focus::dtype_size(dtype);
  return n;
}

void write_random_checkpoint(const std::string& dir, const CheckpointShape& s, DType dtype, bool candidates,
                             bool candidate_mlp, uint64_t seed) {
  FOCUS_CHECK(s.vocab > 0 && s.hidden > 0 && s.inter > 0 && s.layers > 0 && s.heads > 0 && s.kv_heads > 0 &&
                  s.heads % s.kv_heads == 0 && (s.head_dim > 0 || s.hidden % s.heads == 0),
              "random checkpoint: inconsistent shape");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  FOCUS_CHECK(!ec, "cannot create ", dir, ": ", ec.message());
  std::filesystem::remove(dir + "/random_checkpoint.json", ec);

  const std::vector<Spec> v = specs(s, candidates, candidate_mlp);
  const size_t es = focus::dtype_size(dtype);

  // Header: every tensor's dtype, shape and byte range, padded with spaces to
  // a multiple of 8 so that the data section starts aligned.
  std::ostringstream h;
  h << "{\"__metadata__\":{\"format\":\"pt\"}";
  size_t off = 0;
  for (const Spec& sp : v) {
    h << ",\"" << sp.name << "\":{\"dtype\":\"" << st_dtype(dtype) << "\",\"shape\":[";
    for (size_t i = 0; i < sp.shape.size(); ++i) h << (i ? "," : "") << sp.shape[i];
    const size_t bytes = size_t(sp.numel()) * es;
    h << "],\"data_offsets\":[" << off << "," << off + bytes << "]}";
    off += bytes;
  }
  h << "}";
  std::string header = h.str();
  header.append((8 - header.size() % 8) % 8, ' ');

  const std::string path = dir + "/model.safetensors", tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  FOCUS_CHECK(f, "cannot write ", tmp);
  try {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
    bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(header.data(), 1, header.size(), f) == header.size();
    // Generate a big chunk with every core, write it, repeat: the disk, not
    // the generator, should be the limit.
    const int threads = int(std::max(1u, std::min(32u, std::thread::hardware_concurrency())));
    const int64_t chunk = int64_t(32) << 20;  // elements
    std::vector<char> buf;
    for (size_t ti = 0; ti < v.size() && ok; ++ti) {
      const Spec& sp = v[ti];
      const uint64_t key = splitmix64(seed ^ splitmix64(0x5eedull + ti)) << 20;
      const int64_t n = sp.numel();
      for (int64_t c0 = 0; c0 < n && ok; c0 += chunk) {
        const int64_t c1 = std::min(n, c0 + chunk);
        buf.resize(size_t(c1 - c0) * es);
        const int nt = c1 - c0 >= (int64_t(1) << 16) ? threads : 1;
        std::vector<std::thread> pool;
        for (int t = 0; t < nt; ++t) {
          const int64_t b = c0 + (c1 - c0) * t / nt, e = c0 + (c1 - c0) * (t + 1) / nt;
          pool.emplace_back([&, b, e] { fill(buf.data() + size_t(b - c0) * es, dtype, sp, key, b, e); });
        }
        for (auto& th : pool) th.join();
        ok = std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
      }
    }
    ok = std::fclose(f) == 0 && ok;
    f = nullptr;
    FOCUS_CHECK(ok, "cannot write ", tmp, " (disk full?)");
  } catch (...) {
    if (f) std::fclose(f);
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::filesystem::rename(tmp, path, ec);
  FOCUS_CHECK(!ec, "cannot rename ", tmp, ": ", ec.message());

  std::ostringstream c;
  c << "{\n  \"vocab_size\": " << s.vocab << ",\n  \"hidden_size\": " << s.hidden
    << ",\n  \"intermediate_size\": " << s.inter << ",\n  \"num_hidden_layers\": " << s.layers
    << ",\n  \"num_attention_heads\": " << s.heads << ",\n  \"num_key_value_heads\": " << s.kv_heads << ",\n";
  if (s.head_dim > 0) c << "  \"head_dim\": " << s.head_dim << ",\n";
  c << "  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n  \"max_position_embeddings\": 4096,\n"
    << "  \"tie_word_embeddings\": false,\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n"
    << "  \"hidden_act\": \"silu\",\n  \"model_type\": \"llama\",\n  \"torch_dtype\": \"" << torch_dtype(dtype)
    << "\"";
  if (candidates || candidate_mlp) {
    c << ",\n  \"beacon_param\": [";
    const char* sep = "";
    if (candidates) {
      c << "\"q\", \"k\", \"v\", \"o\"";
      sep = ", ";
    }
    if (candidate_mlp) c << sep << "\"mlp\"";
    c << "]";
  }
  c << "\n}\n";
  write_text(dir + "/config.json", c.str());
}

bool ensure_random_checkpoint(const std::string& dir, const CheckpointShape& s, DType dtype, bool candidates,
                              bool candidate_mlp, uint64_t seed) {
  const std::string want = stamp_text(s, dtype, candidates, candidate_mlp, seed);
  {
    std::ifstream f(dir + "/random_checkpoint.json", std::ios::binary);
    std::stringstream got;
    got << f.rdbuf();
    std::error_code ec;
    const auto size = std::filesystem::file_size(dir + "/model.safetensors", ec);
    if (f && got.str() == want && !ec && size > random_checkpoint_bytes(s, dtype, candidates, candidate_mlp))
      return false;
  }
  write_random_checkpoint(dir, s, dtype, candidates, candidate_mlp, seed);
  write_text(dir + "/random_checkpoint.json", want);
  return true;
}

}  // namespace ftest
