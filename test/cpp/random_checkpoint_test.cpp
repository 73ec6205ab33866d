// The random checkpoint writer (test/cpp/common/random_checkpoint.h): what it
// writes loads with focus::Model on the CPU backend and runs FocusLLM steps,
// in every dtype, with and without candidate tensors; it is deterministic in
// its seed; ensure_random_checkpoint reuses a matching folder.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/focus_driver.h"
#include "common/random_checkpoint.h"
#include "common/testing.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/model.h"

namespace {

using focus::DType;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Spread of a logits row: a model whose layers do nothing sane tends to give
// constant or exploding rows.
double spread(const std::vector<float>& v) {
  double lo = 1e30, hi = -1e30;
  for (float x : v) lo = std::min(lo, double(x)), hi = std::max(hi, double(x));
  return hi - lo;
}

void run_case(const std::string& root, DType dt, bool cand, bool cand_mlp, int head_dim) {
  const std::string name = std::string(focus::dtype_name(dt)) + (cand ? " +candidates" : "") +
                           (cand_mlp ? " +candidate MLP" : "") + (head_dim ? " head_dim " + std::to_string(head_dim) : "");
  const std::string dir = root + "/" + focus::dtype_name(dt) + std::to_string(cand) + std::to_string(cand_mlp) +
                          std::to_string(head_dim);
  ftest::CheckpointShape s;
  s.vocab = 300;
  s.hidden = 64;
  s.inter = 96;
  s.layers = 2;
  s.heads = 4;
  s.kv_heads = 2;
  s.head_dim = head_dim;
  try {
    ftest::write_random_checkpoint(dir, s, dt, cand, cand_mlp, 7);
    const auto file_size = std::filesystem::file_size(dir + "/model.safetensors");
    ftest::check(file_size > ftest::random_checkpoint_bytes(s, dt, cand, cand_mlp) &&
                     file_size < ftest::random_checkpoint_bytes(s, dt, cand, cand_mlp) + 65536,
                 name + ": file size matches the tensors");
    std::shared_ptr<focus::Backend> be = focus::make_cpu_backend(2);
    focus::Model m(dir, be);
    ftest::check(m.info().dtype == focus::dtype_name(dt), name + ": weights load as " + focus::dtype_name(dt),
                 "got " + m.info().dtype);
    std::string present;
    for (const auto& p : m.info().candidate_present) present += p;
    const std::string want = std::string(cand ? "qkvo" : "") + (cand_mlp ? "mlp" : "");
    ftest::check(present == want, name + ": candidate projections present", "got '" + present + "'");
    ftest::check(m.config().head_dim == (head_dim ? head_dim : 16), name + ": head_dim from config.json");

    // A FocusLLM ingest (3 chunks) and two steps.
    ftest::FocusParams p;
    p.local_window = 16;
    p.chunk_size = 16;
    p.prompt_cap = 8;
    p.min_chunked_length = 32;
    ftest::FocusDriver d(m, p, 4, DType::F32);
    ftest::Rng rng(3);
    std::vector<int32_t> ids{1};
    while (ids.size() < 60) ids.push_back(2 + rng.below(s.vocab - 2));
    std::vector<float> l0 = d.ingest(ids);
    std::vector<float> l1 = d.step(5);
    std::vector<float> l2 = d.step(9);
    ftest::check(d.focus_mode() && d.chunks() == 3, name + ": FocusLLM mode with 3 chunks");
    const bool sane = all_finite(l0) && all_finite(l1) && all_finite(l2) && spread(l0) > 1e-2 && spread(l0) < 1e3;
    ftest::check(sane, name + ": logits finite and spread", "spread " + std::to_string(spread(l0)));
    ftest::check(ftest::rel_err(l1.data(), l2.data(), l1.size()) > 1e-6, name + ": steps change the logits");
  } catch (const std::exception& e) {
    ftest::fail(name + ": " + e.what());
  }
}

}  // namespace

int main() {
  std::string tmpl_s = (std::filesystem::temp_directory_path() / "focusllm-randckpt-XXXXXX").string();
  std::vector<char> tmpl(tmpl_s.c_str(), tmpl_s.c_str() + tmpl_s.size() + 1);  // mkdtemp writes into it
  if (!mkdtemp(tmpl.data())) {
    ftest::fail("cannot create a temporary folder");
    return ftest::finish();
  }
  const std::string root = tmpl.data();
  run_case(root, DType::F32, true, false, 0);
  run_case(root, DType::F16, true, true, 0);
  run_case(root, DType::BF16, false, false, 0);
  run_case(root, DType::BF16, true, true, 32);  // q_dim 128 != hidden 64

  // Determinism: the same seed gives the same bytes; another seed does not.
  try {
    ftest::CheckpointShape s;
    s.layers = 1;
    ftest::write_random_checkpoint(root + "/a", s, DType::BF16, true, false, 11);
    ftest::write_random_checkpoint(root + "/b", s, DType::BF16, true, false, 11);
    ftest::write_random_checkpoint(root + "/c", s, DType::BF16, true, false, 12);
    const std::string a = slurp(root + "/a/model.safetensors");
    ftest::check(!a.empty() && a == slurp(root + "/b/model.safetensors"), "same seed, same file");
    ftest::check(a.size() == slurp(root + "/c/model.safetensors").size() && a != slurp(root + "/c/model.safetensors"),
                 "another seed, another file of the same size");
    ftest::check(ftest::ensure_random_checkpoint(root + "/d", s, DType::BF16, true, false, 11),
                 "ensure_random_checkpoint writes a new folder");
    const auto t0 = std::filesystem::last_write_time(root + "/d/model.safetensors");
    ftest::check(!ftest::ensure_random_checkpoint(root + "/d", s, DType::BF16, true, false, 11) &&
                     std::filesystem::last_write_time(root + "/d/model.safetensors") == t0,
                 "ensure_random_checkpoint reuses a matching folder");
    ftest::check(ftest::ensure_random_checkpoint(root + "/d", s, DType::BF16, true, false, 13),
                 "ensure_random_checkpoint rewrites for another seed");
    ftest::check(slurp(root + "/d/model.safetensors") != a, "the rewritten file follows the new seed");
  } catch (const std::exception& e) {
    ftest::fail(std::string("determinism: ") + e.what());
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return ftest::finish();
}
