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
#include <chrono>
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

// Address of element `elems` of a buffer (a cache, a candidate set, scratch)
// of element size es.
static char* at(void* base, int64_t elems, size_t es) { return static_cast<char*>(base) + elems * int64_t(es); }

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
      if (block) be_->download(out, at(kv ? pool.v() : pool.k(), pool.offset(slot, l, 0), es), block);
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
      if (block) be_->upload(at(kv ? pool.v() : pool.k(), pool.offset(slot, l, 0), es), in, block);
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
  const auto t0 = std::chrono::steady_clock::now();
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
      be_->copy(at(s.pool->k(), s.pool->offset(s.slot, l, 0), es), at(s.base->k(), s.base->offset(s.base_slot, l, 0), es), block);
      be_->copy(at(s.pool->v(), s.pool->offset(s.slot, l, 0), es), at(s.base->v(), s.base->offset(s.base_slot, l, 0), es), block);
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
  last_run_ms_.store(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
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

// Rows [0, Tn) through the base projection (wb, bb), rows [Tn, T), the
// candidate tokens, through the candidate one (wc, bc).
void split_matmul(Backend& be, void* out, const void* x, int T, int Tn, const Weight& wb, const Weight& bb,
                  const Weight& wc, const Weight& bc, Epilogue e) {
  be.matmul_split(out, x, T, Tn, wb, &bb, wc, &bc, e);
}

}  // namespace

// A micro-batch laid out as activation rows, and the host side of the tables
// its ops read. Rows [0, Tn) are the ordinary tokens, [Tn, T) the candidates.
struct Model::MicroBatch {
  int T = 0, Tn = 0, C = 0;  // rows, ordinary rows, candidate rows
  int Pmax = 0;              // longest candidate prefix: rows of the prefix rotary table
  // Distinct prefixes: (set, count) -> first row in the rotated-prefix scratch.
  std::map<std::pair<CandidateSet*, int>, int> prefix_off;
  std::vector<int32_t> ids, pos;  // (T) token ids, rotary positions
  std::vector<int32_t> ppos;      // (Pmax) prefix rotary positions 0, 1, ...
  std::vector<KvDst> kvdst;       // (T) where each row's rotated key and its value go
  std::vector<KvDst> canddst;     // (max(C, 1)) where candidate row Tn + i's unrotated key and value go
  std::vector<AttnSegment> segs;  // query row ranges, each with the keys it sees
  std::vector<std::pair<int32_t, int64_t>> logit_rows;  // (activation row, output row)
};

// Those tables in the workspace's table buffer, and the host buffer they were
// uploaded from: an upload may still read it until the micro-batch's sync.
struct Model::BatchTables {
  std::vector<char> host;
  const int32_t *ids, *pos, *ppos;  // (T) (T) (Pmax)
  const KvDst *kv, *cand;           // (T) (max(C, 1))
  const int32_t* lrows;             // (logit rows) activation row of each requested row
  AttnArgs attn;                    // the segments and head geometry; the layer is set per layer
};

// One micro-batch through the model: lay out its rows and tables, embed, run
// every layer on all rows at once, produce the requested logits or tokens,
// then count the rows the caches and candidate sets now hold.
void Model::run_micro_batch(const std::vector<SeqRun>& batch, const std::vector<Piece>& pieces, Output& out,
                            RunControl* ctl) {
  MicroBatch mb = micro_batch_rows(batch, pieces);
  micro_batch_tables(batch, pieces, mb);
  const BatchTables d = micro_batch_upload(mb);
  Workspace& W = *ws_;

  be_->embedding(W.x, w_.embed, d.ids, mb.T);
  be_->rope_table(W.rope, d.pos, mb.T);
  if (mb.Pmax > 0) be_->rope_table(W.prope, d.ppos, mb.Pmax);
  for (int l = 0; l < cfg_.n_layers; ++l) {
    if (ctl && ctl->cancel.load()) throw Cancelled();
    attention_block(l, mb, d);  // x += attention(rms_norm(x)); stores the layer's KVs
    mlp_block(l, mb);           // x += mlp(rms_norm(x))
  }
  micro_batch_outputs(mb, d, out);
  be_->sync();

  // Commit: the caches hold the pieces' ordinary tokens, the candidate slots
  // their candidates.
  for (const Piece& p : pieces) {
    const SeqRun& s = batch[size_t(p.seq)];
    const int n = p.end - p.begin;
    if (s.pool) s.pool->length[size_t(s.slot)] += n - (p.last && s.cand ? 1 : 0);
    if (p.last && s.cand) s.cand->filled[size_t(s.cand_slot)] = 1;
  }
  if (ctl) ctl->tokens_done += mb.T;
}

// Counts the micro-batch's rows (ordinary, then candidates), its distinct
// candidate prefixes (each is rotated once per layer, whatever the number of
// sequences reading it) and its logits rows, and sizes the workspace for them.
Model::MicroBatch Model::micro_batch_rows(const std::vector<SeqRun>& batch, const std::vector<Piece>& pieces) {
  MicroBatch mb;
  for (const Piece& p : pieces) {
    mb.T += p.end - p.begin;
    if (p.last && batch[size_t(p.seq)].cand) ++mb.C;
  }
  mb.Tn = mb.T - mb.C;  // ordinary rows come first, candidates after

  int P = 0;  // rows of the rotated-prefix scratch
  for (const Piece& p : pieces) {
    const SeqRun& s = batch[size_t(p.seq)];
    if (!s.prefix) continue;
    auto key = std::make_pair(s.prefix, s.n_prefix);
    if (!mb.prefix_off.count(key)) {
      mb.prefix_off[key] = P;
      P += s.n_prefix;
      mb.Pmax = std::max(mb.Pmax, s.n_prefix);
    }
  }
  int n_logit_rows = 0;  // rows of this micro-batch whose logits are wanted
  for (const Piece& p : pieces) {
    const SeqRun& s = batch[size_t(p.seq)];
    if (s.logits == LogitsMode::All) n_logit_rows += std::max(0, p.end - std::max(p.begin, s.logits_from));
    else if (s.logits == LogitsMode::Last && p.last) n_logit_rows += 1;
  }
  ensure_workspace(mb.T, P, std::max(1, std::min(n_logit_rows, kLogitChunk)));
  return mb;
}

// Fills the host tables. A piece's ordinary tokens take the next rows from 0,
// its candidate (on its sequence's last piece) the next row from Tn. Each row
// gets its token, its rotary position (after the candidate prefix), where its
// key and value go and, when wanted, the output row of its logits; the piece
// adds one attention segment for its ordinary rows and one for its candidate,
// which sees the same keys.
void Model::micro_batch_tables(const std::vector<SeqRun>& batch, const std::vector<Piece>& pieces,
                               MicroBatch& mb) {
  const int kvd = cfg_.kv_dim();
  const DType act = be_->act_dtype();
  const size_t es = dtype_size(act);
  mb.ids.assign(size_t(mb.T), 0);
  mb.pos.assign(size_t(mb.T), 0);
  mb.ppos.assign(size_t(mb.Pmax), 0);
  mb.kvdst.assign(size_t(mb.T), KvDst{});
  mb.canddst.assign(size_t(std::max(mb.C, 1)), KvDst{});
  mb.segs.reserve(pieces.size() * 2);

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
  for (int j = 0; j < mb.Pmax; ++j) mb.ppos[size_t(j)] = j;

  int row = 0, cand_row = mb.Tn, scratch_row = 0;
  for (const Piece& p : pieces) {
    const SeqRun& s = batch[size_t(p.seq)];
    const int n = p.end - p.begin;
    const bool has_cand = p.last && s.cand;
    const int n_norm = n - (has_cand ? 1 : 0);
    const int base = s.pool ? s.pool->length[size_t(s.slot)] : 0;  // main index of the piece's first token
    const AttnSegment seg = piece_keys(s, n, mb, scratch_row);
    auto place = [&](int r, int j) {  // token j of the sequence goes to activation row r
      const int mi = base + (j - p.begin);
      mb.ids[size_t(r)] = s.tokens[size_t(j)];
      mb.pos[size_t(r)] = s.n_prefix + mi;
      const size_t des = dtype_size(DType(seg.main_dtype));
      mb.kvdst[size_t(r)] =
          KvDst{const_cast<char*>(static_cast<const char*>(seg.k_main)) + int64_t(mi) * kvd * int64_t(des),
                const_cast<char*>(static_cast<const char*>(seg.v_main)) + int64_t(mi) * kvd * int64_t(des),
                seg.main_layer_stride, seg.main_dtype, 0};
      if (s.logits == LogitsMode::All && j >= s.logits_from)
        mb.logit_rows.push_back({r, out_base[size_t(p.seq)] + j - s.logits_from});
      else if (s.logits == LogitsMode::Last && p.last && j == int(s.tokens.size()) - 1)
        mb.logit_rows.push_back({r, out_base[size_t(p.seq)]});
    };
    if (n_norm > 0) {
      AttnSegment g = seg;
      g.q_row = row;
      g.n_q = n_norm;
      g.q_index = base;
      mb.segs.push_back(g);
      for (int j = p.begin; j < p.begin + n_norm; ++j) place(row++, j);
    }
    if (has_cand) {
      const int r = cand_row++;
      place(r, p.end - 1);
      mb.canddst[size_t(r - mb.Tn)] = KvDst{at(s.cand->k(), s.cand->offset(0, s.cand_slot), es),
                                            at(s.cand->v(), s.cand->offset(0, s.cand_slot), es),
                                            int64_t(s.cand->n_slot()) * kvd, int32_t(act), 0};
      AttnSegment g = seg;
      g.q_row = r;
      g.n_q = 1;
      g.q_index = base + n - 1;
      mb.segs.push_back(g);
    }
  }
}

// The keys a piece's rows attend to, as a segment without its query rows.
// Main keys: the sequence's cache slot, or, without a cache, the piece's rows
// of the scratch KV (from scratch_row on, which moves past them). Prefix: the
// candidate keys in the prefix scratch, rotated anew for each layer, and the
// values where the candidate set holds them.
AttnSegment Model::piece_keys(const SeqRun& s, int n, const MicroBatch& mb, int& scratch_row) {
  const int kvd = cfg_.kv_dim();
  const DType act = be_->act_dtype();
  const size_t es = dtype_size(act);
  Workspace& W = *ws_;
  AttnSegment seg{};
  if (s.pool) {
    const int64_t off = s.pool->offset(s.slot, 0, 0);
    const size_t pes = dtype_size(s.pool->dtype());
    seg.k_main = at(s.pool->k(), off, pes);
    seg.v_main = at(s.pool->v(), off, pes);
    seg.main_layer_stride = int64_t(s.pool->capacity()) * kvd;
    seg.main_dtype = int32_t(s.pool->dtype());
  } else {
    seg.k_main = at(W.sk, int64_t(scratch_row) * kvd, es);
    seg.v_main = at(W.sv, int64_t(scratch_row) * kvd, es);
    seg.main_layer_stride = 0;
    seg.main_dtype = int32_t(act);
    scratch_row += n;
  }
  if (s.prefix) {
    const int poff = mb.prefix_off.at({s.prefix, s.n_prefix});
    seg.n_prefix = s.n_prefix;
    seg.k_prefix = at(W.pk, int64_t(poff) * kvd, es);
    seg.prefix_k_layer_stride = 0;  // rotated anew for each layer
    seg.v_prefix = at(s.prefix->v(), s.prefix->offset(0, 0), es);
    seg.prefix_v_layer_stride = int64_t(s.prefix->n_slot()) * kvd;
    seg.prefix_dtype = int32_t(act);
  }
  return seg;
}

// Stages the host tables in one buffer, laid out as in the workspace's table
// buffer (each table 64-byte aligned), and uploads it in one copy.
Model::BatchTables Model::micro_batch_upload(const MicroBatch& mb) {
  const ModelConfig& c = cfg_;
  Workspace& W = *ws_;
  TableLayout lay;
  const size_t o_ids = lay.put<int32_t>(size_t(mb.T)), o_pos = lay.put<int32_t>(size_t(mb.T));
  const size_t o_ppos = lay.put<int32_t>(size_t(mb.Pmax)), o_kv = lay.put<KvDst>(size_t(mb.T));
  const size_t o_cand = lay.put<KvDst>(size_t(std::max(mb.C, 1))), o_seg = lay.put<AttnSegment>(mb.segs.size());
  const size_t o_lrows = lay.put<int32_t>(mb.logit_rows.size());
  FOCUS_CHECK(lay.used <= W.table_bytes, "internal: batch tables overflow");
  BatchTables d;
  d.host.assign(lay.used, 0);
  std::vector<int32_t> lrows(mb.logit_rows.size());
  for (size_t i = 0; i < mb.logit_rows.size(); ++i) lrows[i] = mb.logit_rows[i].first;
  auto stage = [&](size_t off, const void* src, size_t bytes) {
    if (bytes) std::memcpy(d.host.data() + off, src, bytes);
  };
  stage(o_ids, mb.ids.data(), mb.ids.size() * 4);
  stage(o_pos, mb.pos.data(), mb.pos.size() * 4);
  stage(o_ppos, mb.ppos.data(), mb.ppos.size() * 4);
  stage(o_kv, mb.kvdst.data(), mb.kvdst.size() * sizeof(KvDst));
  stage(o_cand, mb.canddst.data(), mb.canddst.size() * sizeof(KvDst));
  stage(o_seg, mb.segs.data(), mb.segs.size() * sizeof(AttnSegment));
  stage(o_lrows, lrows.data(), lrows.size() * 4);
  be_->upload(W.tables, d.host.data(), d.host.size());
  auto table = [&](size_t off) { return static_cast<char*>(W.tables) + off; };
  d.ids = reinterpret_cast<const int32_t*>(table(o_ids));
  d.pos = reinterpret_cast<const int32_t*>(table(o_pos));
  d.ppos = reinterpret_cast<const int32_t*>(table(o_ppos));
  d.kv = reinterpret_cast<const KvDst*>(table(o_kv));
  d.cand = reinterpret_cast<const KvDst*>(table(o_cand));
  d.lrows = reinterpret_cast<const int32_t*>(table(o_lrows));

  d.attn.segs = reinterpret_cast<const AttnSegment*>(table(o_seg));
  d.attn.segs_host = mb.segs.data();
  d.attn.n_seg = int(mb.segs.size());
  d.attn.n_rows = mb.T;
  d.attn.n_heads = c.n_heads;
  d.attn.n_kv_heads = c.n_kv_heads;
  d.attn.head_dim = c.head_dim;
  d.attn.scale = float(1.0 / std::sqrt(double(c.head_dim)));
  return d;
}

// Layer l's attention on every row, added to the residual stream x. The
// candidate rows go through the candidate projections, and their key (before
// rotary) and value are kept in their candidate slot too. Every row's rotated
// key and value are stored (cache or scratch KV) before attention reads them,
// so a piece's rows see each other and the candidates of this micro-batch.
void Model::attention_block(int l, const MicroBatch& mb, const BatchTables& d) {
  const ModelConfig& c = cfg_;
  const LayerWeights& L = w_.layers[size_t(l)];
  Workspace& W = *ws_;
  const int T = mb.T, Tn = mb.Tn, kvd = c.kv_dim();
  const size_t es = dtype_size(be_->act_dtype());
  be_->rms_norm(W.h, W.x, L.attn_norm, T, c.rms_norm_eps);
  const Backend::SplitJob qkv[3] = {{W.q, &L.wq, &L.bq, &L.cq, &L.cbq},
                                    {W.k, &L.wk, &L.bk, &L.ck, &L.cbk},
                                    {W.v, &L.wv, &L.bv, &L.cv, &L.cbv}};
  be_->matmul_split_group(W.h, T, Tn, qkv, 3, Epilogue::Store);
  // Candidates keep their key before rotary: it is rotated again at its
  // position in front of the local sequence.
  if (mb.C > 0) be_->kv_store(at(W.k, int64_t(Tn) * kvd, es), at(W.v, int64_t(Tn) * kvd, es), d.cand, mb.C, kvd, l);
  be_->rope(W.q, T, c.n_heads, W.rope);
  be_->rope(W.k, T, c.n_kv_heads, W.rope);
  be_->kv_store(W.k, W.v, d.kv, T, kvd, l);
  // Each distinct prefix's keys of this layer, rotated at positions 0, 1, ...
  for (const auto& [key, off] : mb.prefix_off) {
    CandidateSet* set = key.first;
    const int n = key.second;
    void* dst = at(W.pk, int64_t(off) * kvd, es);
    be_->copy(dst, at(set->k(), set->offset(l, 0), es), size_t(n) * kvd * es);
    be_->rope(dst, n, c.n_kv_heads, W.prope);
  }
  AttnArgs aa = d.attn;
  aa.layer = l;
  be_->attention(W.att, W.q, aa);
  split_matmul(*be_, W.x, W.att, T, Tn, L.wo, L.bo, L.co, L.cbo, Epilogue::Add);
}

// Layer l's MLP on every row, added to the residual stream x. The candidate
// rows use the candidate up and down projections; the gate projection has no
// candidate variant.
void Model::mlp_block(int l, const MicroBatch& mb) {
  const ModelConfig& c = cfg_;
  const LayerWeights& L = w_.layers[size_t(l)];
  Workspace& W = *ws_;
  const int T = mb.T, Tn = mb.Tn;
  be_->rms_norm(W.h, W.x, L.ffn_norm, T, c.rms_norm_eps);
  const Weight none;
  const Backend::SplitJob gate_up[2] = {{W.gate, &L.w_gate, nullptr, &L.w_gate, nullptr},
                                        {W.up, &L.w_up, &none, &L.c_up, &none}};
  be_->matmul_split_group(W.h, T, Tn, gate_up, 2, Epilogue::Store);
  be_->swiglu(W.gate, W.gate, W.up, int64_t(T) * c.intermediate_size);
  split_matmul(*be_, W.x, W.gate, T, Tn, L.w_down, Weight{}, L.c_down, Weight{}, Epilogue::Add);
}

// The requested rows' final norm and lm_head, kLogitChunk rows at a time (the
// logits scratch holds that many): their logits copied to the output rows, or
// sampled on the backend with each row's uniform number.
void Model::micro_batch_outputs(const MicroBatch& mb, const BatchTables& d, Output& out) {
  const ModelConfig& c = cfg_;
  Workspace& W = *ws_;
  const int dim = c.hidden_size, V = c.vocab_size;
  const auto& logit_rows = mb.logit_rows;
  const size_t nl = logit_rows.size();
  std::vector<float> chunk;  // staging, for rows whose output rows are not consecutive
  std::vector<int32_t> toks(out.tokens ? std::min<size_t>(nl, kLogitChunk) : 0);
  std::vector<float> us(toks.size());
  for (size_t b = 0; b < nl; b += kLogitChunk) {
    const int n = int(std::min(nl - b, size_t(kLogitChunk)));
    be_->gather_rows(W.lx, W.x, d.lrows + b, n, dim);
    be_->rms_norm(W.lx, W.lx, w_.norm, n, c.rms_norm_eps);
    be_->matmul(W.logits, W.lx, n, w_.lm_head, nullptr, Epilogue::StoreF32);
    if (out.logits) {
      // Consecutive output rows (decode's one row, a sequence's rows) are
      // downloaded in place; otherwise through the staging buffer.
      bool consecutive = true;
      for (int i = 1; i < n && consecutive; ++i)
        consecutive = logit_rows[b + size_t(i)].second == logit_rows[b].second + i;
      if (consecutive) {
        be_->download(out.logits->data() + logit_rows[b].second * V, W.logits, size_t(n) * V * 4);
        continue;
      }
      chunk.resize(size_t(n) * size_t(V));
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
}

}  // namespace focus
