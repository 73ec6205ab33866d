// End-to-end CPU speed of the engine without Node: a 512-token prefill (one
// sequence, logits of the last row) and single-token decode steps through the
// same KV cache, as the peer harness (../shared/peer/bench.sh) measures
// llama.cpp.
//
//   bench_cpu_e2e --model DIR [--threads 1,2] [--prompt 512] [--decode 64]
//                 [--repeat 3] [--kv f32|f16|bf16] [--profile]
//
// One JSON object per line and thread count:
//   {"bench":"cpu_e2e","model":..,"dtype":..,"isa":..,"threads":..,"prompt":..,"decode":..,
//    "prefill_ms":..,"prefill_tok_s":..,"decode_ms_per_tok":..,"decode_tok_s":..,
//    "decode_step_median_ms":..,"greedy_head":[first 4 decoded ids],"last_logits_norm":..}
// (the last two fingerprint the numerics, to compare levels, thread counts and builds)
// Times are medians over --repeat runs (each after a warm-up run);
// decode_step_median_ms is the median of every single step of those runs (a
// step that another process delays moves it little, unlike the mean). --profile
// adds the time per backend op ({"bench":"cpu_e2e_profile",...}) of the last
// run, measured by a forwarding backend that synchronises around each op, and
// that run's whole phase as op "step".
#include <algorithm>
#include <filesystem>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/bench_util.h"
#include "core/error.h"
#include "core/model.h"
#include "cpu/isa.h"

using namespace focus;

namespace {

using ftest::bench::Clock;
using ftest::bench::machine;
using ftest::bench::median;
using ftest::bench::parse_list;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Forwards every call to the CPU backend and adds up the time of each op.
class TimingBackend final : public Backend {
 public:
  explicit TimingBackend(std::unique_ptr<Backend> inner) : in_(std::move(inner)) {}
  std::map<std::string, double> ms;  // op -> total milliseconds

  std::string name() const override { return in_->name(); }
  std::string description() const override { return in_->description(); }
  DType act_dtype() const override { return in_->act_dtype(); }
  void* alloc(size_t b, const char* w) override { return in_->alloc(b, w); }
  void dealloc(void* p) override { in_->dealloc(p); }
  void upload(void* d, const void* s, size_t n) override { in_->upload(d, s, n); }
  void download(void* d, const void* s, size_t n) override { in_->download(d, s, n); }
  void copy(void* d, const void* s, size_t n) override { in_->copy(d, s, n); }
  void fill_zero(void* d, size_t n) override { in_->fill_zero(d, n); }
  void sync() override { in_->sync(); }
  size_t free_bytes() const override { return in_->free_bytes(); }
  Weight load_weight(const TensorView& t, const char* n) override { return in_->load_weight(t, n); }
  void release_weight(Weight& w) override { in_->release_weight(w); }
  size_t weight_bytes(DType t, int64_t n) const override { return in_->weight_bytes(t, n); }
  void set_rope(const std::vector<double>& f, int hd) override { in_->set_rope(f, hd); }
  void configure(DType t) override { in_->configure(t); }

  void embedding(void* o, const Weight& t, const int32_t* ids, int n) override {
    timed("embedding", [&] { in_->embedding(o, t, ids, n); });
  }
  void rms_norm(void* o, const void* x, const Weight& w, int n, float eps) override {
    timed("rms_norm", [&] { in_->rms_norm(o, x, w, n, eps); });
  }
  void matmul(void* o, const void* x, int m, const Weight& w, const Weight* b, Epilogue e) override {
    timed(w.rows >= 8192 ? "matmul lm_head" : "matmul", [&] { in_->matmul(o, x, m, w, b, e); });
  }
  void matmul_split_group(const void* x, int m, int split, const SplitJob* jobs, int n, Epilogue e) override {
    timed("matmul", [&] { in_->matmul_split_group(x, m, split, jobs, n, e); });
  }
  void rope_table(float* t, const int32_t* pos, int n) override { timed("rope_table", [&] { in_->rope_table(t, pos, n); }); }
  void rope(void* x, int n, int h, const float* t) override { timed("rope", [&] { in_->rope(x, n, h, t); }); }
  void kv_store(const void* k, const void* v, const KvDst* d, int n, int kvd, int l) override {
    timed("kv_store", [&] { in_->kv_store(k, v, d, n, kvd, l); });
  }
  void attention(void* o, const void* q, const AttnArgs& a) override { timed("attention", [&] { in_->attention(o, q, a); }); }
  void swiglu(void* o, const void* g, const void* u, int64_t n) override { timed("swiglu", [&] { in_->swiglu(o, g, u, n); }); }
  void gather_rows(void* o, const void* x, const int32_t* r, int n, int d) override {
    timed("gather_rows", [&] { in_->gather_rows(o, x, r, n, d); });
  }
  void sample(int32_t* o, const float* l, int rows, int vocab, const SampleParams& p, const float* u) override {
    timed("sample", [&] { in_->sample(o, l, rows, vocab, p, u); });
  }

 private:
  template <class F>
  void timed(const char* op, F f) {
    const auto t0 = Clock::now();
    f();
    ms[op] += ms_since(t0);
  }
  std::unique_ptr<Backend> in_;
};

int argmax(const std::vector<float>& v) { return int(std::max_element(v.begin(), v.end()) - v.begin()); }

}  // namespace

int main(int argc, char** argv) {
  std::string dir = (std::filesystem::temp_directory_path() / "rand156m").string();
  std::vector<int> threads = {1, 2};
  int prompt = 512, decode = 64, repeat = 3;
  DType kv = DType::F32;
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--profile") {
      profile = true;
      continue;
    }
    ++i;
    if (a == "--model") dir = v;
    else if (a == "--threads") threads = parse_list(v);
    else if (a == "--prompt") prompt = std::atoi(v);
    else if (a == "--decode") decode = std::atoi(v);
    else if (a == "--repeat") repeat = std::max(1, std::atoi(v));
    else if (a == "--kv") kv = std::string(v) == "f16" ? DType::F16 : std::string(v) == "bf16" ? DType::BF16 : DType::F32;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::string mach = machine();
  try {
    for (int nt : threads) {
      auto timing = std::make_shared<TimingBackend>(make_cpu_backend(nt));
      Model model(dir, timing);
      const ModelConfig& c = model.config();
      // The peer's prompt: BOS then pseudo-random ids.
      std::vector<int32_t> ids = {1};
      uint64_t s = 7;
      while (int(ids.size()) < prompt) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids.push_back(3 + int32_t((s >> 33) % uint64_t(c.vocab_size - 3)));
      }
      KvPool pool(model.backend_ptr(), c, 1, prompt + decode + 1, kv);
      std::vector<double> pre, dec, steps;
      std::vector<int> greedy;       // tokens decoded by the last run
      double logits_norm = 0;        // |logits| of the last step, to compare levels and builds
      for (int r = 0; r <= repeat; ++r) {  // run 0 warms up
        pool.length[0] = 0;
        timing->ms.clear();
        SeqRun sr;
        sr.tokens = ids;
        sr.pool = &pool;
        sr.slot = 0;
        sr.logits = LogitsMode::Last;
        auto t0 = Clock::now();
        std::vector<float> logits = model.run({sr});
        const double p_ms = ms_since(t0);
        auto prefill_ops = timing->ms;
        timing->ms.clear();
        t0 = Clock::now();
        greedy.clear();
        for (int d = 0; d < decode; ++d) {
          const auto ts = Clock::now();
          greedy.push_back(argmax(logits));
          sr.tokens = {greedy.back()};
          logits = model.run({sr});
          if (r > 0) steps.push_back(ms_since(ts));
        }
        const double d_ms = ms_since(t0) / std::max(1, decode);
        logits_norm = 0;
        for (float x : logits) logits_norm += double(x) * x;
        logits_norm = std::sqrt(logits_norm);
        if (r == 0) continue;
        pre.push_back(p_ms);
        dec.push_back(d_ms);
        if (profile && r == repeat) {
          // "step": the whole phase of this same run (per token for decode), so
          // that step minus the ops is the time outside them.
          prefill_ops["step"] = p_ms;
          auto decode_ops = timing->ms;
          decode_ops["step"] = d_ms * std::max(1, decode);
          for (auto& [phase, ops] : {std::make_pair("prefill", prefill_ops), std::make_pair("decode", decode_ops)})
            for (auto& [op, t] : ops)
              std::printf("{\"bench\":\"cpu_e2e_profile\",\"machine\":\"%s\",\"threads\":%d,\"phase\":\"%s\",\"op\":\"%s\",\"ms\":%.3f}\n",
                          mach.c_str(), nt, phase, op.c_str(), std::string(phase) == "decode" ? t / std::max(1, decode) : t);
        }
      }
      const double p = median(pre), d = median(dec);
      std::printf(
          "{\"bench\":\"cpu_e2e\",\"machine\":\"%s\",\"model\":\"%s\",\"dtype\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"prompt\":%d,"
          "\"decode\":%d,\"kv\":\"%s\",\"prefill_ms\":%.2f,\"prefill_tok_s\":%.1f,\"decode_ms_per_tok\":%.3f,"
          "\"decode_tok_s\":%.1f,\"decode_step_median_ms\":%.3f,\"greedy_head\":[%d,%d,%d,%d],\"last_logits_norm\":%.6f}\n",
          mach.c_str(), dir.c_str(), model.info().dtype.c_str(), cpu::cpu_isa_name(), nt, prompt, decode, dtype_name(kv), p,
          prompt / p * 1e3, d, 1e3 / d, steps.empty() ? 0.0 : median(steps), greedy.size() > 0 ? greedy[0] : -1, greedy.size() > 1 ? greedy[1] : -1,
          greedy.size() > 2 ? greedy[2] : -1, greedy.size() > 3 ? greedy[3] : -1, logits_norm);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cpu_e2e: %s\n", e.what());
    return 1;
  }
  return 0;
}
