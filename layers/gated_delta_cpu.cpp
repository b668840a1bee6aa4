// CPU kernels of the gated delta rule (see layers/gated_delta_kernels.h): one head per task (engine::parallel_for
// over heads, so results do not depend on the thread count), the [K, V] state in a small cache-resident buffer,
// checkpoints at chunk starts, and a backward that recomputes one chunk of states at a time and runs the adjoint
// recurrence fused with every gradient. Inner loops run over the value width V (vectorised, fixed order); the
// catalog's K = 16, V = 32 gets a compile-time specialisation.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/gated_delta_kernels.h"

namespace layers::cpu {

using engine::Tensor;

namespace {

struct Dims {
  int64_t T, H, K, V, Q, nchunks;
  double scale, eps;
};

Dims dims_of(const Tensor& q, const Tensor& v, int64_t chunk, double scale, double eps) {
  Dims d;
  d.T = q.size(0);
  d.H = q.size(1);
  d.K = q.size(2);
  d.V = v.size(2);
  d.Q = chunk;
  d.nchunks = (d.T + chunk - 1) / chunk;
  d.scale = scale;
  d.eps = eps;
  return d;
}

// 1 / sqrt(|x|^2 + eps) of a K-vector.
template <class T>
inline T inv_norm(const T* x, int64_t K, double eps) {
  T s = T(0);
  for (int64_t i = 0; i < K; ++i) s += x[i] * x[i];
  return T(1) / std::sqrt(s + static_cast<T>(eps));
}

// One head's forward scan. S: [K, V] scratch; ckpt: this head's [nchunks, K, V] or null.
template <class T, int NK, int NV>
void forward_head(const Dims& d, int64_t h, const T* q, const T* k, const T* v, const T* g, const T* beta, T* o,
                  T* ckpt, T* S, T* kn, T* qs, T* acc) {
  const int64_t K = NK > 0 ? NK : d.K, V = NV > 0 ? NV : d.V, H = d.H, KV = K * V;
  std::fill(S, S + KV, T(0));
  for (int64_t t = 0; t < d.T; ++t) {
    if (ckpt && t % d.Q == 0) std::copy(S, S + KV, ckpt + (t / d.Q) * KV);
    const T* qt = q + (t * H + h) * K;
    const T* kt = k + (t * H + h) * K;
    const T* vt = v + (t * H + h) * V;
    const T nk = inv_norm(kt, K, d.eps), nq = inv_norm(qt, K, d.eps) * static_cast<T>(d.scale);
    for (int64_t i = 0; i < K; ++i) {
      kn[i] = kt[i] * nk;
      qs[i] = qt[i] * nq;
    }
    const T a = std::exp(g[t * H + h]), b = beta[t * H + h];
    // acc = S^T kn
    std::fill(acc, acc + V, T(0));
    for (int64_t i = 0; i < K; ++i) {
      const T* s = S + i * V;
      const T ki = kn[i];
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) acc[j] += s[j] * ki;
    }
    // u = beta (v - a acc)  (stored in acc)
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) acc[j] = b * (vt[j] - a * acc[j]);
    // S = a S + kn u^T;  o = S^T qs
    T* ot = o + (t * H + h) * V;
    std::fill(ot, ot + V, T(0));
    for (int64_t i = 0; i < K; ++i) {
      T* s = S + i * V;
      const T ki = kn[i], qi = qs[i];
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) {
        const T nv = a * s[j] + ki * acc[j];
        s[j] = nv;
        ot[j] += nv * qi;
      }
    }
  }
}

// One head's backward.
template <class T, int NK, int NV>
void backward_head(const Dims& d, int64_t h, const T* q, const T* k, const T* v, const T* g, const T* beta,
                   const T* ckpt, const T* gout, T* dq, T* dk, T* dv, T* dg, T* dbeta) {
  const int64_t K = NK > 0 ? NK : d.K, V = NV > 0 ? NV : d.V, H = d.H, KV = K * V;
  std::vector<T> G(static_cast<size_t>(KV), T(0)), Sbuf(static_cast<size_t>((d.Q + 1) * KV));
  std::vector<T> kn(K), qs(K), dqs(K), dkn(K), du(V), w(V), u(V), e(V);
  for (int64_t c = d.nchunks - 1; c >= 0; --c) {
    const int64_t t0 = c * d.Q, len = std::min(d.Q, d.T - t0);
    // Recompute the chunk's states: Sbuf[i] is the state before step t0 + i.
    std::copy(ckpt + c * KV, ckpt + (c + 1) * KV, Sbuf.data());
    for (int64_t i = 0; i < len; ++i) {
      const int64_t t = t0 + i;
      const T* kt = k + (t * H + h) * K;
      const T* vt = v + (t * H + h) * V;
      const T nk = inv_norm(kt, K, d.eps);
      for (int64_t r = 0; r < K; ++r) kn[r] = kt[r] * nk;
      const T a = std::exp(g[t * H + h]), b = beta[t * H + h];
      const T* s0 = Sbuf.data() + i * KV;
      T* s1 = Sbuf.data() + (i + 1) * KV;
      std::fill(u.begin(), u.end(), T(0));
      T* up = u.data();
      for (int64_t r = 0; r < K; ++r) {
        const T kr = kn[r];
#pragma omp simd
        for (int64_t j = 0; j < V; ++j) up[j] += s0[r * V + j] * kr;
      }
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) up[j] = b * (vt[j] - a * up[j]);
      for (int64_t r = 0; r < K; ++r) {
        const T kr = kn[r];
#pragma omp simd
        for (int64_t j = 0; j < V; ++j) s1[r * V + j] = a * s0[r * V + j] + kr * up[j];
      }
    }
    // Adjoint recurrence over the chunk in reverse. On entry G holds a_{t+1} dS'_{t+1}.
    for (int64_t i = len - 1; i >= 0; --i) {
      const int64_t t = t0 + i;
      const T* qt = q + (t * H + h) * K;
      const T* kt = k + (t * H + h) * K;
      const T* vt = v + (t * H + h) * V;
      const T* dot = gout + (t * H + h) * V;
      const T nk = inv_norm(kt, K, d.eps), nq = inv_norm(qt, K, d.eps);
      const T sc = static_cast<T>(d.scale);
      for (int64_t r = 0; r < K; ++r) {
        kn[r] = kt[r] * nk;
        qs[r] = qt[r] * nq * sc;
      }
      const T a = std::exp(g[t * H + h]), b = beta[t * H + h];
      const T* Sprev = Sbuf.data() + i * KV;
      const T* Scur = Sbuf.data() + (i + 1) * KV;
      T* Gp = G.data();
      T* dup = du.data();
      T* wp = w.data();
      std::fill(du.begin(), du.end(), T(0));
      std::fill(w.begin(), w.end(), T(0));
      // Pass 1: G += qs do^T; dqs = S_t do; du = G^T kn; w = Sprev^T kn (finished below).
      for (int64_t r = 0; r < K; ++r) {
        T* gr = Gp + r * V;
        const T* sc_r = Scur + r * V;
        const T* sp_r = Sprev + r * V;
        const T qr = qs[r], kr = kn[r];
        T acc = T(0);
#pragma omp simd reduction(+ : acc)
        for (int64_t j = 0; j < V; ++j) {
          const T gv = gr[j] + qr * dot[j];
          gr[j] = gv;
          acc += sc_r[j] * dot[j];
          dup[j] += gv * kr;
          wp[j] += sp_r[j] * kr;
        }
        dqs[r] = acc;
      }
      T db = T(0);
      T* ep = e.data();
      T* upp = u.data();
      T* dvt = dv + (t * H + h) * V;
#pragma omp simd reduction(+ : db)
      for (int64_t j = 0; j < V; ++j) {
        const T wj = vt[j] - a * wp[j];
        upp[j] = b * wj;
        dvt[j] = b * dup[j];
        db += dup[j] * wj;
        ep[j] = -b * dup[j];
      }
      dbeta[t * H + h] = db;
      // Pass 2: dkn = G u + a Sprev e; dS' = G + kn e^T; dg = a <dS', Sprev>; G = a dS'.
      T dgacc = T(0);
      for (int64_t r = 0; r < K; ++r) {
        T* gr = Gp + r * V;
        const T* sp_r = Sprev + r * V;
        const T kr = kn[r];
        T acc1 = T(0), acc2 = T(0), acc3 = T(0);
#pragma omp simd reduction(+ : acc1, acc2, acc3)
        for (int64_t j = 0; j < V; ++j) {
          acc1 += gr[j] * upp[j];
          acc2 += sp_r[j] * ep[j];
          const T ds = gr[j] + kr * ep[j];
          acc3 += ds * sp_r[j];
          gr[j] = a * ds;
        }
        dkn[r] = acc1 + a * acc2;
        dgacc += acc3;
      }
      dg[t * H + h] = a * dgacc;
      // L2-norm Jacobians: x -> x / n: dx = (dy - y (y . dy)) / n.
      T pk = T(0), pq = T(0);
      for (int64_t r = 0; r < K; ++r) {
        pk += kn[r] * dkn[r];
        pq += qt[r] * nq * dqs[r];  // qn . dqs
      }
      T* dkt = dk + (t * H + h) * K;
      T* dqt = dq + (t * H + h) * K;
      for (int64_t r = 0; r < K; ++r) {
        dkt[r] = (dkn[r] - kn[r] * pk) * nk;
        // qs = scale qn: dq = scale (dqs - qn (qn . dqs)) nq, with qn = qt nq.
        dqt[r] = sc * (dqs[r] - qt[r] * nq * pq) * nq;
      }
    }
  }
}

template <class T>
void forward_typed(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                   int64_t chunk, double scale, double eps, const Tensor& o, const Tensor& ckpt) {
  const Dims d = dims_of(q, v, chunk, scale, eps);
  if (d.T == 0 || d.H == 0) return;
  const T* qp = q.data<T>();
  const T* kp = k.data<T>();
  const T* vp = v.data<T>();
  const T* gp = g.data<T>();
  const T* bp = beta.data<T>();
  T* op = o.data<T>();
  T* cp = ckpt.defined() ? ckpt.data<T>() : nullptr;
  const int64_t KV = d.K * d.V;
  engine::parallel_for(0, d.H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<T> S(static_cast<size_t>(KV)), kn(d.K), qs(d.K), acc(d.V);
    for (int64_t h = h0; h < h1; ++h) {
      T* ch = cp ? cp + h * d.nchunks * KV : nullptr;
      if (d.K == 16 && d.V == 32)
        forward_head<T, 16, 32>(d, h, qp, kp, vp, gp, bp, op, ch, S.data(), kn.data(), qs.data(), acc.data());
      else
        forward_head<T, 0, 0>(d, h, qp, kp, vp, gp, bp, op, ch, S.data(), kn.data(), qs.data(), acc.data());
    }
  });
}

template <class T>
void backward_typed(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                    const Tensor& ckpt, const Tensor& gout, int64_t chunk, double scale, double eps,
                    const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dg, const Tensor& dbeta) {
  const Dims d = dims_of(q, v, chunk, scale, eps);
  if (d.T == 0 || d.H == 0) return;
  const T* qp = q.data<T>();
  const T* kp = k.data<T>();
  const T* vp = v.data<T>();
  const T* gp = g.data<T>();
  const T* bp = beta.data<T>();
  const T* cp = ckpt.data<T>();
  const T* gop = gout.data<T>();
  T* dqp = dq.data<T>();
  T* dkp = dk.data<T>();
  T* dvp = dv.data<T>();
  T* dgp = dg.data<T>();
  T* dbp = dbeta.data<T>();
  const int64_t KV = d.K * d.V;
  engine::parallel_for(0, d.H, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      const T* ch = cp + h * d.nchunks * KV;
      if (d.K == 16 && d.V == 32)
        backward_head<T, 16, 32>(d, h, qp, kp, vp, gp, bp, ch, gop, dqp, dkp, dvp, dgp, dbp);
      else
        backward_head<T, 0, 0>(d, h, qp, kp, vp, gp, bp, ch, gop, dqp, dkp, dvp, dgp, dbp);
    }
  });
}

}  // namespace

void gated_delta_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                         int64_t chunk, double scale, double eps, const Tensor& o, const Tensor& ckpt) {
  if (q.dtype() == engine::DType::F64)
    forward_typed<double>(q, k, v, g, beta, chunk, scale, eps, o, ckpt);
  else
    forward_typed<float>(q, k, v, g, beta, chunk, scale, eps, o, ckpt);
}

void gated_delta_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                          const Tensor& ckpt, const Tensor& gout, int64_t chunk, double scale, double eps,
                          const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dg,
                          const Tensor& dbeta) {
  if (q.dtype() == engine::DType::F64)
    backward_typed<double>(q, k, v, g, beta, ckpt, gout, chunk, scale, eps, dq, dk, dv, dg, dbeta);
  else
    backward_typed<float>(q, k, v, g, beta, ckpt, gout, chunk, scale, eps, dq, dk, dv, dg, dbeta);
}

}  // namespace layers::cpu
