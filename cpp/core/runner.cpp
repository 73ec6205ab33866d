// The forward pass: a batch of independent sequences, split into micro-batches
// of at most max_batch_tokens rows, each run through every layer as one
// sequence of backend ops.
//
// Row order inside a micro-batch: every ordinary token first (sequence by
// sequence, in token order), then the candidate tokens (one per sequence that
// has one). The candidate projections are then plain matmuls on the trailing
// row slice, and each op runs once per layer for the whole micro-batch,
// whatever the number of chunks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "error.h"
#include "model.h"
#include "workspace.h"

namespace focus {

struct Model::Piece {
  int seq;         // index in the batch
  int begin, end;  // range of the sequence's new tokens
  bool last;       // the sequence's last piece (holds its candidate and Last logits row)
};

static constexpr int kLogitChunk = 256;  // logits rows computed per matmul

// Address of element `elems` of a cache buffer of element size es.
static char* kv_at(void* base, int64_t elems, size_t es) { return static_cast<char*>(base) + elems * int64_t(es); }

static int64_t logit_rows_of(const SeqRun& s) {
  if (s.logits == LogitsMode::All) return int64_t(s.tokens.size()) - s.logits_from;
  return s.logits == LogitsMode::Last ? 1 : 0;
}

static size_t table_bytes_for(int rows, int prefix_rows) {
  // ids + positions (rows), prefix positions, KV destinations for rows and
  // candidates, up to two segments per row, logits row indices; 64-byte
  // alignment slack per table.
  return size_t(rows) * (4 + 4 + 2 * sizeof(KvDst) + 2 * sizeof(AttnSegment) + 4) + size_t(prefix_rows) * 4 +
         8 * 64;
}

void Model::ensure_workspace(int rows, int prefix_rows, int logit_rows) {
  if (ws_ && ws_->rows >= rows && ws_->prefix_rows >= prefix_rows && ws_->logit_rows >= logit_rows) return;
  if (ws_) {
    // Grow a dimension only when it is short, then geometrically, so that a
    // slowly growing local sequence rarely reallocates.
    auto grow = [](int need, int have) { return need <= have ? have : std::max(need, have + have / 2); };
    rows = grow(rows, ws_->rows);
    prefix_rows = grow(prefix_rows, ws_->prefix_rows);
    logit_rows = std::min(kLogitChunk, grow(logit_rows, ws_->logit_rows));
  }
  ws_.reset();
  ws_bytes_ = 0;
  be_->sync();
  auto ws = std::make_unique<Workspace>(*be_);
  const size_t es = dtype_size(be_->act_dtype());
  const size_t r = size_t(rows), dim = cfg_.hidden_size, qd = cfg_.q_dim(), kvd = cfg_.kv_dim();
  const size_t inter = cfg_.intermediate_size, hd = cfg_.head_dim;
  ws->rows = rows;
  ws->prefix_rows = prefix_rows;
  ws->logit_rows = logit_rows;
  ws->x = ws->take(r * dim * es, "activations");
  ws->h = ws->take(r * dim * es, "activations");
  ws->q = ws->take(r * qd * es, "activations (queries)");
  ws->k = ws->take(r * kvd * es, "activations (keys)");
  ws->v = ws->take(r * kvd * es, "activations (values)");
  ws->att = ws->take(r * qd * es, "activations (attention)");
  ws->gate = ws->take(r * inter * es, "activations (MLP)");
  ws->up = ws->take(r * inter * es, "activations (MLP)");
  ws->sk = ws->take(r * kvd * es, "scratch KV");
  ws->sv = ws->take(r * kvd * es, "scratch KV");
  ws->pk = ws->take(size_t(prefix_rows) * kvd * es, "candidate prefix keys");
  ws->lx = ws->take(size_t(logit_rows) * dim * es, "logits input");
  ws->rope = static_cast<float*>(ws->take(r * hd * 4, "rotary table"));
  ws->prope = static_cast<float*>(ws->take(size_t(prefix_rows) * hd * 4, "rotary table"));
  ws->logits = static_cast<float*>(ws->take(size_t(logit_rows) * cfg_.vocab_size * 4, "logits"));
  ws->tokens = static_cast<int32_t*>(ws->take(size_t(logit_rows) * 4, "sampled tokens"));
  ws->uniforms = static_cast<float*>(ws->take(size_t(logit_rows) * 4, "sampler inputs"));
  ws->table_bytes = table_bytes_for(rows, prefix_rows);
  ws->tables = ws->take(ws->table_bytes, "batch tables");
  ws_bytes_ = ws->total;
  ws_ = std::move(ws);
}

Model::~Model() {
  ws_.reset();
  for (Weight& w : owned_) be_->release_weight(w);
}

void Model::validate(const std::vector<SeqRun>& batch) const {
  FOCUS_CHECK(!batch.empty(), "a step needs at least one sequence");
  std::set<std::pair<const void*, int>> caches, cands;
  // A sequence may read as its prefix a candidate that an earlier sequence of
  // the batch writes, and then sees the new one: micro-batches run in batch
  // order, and within one, every layer stores the candidates' keys and values
  // before any attention reads them. (FocusLLM's incremental step runs the
  // chunks' new candidates and the local token in one pass over the weights.)
  // Written by a later sequence, it would see the old or the new one
  // depending on the micro-batch split: refused.
  std::map<std::pair<const void*, int>, size_t> writer;  // (set, slot) -> the sequence writing it
  for (size_t i = 0; i < batch.size(); ++i)
    if (batch[i].cand) writer.insert({{batch[i].cand, batch[i].cand_slot}, i});
  for (size_t i = 0; i < batch.size(); ++i) {
    const SeqRun& s = batch[i];
    const std::string where = str("sequence ", i, " of the batch: ");
    FOCUS_CHECK(!s.tokens.empty(), where, "no tokens to run");
    for (size_t j = 0; j < s.tokens.size(); ++j)
      FOCUS_CHECK(s.tokens[j] >= 0 && s.tokens[j] < cfg_.vocab_size, where, "token id ", s.tokens[j], " at index ",
                  j, " is out of range (vocabulary size ", cfg_.vocab_size, ")");
    const int n = int(s.tokens.size());
    if (s.pool) {
      FOCUS_CHECK(s.pool->backend() == be_.get(), where, "its KV cache pool belongs to another model");
      FOCUS_CHECK(s.slot >= 0 && s.slot < s.pool->n_slot(), where, "cache slot ", s.slot, " is out of range (pool of ",
                  s.pool->n_slot(), ")");
      const int len = s.pool->length[size_t(s.slot)];
      FOCUS_CHECK(int64_t(len) + n <= s.pool->capacity(), where, "the cache holds ", len, " tokens; ", n,
                  " more exceed its capacity of ", s.pool->capacity());
      FOCUS_CHECK(caches.insert({s.pool, s.slot}).second, where, "cache slot ", s.slot,
                  " is used by two sequences of one batch");
    }
    if (s.base) {
      FOCUS_CHECK(s.pool, where, "a base cache needs a pool to copy into");
      FOCUS_CHECK(s.base->backend() == be_.get(), where, "its base KV cache pool belongs to another model");
      FOCUS_CHECK(s.base->dtype() == s.pool->dtype(), where, "its base KV cache pool holds another dtype");
      FOCUS_CHECK(s.base_slot >= 0 && s.base_slot < s.base->n_slot(), where, "base slot ", s.base_slot,
                  " is out of range (pool of ", s.base->n_slot(), ")");
      const int have = s.base->length[size_t(s.base_slot)];
      FOCUS_CHECK(s.base_length >= 0 && s.base_length <= have, where, "base length ", s.base_length,
                  " must be from 0 to the ", have, " tokens its base slot holds");
      FOCUS_CHECK(s.pool->length[size_t(s.slot)] == 0, where, "a base cache is copied into an empty slot only");
      FOCUS_CHECK(int64_t(s.base_length) + n <= s.pool->capacity(), where, "the base's ", s.base_length,
                  " tokens and ", n, " more exceed the cache's capacity of ", s.pool->capacity());
    }
    if (s.prefix) {
      FOCUS_CHECK(s.prefix->backend() == be_.get(), where, "its prefix candidate set belongs to another model");
      FOCUS_CHECK(s.n_prefix >= 1 && s.n_prefix <= s.prefix->n_slot(), where, "prefix of ", s.n_prefix,
                  " candidates does not fit the candidate set of ", s.prefix->n_slot());
      for (int j = 0; j < s.n_prefix; ++j) {
        auto w = writer.find({s.prefix, j});
        FOCUS_CHECK(w == writer.end() || w->second < i, where, "reads candidate ", j,
                    " as a prefix, which sequence ", w == writer.end() ? 0 : w->second,
                    " writes: a sequence can only read candidates that earlier sequences of the batch write");
        FOCUS_CHECK(s.prefix->filled[size_t(j)] || w != writer.end(), where, "prefix candidate ", j,
                    " has not been computed yet");
      }
    } else {
      FOCUS_CHECK(s.n_prefix == 0, where, "n_prefix without a candidate set");
    }
    if (s.cand) {
      FOCUS_CHECK(s.cand->backend() == be_.get(), where, "its candidate set belongs to another model");
      FOCUS_CHECK(s.cand_slot >= 0 && s.cand_slot < s.cand->n_slot(), where, "candidate slot ", s.cand_slot,
                  " is out of range (set of ", s.cand->n_slot(), ")");
      FOCUS_CHECK(cands.insert({s.cand, s.cand_slot}).second, where, "candidate slot ", s.cand_slot,
                  " is written by two sequences of one batch");
    }
    FOCUS_CHECK(s.logits_from >= 0 && s.logits_from < n, where, "logits_from ", s.logits_from,
                " must be below the sequence's ", n, " tokens");
  }
  for (size_t i = 0; i < batch.size(); ++i)
    if (batch[i].base)
      FOCUS_CHECK(!caches.count({batch[i].base, batch[i].base_slot}), "sequence ", i,
                  " of the batch: its base cache slot is written by the same batch");
}

void Model::kv_read(const KvPool& pool, int slot, int length, void* dst) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  FOCUS_CHECK(pool.backend() == be_.get(), "kv_read: the KV cache pool belongs to another model");
  FOCUS_CHECK(slot >= 0 && slot < pool.n_slot(), "kv_read: slot ", slot, " is out of range (pool of ", pool.n_slot(), ")");
  FOCUS_CHECK(length >= 0 && length <= pool.length[size_t(slot)], "kv_read: length ", length, " must be from 0 to the ",
              pool.length[size_t(slot)], " tokens the slot holds");
  const size_t es = dtype_size(pool.dtype());
  const size_t block = size_t(length) * size_t(pool.kv_dim()) * es;  // one layer's rows of K or V
  char* out = static_cast<char*>(dst);
  for (int kv = 0; kv < 2; ++kv)
    for (int l = 0; l < pool.n_layer(); ++l, out += block)
      if (block) be_->download(out, kv_at(kv ? pool.v() : pool.k(), pool.offset(slot, l, 0), es), block);
}

void Model::kv_write(KvPool& pool, int slot, const void* src, int length) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  FOCUS_CHECK(pool.backend() == be_.get(), "kv_write: the KV cache pool belongs to another model");
  FOCUS_CHECK(slot >= 0 && slot < pool.n_slot(), "kv_write: slot ", slot, " is out of range (pool of ", pool.n_slot(), ")");
  FOCUS_CHECK(length >= 0 && length <= pool.capacity(), "kv_write: length ", length, " must be from 0 to the capacity ",
              pool.capacity());
  const size_t es = dtype_size(pool.dtype());
  const size_t block = size_t(length) * size_t(pool.kv_dim()) * es;
  const char* in = static_cast<const char*>(src);
  for (int kv = 0; kv < 2; ++kv)
    for (int l = 0; l < pool.n_layer(); ++l, in += block)
      if (block) be_->upload(kv_at(kv ? pool.v() : pool.k(), pool.offset(slot, l, 0), es), in, block);
  be_->sync();
  pool.length[size_t(slot)] = length;
}

std::vector<float> Model::run(const std::vector<SeqRun>& batch, RunControl* ctl) {
  std::vector<float> logits;
  Output out;
  out.logits = &logits;
  run_impl(batch, ctl, out);
  return logits;
}

std::vector<int32_t> Model::run_sample(const std::vector<SeqRun>& batch, const SampleParams& params,
                                       const std::vector<float>& uniforms, RunControl* ctl) {
  FOCUS_CHECK(params.temperature >= 0 && std::isfinite(params.temperature),
              "option temperature must be a finite number >= 0, got ", params.temperature);
  FOCUS_CHECK(params.top_k >= 0, "option topK must be >= 0, got ", params.top_k);
  FOCUS_CHECK(params.top_p > 0 && params.top_p <= 1, "option topP must be in (0, 1], got ", params.top_p);
  int64_t rows = 0;
  for (const SeqRun& s : batch) rows += logit_rows_of(s);
  FOCUS_CHECK(int64_t(uniforms.size()) == rows, "sampling needs one uniform number per requested row: ", rows,
              " rows, ", uniforms.size(), " numbers");
  for (float u : uniforms) FOCUS_CHECK(u >= 0 && u < 1, "sampler uniform numbers must be in [0, 1), got ", u);
  std::vector<int32_t> tokens;
  Output out;
  out.tokens = &tokens;
  out.params = &params;
  out.uniforms = &uniforms;
  run_impl(batch, ctl, out);
  return tokens;
}

void Model::run_impl(const std::vector<SeqRun>& batch, RunControl* ctl, Output& out) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  validate(batch);
  // A checkpoint truncated in place would raise SIGBUS on the first read of a
  // lost page, and one rewritten in place would give other logits: refuse to
  // run on it (an fstat per file, microseconds). A change during the run is
  // caught by the second check below, after the fact; a truncation during
  // the run can still kill the process, which only a copy of the weights
  // (memory, load time) would prevent: the rule is not to modify checkpoint
  // files in place while a model uses them.
  check_files();
  // Seeded caches: copy the base rows (one block per layer, K and V) first.
  for (const SeqRun& s : batch) {
    if (!s.base || s.base_length == 0) continue;
    const size_t es = dtype_size(s.pool->dtype());
    const size_t block = size_t(s.base_length) * size_t(s.pool->kv_dim()) * es;
    for (int l = 0; l < s.pool->n_layer(); ++l) {
      be_->copy(kv_at(s.pool->k(), s.pool->offset(s.slot, l, 0), es), kv_at(s.base->k(), s.base->offset(s.base_slot, l, 0), es), block);
      be_->copy(kv_at(s.pool->v(), s.pool->offset(s.slot, l, 0), es), kv_at(s.base->v(), s.base->offset(s.base_slot, l, 0), es), block);
    }
    s.pool->length[size_t(s.slot)] = s.base_length;
  }
  const int B = max_batch_tokens_;
  // Split: a sequence with a cache may be cut into pieces of at most B tokens
  // (each piece appends to the cache before the next runs); one without a
  // cache keeps its keys in scratch and runs whole. So does one with a
  // candidate prefix (FocusLLM's local sequence, at most the local window
  // plus the steps): with a cache or without, it then runs as the same
  // matmuls and attention, and gives the same numbers bit for bit.
  std::vector<Piece> pieces;
  int64_t total_tokens = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const int n = int(batch[i].tokens.size());
    total_tokens += n;
    if (!batch[i].pool || batch[i].prefix || n <= B) {
      pieces.push_back({int(i), 0, n, true});
      continue;
    }
    for (int b = 0; b < n; b += B) pieces.push_back({int(i), b, std::min(n, b + B), b + B >= n});
  }
  if (ctl) {
    ctl->tokens_total = total_tokens;
    ctl->tokens_done = 0;
  }
  int64_t out_rows = 0;
  for (const SeqRun& s : batch)
    out_rows += logit_rows_of(s);
  if (out.logits) out.logits->assign(size_t(out_rows) * size_t(cfg_.vocab_size), 0.0f);
  if (out.tokens) out.tokens->assign(size_t(out_rows), -1);

  // Pack pieces into micro-batches in order; pieces of one sequence land in
  // successive micro-batches.
  std::vector<Piece> mb;
  int mb_rows = 0;
  for (const Piece& p : pieces) {
    const int n = p.end - p.begin;
    bool same_seq = !mb.empty() && mb.back().seq == p.seq;
    if (!mb.empty() && (mb_rows + n > B || same_seq)) {
      run_micro_batch(batch, mb, out, ctl);
      mb.clear();
      mb_rows = 0;
    }
    mb.push_back(p);
    mb_rows += n;
  }
  if (!mb.empty()) run_micro_batch(batch, mb, out, ctl);
  check_files();  // changed while it ran: its results are not the model's
}

namespace {

// Bump allocator over the workspace's table buffer (host staging mirrors it).
struct TableLayout {
  size_t used = 0;
  template <class T>
  size_t put(size_t count) {
    size_t off = (used + 63) & ~size_t(63);
    used = off + count * sizeof(T);
    return off;
  }
};

inline char* at(void* base, int64_t elems, size_t es) { return static_cast<char*>(base) + elems * int64_t(es); }

}  // namespace

void Model::run_micro_batch(const std::vector<SeqRun>& batch, const std::vector<Piece>& pieces, Output& out,
                            RunControl* ctl) {
  const ModelConfig& c = cfg_;
  const int dim = c.hidden_size, kvd = c.kv_dim(), inter = c.intermediate_size;
  const DType act = be_->act_dtype();
  const size_t es = dtype_size(act);

  // ---- plan rows ----------------------------------------------------------
  int T = 0, C = 0;
  for (const Piece& p : pieces) {
    T += p.end - p.begin;
    if (p.last && batch[size_t(p.seq)].cand) ++C;
  }
  const int Tn = T - C;  // ordinary rows come first, candidates after

  // Distinct prefixes: (set, count) -> first row in the rotated-prefix scratch.
  std::map<std::pair<CandidateSet*, int>, int> prefix_off;
  int P = 0, Pmax = 0;
  for (const Piece& p : pieces) {
    const SeqRun& s = batch[size_t(p.seq)];
    if (!s.prefix) continue;
    auto key = std::make_pair(s.prefix, s.n_prefix);
    if (!prefix_off.count(key)) {
      prefix_off[key] = P;
      P += s.n_prefix;
      Pmax = std::max(Pmax, s.n_prefix);
    }
  }
  int n_logit_rows = 0;  // rows of this micro-batch whose logits are wanted
  for (const Piece& p : pieces) {
    const SeqRun& s = batch[size_t(p.seq)];
    if (s.logits == LogitsMode::All) n_logit_rows += std::max(0, p.end - std::max(p.begin, s.logits_from));
    else if (s.logits == LogitsMode::Last && p.last) n_logit_rows += 1;
  }
  ensure_workspace(T, P, std::max(1, std::min(n_logit_rows, kLogitChunk)));
  Workspace& W = *ws_;

  std::vector<int32_t> ids(static_cast<size_t>(T)), pos(static_cast<size_t>(T)), ppos(static_cast<size_t>(Pmax));
  std::vector<KvDst> kvdst(static_cast<size_t>(T)), canddst(static_cast<size_t>(std::max(C, 1)));
  std::vector<AttnSegment> segs;
  segs.reserve(pieces.size() * 2);
  std::vector<std::pair<int32_t, int64_t>> logit_rows;  // (activation row, output row)

  // Output row of each sequence's first logits row.
  std::vector<int64_t> out_base(batch.size());
  {
    int64_t r = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      out_base[i] = r;
      const SeqRun& s = batch[i];
      r += logit_rows_of(s);
    }
  }
  for (int j = 0; j < Pmax; ++j) ppos[size_t(j)] = j;

  int row = 0, cand_row = Tn, scratch_row = 0;
  for (const Piece& p : pieces) {
    const SeqRun& s = batch[size_t(p.seq)];
    const int n = p.end - p.begin;
    const bool has_cand = p.last && s.cand;
    const int n_norm = n - (has_cand ? 1 : 0);
    const int base = s.pool ? s.pool->length[size_t(s.slot)] : 0;  // main index of the piece's first token
    // Main keys: the cache slot, or this piece's rows of the scratch KV.
    const void *kmain, *vmain;
    int64_t main_stride;
    int32_t main_dtype;
    if (s.pool) {
      const int64_t off = s.pool->offset(s.slot, 0, 0);
      const size_t pes = dtype_size(s.pool->dtype());
      kmain = at(s.pool->k(), off, pes);
      vmain = at(s.pool->v(), off, pes);
      main_stride = int64_t(s.pool->capacity()) * kvd;
      main_dtype = int32_t(s.pool->dtype());
    } else {
      kmain = at(W.sk, int64_t(scratch_row) * kvd, es);
      vmain = at(W.sv, int64_t(scratch_row) * kvd, es);
      main_stride = 0;
      main_dtype = int32_t(act);
      scratch_row += n;
    }
    auto place = [&](int r, int j) {  // token j of the sequence goes to activation row r
      const int mi = base + (j - p.begin);
      ids[size_t(r)] = s.tokens[size_t(j)];
      pos[size_t(r)] = s.n_prefix + mi;
      const size_t des = dtype_size(DType(main_dtype));
      kvdst[size_t(r)] = KvDst{const_cast<char*>(static_cast<const char*>(kmain)) + int64_t(mi) * kvd * int64_t(des),
                               const_cast<char*>(static_cast<const char*>(vmain)) + int64_t(mi) * kvd * int64_t(des),
                               main_stride, main_dtype, 0};
      if (s.logits == LogitsMode::All && j >= s.logits_from)
        logit_rows.push_back({r, out_base[size_t(p.seq)] + j - s.logits_from});
      else if (s.logits == LogitsMode::Last && p.last && j == int(s.tokens.size()) - 1)
        logit_rows.push_back({r, out_base[size_t(p.seq)]});
    };
    AttnSegment seg{};
    seg.k_main = kmain;
    seg.v_main = vmain;
    seg.main_layer_stride = main_stride;
    seg.main_dtype = main_dtype;
    if (s.prefix) {
      const int poff = prefix_off.at({s.prefix, s.n_prefix});
      seg.n_prefix = s.n_prefix;
      seg.k_prefix = at(W.pk, int64_t(poff) * kvd, es);
      seg.prefix_k_layer_stride = 0;  // rotated anew for each layer
      seg.v_prefix = at(s.prefix->v(), s.prefix->offset(0, 0), es);
      seg.prefix_v_layer_stride = int64_t(s.prefix->n_slot()) * kvd;
      seg.prefix_dtype = int32_t(act);
    }
    if (n_norm > 0) {
      AttnSegment g = seg;
      g.q_row = row;
      g.n_q = n_norm;
      g.q_index = base;
      segs.push_back(g);
      for (int j = p.begin; j < p.begin + n_norm; ++j) place(row++, j);
    }
    if (has_cand) {
      const int r = cand_row++;
      place(r, p.end - 1);
      canddst[size_t(r - Tn)] = KvDst{at(s.cand->k(), s.cand->offset(0, s.cand_slot), es),
                                      at(s.cand->v(), s.cand->offset(0, s.cand_slot), es),
                                      int64_t(s.cand->n_slot()) * kvd, int32_t(act), 0};
      AttnSegment g = seg;
      g.q_row = r;
      g.n_q = 1;
      g.q_index = base + n - 1;
      segs.push_back(g);
    }
  }

  // ---- upload the tables ----------------------------------------------------
  TableLayout lay;
  const size_t o_ids = lay.put<int32_t>(size_t(T)), o_pos = lay.put<int32_t>(size_t(T));
  const size_t o_ppos = lay.put<int32_t>(size_t(Pmax)), o_kv = lay.put<KvDst>(size_t(T));
  const size_t o_cand = lay.put<KvDst>(size_t(std::max(C, 1))), o_seg = lay.put<AttnSegment>(segs.size());
  const size_t o_lrows = lay.put<int32_t>(logit_rows.size());
  FOCUS_CHECK(lay.used <= W.table_bytes, "internal: batch tables overflow");
  std::vector<char> host(lay.used);
  std::vector<int32_t> lrows(logit_rows.size());
  for (size_t i = 0; i < logit_rows.size(); ++i) lrows[i] = logit_rows[i].first;
  auto stage = [&](size_t off, const void* src, size_t bytes) {
    if (bytes) std::memcpy(host.data() + off, src, bytes);
  };
  stage(o_ids, ids.data(), ids.size() * 4);
  stage(o_pos, pos.data(), pos.size() * 4);
  stage(o_ppos, ppos.data(), ppos.size() * 4);
  stage(o_kv, kvdst.data(), kvdst.size() * sizeof(KvDst));
  stage(o_cand, canddst.data(), canddst.size() * sizeof(KvDst));
  stage(o_seg, segs.data(), segs.size() * sizeof(AttnSegment));
  stage(o_lrows, lrows.data(), lrows.size() * 4);
  be_->upload(W.tables, host.data(), host.size());
  auto table = [&](size_t off) { return static_cast<char*>(W.tables) + off; };
  const int32_t* d_ids = reinterpret_cast<const int32_t*>(table(o_ids));
  const int32_t* d_pos = reinterpret_cast<const int32_t*>(table(o_pos));
  const int32_t* d_ppos = reinterpret_cast<const int32_t*>(table(o_ppos));
  const KvDst* d_kv = reinterpret_cast<const KvDst*>(table(o_kv));
  const KvDst* d_cand = reinterpret_cast<const KvDst*>(table(o_cand));
  const int32_t* d_lrows = reinterpret_cast<const int32_t*>(table(o_lrows));

  AttnArgs aa;
  aa.segs = reinterpret_cast<const AttnSegment*>(table(o_seg));
  aa.segs_host = segs.data();
  aa.n_seg = int(segs.size());
  aa.n_rows = T;
  aa.n_heads = c.n_heads;
  aa.n_kv_heads = c.n_kv_heads;
  aa.head_dim = c.head_dim;
  aa.scale = float(1.0 / std::sqrt(double(c.head_dim)));

  // ---- the forward ------------------------------------------------------------
  // Row slices: [0, Tn) ordinary tokens (base weights), [Tn, T) candidates.
  auto split_matmul = [&](void* out, const void* x, const Weight& wb, const Weight& bb, const Weight& wc,
                          const Weight& bc, Epilogue e) { be_->matmul_split(out, x, T, Tn, wb, &bb, wc, &bc, e); };
  be_->embedding(W.x, w_.embed, d_ids, T);
  be_->rope_table(W.rope, d_pos, T);
  if (Pmax > 0) be_->rope_table(W.prope, d_ppos, Pmax);
  for (int l = 0; l < c.n_layers; ++l) {
    if (ctl && ctl->cancel.load()) throw Cancelled();
    const LayerWeights& L = w_.layers[size_t(l)];
    // attention block
    be_->rms_norm(W.h, W.x, L.attn_norm, T, c.rms_norm_eps);
    split_matmul(W.q, W.h, L.wq, L.bq, L.cq, L.cbq, Epilogue::Store);
    split_matmul(W.k, W.h, L.wk, L.bk, L.ck, L.cbk, Epilogue::Store);
    split_matmul(W.v, W.h, L.wv, L.bv, L.cv, L.cbv, Epilogue::Store);
    // Candidates keep their key before rotary: it is rotated again at its
    // position in front of the local sequence.
    if (C > 0) be_->kv_store(at(W.k, int64_t(Tn) * kvd, es), at(W.v, int64_t(Tn) * kvd, es), d_cand, C, kvd, l);
    be_->rope(W.q, T, c.n_heads, W.rope);
    be_->rope(W.k, T, c.n_kv_heads, W.rope);
    be_->kv_store(W.k, W.v, d_kv, T, kvd, l);
    for (const auto& [key, off] : prefix_off) {
      CandidateSet* set = key.first;
      const int n = key.second;
      void* dst = at(W.pk, int64_t(off) * kvd, es);
      be_->copy(dst, at(set->k(), set->offset(l, 0), es), size_t(n) * kvd * es);
      be_->rope(dst, n, c.n_kv_heads, W.prope);
    }
    aa.layer = l;
    be_->attention(W.att, W.q, aa);
    split_matmul(W.x, W.att, L.wo, L.bo, L.co, L.cbo, Epilogue::Add);
    // MLP block; the gate projection has no candidate variant
    be_->rms_norm(W.h, W.x, L.ffn_norm, T, c.rms_norm_eps);
    be_->matmul(W.gate, W.h, T, L.w_gate, nullptr, Epilogue::Store);
    split_matmul(W.up, W.h, L.w_up, Weight{}, L.c_up, Weight{}, Epilogue::Store);
    be_->swiglu(W.gate, W.gate, W.up, int64_t(T) * inter);
    split_matmul(W.x, W.gate, L.w_down, Weight{}, L.c_down, Weight{}, Epilogue::Add);
  }

  // ---- logits (or sampled tokens) ---------------------------------------------
  const int V = c.vocab_size;
  const size_t nl = logit_rows.size();
  std::vector<float> chunk(out.logits && nl ? std::min<size_t>(nl, kLogitChunk) * size_t(V) : 0);
  std::vector<int32_t> toks(out.tokens ? std::min<size_t>(nl, kLogitChunk) : 0);
  std::vector<float> us(toks.size());
  for (size_t b = 0; b < nl; b += kLogitChunk) {
    const int n = int(std::min(nl - b, size_t(kLogitChunk)));
    be_->gather_rows(W.lx, W.x, d_lrows + b, n, dim);
    be_->rms_norm(W.lx, W.lx, w_.norm, n, c.rms_norm_eps);
    be_->matmul(W.logits, W.lx, n, w_.lm_head, nullptr, Epilogue::StoreF32);
    if (out.logits) {
      be_->download(chunk.data(), W.logits, size_t(n) * V * 4);
      for (int i = 0; i < n; ++i)
        std::memcpy(out.logits->data() + logit_rows[b + size_t(i)].second * V, chunk.data() + size_t(i) * V,
                    size_t(V) * 4);
    } else {
      for (int i = 0; i < n; ++i) us[size_t(i)] = (*out.uniforms)[size_t(logit_rows[b + size_t(i)].second)];
      be_->upload(W.uniforms, us.data(), size_t(n) * 4);
      be_->sample(W.tokens, W.logits, n, V, *out.params, W.uniforms);
      be_->download(toks.data(), W.tokens, size_t(n) * 4);
      for (int i = 0; i < n; ++i) (*out.tokens)[size_t(logit_rows[b + size_t(i)].second)] = toks[size_t(i)];
    }
  }
  be_->sync();

  // ---- commit -----------------------------------------------------------------
  for (const Piece& p : pieces) {
    const SeqRun& s = batch[size_t(p.seq)];
    const int n = p.end - p.begin;
    if (s.pool) s.pool->length[size_t(s.slot)] += n - (p.last && s.cand ? 1 : 0);
    if (p.last && s.cand) s.cand->filled[size_t(s.cand_slot)] = 1;
  }
  if (ctl) ctl->tokens_done += T;
}

}  // namespace focus
