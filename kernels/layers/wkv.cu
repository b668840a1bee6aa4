// CUDA kernels of the WKV5 recurrence (layers/wkv_kernels.h): one warp per head, lane i owns column i of the
// head's N x N state (S[:, i] and, in the backward, the adjoint G[:, i]) in registers; r_t[j], k_t[j] are broadcast
// by shuffles. The forward writes the chunk-start states; the backward recomputes each chunk's states from them into
// a global work buffer [H, chunk + 1, 32, 32] (lane i's entries at stride 32, so the warp's accesses are coalesced;
// a per-thread local array would need 32-64 KB of stack per thread, which the driver reserves for every resident
// thread of the GPU) and runs the adjoint in reverse. Sums over the value index (dr, dk, dw) are butterfly warp
// reductions in a fixed order (wkv7: dr, dw, dk, da, db over rows): deterministic, no atomics. Sequential along the sequence (latency-bound); limits:
// head size <= 32, chunk <= 256 (checked by layers::wkv5).
#include "kernels/common.cuh"
#include "layers/wkv_kernels.h"

namespace layers::cuda {

using engine::Tensor;
using namespace engine::cuda;

namespace {

// Lane i's entry j of step q in a head's slice of the backward work buffer.
__device__ inline int64_t hist_at(int64_t q, int j, int i) { return (q * 32 + j) * 32 + i; }

template <class T>
__device__ T warp_allsum(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

struct Geo {
  int64_t L, H, N, Q, nc;
};

template <class T>
__global__ void wkv5_forward_kernel(Geo g, const T* r, const T* k, const T* v, const T* w, const T* u, T* y, T* ckpt) {
  const int64_t h = blockIdx.x;
  const int i = threadIdx.x, N = static_cast<int>(g.N);
  const bool active = i < N;
  const T wl = active ? w[h * N + i] : T(0), ul = active ? u[h * N + i] : T(0);
  T S[32];
#pragma unroll
  for (int j = 0; j < 32; ++j) S[j] = T(0);
  for (int64_t t = 0; t < g.L; ++t) {
    if (ckpt && t % g.Q == 0) {
      T* out = ckpt + ((t / g.Q) * g.H + h) * g.N * g.N;
#pragma unroll
      for (int j = 0; j < 32; ++j)
        if (j < N && active) out[j * N + i] = S[j];
    }
    const int64_t row = (t * g.H + h) * g.N;
    const T rl = active ? r[row + i] : T(0), kl = active ? k[row + i] : T(0), vi = active ? v[row + i] : T(0);
    T acc = T(0);
#pragma unroll
    for (int j = 0; j < 32; ++j)
      if (j < N) {
        const T rj = __shfl_sync(0xffffffffu, rl, j), kj = __shfl_sync(0xffffffffu, kl, j);
        const T uj = __shfl_sync(0xffffffffu, ul, j), wj = __shfl_sync(0xffffffffu, wl, j);
        acc += rj * (uj * kj * vi + S[j]);
        S[j] = wj * S[j] + kj * vi;
      }
    if (active) y[row + i] = acc;
  }
}

template <class T>
__global__ void wkv5_backward_kernel(Geo g, const T* r, const T* k, const T* v, const T* w, const T* u, const T* ckpt,
                                     const T* gy, T* work, T* gr, T* gk, T* gv, T* gw, T* gu) {
  const int64_t h = blockIdx.x;
  const int i = threadIdx.x, N = static_cast<int>(g.N);
  const bool active = i < N;
  const T wl = active ? w[h * N + i] : T(0), ul = active ? u[h * N + i] : T(0);
  T G[32], gw_acc[32];
  T* hist = work + h * (g.Q + 1) * 32 * 32;
#pragma unroll
  for (int j = 0; j < 32; ++j) G[j] = gw_acc[j] = T(0);
  T gu_l = T(0);
  for (int64_t c = g.nc - 1; c >= 0; --c) {
    const int64_t t0 = c * g.Q, t1 = min(g.L, t0 + g.Q);
    T S[32];
    const T* in = ckpt + (c * g.H + h) * g.N * g.N;
#pragma unroll
    for (int j = 0; j < 32; ++j) S[j] = j < N && active ? in[j * N + i] : T(0);
    for (int64_t t = t0; t < t1; ++t) {  // hist[t - t0] = S_{t-1}[:, i]
      const int64_t row = (t * g.H + h) * g.N;
      const T kl = active ? k[row + i] : T(0), vi = active ? v[row + i] : T(0);
#pragma unroll
      for (int j = 0; j < 32; ++j)
        if (j < N) {
          hist[hist_at(t - t0, j, i)] = S[j];
          const T kj = __shfl_sync(0xffffffffu, kl, j), wj = __shfl_sync(0xffffffffu, wl, j);
          S[j] = wj * S[j] + kj * vi;
        }
    }
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t row = (t * g.H + h) * g.N;
      const T rl = active ? r[row + i] : T(0), kl = active ? k[row + i] : T(0), vi = active ? v[row + i] : T(0);
      const T gyi = active ? gy[row + i] : T(0);
      const T dot_gv = warp_allsum(gyi * vi), rku = warp_allsum(rl * ul * kl);
      gu_l += rl * kl * dot_gv;
      T gvi = gyi * rku;
#pragma unroll
      for (int j = 0; j < 32; ++j)
        if (j < N) {
          const T rj = __shfl_sync(0xffffffffu, rl, j), kj = __shfl_sync(0xffffffffu, kl, j);
          const T uj = __shfl_sync(0xffffffffu, ul, j), wj = __shfl_sync(0xffffffffu, wl, j);
          const T Sj = hist[hist_at(t - t0, j, i)], Gj = G[j];
          const T s_gy = warp_allsum(gyi * Sj), s_gv = warp_allsum(Gj * vi);
          gw_acc[j] += Gj * Sj;
          gvi += Gj * kj;
          G[j] = rj * gyi + wj * Gj;
          if (i == 0) {
            gr[row + j] = uj * kj * dot_gv + s_gy;
            gk[row + j] = rj * uj * dot_gv + s_gv;
          }
        }
      if (active) gv[row + i] = gvi;
    }
  }
#pragma unroll
  for (int j = 0; j < 32; ++j)
    if (j < N) {
      const T s = warp_allsum(gw_acc[j]);
      if (i == 0) gw[h * N + j] = s;
    }
  if (active) gu[h * N + i] = gu_l;
}

// ---------------------------------------------------------------- wkv7

template <class T>
struct Ops7 {
  const T *r, *w, *k, *v, *a, *b;
};

// Lane i's entries of row `row` (0 on idle lanes).
template <class T>
struct Lane7 {
  T r, w, k, v, a, b, dec;
  __device__ Lane7(const Ops7<T>& x, int64_t row, int i, bool active) {
    r = active ? x.r[row + i] : T(0), w = active ? x.w[row + i] : T(0), k = active ? x.k[row + i] : T(0);
    v = active ? x.v[row + i] : T(0), a = active ? x.a[row + i] : T(0), b = active ? x.b[row + i] : T(0);
    dec = exp(-exp(w));
  }
};

// S_t = S_{t-1} (diag(dec) + a b^T) + v k^T for lane i's row; returns y_t[i] = S_t[i, :] . r.
template <class T>
__device__ T step7_row(const Lane7<T>& l, int N, T (&S)[32]) {
  T sa = T(0);
#pragma unroll
  for (int j = 0; j < 32; ++j)
    if (j < N) sa += S[j] * __shfl_sync(0xffffffffu, l.a, j);
  T acc = T(0);
#pragma unroll
  for (int j = 0; j < 32; ++j)
    if (j < N) {
      const T dj = __shfl_sync(0xffffffffu, l.dec, j), bj = __shfl_sync(0xffffffffu, l.b, j);
      const T kj = __shfl_sync(0xffffffffu, l.k, j), rj = __shfl_sync(0xffffffffu, l.r, j);
      S[j] = S[j] * dj + sa * bj + l.v * kj;
      acc += S[j] * rj;
    }
  return acc;
}

template <class T>
__global__ void wkv7_forward_kernel(Geo g, Ops7<T> x, T* y, T* ckpt) {
  const int64_t h = blockIdx.x;
  const int i = threadIdx.x, N = static_cast<int>(g.N);
  const bool active = i < N;
  T S[32];
#pragma unroll
  for (int j = 0; j < 32; ++j) S[j] = T(0);
  for (int64_t t = 0; t < g.L; ++t) {
    if (ckpt && t % g.Q == 0) {
      T* out = ckpt + ((t / g.Q) * g.H + h) * g.N * g.N;
#pragma unroll
      for (int j = 0; j < 32; ++j)
        if (j < N && active) out[i * N + j] = S[j];
    }
    const int64_t row = (t * g.H + h) * g.N;
    const T yi = step7_row(Lane7<T>(x, row, i, active), N, S);
    if (active) y[row + i] = yi;
  }
}

template <class T>
struct Grads7 {
  T *gr, *gw, *gk, *gv, *ga, *gb;
};

template <class T>
__global__ void wkv7_backward_kernel(Geo g, Ops7<T> x, const T* ckpt, const T* gy, T* work, Grads7<T> o) {
  const int64_t h = blockIdx.x;
  const int i = threadIdx.x, N = static_cast<int>(g.N);
  const bool active = i < N;
  T G[32];
  T* hist = work + h * (g.Q + 1) * 32 * 32;
#pragma unroll
  for (int j = 0; j < 32; ++j) G[j] = T(0);
  for (int64_t c = g.nc - 1; c >= 0; --c) {
    const int64_t t0 = c * g.Q, t1 = min(g.L, t0 + g.Q);
    T S[32];
    const T* in = ckpt + (c * g.H + h) * g.N * g.N;
#pragma unroll
    for (int j = 0; j < 32; ++j) S[j] = j < N && active ? in[i * N + j] : T(0);
    for (int64_t t = t0; t <= t1; ++t) {  // hist[q] = S_{t0 + q - 1}
#pragma unroll
      for (int j = 0; j < 32; ++j) hist[hist_at(t - t0, j, i)] = S[j];
      if (t < t1) step7_row(Lane7<T>(x, (t * g.H + h) * g.N, i, active), N, S);
    }
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t row = (t * g.H + h) * g.N;
      const Lane7<T> l(x, row, i, active);
      const T gyi = active ? gy[row + i] : T(0);
      const int q = static_cast<int>(t - t0);
      T bG = T(0), sa = T(0), gv = T(0);
#pragma unroll
      for (int j = 0; j < 32; ++j)
        if (j < N) {
          G[j] += gyi * __shfl_sync(0xffffffffu, l.r, j);
          bG += __shfl_sync(0xffffffffu, l.b, j) * G[j];
          sa += hist[hist_at(q, j, i)] * __shfl_sync(0xffffffffu, l.a, j);
          gv += G[j] * __shfl_sync(0xffffffffu, l.k, j);
        }
      T my_gr = T(0), my_gk = T(0), my_gd = T(0), my_ga = T(0), my_gb = T(0);
#pragma unroll
      for (int j = 0; j < 32; ++j)
        if (j < N) {
          const T Sp = hist[hist_at(q, j, i)], Sc = hist[hist_at(q + 1, j, i)];
          const T sgr = warp_allsum(gyi * Sc), sgk = warp_allsum(l.v * G[j]), sgd = warp_allsum(G[j] * Sp);
          const T sga = warp_allsum(bG * Sp), sgb = warp_allsum(sa * G[j]);
          if (i == j) my_gr = sgr, my_gk = sgk, my_gd = sgd, my_ga = sga, my_gb = sgb;
          G[j] = __shfl_sync(0xffffffffu, l.dec, j) * G[j] + __shfl_sync(0xffffffffu, l.a, j) * bG;
        }
      if (active) {
        o.gr[row + i] = my_gr, o.gk[row + i] = my_gk, o.ga[row + i] = my_ga, o.gb[row + i] = my_gb;
        o.gv[row + i] = gv;
        o.gw[row + i] = -my_gd * l.dec * exp(l.w);
      }
    }
  }
}

template <class T>
Ops7<T> ops7(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b) {
  return {r.data<T>(), w.data<T>(), k.data<T>(), v.data<T>(), a.data<T>(), b.data<T>()};
}

Geo geo_of(const Tensor& r, int64_t chunk) {
  return {r.size(0), r.size(1), r.size(2), chunk, (r.size(0) + chunk - 1) / chunk};
}

}  // namespace

void wkv5_forward(const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, int64_t chunk,
                  const Tensor& y, const Tensor& ckpt) {
  const Geo g = geo_of(r, chunk);
  if (g.L == 0 || g.H == 0) return;
  const unsigned blocks = static_cast<unsigned>(g.H);
  if (r.dtype() == engine::DType::F64) {
    wkv5_forward_kernel<double><<<blocks, 32, 0, current_stream()>>>(
        g, r.data<double>(), k.data<double>(), v.data<double>(), w.data<double>(), u.data<double>(), y.data<double>(),
        ckpt.defined() ? ckpt.data<double>() : nullptr);
  } else {
    ENGINE_CHECK(r.dtype() == engine::DType::F32, "wkv5", "CUDA: float32 or float64 only");
    wkv5_forward_kernel<float><<<blocks, 32, 0, current_stream()>>>(
        g, r.data<float>(), k.data<float>(), v.data<float>(), w.data<float>(), u.data<float>(), y.data<float>(),
        ckpt.defined() ? ckpt.data<float>() : nullptr);
  }
  CUDA_LAUNCH_CHECK();
}

void wkv5_backward(const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u,
                   const Tensor& ckpt, const Tensor& gy, int64_t chunk, const Tensor& gr, const Tensor& gk,
                   const Tensor& gv, const Tensor& gw, const Tensor& gu) {
  const Geo g = geo_of(r, chunk);
  if (g.L == 0 || g.H == 0) {
    for (Tensor t : {gw, gu})  // handles share storage: zero the caller's tensors
      t.fill_(0.0);
    return;
  }
  const unsigned blocks = static_cast<unsigned>(g.H);
  Tensor work = engine::empty({g.H, g.Q + 1, 32, 32}, r.options());  // recomputed chunk states, see the top
  if (r.dtype() == engine::DType::F64) {
    wkv5_backward_kernel<double><<<blocks, 32, 0, current_stream()>>>(
        g, r.data<double>(), k.data<double>(), v.data<double>(), w.data<double>(), u.data<double>(),
        ckpt.data<double>(), gy.data<double>(), work.data<double>(), gr.data<double>(), gk.data<double>(),
        gv.data<double>(), gw.data<double>(), gu.data<double>());
  } else {
    wkv5_backward_kernel<float><<<blocks, 32, 0, current_stream()>>>(
        g, r.data<float>(), k.data<float>(), v.data<float>(), w.data<float>(), u.data<float>(), ckpt.data<float>(),
        gy.data<float>(), work.data<float>(), gr.data<float>(), gk.data<float>(), gv.data<float>(), gw.data<float>(),
        gu.data<float>());
  }
  CUDA_LAUNCH_CHECK();
}

void wkv7_forward(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                  int64_t chunk, const Tensor& y, const Tensor& ckpt) {
  const Geo g = geo_of(r, chunk);
  if (g.L == 0 || g.H == 0) return;
  const unsigned blocks = static_cast<unsigned>(g.H);
  if (r.dtype() == engine::DType::F64) {
    wkv7_forward_kernel<double><<<blocks, 32, 0, current_stream()>>>(
        g, ops7<double>(r, w, k, v, a, b), y.data<double>(), ckpt.defined() ? ckpt.data<double>() : nullptr);
  } else {
    ENGINE_CHECK(r.dtype() == engine::DType::F32, "wkv7", "CUDA: float32 or float64 only");
    wkv7_forward_kernel<float><<<blocks, 32, 0, current_stream()>>>(
        g, ops7<float>(r, w, k, v, a, b), y.data<float>(), ckpt.defined() ? ckpt.data<float>() : nullptr);
  }
  CUDA_LAUNCH_CHECK();
}

void wkv7_backward(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                   const Tensor& ckpt, const Tensor& gy, int64_t chunk, const Tensor& gr, const Tensor& gw,
                   const Tensor& gk, const Tensor& gv, const Tensor& ga, const Tensor& gb) {
  const Geo g = geo_of(r, chunk);
  if (g.L == 0 || g.H == 0) return;  // every gradient is empty
  const unsigned blocks = static_cast<unsigned>(g.H);
  Tensor work = engine::empty({g.H, g.Q + 1, 32, 32}, r.options());  // recomputed chunk states, see the top
  if (r.dtype() == engine::DType::F64) {
    wkv7_backward_kernel<double><<<blocks, 32, 0, current_stream()>>>(
        g, ops7<double>(r, w, k, v, a, b), ckpt.data<double>(), gy.data<double>(), work.data<double>(),
        Grads7<double>{gr.data<double>(), gw.data<double>(), gk.data<double>(), gv.data<double>(), ga.data<double>(),
                       gb.data<double>()});
  } else {
    wkv7_backward_kernel<float><<<blocks, 32, 0, current_stream()>>>(
        g, ops7<float>(r, w, k, v, a, b), ckpt.data<float>(), gy.data<float>(), work.data<float>(),
        Grads7<float>{gr.data<float>(), gw.data<float>(), gk.data<float>(), gv.data<float>(), ga.data<float>(),
                      gb.data<float>()});
  }
  CUDA_LAUNCH_CHECK();
}

}  // namespace layers::cuda
