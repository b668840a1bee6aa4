// CPU kernels of the WKV5 recurrence (see layers/wkv_kernels.h). Heads are independent: engine::parallel_for over
// heads (results do not depend on the thread count); each head's N x N state lives in a small buffer stored [j][i]
// (key by value), so the loops over the value index i are contiguous and vectorised.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/dtype_dispatch.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/wkv_kernels.h"

namespace layers::cpu {

using engine::Tensor;

namespace {

struct WkvDims {
  int64_t L, H, N, Q, nchunks;
};

WkvDims dims_of(const Tensor& r, int64_t chunk) {
  return {r.size(0), r.size(1), r.size(2), chunk, (r.size(0) + chunk - 1) / chunk};
}

// One step of head h at time t from state S [N][N] (updated in place to S_t); writes y_t when y != null.
template <class T>
void step(const WkvDims& d, const T* r, const T* k, const T* v, const T* w, const T* u, int64_t h, int64_t t, T* S,
          T* y) {
  const int64_t N = d.N, row = (t * d.H + h) * N;
  const T *rt = r + row, *kt = k + row, *vt = v + row, *wh = w + h * N, *uh = u + h * N;
  T yl[64];
  const bool out = y != nullptr;
  if (out) std::fill(yl, yl + N, T(0));
  for (int64_t j = 0; j < N; ++j) {
    const T rj = rt[j], kj = kt[j], a = rj * uh[j] * kj, wj = wh[j];
    T* Sj = S + j * N;
#pragma omp simd
    for (int64_t i = 0; i < N; ++i) {
      if (out) yl[i] += rj * Sj[i] + a * vt[i];
      Sj[i] = wj * Sj[i] + kj * vt[i];
    }
  }
  if (out) std::copy(yl, yl + N, y + row);
}

template <class T>
void forward_typed(const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, int64_t chunk,
                   const Tensor& y, const Tensor& ckpt) {
  const WkvDims d = dims_of(r, chunk);
  const T *pr = r.data<T>(), *pk = k.data<T>(), *pv = v.data<T>(), *pw = w.data<T>(), *pu = u.data<T>();
  T* py = y.data<T>();
  T* ck = ckpt.defined() ? ckpt.data<T>() : nullptr;
  engine::parallel_for(0, d.H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<T> S(static_cast<size_t>(d.N * d.N));
    for (int64_t h = h0; h < h1; ++h) {
      std::fill(S.begin(), S.end(), T(0));
      for (int64_t c = 0; c < d.nchunks; ++c) {
        if (ck) std::copy(S.begin(), S.end(), ck + (c * d.H + h) * d.N * d.N);
        for (int64_t t = c * d.Q; t < std::min(d.L, (c + 1) * d.Q); ++t) step(d, pr, pk, pv, pw, pu, h, t, S.data(), py);
      }
    }
  });
}

template <class T>
struct Grads {
  T *gr, *gk, *gv, *gw, *gu;
};

// Reverse step t of head h: Sprev = S_{t-1}, G = dL/dS_t on entry and dL/dS_{t-1} on exit; gw/gu accumulate.
template <class T>
void reverse_step(const WkvDims& d, const T* r, const T* k, const T* v, const T* w, const T* u, const T* gy, int64_t h,
                  int64_t t, const T* Sprev, T* G, T* gw_acc, T* gu_acc, const Grads<T>& g) {
  const int64_t N = d.N, row = (t * d.H + h) * N;
  const T *rt = r + row, *kt = k + row, *vt = v + row, *gyt = gy + row, *wh = w + h * N, *uh = u + h * N;
  T dot_gv = T(0), rku = T(0);
  for (int64_t i = 0; i < N; ++i) dot_gv += gyt[i] * vt[i];
  for (int64_t j = 0; j < N; ++j) rku += rt[j] * uh[j] * kt[j];
  T gv[64];
  for (int64_t i = 0; i < N; ++i) gv[i] = gyt[i] * rku;
  for (int64_t j = 0; j < N; ++j) {
    const T* Sj = Sprev + j * N;
    T* Gj = G + j * N;
    const T rj = rt[j], kj = kt[j], wj = wh[j];
    T s_gy = T(0), s_gv = T(0), s_gw = T(0);
#pragma omp simd reduction(+ : s_gy, s_gv, s_gw)
    for (int64_t i = 0; i < N; ++i) {
      s_gy += gyt[i] * Sj[i];
      s_gv += Gj[i] * vt[i];
      s_gw += Gj[i] * Sj[i];
      gv[i] += Gj[i] * kj;
      Gj[i] = rj * gyt[i] + wj * Gj[i];
    }
    g.gr[row + j] = uh[j] * kj * dot_gv + s_gy;
    g.gk[row + j] = rj * uh[j] * dot_gv + s_gv;
    gw_acc[j] += s_gw;
    gu_acc[j] += rj * kj * dot_gv;
  }
  std::copy(gv, gv + N, g.gv + row);
}

template <class T>
void backward_typed(const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u,
                    const Tensor& ckpt, const Tensor& gy, int64_t chunk, const Grads<T>& g) {
  const WkvDims d = dims_of(r, chunk);
  const int64_t NN = d.N * d.N;
  const T *pr = r.data<T>(), *pk = k.data<T>(), *pv = v.data<T>(), *pw = w.data<T>(), *pu = u.data<T>();
  const T *pg = gy.data<T>(), *ck = ckpt.data<T>();
  engine::parallel_for(0, d.H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<T> hist(static_cast<size_t>(d.Q * NN)), G(static_cast<size_t>(NN)), S(G.size());
    std::vector<T> gw_acc(static_cast<size_t>(d.N)), gu_acc(gw_acc.size());
    for (int64_t h = h0; h < h1; ++h) {
      std::fill(G.begin(), G.end(), T(0));
      std::fill(gw_acc.begin(), gw_acc.end(), T(0));
      std::fill(gu_acc.begin(), gu_acc.end(), T(0));
      for (int64_t c = d.nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * d.Q, t1 = std::min(d.L, t0 + d.Q);
        std::copy(ck + (c * d.H + h) * NN, ck + (c * d.H + h + 1) * NN, S.begin());
        for (int64_t t = t0; t < t1; ++t) {  // hist[t - t0] = S_{t-1}
          std::copy(S.begin(), S.end(), hist.begin() + (t - t0) * NN);
          step(d, pr, pk, pv, pw, pu, h, t, S.data(), static_cast<T*>(nullptr));
        }
        for (int64_t t = t1 - 1; t >= t0; --t)
          reverse_step(d, pr, pk, pv, pw, pu, pg, h, t, hist.data() + (t - t0) * NN, G.data(), gw_acc.data(),
                       gu_acc.data(), g);
      }
      std::copy(gw_acc.begin(), gw_acc.end(), g.gw + h * d.N);
      std::copy(gu_acc.begin(), gu_acc.end(), g.gu + h * d.N);
    }
  });
}


// ---------------------------------------------------------------- wkv7

template <class T>
struct Rows7 {
  const T *r, *w, *k, *v, *a, *b;
};

// d_j = exp(-exp(w_j)) of row `row`.
template <class T>
void decays(const T* w, int64_t N, T* dec) {
  for (int64_t j = 0; j < N; ++j) dec[j] = std::exp(-std::exp(w[j]));
}

// One step of one head from state S [N][N] (updated in place to S_t); writes y_t when y != null.
template <class T>
void step7(const Rows7<T>& x, int64_t N, T* S, T* y) {
  T dec[32];
  decays(x.w, N, dec);
  for (int64_t i = 0; i < N; ++i) {
    T* Si = S + i * N;
    T sa = T(0), acc = T(0);
    for (int64_t j = 0; j < N; ++j) sa += Si[j] * x.a[j];
    const T vi = x.v[i];
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < N; ++j) {
      Si[j] = Si[j] * dec[j] + sa * x.b[j] + vi * x.k[j];
      acc += Si[j] * x.r[j];
    }
    if (y) y[i] = acc;
  }
}

template <class T>
Rows7<T> rows7(const Tensor* in, int64_t off) {
  return {in[0].data<T>() + off, in[1].data<T>() + off, in[2].data<T>() + off,
          in[3].data<T>() + off, in[4].data<T>() + off, in[5].data<T>() + off};
}

template <class T>
void forward7_typed(const Tensor* in, int64_t chunk, const Tensor& y, const Tensor& ckpt) {
  const WkvDims d = dims_of(in[0], chunk);
  T* py = y.data<T>();
  T* ck = ckpt.defined() ? ckpt.data<T>() : nullptr;
  engine::parallel_for(0, d.H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<T> S(static_cast<size_t>(d.N * d.N));
    for (int64_t h = h0; h < h1; ++h) {
      std::fill(S.begin(), S.end(), T(0));
      for (int64_t t = 0; t < d.L; ++t) {
        if (ck && t % d.Q == 0) std::copy(S.begin(), S.end(), ck + ((t / d.Q) * d.H + h) * d.N * d.N);
        const int64_t row = (t * d.H + h) * d.N;
        step7(rows7<T>(in, row), d.N, S.data(), py + row);
      }
    }
  });
}

// Reverse step with Sprev = S_{t-1}, Scur = S_t, G = dL/dS_t without the y_t term on entry, and the same for
// S_{t-1} on exit. Writes the six gradient rows at `row` (g: gr, gw, gk, gv, ga, gb).
template <class T>
void reverse_step7(const Rows7<T>& x, const T* gy, int64_t N, const T* Sprev, const T* Scur, T* G, T* const* g,
                   int64_t row) {
  T dec[32], gr[32] = {}, gk[32] = {}, gd[32] = {}, ga[32] = {}, gb[32] = {};
  decays(x.w, N, dec);
  for (int64_t i = 0; i < N; ++i) {
    T* Gi = G + i * N;
    const T *Sp = Sprev + i * N, *Sc = Scur + i * N;
    const T gyi = gy[i], vi = x.v[i];
    T bG = T(0), sa = T(0), gv = T(0);
#pragma omp simd reduction(+ : bG, sa, gv)
    for (int64_t j = 0; j < N; ++j) {
      Gi[j] += gyi * x.r[j];
      bG += x.b[j] * Gi[j];
      sa += Sp[j] * x.a[j];
      gv += Gi[j] * x.k[j];
    }
#pragma omp simd
    for (int64_t j = 0; j < N; ++j) {
      gr[j] += gyi * Sc[j];
      gk[j] += vi * Gi[j];
      gd[j] += Gi[j] * Sp[j];
      ga[j] += bG * Sp[j];
      gb[j] += sa * Gi[j];
      Gi[j] = dec[j] * Gi[j] + x.a[j] * bG;
    }
    g[3][row + i] = gv;
  }
  for (int64_t j = 0; j < N; ++j) {
    g[0][row + j] = gr[j];
    g[1][row + j] = -gd[j] * dec[j] * std::exp(x.w[j]);  // d d / d w = -exp(w) d
    g[2][row + j] = gk[j];
    g[4][row + j] = ga[j];
    g[5][row + j] = gb[j];
  }
}

template <class T>
void backward7_typed(const Tensor* in, const Tensor& ckpt, const Tensor& gy, int64_t chunk, T* const* g) {
  const WkvDims d = dims_of(in[0], chunk);
  const int64_t NN = d.N * d.N;
  const T *pg = gy.data<T>(), *ck = ckpt.data<T>();
  engine::parallel_for(0, d.H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<T> hist(static_cast<size_t>((d.Q + 1) * NN)), G(static_cast<size_t>(NN));
    for (int64_t h = h0; h < h1; ++h) {
      std::fill(G.begin(), G.end(), T(0));
      for (int64_t c = d.nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * d.Q, t1 = std::min(d.L, t0 + d.Q);
        std::copy(ck + (c * d.H + h) * NN, ck + (c * d.H + h + 1) * NN, hist.begin());
        for (int64_t t = t0; t < t1; ++t) {  // hist[q] = S_{t0 + q - 1}
          T* next = hist.data() + (t - t0 + 1) * NN;
          std::copy(next - NN, next, next);
          step7(rows7<T>(in, (t * d.H + h) * d.N), d.N, next, static_cast<T*>(nullptr));
        }
        for (int64_t t = t1 - 1; t >= t0; --t) {
          const int64_t row = (t * d.H + h) * d.N;
          reverse_step7(rows7<T>(in, row), pg + row, d.N, hist.data() + (t - t0) * NN,
                        hist.data() + (t - t0 + 1) * NN, G.data(), g, row);
        }
      }
    }
  });
}

}  // namespace

void wkv5_forward(const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, int64_t chunk,
                  const Tensor& y, const Tensor& ckpt) {
  engine::dispatch_float(r.dtype(), "wkv5", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward_typed<T>(r, k, v, w, u, chunk, y, ckpt);
  });
}

void wkv5_backward(const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u,
                   const Tensor& ckpt, const Tensor& gy, int64_t chunk, const Tensor& gr, const Tensor& gk,
                   const Tensor& gv, const Tensor& gw, const Tensor& gu) {
  engine::dispatch_float(r.dtype(), "wkv5", [&](auto tag) {
    using T = typename decltype(tag)::type;
    backward_typed<T>(r, k, v, w, u, ckpt, gy, chunk,
                      Grads<T>{gr.data<T>(), gk.data<T>(), gv.data<T>(), gw.data<T>(), gu.data<T>()});
  });
}

void wkv7_forward(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                  int64_t chunk, const Tensor& y, const Tensor& ckpt) {
  const Tensor in[6] = {r, w, k, v, a, b};
  engine::dispatch_float(r.dtype(), "wkv7", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward7_typed<T>(in, chunk, y, ckpt);
  });
}

void wkv7_backward(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                   const Tensor& ckpt, const Tensor& gy, int64_t chunk, const Tensor& gr, const Tensor& gw,
                   const Tensor& gk, const Tensor& gv, const Tensor& ga, const Tensor& gb) {
  const Tensor in[6] = {r, w, k, v, a, b};
  engine::dispatch_float(r.dtype(), "wkv7", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* const g[6] = {gr.data<T>(), gw.data<T>(), gk.data<T>(), gv.data<T>(), ga.data<T>(), gb.data<T>()};
    backward7_typed<T>(in, ckpt, gy, chunk, g);
  });
}

}  // namespace layers::cpu
