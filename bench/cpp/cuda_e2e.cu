// End to end on the CUDA backend: a LLaMA-2-7B-shaped model (hidden 4096,
// 32 heads of 128, intermediate 11008, vocab 32000) with random bf16 weights
// and FocusLLM candidate projections, FocusLLM defaults (local 2048, chunk
// 2048, prompt cap 512). Per context length: ingest time and tokens/s, the
// per-token step time (median), device memory; against the targets
//   128K-token ingest <= 6 s, per-token step at 128K <= 70 ms
// (the step's floor is ~30-45 ms: ~69-80 GB of chunk caches to read and
// ~27 TFLOP of local-window recompute). With fewer layers than 32 (quick
// runs) the times are also given scaled to 32 layers, marked extrapolated:
// every layer does the same work, the embedding and one logits row are noise.
//
//   bench_cuda_e2e [--dir D] [--layers N] [--contexts 32768,131072]
//                  [--steps S] [--max-batch-tokens B] [--no-candidates]
//                  [--tiny --cpu]   (a small model on the CPU backend: checks
//                                    this program's logic where there is no GPU)
//
// The checkpoint is written once to D (default $FOCUSLLM_BENCH_DIR, else
// the system temp folder's focusllm-bench) and reused while its arguments match (~13.5 GB for
// the base model at 32 layers, ~17.8 GB with candidate projections). One JSON
// object per line. Exit 77 without a device.
#include <filesystem>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../cuda/backend_cuda.h"
#include "common/bench_util.h"
#include "common/focus_driver.h"
#include "common/random_checkpoint.h"
#include "common/testing.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/model.h"

using focus::str;
using namespace ftest::bench;

namespace {

std::string g_head;  // "bench", device, shape fields common to every line

void line(const std::string& body) {
  std::printf("{%s, %s}\n", g_head.c_str(), body.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const char* env_dir = std::getenv("FOCUSLLM_BENCH_DIR");
  std::string root =
      env_dir && *env_dir ? env_dir : (std::filesystem::temp_directory_path() / "focusllm-bench").string();
  int layers = 32, steps = 5, max_batch_tokens = 16384;
  std::vector<int> contexts{32768, 131072};
  bool candidates = true, tiny = false, cpu = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--dir") root = v, ++i;
    else if (a == "--layers") layers = std::max(1, std::atoi(v)), ++i;
    else if (a == "--steps") steps = std::max(1, std::atoi(v)), ++i;
    else if (a == "--max-batch-tokens") max_batch_tokens = std::max(1, std::atoi(v)), ++i;
    else if (a == "--contexts") contexts = parse_list(v), ++i;
    else if (a == "--no-candidates") candidates = false;
    else if (a == "--tiny") tiny = true;
    else if (a == "--cpu") cpu = true;
    else {
      std::fprintf(stderr, "bench_cuda_e2e: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  const std::string why = focus::cuda_unavailable_reason();
  if (!cpu && !why.empty()) {
    std::printf("{\"bench\": \"cuda_e2e\", \"skipped\": \"%s\"}\n", json_escape(why).c_str());
    return 77;
  }
  try {
    std::shared_ptr<focus::Backend> be;
    focus::cuda::CudaBackend* cuda_be = nullptr;  // for its memory counters
    if (cpu) {
      be = focus::make_cpu_backend(2);
    } else {
      auto cb = std::make_shared<focus::cuda::CudaBackend>(0);
      cuda_be = cb.get();
      be = cb;
    }
    ftest::CheckpointShape shape{32000, 4096, 11008, layers, 32, 32, 0};
    ftest::FocusParams fp{};  // the official defaults
    if (tiny) {
      shape = ftest::CheckpointShape{1000, 256, 688, layers, 4, 4, 0};
      fp.local_window = fp.chunk_size = 64, fp.prompt_cap = 16, fp.min_chunked_length = 128;
      contexts = {512, 1024};
    }
    const double scale = 32.0 / layers;  // to the full model's 32 layers
    g_head = str("\"bench\": \"cuda_e2e\", \"device\": \"", json_escape(be->description()), "\", \"model\": \"",
                 tiny ? "tiny" : "llama-2-7b shape", ", random bf16\", \"layers\": ", layers,
                 ", \"candidates\": ", candidates ? "true" : "false", ", \"max_batch_tokens\": ", max_batch_tokens,
                 ", \"local\": ", fp.local_window, ", \"chunk\": ", fp.chunk_size, ", \"prompt_cap\": ", fp.prompt_cap);

    const std::string dir =
        str(root, tiny ? "/tiny" : "/llama2-7b-shape", "-L", layers, candidates ? "-cand" : "", "-bf16");
    auto t0 = Clock::now();
    const bool wrote = ftest::ensure_random_checkpoint(dir, shape, focus::DType::BF16, candidates, false, 7);
    line(str("\"what\": \"checkpoint\", \"dir\": \"", json_escape(dir), "\", \"bytes\": ",
             ftest::random_checkpoint_bytes(shape, focus::DType::BF16, candidates, false), ", \"written\": ",
             wrote ? "true" : "false", ", \"s\": ", seconds_since(t0)));

    t0 = Clock::now();
    focus::ModelOptions mo;
    mo.max_batch_tokens = max_batch_tokens;
    focus::Model m(dir, be, mo);
    be->sync();
    line(str("\"what\": \"load\", \"s\": ", seconds_since(t0), ", \"weight_bytes\": ", m.info().backend_weight_bytes));

    ftest::Rng rng(1);
    auto random_ids = [&](int n) {
      std::vector<int32_t> ids{1};
      while (int(ids.size()) < n) ids.push_back(3 + rng.below(shape.vocab - 3));
      return ids;
    };
    // Warm-up: module loading, the runner's workspace at full micro-batch
    // size, the attention and GEMM workspaces.
    {
      t0 = Clock::now();
      ftest::FocusDriver d(m, fp, 2, be->act_dtype());
      d.ingest(random_ids(tiny ? 256 : 8192));
      d.step(5);
      line(str("\"what\": \"warmup\", \"s\": ", seconds_since(t0)));
    }

    for (int L : contexts) {
      const int M = L - fp.local_window;
      const int k = M > 0 ? (M + fp.chunk_size - 1) / fp.chunk_size : 0;
      // As FocusDriver sizes its pool: longest chunk + BOS + prompt + steps.
      const int64_t cap = std::min(fp.chunk_size, std::max(M, 1)) + 1 +
                          std::min({fp.prompt_cap, fp.chunk_size, fp.local_window}) + steps + 1;
      const size_t need = focus::KvPool::bytes_needed(m.config(), k, cap, be->act_dtype());
      const size_t free_b = be->free_bytes();
      if (L < fp.min_chunked_length || need + (size_t(4) << 30) > free_b) {
        line(str("\"what\": \"context\", \"context\": ", L, ", \"skipped\": \"",
                 L < fp.min_chunked_length ? "shorter than minChunkedLength" : "chunk caches do not fit",
                 "\", \"cache_bytes\": ", need, ", \"free_bytes\": ", free_b));
        continue;
      }
      if (cuda_be) cuda_be->reset_peak();
      ftest::FocusDriver d(m, fp, steps + 1, be->act_dtype());
      const std::vector<int32_t> ids = random_ids(L);
      t0 = Clock::now();
      std::vector<float> logits = d.ingest(ids);
      const double ingest_s = seconds_since(t0);
      std::vector<double> step_ms;
      for (int s = 0; s <= steps; ++s) {
        const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        t0 = Clock::now();
        logits = d.step(next);
        if (s > 0) step_ms.push_back(seconds_since(t0) * 1e3);  // the first step grows workspaces
      }
      const double med = median(step_ms);
      std::string steps_list;
      for (double x : step_ms) steps_list += str(steps_list.empty() ? "" : ", ", x);
      const bool extrapolated = layers != 32;
      const double ingest_full = ingest_s * scale, step_full = med * scale;
      std::string body = str("\"what\": \"context\", \"context\": ", L, ", \"chunks\": ", k, ", \"ingest_s\": ", ingest_s,
                             ", \"ingest_tokens_per_s\": ", L / ingest_s, ", \"step_ms_median\": ", med,
                             ", \"step_ms\": [", steps_list, "], \"peak_alloc_bytes\": ", cuda_be ? cuda_be->peak_bytes() : 0,
                             ", \"cache_bytes\": ", need);
      body += str(", \"ingest_s_32_layers\": ", ingest_full, ", \"step_ms_32_layers\": ", step_full,
                  ", \"extrapolated\": ", extrapolated ? "true" : "false");
      if (L == 131072 && !tiny)
        body += str(", \"target_ingest_s\": 6, \"ingest_ratio_to_target\": ", ingest_full / 6.0,
                    ", \"target_step_ms\": 70, \"step_ratio_to_target\": ", step_full / 70.0);
      line(body);
    }
  } catch (const std::exception& e) {
    std::printf("{\"bench\": \"cuda_e2e\", \"error\": \"%s\"}\n", json_escape(e.what()).c_str());
    return 1;
  }
  return 0;
}
