// Whole models on the CUDA backend against the CPU backend: the fixtures
// (tiny-gqa F32 and tiny-gqa-bf16, head_dim 16), native and FocusLLM, and
// random checkpoints that reach the kernels' fast paths (head_dim 64 with F16
// activations and a candidate MLP, head_dim 128 with BF16), through ingest
// and steps driven by ftest::FocusDriver. Logits rows must agree to 2e-2
// (max|cuda - cpu| / max|cpu|; 4e-2 with BF16 activations) and pick the same
// greedy token where the top two are further apart than that. `parity_test
// cuda` holds the same runs against the float64 references.
//
// Skipped (exit 77) without a usable device.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/cuda_testing.h"
#include "common/focus_driver.h"
#include "common/random_checkpoint.h"
#include "common/testing.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/model.h"

using focus::DType;
using ftest::cu::host_argmax;
using focus::str;

namespace {

// Relative tolerance by activation type: F16 activations (F16 checkpoints)
// 2e-2; BF16 ones (F32 and BF16 checkpoints run with BF16 activations on
// CUDA) 4e-2, since BF16 keeps 8 mantissa bits to F16's 11.
double tol_for(const focus::Backend& be) { return be.act_dtype() == DType::BF16 ? 4e-2 : 2e-2; }

bool clear_greedy(const std::vector<float>& row, double tol) { return ftest::greedy_is_clear(row.data(), row.size(), tol); }

struct Run {
  std::vector<std::vector<float>> rows;  // logits after ingest, then after each step
};

Run run(const std::string& model_dir, std::shared_ptr<focus::Backend> be, const std::optional<ftest::FocusParams>& p,
        const std::vector<int32_t>& ids, const std::vector<int32_t>& cont, int max_batch_tokens = 0) {
  focus::ModelOptions o;
  o.max_batch_tokens = max_batch_tokens;
  focus::Model m(model_dir, be, o);
  // Caches in the activation type: float32 on the CPU, 16-bit on CUDA.
  ftest::FocusDriver d(m, p, int(cont.size()), be->act_dtype());
  Run r;
  r.rows.push_back(d.ingest(ids));
  for (int32_t t : cont) r.rows.push_back(d.step(t));
  return r;
}

// Compares a CUDA run with the CPU run row by row. The greedy token is
// compared where the CPU's top two logits are further apart than the
// tolerance allows the CUDA ones to move (random models and the fixtures have
// near-ties).
void compare(const std::string& name, const Run& gpu, const Run& cpu, double tol) {
  for (size_t i = 0; i < cpu.rows.size(); ++i) {
    const std::vector<float>& c = cpu.rows[i];
    const std::vector<float>& g = gpu.rows[i];
    const std::string what = str(name, " row ", i);
    ftest::cu::check_close(what, g, c, tol);
    const int vocab = int(c.size());
    const int ac = host_argmax(c.data(), vocab), ag = host_argmax(g.data(), vocab);
    if (clear_greedy(c, tol)) ftest::check(ac == ag, what + " greedy token", str("cuda ", ag, ", cpu ", ac));
  }
}

void fixtures() {
  for (const auto& c : ftest::load_fixture_cases()) {
    const std::string name = c.file.substr(c.file.rfind('/') + 1);
    try {
      const Run cpu = run(c.model, focus::make_cpu_backend(2), c.options, c.ids, c.continuation);
      std::shared_ptr<focus::Backend> cuda = focus::make_cuda_backend(0);
      const Run gpu = run(c.model, cuda, c.options, c.ids, c.continuation);
      const double tol = tol_for(*cuda);
      compare("fixture " + name, gpu, cpu, tol);
      for (size_t i = 0; i < gpu.rows.size(); ++i)
        if (clear_greedy(c.logits[i], tol))
          ftest::check(host_argmax(gpu.rows[i].data(), int(gpu.rows[i].size())) == c.greedy[i],
                     str("fixture ", name, " row ", i, " greedy token = reference"));
    } catch (const std::exception& e) {
      ftest::fail("fixture " + name + ": " + e.what());
    }
  }
}

void random_models(const std::string& root) {
  struct Case {
    const char* name;
    ftest::CheckpointShape shape;
    DType dtype;
    bool cand, cand_mlp;
  } cases[] = {
      {"f16 head_dim 64 +candidate MLP", {1000, 256, 512, 2, 4, 2, 64}, DType::F16, true, true},
      {"bf16 head_dim 128", {1000, 256, 512, 2, 2, 1, 128}, DType::BF16, true, false},
  };
  for (const Case& k : cases) {
    const std::string dir = root + "/" + std::to_string(&k - cases);
    try {
      ftest::write_random_checkpoint(dir, k.shape, k.dtype, k.cand, k.cand_mlp, 42);
      ftest::Rng rng(5);
      std::vector<int32_t> ids{1};
      while (ids.size() < 300) ids.push_back(3 + rng.below(k.shape.vocab - 3));
      const std::vector<int32_t> cont{17, 99, 4};
      // FocusLLM: 5 chunks of 48 (+ a 17-token prompt: 65 rows, over one
      // 64-row attention tile), a 64-token local window.
      ftest::FocusParams p;
      p.local_window = 64;
      p.chunk_size = 48;
      p.prompt_cap = 16;
      p.min_chunked_length = 128;
      const Run cpu = run(dir, focus::make_cpu_backend(2), p, ids, cont);
      std::shared_ptr<focus::Backend> cuda = focus::make_cuda_backend(0);
      const Run gpu = run(dir, cuda, p, ids, cont);
      const double tol = tol_for(*cuda);
      compare(str("random ", k.name, " FocusLLM"), gpu, cpu, tol);
      // Micro-batches of 40 rows: each 65-token chunk runs as two pieces, the
      // second attending to the cache the first appended.
      const Run gpu_mb = run(dir, focus::make_cuda_backend(0), p, ids, cont, 40);
      compare(str("random ", k.name, " FocusLLM, micro-batches of 40 rows"), gpu_mb, cpu, tol);
      // Native: one 300-token causal sequence, then KV-cached decoding.
      const Run ncpu = run(dir, focus::make_cpu_backend(2), std::nullopt, ids, cont);
      const Run ngpu = run(dir, focus::make_cuda_backend(0), std::nullopt, ids, cont);
      compare(str("random ", k.name, " native"), ngpu, ncpu, tol);
    } catch (const std::exception& e) {
      ftest::fail(str("random ", k.name, ": ", e.what()));
    }
  }
}

}  // namespace

int main() {
  const std::string why = focus::cuda_unavailable_reason();
  if (!why.empty()) {
    ftest::skip("whole models on the CUDA backend", why);
    return ftest::finish();
  }
  fixtures();
  std::string tmpl_s = (std::filesystem::temp_directory_path() / "focusllm-cudamodel-XXXXXX").string();
  std::vector<char> tmpl(tmpl_s.c_str(), tmpl_s.c_str() + tmpl_s.size() + 1);  // mkdtemp writes into it
  if (!mkdtemp(tmpl.data())) {
    ftest::fail("cannot create a temporary folder");
    return ftest::finish();
  }
  random_models(tmpl.data());
  std::error_code ec;
  std::filesystem::remove_all(tmpl.data(), ec);
  return ftest::finish();
}
