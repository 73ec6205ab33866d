#include "common/focus_driver.h"

#include <algorithm>

#include "common/testing.h"
#include "core/error.h"
#include "core/json.h"

namespace ftest {

using focus::SeqRun;

FocusDriver::FocusDriver(focus::Model& m, std::optional<FocusParams> params, int max_steps, focus::DType cache_dtype,
                         bool keep_chunk_caches)
    : m_(m), params_(params), max_steps_(max_steps), cache_dtype_(cache_dtype), keep_(keep_chunk_caches) {}

std::vector<float> FocusDriver::ingest(const std::vector<int32_t>& x) {
  FocusPlan plan = plan_ingest(x, params_, m_.config().bos_token_id);
  pool_.reset();
  cands_.reset();
  if (plan.native) {
    focus_ = false;
    local_ = std::move(plan.local);
    pool_ = std::make_unique<focus::KvPool>(m_.backend_ptr(), m_.config(), 1, int(local_.size()) + max_steps_,
                                            m_.backend().act_dtype());
    SeqRun s;
    s.tokens = local_;
    s.pool = pool_.get();
    s.slot = 0;
    s.logits = focus::LogitsMode::Last;
    return m_.run({s});
  }
  focus_ = true;
  k_ = int(plan.chunks.size());
  cands_ = std::make_unique<focus::CandidateSet>(m_.backend_ptr(), m_.config(), k_);
  // Chunk 0 is the longest (only the last may be short).
  const int longest = int(plan.chunks[0].size() + plan.prompt.size());
  if (keep_)
    pool_ = std::make_unique<focus::KvPool>(m_.backend_ptr(), m_.config(), k_, longest + max_steps_, cache_dtype_);
  std::vector<SeqRun> chunks(static_cast<size_t>(k_));
  for (int i = 0; i < k_; ++i) {
    SeqRun& s = chunks[size_t(i)];
    s.tokens = std::move(plan.chunks[size_t(i)]);
    s.tokens.insert(s.tokens.end(), plan.prompt.begin(), plan.prompt.end());
    if (pool_) {
      s.pool = pool_.get();
      s.slot = i;
    }
    s.cand = cands_.get();
    s.cand_slot = i;
  }
  m_.run(chunks);
  local_ = std::move(plan.local);
  last_ = x.back();
  return run_local();
}

std::vector<float> FocusDriver::step(int32_t id) {
  if (!focus_) {
    SeqRun s;
    s.tokens = {id};
    s.pool = pool_.get();
    s.slot = 0;
    s.logits = focus::LogitsMode::Last;
    local_.push_back(id);
    return m_.run({s});
  }
  FOCUS_CHECK(pool_, "step() needs the chunk caches (keep_chunk_caches)");
  std::vector<SeqRun> chunks(static_cast<size_t>(k_));
  for (int i = 0; i < k_; ++i) {
    SeqRun& s = chunks[size_t(i)];
    s.tokens = {last_, id};
    s.pool = pool_.get();
    s.slot = i;
    s.cand = cands_.get();
    s.cand_slot = i;
  }
  m_.run(chunks);
  local_.push_back(id);
  last_ = id;
  return run_local();
}

std::vector<float> FocusDriver::run_local() {
  SeqRun s;
  s.tokens = local_;
  s.prefix = cands_.get();
  s.n_prefix = k_;
  s.logits = focus::LogitsMode::Last;
  return m_.run({s});
}

static std::vector<int32_t> int_list(const focus::Json* j, const std::string& where) {
  FOCUS_CHECK(j && j->is_array(), where, ": expected an array");
  std::vector<int32_t> out;
  for (const auto& v : j->items()) {
    int64_t x;
    FOCUS_CHECK(v.as_int64(&x), where, ": expected integers");
    out.push_back(int32_t(x));
  }
  return out;
}

std::vector<FixtureCase> load_fixture_cases() {
  const std::string dir = source_path("test/fixtures");
  focus::Json list = focus::Json::parse(focus::read_text_file(dir + "/cases.json"), dir + "/cases.json");
  std::vector<FixtureCase> out;
  for (const auto& name : list.items()) {
    FixtureCase c;
    c.file = dir + "/" + name.as_string();
    focus::Json j = focus::Json::parse(focus::read_text_file(c.file), c.file);
    c.model = dir + "/" + j.get("model")->as_string();
    c.ids = int_list(j.get("ids"), c.file);
    c.continuation = int_list(j.get("continuation"), c.file);
    for (int g : int_list(j.get("greedy"), c.file)) c.greedy.push_back(g);
    for (const auto& row : j.get("logits")->items()) {
      std::vector<float> r;
      for (const auto& v : row.items()) r.push_back(float(v.as_number()));
      c.logits.push_back(std::move(r));
    }
    const focus::Json* o = j.get("options");
    if (o && o->is_object()) {
      FocusParams p;
      p.local_window = int(o->get("local_window")->as_number());
      p.chunk_size = int(o->get("chunk_size")->as_number());
      p.prompt_cap = int(o->get("prompt_cap")->as_number());
      p.min_chunked_length = int(o->get("min_chunked_length")->as_number());
      c.options = p;
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace ftest
