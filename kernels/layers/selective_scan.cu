// CUDA kernels of Mamba v1's selective scan (layers/selective_scan_kernels.h): the same checkpointed scan as the
// CPU kernels, made chunk-parallel by state passing. The recurrence is diagonal, so one thread owns one channel e
// (its n states in registers) of one chunk:
//   forward:  (1) chunk_local: each chunk's final state from a zero start and its sum of dt (decay = exp(A sum dt));
//             (2) pass: one thread per (e, s) walks the chunks in order, writing the chunk-start states (ckpt);
//             (3) output: every chunk rescans from its checkpoint and writes y_pre and the gated output.
//   backward: (1) chunk_adjoint: each chunk's adjoint carry from a zero carry at its end;
//             (2) pass in reverse: the adjoint entering each chunk from its right;
//             (3) chunk_backward: states recomputed from the checkpoint in sub-chunks of kSub steps (kept in
//                 per-thread local memory), the adjoint run backwards with every gradient. Sums over channels
//                 (dB, dC) are reduced within each warp by shuffles and written per warp; dA, dD, d delta_bias are
//                 written per chunk; small kernels then sum the partials in a fixed order. No atomics: results are
//                 deterministic.
// Limits on CUDA: d_state <= 64, chunk <= 256 (checked).
#include <algorithm>

#include "kernels/common.cuh"
#include "layers/selective_scan_kernels.h"

namespace layers::cuda {

using engine::Tensor;
using namespace engine::cuda;

namespace {

constexpr int kSub = 16;     // sub-chunk length of the backward recomputation
constexpr int kMaxSub = 16;  // sub-checkpoints per chunk => chunk <= 256
constexpr int kMaxN = 64;
constexpr int kBlockE = 64;  // channels per thread block (2 warps)

struct Geo {
  int64_t L, E, n, Q, nc, nwarps;  // nwarps: warps along E (partial rows of dB, dC)
};

template <int NS>
constexpr int nmax() {
  return NS > 0 ? NS : kMaxN;
}

template <class T>
__device__ T softplus_d(T v) {
  return v > T(20) ? v : log1p(exp(v));
}
template <class T>
__device__ T sigmoid_d(T v) {
  return T(1) / (T(1) + exp(-v));
}

template <class T>
struct In {
  const T *x, *delta, *A, *B, *C, *D, *bias, *z;
  __device__ T dt(int64_t i, int64_t e) const { return softplus_d(delta[i] + bias[e]); }
};

// Block (c, channel block), thread e: the chunk's final state from a zero start, and sum(dt) over the chunk.
template <class T, int NS>
__global__ void chunk_local_kernel(Geo g, In<T> p, T* local, T* dtsum) {
  constexpr int NM = nmax<NS>();
  const int n = NS > 0 ? NS : static_cast<int>(g.n);
  const int64_t c = blockIdx.x, e = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (e >= g.E) return;
  const int64_t t0 = c * g.Q, t1 = min(g.L, t0 + g.Q);
  T s[NM], Ae[NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) s[j] = T(0), Ae[j] = j < n ? p.A[e * g.n + j] : T(0);
  T sum = T(0);
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t i = t * g.E + e;
    const T dt = p.dt(i, e), bx = dt * p.x[i];
    sum += dt;
    const T* Bt = p.B + t * g.n;
#pragma unroll
    for (int j = 0; j < NM; ++j)
      if (j < n) s[j] = exp(dt * Ae[j]) * s[j] + bx * Bt[j];
  }
#pragma unroll
  for (int j = 0; j < NM; ++j)
    if (j < n) local[(c * g.E + e) * g.n + j] = s[j];
  dtsum[c * g.E + e] = sum;
}

// One thread per (e, s): walks the chunks (forward: in order; backward: reversed), writing the value entering each
// chunk, then v = exp(A sum dt_c) v + local_c.
template <class T>
__global__ void pass_kernel(Geo g, const T* A, const T* local, const T* dtsum, T* out, bool backward) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= g.E * g.n) return;
  const int64_t e = idx / g.n;
  const T a = A[idx];
  T v = T(0);
  for (int64_t k = 0; k < g.nc; ++k) {
    const int64_t c = backward ? g.nc - 1 - k : k;
    const int64_t at = c * g.E * g.n + idx;
    out[at] = v;
    v = exp(a * dtsum[c * g.E + e]) * v + local[at];
  }
}

// Block (c, channel block), thread e: rescan the chunk from its checkpoint; write y_pre and the gated output.
template <class T, int NS>
__global__ void output_kernel(Geo g, In<T> p, const T* ckpt, T* y_pre, T* out) {
  constexpr int NM = nmax<NS>();
  const int n = NS > 0 ? NS : static_cast<int>(g.n);
  const int64_t c = blockIdx.x, e = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (e >= g.E) return;
  const int64_t t0 = c * g.Q, t1 = min(g.L, t0 + g.Q);
  T s[NM], Ae[NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) {
    s[j] = j < n ? ckpt[(c * g.E + e) * g.n + j] : T(0);
    Ae[j] = j < n ? p.A[e * g.n + j] : T(0);
  }
  const T De = p.D[e];
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t i = t * g.E + e;
    const T dt = p.dt(i, e), xv = p.x[i], bx = dt * xv;
    const T* Bt = p.B + t * g.n;
    const T* Ct = p.C + t * g.n;
    T y = T(0);
#pragma unroll
    for (int j = 0; j < NM; ++j)
      if (j < n) {
        s[j] = exp(dt * Ae[j]) * s[j] + bx * Bt[j];
        y += Ct[j] * s[j];
      }
    y += De * xv;
    y_pre[i] = y;
    out[i] = p.z ? y * p.z[i] * sigmoid_d(p.z[i]) : y;
  }
}

// The gradient reaching the ungated y at (t, e) (through the silu(z) gate when present).
template <class T>
__device__ T gated_grad(const In<T>& p, const T* gout, int64_t i) {
  return p.z ? gout[i] * p.z[i] * sigmoid_d(p.z[i]) : gout[i];
}

// Block (c, channel block), thread e: the chunk's adjoint carry from a zero carry at its end,
// G <- a_t (G + C_t gy_t) for t from the chunk's last step down to its first.
template <class T, int NS>
__global__ void chunk_adjoint_kernel(Geo g, In<T> p, const T* gout, T* local) {
  constexpr int NM = nmax<NS>();
  const int n = NS > 0 ? NS : static_cast<int>(g.n);
  const int64_t c = blockIdx.x, e = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (e >= g.E) return;
  const int64_t t0 = c * g.Q, t1 = min(g.L, t0 + g.Q);
  T G[NM], Ae[NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) G[j] = T(0), Ae[j] = j < n ? p.A[e * g.n + j] : T(0);
  for (int64_t t = t1 - 1; t >= t0; --t) {
    const int64_t i = t * g.E + e;
    const T dt = p.dt(i, e), gy = gated_grad(p, gout, i);
    const T* Ct = p.C + t * g.n;
#pragma unroll
    for (int j = 0; j < NM; ++j)
      if (j < n) G[j] = exp(dt * Ae[j]) * (G[j] + Ct[j] * gy);
  }
#pragma unroll
  for (int j = 0; j < NM; ++j)
    if (j < n) local[(c * g.E + e) * g.n + j] = G[j];
}

template <class T>
__device__ T warp_sum(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

template <class T>
struct Out {
  T *gx, *gdelta, *gz, *gA_part, *gD_part, *gbias_part, *gB_part, *gC_part;
};

// Block (c, channel block), thread e (every lane of a warp stays to the end for the shuffles): recompute the
// chunk's states from its checkpoint in sub-chunks, run the adjoint backwards from the carry, write gx, gdelta, gz,
// per-chunk partials of dA, dD, d delta_bias and per-warp partials of dB, dC.
template <class T, int NS>
__global__ void chunk_backward_kernel(Geo g, In<T> p, const T* yp, const T* gout, const T* ckpt, const T* carry,
                                      Out<T> o) {
  constexpr int NM = nmax<NS>();
  const int n = NS > 0 ? NS : static_cast<int>(g.n);
  const int64_t c = blockIdx.x, e_raw = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  const bool active = e_raw < g.E;
  const int64_t e = active ? e_raw : 0;
  const int64_t warp = e_raw / 32;
  const int lane = threadIdx.x % 32;
  const int64_t t0 = c * g.Q, t1 = min(g.L, t0 + g.Q);
  const int nsub = static_cast<int>((t1 - t0 + kSub - 1) / kSub);
  T Ae[NM], G[NM], gAe[NM], sub[kMaxSub][NM], hist[kSub][NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) {
    Ae[j] = j < n ? p.A[e * g.n + j] : T(0);
    G[j] = active && j < n ? carry[(c * g.E + e) * g.n + j] : T(0);
    gAe[j] = T(0);
    hist[0][j] = active && j < n ? ckpt[(c * g.E + e) * g.n + j] : T(0);
  }
  // sub-chunk start states
  for (int k = 0; k < nsub; ++k) {
#pragma unroll
    for (int j = 0; j < NM; ++j) sub[k][j] = hist[0][j];
    for (int64_t t = t0 + k * kSub; t < min(t1, t0 + (k + 1) * kSub); ++t) {
      const int64_t i = t * g.E + e;
      const T dt = p.dt(i, e), bx = dt * p.x[i];
#pragma unroll
      for (int j = 0; j < NM; ++j)
        if (j < n) hist[0][j] = exp(dt * Ae[j]) * hist[0][j] + bx * p.B[t * g.n + j];
    }
  }
  T gD = T(0), gbias = T(0);
  for (int k = nsub - 1; k >= 0; --k) {
    const int64_t s0 = t0 + k * kSub, s1 = min(t1, s0 + kSub);
    // states after each step of the sub-chunk
    for (int64_t t = s0; t < s1; ++t) {
      const int64_t i = t * g.E + e;
      const T dt = p.dt(i, e), bx = dt * p.x[i];
      const int r = static_cast<int>(t - s0);
#pragma unroll
      for (int j = 0; j < NM; ++j)
        if (j < n) hist[r][j] = exp(dt * Ae[j]) * (r ? hist[r - 1][j] : sub[k][j]) + bx * p.B[t * g.n + j];
    }
    for (int64_t t = s1 - 1; t >= s0; --t) {
      const int64_t i = t * g.E + e;
      const int r = static_cast<int>(t - s0);
      T gy = T(0), xv = T(0), pre = T(0);
      if (active) {
        gy = gout[i], xv = p.x[i], pre = p.delta[i] + p.bias[e];
        if (p.z) {
          const T zv = p.z[i], sg = sigmoid_d(zv);
          o.gz[i] = gy * yp[i] * sg * (T(1) + zv * (T(1) - sg));
          gy *= zv * sg;
        }
      }
      const T dt = softplus_d(pre);
      T gx = T(0), gdt = T(0);
#pragma unroll
      for (int j = 0; j < NM; ++j)
        if (j < n) {
          const T Bj = p.B[t * g.n + j], Cj = p.C[t * g.n + j];
          const T hprev = r ? hist[r - 1][j] : sub[k][j];
          const T gh = G[j] + Cj * gy;
          const T a = exp(dt * Ae[j]);
          const T cB = warp_sum(gh * dt * xv), cC = warp_sum(gy * hist[r][j]);
          if (lane == 0 && warp < g.nwarps) {
            o.gB_part[(warp * g.L + t) * g.n + j] = cB;
            o.gC_part[(warp * g.L + t) * g.n + j] = cC;
          }
          gx += gh * dt * Bj;
          gdt += gh * (Ae[j] * a * hprev + Bj * xv);
          gAe[j] += gh * dt * a * hprev;
          G[j] = gh * a;
        }
      if (active) {
        o.gx[i] = gx + gy * p.D[e];
        const T gpre = gdt * sigmoid_d(pre);
        o.gdelta[i] = gpre;
        gbias += gpre;
        gD += gy * xv;
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int j = 0; j < NM; ++j)
    if (j < n) o.gA_part[(c * g.E + e) * g.n + j] = gAe[j];
  o.gD_part[c * g.E + e] = gD;
  o.gbias_part[c * g.E + e] = gbias;
}

// out[j] = sum_r part[r * m + j] over r < rows, in order.
template <class T>
__global__ void sum_rows_kernel(const T* part, int64_t rows, int64_t m, T* out) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= m) return;
  T s = T(0);
  for (int64_t r = 0; r < rows; ++r) s += part[r * m + j];
  out[j] = s;
}

template <class T>
void sum_rows(const Tensor& part, int64_t rows, int64_t m, const Tensor& out) {
  sum_rows_kernel<T><<<blocks_for(m), kThreads, 0, current_stream()>>>(part.data<T>(), rows, m, out.data<T>());
  CUDA_LAUNCH_CHECK();
}

Geo geo_of(const Tensor& x, const Tensor& A, int64_t chunk) {
  Geo g;
  g.L = x.size(0);
  g.E = x.size(1);
  g.n = A.size(1);
  g.Q = chunk;
  g.nc = (g.L + chunk - 1) / chunk;
  g.nwarps = (g.E + 31) / 32;
  ENGINE_CHECK(g.n <= kMaxN, "selective_scan", "CUDA: d_state {} > {}", g.n, kMaxN);
  ENGINE_CHECK(chunk <= kSub * kMaxSub, "selective_scan", "CUDA: chunk {} > {}", chunk, kSub * kMaxSub);
  return g;
}

template <class T>
In<T> inputs_of(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                const Tensor& D, const Tensor& bias, const Tensor& z) {
  return {x.data<T>(), delta.data<T>(), A.data<T>(),    B.data<T>(),
          C.data<T>(), D.data<T>(),     bias.data<T>(), z.defined() ? z.data<T>() : nullptr};
}

dim3 chunk_grid(const Geo& g) {
  return dim3(static_cast<unsigned>(g.nc), static_cast<unsigned>((g.E + kBlockE - 1) / kBlockE));
}

template <class T, int NS>
void forward_impl(const Geo& g, const In<T>& p, const Tensor& A, const Tensor& out, const Tensor& y_pre,
                  const Tensor& ckpt_in) {
  const auto opt = out.options();
  Tensor ckpt = ckpt_in.defined() ? ckpt_in : engine::empty({g.nc, g.E, g.n}, opt);
  Tensor local = engine::empty({g.nc, g.E, g.n}, opt);  // chunk-local final states
  Tensor dtsum = engine::empty({g.nc, g.E}, opt);
  chunk_local_kernel<T, NS><<<chunk_grid(g), kBlockE, 0, current_stream()>>>(g, p, local.data<T>(), dtsum.data<T>());
  CUDA_LAUNCH_CHECK();
  pass_kernel<T><<<blocks_for(g.E * g.n), kThreads, 0, current_stream()>>>(g, A.data<T>(), local.data<T>(),
                                                                           dtsum.data<T>(), ckpt.data<T>(), false);
  CUDA_LAUNCH_CHECK();
  output_kernel<T, NS><<<chunk_grid(g), kBlockE, 0, current_stream()>>>(g, p, ckpt.data<T>(), y_pre.data<T>(),
                                                                         out.data<T>());
  CUDA_LAUNCH_CHECK();
}

template <class T, int NS>
void backward_impl(const Geo& g, const In<T>& p, const Tensor& A, const Tensor& y_pre, const Tensor& ckpt,
                   const Tensor& gout, const Tensor& gx, const Tensor& gdelta, const Tensor& gA, const Tensor& gB,
                   const Tensor& gC, const Tensor& gD, const Tensor& gbias, const Tensor& gz) {
  const auto opt = gx.options();
  Tensor local = engine::empty({g.nc, g.E, g.n}, opt);
  Tensor carry = engine::empty({g.nc, g.E, g.n}, opt);
  Tensor dtsum = engine::empty({g.nc, g.E}, opt);
  Tensor scratch = engine::empty({g.nc, g.E, g.n}, opt);
  // dtsum is recomputed by the forward chunk_local kernel (its states go to a scratch buffer)
  chunk_local_kernel<T, NS><<<chunk_grid(g), kBlockE, 0, current_stream()>>>(g, p, scratch.data<T>(),
                                                                             dtsum.data<T>());
  CUDA_LAUNCH_CHECK();
  chunk_adjoint_kernel<T, NS><<<chunk_grid(g), kBlockE, 0, current_stream()>>>(g, p, gout.data<T>(),
                                                                               local.data<T>());
  CUDA_LAUNCH_CHECK();
  pass_kernel<T><<<blocks_for(g.E * g.n), kThreads, 0, current_stream()>>>(g, A.data<T>(), local.data<T>(),
                                                                           dtsum.data<T>(), carry.data<T>(), true);
  CUDA_LAUNCH_CHECK();
  Tensor gA_part = engine::empty({g.nc, g.E, g.n}, opt), gD_part = engine::empty({g.nc, g.E}, opt);
  Tensor gbias_part = engine::empty({g.nc, g.E}, opt);
  Tensor gB_part = engine::empty({g.nwarps, g.L, g.n}, opt), gC_part = engine::empty({g.nwarps, g.L, g.n}, opt);
  const Out<T> o{gx.data<T>(),      gdelta.data<T>(),  gz.defined() ? gz.data<T>() : nullptr,
                 gA_part.data<T>(), gD_part.data<T>(), gbias_part.data<T>(),
                 gB_part.data<T>(), gC_part.data<T>()};
  chunk_backward_kernel<T, NS><<<chunk_grid(g), kBlockE, 0, current_stream()>>>(
      g, p, y_pre.data<T>(), gout.data<T>(), ckpt.data<T>(), carry.data<T>(), o);
  CUDA_LAUNCH_CHECK();
  sum_rows<T>(gA_part, g.nc, g.E * g.n, gA);
  sum_rows<T>(gD_part, g.nc, g.E, gD);
  sum_rows<T>(gbias_part, g.nc, g.E, gbias);
  sum_rows<T>(gB_part, g.nwarps, g.L * g.n, gB);
  sum_rows<T>(gC_part, g.nwarps, g.L * g.n, gC);
}

template <int NS>
void forward_typed(const Geo& g, const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B,
                   const Tensor& C, const Tensor& D, const Tensor& bias, const Tensor& z, const Tensor& out,
                   const Tensor& y_pre, const Tensor& ckpt) {
  if (x.dtype() == engine::DType::F64)
    forward_impl<double, NS>(g, inputs_of<double>(x, delta, A, B, C, D, bias, z), A, out, y_pre, ckpt);
  else
    forward_impl<float, NS>(g, inputs_of<float>(x, delta, A, B, C, D, bias, z), A, out, y_pre, ckpt);
}

}  // namespace

void selective_scan_forward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                            const Tensor& D, const Tensor& delta_bias, const Tensor& z, int64_t chunk,
                            const Tensor& out, const Tensor& y_pre, const Tensor& ckpt) {
  ENGINE_CHECK(x.dtype() == engine::DType::F32 || x.dtype() == engine::DType::F64, "selective_scan",
               "CUDA: float32 or float64 only");
  const Geo g = geo_of(x, A, chunk);
  if (g.L == 0 || g.E == 0) return;
  if (g.n == 16) forward_typed<16>(g, x, delta, A, B, C, D, delta_bias, z, out, y_pre, ckpt);
  else forward_typed<0>(g, x, delta, A, B, C, D, delta_bias, z, out, y_pre, ckpt);
}

void selective_scan_backward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                             const Tensor& D, const Tensor& delta_bias, const Tensor& z, const Tensor& y_pre,
                             const Tensor& ckpt, const Tensor& gout, int64_t chunk, const Tensor& gx,
                             const Tensor& gdelta, const Tensor& gA, const Tensor& gB, const Tensor& gC,
                             const Tensor& gD, const Tensor& gbias, const Tensor& gz) {
  const Geo g = geo_of(x, A, chunk);
  if (g.L == 0 || g.E == 0) {
    for (Tensor t : {gA, gD, gbias})  // handles share storage: zero the caller's tensors
      t.fill_(0.0);
    return;
  }
  const bool f64 = x.dtype() == engine::DType::F64;
  auto run = [&](auto tag, auto ns) {
    using T = decltype(tag);
    backward_impl<T, decltype(ns)::value>(g, inputs_of<T>(x, delta, A, B, C, D, delta_bias, z), A, y_pre, ckpt,
                                          gout, gx, gdelta, gA, gB, gC, gD, gbias, gz);
  };
  if (g.n == 16) {
    if (f64) run(double(), std::integral_constant<int, 16>());
    else run(float(), std::integral_constant<int, 16>());
  } else {
    if (f64) run(double(), std::integral_constant<int, 0>());
    else run(float(), std::integral_constant<int, 0>());
  }
}

}  // namespace layers::cuda
