#include "common/train_reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace focus::ref64 {

void matmul_nn(double* out, const double* a, const double* b, int m, int K, int N) {
  for (int i = 0; i < m; ++i)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += a[int64_t(i) * K + k] * b[int64_t(k) * N + n];
      out[int64_t(i) * N + n] = s;
    }
}

void linear(double* out, const double* x, const double* w, const double* bias, int m, int N, int K) {
  for (int i = 0; i < m; ++i)
    for (int n = 0; n < N; ++n) {
      double s = bias ? bias[n] : 0.0;
      for (int k = 0; k < K; ++k) s += x[int64_t(i) * K + k] * w[int64_t(n) * K + k];
      out[int64_t(i) * N + n] = s;
    }
}

void linear_backward(double* dx, double* dw, double* dbias, const double* dout, const double* x, const double* w,
                     int m, int N, int K) {
  for (int i = 0; i < m; ++i)
    for (int k = 0; k < K; ++k) {
      double s = 0;
      for (int n = 0; n < N; ++n) s += dout[int64_t(i) * N + n] * w[int64_t(n) * K + k];
      dx[int64_t(i) * K + k] = s;
    }
  for (int n = 0; n < N; ++n) {
    for (int k = 0; k < K; ++k) {
      double s = 0;
      for (int i = 0; i < m; ++i) s += dout[int64_t(i) * N + n] * x[int64_t(i) * K + k];
      dw[int64_t(n) * K + k] = s;
    }
    double s = 0;
    for (int i = 0; i < m; ++i) s += dout[int64_t(i) * N + n];
    dbias[n] = s;
  }
}

void rms_norm(double* out, const double* x, const double* w, int n, int dim, double eps) {
  for (int r = 0; r < n; ++r) {
    const double* xr = x + int64_t(r) * dim;
    double ss = 0;
    for (int j = 0; j < dim; ++j) ss += xr[j] * xr[j];
    const double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int j = 0; j < dim; ++j) out[int64_t(r) * dim + j] = xr[j] * inv * w[j];
  }
}

// y_j = x_j inv w_j with inv = (Σ x² / dim + eps)^(-1/2), d inv / d x_k = -inv³ x_k / dim.
void rms_norm_backward(double* dx, double* dw, const double* dout, const double* x, const double* w, int n, int dim,
                       double eps) {
  std::fill(dw, dw + dim, 0.0);
  for (int r = 0; r < n; ++r) {
    const double* xr = x + int64_t(r) * dim;
    const double* g = dout + int64_t(r) * dim;
    double ss = 0, gwx = 0;
    for (int j = 0; j < dim; ++j) {
      ss += xr[j] * xr[j];
      gwx += g[j] * w[j] * xr[j];
    }
    const double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int j = 0; j < dim; ++j) {
      dx[int64_t(r) * dim + j] = inv * g[j] * w[j] - xr[j] * inv * inv * inv * gwx / dim;
      dw[j] += g[j] * xr[j] * inv;
    }
  }
}

namespace {

// Rotates every pair (x_i, x_{i+half}) of every head by (c, sign * s).
void rotate(double* x, int n, int n_heads, int head_dim, const double* table, double sign) {
  const int half = head_dim / 2;
  for (int r = 0; r < n; ++r)
    for (int h = 0; h < n_heads; ++h) {
      double* v = x + (int64_t(r) * n_heads + h) * head_dim;
      const double* cs = table + int64_t(r) * head_dim;
      for (int i = 0; i < half; ++i) {
        const double a = v[i], b = v[i + half], c = cs[i], s = sign * cs[half + i];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
}

}  // namespace

void rope(double* x, int n, int n_heads, int head_dim, const double* table) {
  rotate(x, n, n_heads, head_dim, table, 1.0);
}

void rope_backward(double* d, int n, int n_heads, int head_dim, const double* table) {
  rotate(d, n, n_heads, head_dim, table, -1.0);
}

void swiglu(double* out, const double* gate, const double* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
}

void swiglu_backward(double* dgate, double* dup, const double* dout, const double* gate, const double* up,
                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i], sg = 1.0 / (1.0 + std::exp(-g));
    dgate[i] = dout[i] * up[i] * (sg + g * sg * (1.0 - sg));
    dup[i] = dout[i] * g * sg;
  }
}

void embedding(double* out, const double* table, const int32_t* ids, int n, int dim) {
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < dim; ++j) out[int64_t(r) * dim + j] = table[int64_t(ids[r]) * dim + j];
}

void embedding_backward(double* dtable, const double* dout, const int32_t* ids, int n, int dim, int vocab) {
  std::fill(dtable, dtable + int64_t(vocab) * dim, 0.0);
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < dim; ++j) dtable[int64_t(ids[r]) * dim + j] += dout[int64_t(r) * dim + j];
}

void cross_entropy(double* losses, double* dlogits, const double* logits, const int32_t* targets,
                   const double* weights, int n, int V) {
  for (int r = 0; r < n; ++r) {
    const double* l = logits + int64_t(r) * V;
    const double mx = *std::max_element(l, l + V);
    double s = 0;
    for (int j = 0; j < V; ++j) s += std::exp(l[j] - mx);
    const double lse = mx + std::log(s);
    losses[r] = lse - l[targets[r]];
    if (!dlogits) continue;
    for (int j = 0; j < V; ++j)
      dlogits[int64_t(r) * V + j] = (std::exp(l[j] - lse) - (j == targets[r] ? 1.0 : 0.0)) * weights[r];
  }
}

namespace {

// Query i of sequence s at head h: p (n_seen) = softmax of scale q·k over its
// visible keys; returns their log-sum-exp.
double attention_probs(std::vector<double>& p, const double* q, const double* k, const TrainAttnSeq& s, int i,
                       int h, int n_heads, int n_kv_heads, int hd, double scale) {
  const int qd = n_heads * hd, kvd = n_kv_heads * hd, kvh = h / (n_heads / n_kv_heads);
  const int n_seen = s.q_key0 + i + 1;
  const double* qv = q + int64_t(s.q_row + i) * qd + int64_t(h) * hd;
  p.assign(size_t(n_seen), 0.0);
  double mx = -INFINITY;
  for (int j = 0; j < n_seen; ++j) {
    const double* kv = k + (s.key_row + j) * kvd + int64_t(kvh) * hd;
    double dot = 0;
    for (int d = 0; d < hd; ++d) dot += qv[d] * kv[d];
    p[size_t(j)] = dot * scale;
    mx = std::max(mx, p[size_t(j)]);
  }
  double sum = 0;
  for (double x : p) sum += std::exp(x - mx);
  const double lse = mx + std::log(sum);
  for (double& x : p) x = std::exp(x - lse);
  return lse;
}

}  // namespace

void attention(double* out, double* lse, const double* q, const double* k, const double* v, const TrainAttnSeq* seqs,
               int n_seq, int n_heads, int n_kv_heads, int head_dim, double scale) {
  const int hd = head_dim, qd = n_heads * hd, kvd = n_kv_heads * hd, G = n_heads / n_kv_heads;
  std::vector<double> p;
  for (int si = 0; si < n_seq; ++si) {
    const TrainAttnSeq& s = seqs[si];
    for (int i = 0; i < s.n_q; ++i)
      for (int h = 0; h < n_heads; ++h) {
        const double l = attention_probs(p, q, k, s, i, h, n_heads, n_kv_heads, hd, scale);
        if (lse) lse[int64_t(s.q_row + i) * n_heads + h] = l;
        double* o = out + int64_t(s.q_row + i) * qd + int64_t(h) * hd;
        std::fill(o, o + hd, 0.0);
        for (size_t j = 0; j < p.size(); ++j) {
          const double* vv = v + (s.key_row + int64_t(j)) * kvd + int64_t(h / G) * hd;
          for (int d = 0; d < hd; ++d) o[d] += p[j] * vv[d];
        }
      }
  }
}

// With p the probabilities, o = Σ p_j v_j and g = dout:
//   dv_j += p_j g,  ds_j = p_j (g·v_j - g·o),  dq += scale Σ ds_j k_j,  dk_j += scale ds_j q.
void attention_backward(double* dq, double* dk, double* dv, const double* dout, const double* q, const double* k,
                        const double* v, const TrainAttnSeq* seqs, int n_seq, int n_heads, int n_kv_heads,
                        int head_dim, double scale) {
  const int hd = head_dim, qd = n_heads * hd, kvd = n_kv_heads * hd, G = n_heads / n_kv_heads;
  for (int si = 0; si < n_seq; ++si) {
    const TrainAttnSeq& s = seqs[si];
    std::fill(dq + int64_t(s.q_row) * qd, dq + int64_t(s.q_row + s.n_q) * qd, 0.0);
    std::fill(dk + s.key_row * kvd, dk + (s.key_row + s.n_keys) * kvd, 0.0);
    std::fill(dv + s.key_row * kvd, dv + (s.key_row + s.n_keys) * kvd, 0.0);
  }
  std::vector<double> p, dp;
  for (int si = 0; si < n_seq; ++si) {
    const TrainAttnSeq& s = seqs[si];
    for (int i = 0; i < s.n_q; ++i)
      for (int h = 0; h < n_heads; ++h) {
        attention_probs(p, q, k, s, i, h, n_heads, n_kv_heads, hd, scale);
        const int64_t row = s.q_row + i, ho = int64_t(h / G) * hd;
        const double* g = dout + row * qd + int64_t(h) * hd;
        const double* qv = q + row * qd + int64_t(h) * hd;
        double* dqv = dq + row * qd + int64_t(h) * hd;
        dp.assign(p.size(), 0.0);
        double g_o = 0;
        for (size_t j = 0; j < p.size(); ++j) {
          const double* vv = v + (s.key_row + int64_t(j)) * kvd + ho;
          for (int d = 0; d < hd; ++d) dp[j] += g[d] * vv[d];
          g_o += p[j] * dp[j];
        }
        for (size_t j = 0; j < p.size(); ++j) {
          const int64_t kr = (s.key_row + int64_t(j)) * kvd + ho;
          const double ds = p[j] * (dp[j] - g_o) * scale;
          for (int d = 0; d < hd; ++d) {
            dv[kr + d] += p[j] * g[d];
            dqv[d] += ds * k[kr + d];
            dk[kr + d] += ds * qv[d];
          }
        }
      }
  }
}

}  // namespace focus::ref64
