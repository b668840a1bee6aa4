// CUDA kernels of the fused softmax attention (layers/dense_attention_kernels.h), the same algorithm as the CPU
// kernels. Blocks of kRows threads cover kRows consecutive rows of one head (grid: row blocks x heads); thread r owns
// row r: its q (or k) row and its accumulators live in registers. The other side's rows are staged in shared memory
// TK at a time over the union of the block's ranges (ranges are monotone in the row index, so the union is one
// interval); each thread skips the staged rows outside its own range.
//   forward: per key an online-softmax update (running max m, sum l, accumulator rescaled by exp(m_old - m_new)).
//   backward: dq_kernel (query rows: D_i = dO_i . o_i, dq) then dkdv_kernel (key rows: dk, dv), probabilities
//             recomputed from lse; each thread writes only its own row: no atomics, deterministic.
// Limits on CUDA: D, Dv <= 128 (checked).
#include <algorithm>
#include <limits>

#include "kernels/common.cuh"
#include "layers/dense_attention_kernels.h"

namespace layers::cuda {

using engine::Tensor;
using namespace engine::cuda;

namespace {

constexpr int kRows = 64;
constexpr size_t kSmemBytes = 40 * 1024;

template <class T>
int tile_rows(size_t row_elems) {
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(64, kSmemBytes / (row_elems * sizeof(T)))));
}

template <class T, int M>
__device__ T dot_reg(const T* r, const T* s, int64_t n) {
  T acc = T(0);
#pragma unroll
  for (int c = 0; c < M; ++c)
    if (c < n) acc += r[c] * s[c];
  return acc;
}

template <class T, int M>
__global__ void forward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                               T* __restrict__ o, T* __restrict__ lse, AttnGeometry g, int TK) {
  extern __shared__ unsigned char smem_raw[];
  T* ks = reinterpret_cast<T*>(smem_raw);  // [TK, D]
  T* vs = ks + TK * g.D;                   // [TK, Dv]
  const int64_t h = blockIdx.y, r0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t r1 = r0 + kRows < g.N ? r0 + kRows : g.N;
  const int64_t i = r0 + threadIdx.x, H = g.H, D = g.D, Dv = g.Dv;
  const bool active = i < g.N;
  const T scale = static_cast<T>(g.scale);
  T qr[M], acc[M];
  int64_t lo = 0, hi = 0;
  if (active) {
    attn_key_range(g, i, &lo, &hi);
#pragma unroll
    for (int c = 0; c < M; ++c) qr[c] = c < D ? q[(i * H + h) * D + c] : T(0);
  }
#pragma unroll
  for (int c = 0; c < M; ++c) acc[c] = T(0);
  T m = -INFINITY, l = T(0);
  int64_t blo, bhi;
  attn_block_key_range(g, r0, r1, &blo, &bhi);
  for (int64_t j0 = blo; j0 < bhi; j0 += TK) {
    const int n = static_cast<int>(bhi - j0 < TK ? bhi - j0 : TK);
    __syncthreads();
    for (int idx = threadIdx.x; idx < n * D; idx += blockDim.x)
      ks[idx] = k[((j0 + idx / D) * H + h) * D + idx % D];
    for (int idx = threadIdx.x; idx < n * Dv; idx += blockDim.x)
      vs[idx] = v[((j0 + idx / Dv) * H + h) * Dv + idx % Dv];
    __syncthreads();
    if (!active) continue;
    for (int t = 0; t < n; ++t) {
      const int64_t j = j0 + t;
      if (j < lo || j >= hi) continue;
      const T s = scale * dot_reg<T, M>(qr, ks + t * D, D);
      const T mn = s > m ? s : m;
      const T corr = exp(m - mn), p = exp(s - mn);
      l = l * corr + p;
#pragma unroll
      for (int c = 0; c < M; ++c)
        if (c < Dv) acc[c] = acc[c] * corr + p * vs[t * Dv + c];
      m = mn;
    }
  }
  if (!active) return;
  const bool none = hi <= lo;
  const T inv = none ? T(0) : T(1) / l;
#pragma unroll
  for (int c = 0; c < M; ++c)
    if (c < Dv) o[(i * H + h) * Dv + c] = acc[c] * inv;
  lse[i * H + h] = none ? -INFINITY : m + log(l);
}

template <class T, int M>
__global__ void dq_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                          const T* __restrict__ o, const T* __restrict__ lse, const T* __restrict__ go,
                          T* __restrict__ Drow, T* __restrict__ dq, AttnGeometry g, int TK) {
  extern __shared__ unsigned char smem_raw[];
  T* ks = reinterpret_cast<T*>(smem_raw);  // [TK, D]
  T* vs = ks + TK * g.D;                   // [TK, Dv]
  const int64_t h = blockIdx.y, r0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t r1 = r0 + kRows < g.N ? r0 + kRows : g.N;
  const int64_t i = r0 + threadIdx.x, H = g.H, D = g.D, Dv = g.Dv;
  const bool active = i < g.N;
  const T scale = static_cast<T>(g.scale);
  T qr[M], gr[M], acc[M];
  T Di = T(0), li = T(0);
  int64_t lo = 0, hi = 0;
  if (active) {
    attn_key_range(g, i, &lo, &hi);
#pragma unroll
    for (int c = 0; c < M; ++c) qr[c] = c < D ? q[(i * H + h) * D + c] : T(0);
#pragma unroll
    for (int c = 0; c < M; ++c) gr[c] = c < Dv ? go[(i * H + h) * Dv + c] : T(0);
#pragma unroll
    for (int c = 0; c < M; ++c)
      if (c < Dv) Di += gr[c] * o[(i * H + h) * Dv + c];
    li = lse[i * H + h];
    Drow[i * H + h] = Di;
  }
#pragma unroll
  for (int c = 0; c < M; ++c) acc[c] = T(0);
  int64_t blo, bhi;
  attn_block_key_range(g, r0, r1, &blo, &bhi);
  for (int64_t j0 = blo; j0 < bhi; j0 += TK) {
    const int n = static_cast<int>(bhi - j0 < TK ? bhi - j0 : TK);
    __syncthreads();
    for (int idx = threadIdx.x; idx < n * D; idx += blockDim.x)
      ks[idx] = k[((j0 + idx / D) * H + h) * D + idx % D];
    for (int idx = threadIdx.x; idx < n * Dv; idx += blockDim.x)
      vs[idx] = v[((j0 + idx / Dv) * H + h) * Dv + idx % Dv];
    __syncthreads();
    if (!active) continue;
    for (int t = 0; t < n; ++t) {
      const int64_t j = j0 + t;
      if (j < lo || j >= hi) continue;
      const T p = exp(scale * dot_reg<T, M>(qr, ks + t * D, D) - li);
      const T ds = p * (dot_reg<T, M>(gr, vs + t * Dv, Dv) - Di) * scale;
#pragma unroll
      for (int c = 0; c < M; ++c)
        if (c < D) acc[c] += ds * ks[t * D + c];
    }
  }
  if (active)
#pragma unroll
    for (int c = 0; c < M; ++c)
      if (c < D) dq[(i * H + h) * D + c] = acc[c];
}

template <class T, int M>
__global__ void dkdv_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                            const T* __restrict__ lse, const T* __restrict__ go, const T* __restrict__ Drow,
                            T* __restrict__ dk, T* __restrict__ dv, AttnGeometry g, int TK) {
  extern __shared__ unsigned char smem_raw[];
  T* qs = reinterpret_cast<T*>(smem_raw);  // [TK, D]
  T* gs = qs + TK * g.D;                   // [TK, Dv]
  T* ls = gs + TK * g.Dv;                  // [TK]
  T* Ds = ls + TK;                         // [TK]
  const int64_t h = blockIdx.y, r0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t r1 = r0 + kRows < g.N ? r0 + kRows : g.N;
  const int64_t j = r0 + threadIdx.x, H = g.H, D = g.D, Dv = g.Dv;
  const bool active = j < g.N;
  const T scale = static_cast<T>(g.scale);
  T kr[M], vr[M], dka[M], dva[M];
  int64_t lo = 0, hi = 0;
  if (active) {
    attn_query_range(g, j, &lo, &hi);
#pragma unroll
    for (int c = 0; c < M; ++c) kr[c] = c < D ? k[(j * H + h) * D + c] : T(0);
#pragma unroll
    for (int c = 0; c < M; ++c) vr[c] = c < Dv ? v[(j * H + h) * Dv + c] : T(0);
  }
#pragma unroll
  for (int c = 0; c < M; ++c) dka[c] = dva[c] = T(0);
  int64_t blo, bhi;
  attn_block_query_range(g, r0, r1, &blo, &bhi);
  for (int64_t i0 = blo; i0 < bhi; i0 += TK) {
    const int n = static_cast<int>(bhi - i0 < TK ? bhi - i0 : TK);
    __syncthreads();
    for (int idx = threadIdx.x; idx < n * D; idx += blockDim.x)
      qs[idx] = q[((i0 + idx / D) * H + h) * D + idx % D];
    for (int idx = threadIdx.x; idx < n * Dv; idx += blockDim.x)
      gs[idx] = go[((i0 + idx / Dv) * H + h) * Dv + idx % Dv];
    for (int idx = threadIdx.x; idx < n; idx += blockDim.x) {
      ls[idx] = lse[(i0 + idx) * H + h];
      Ds[idx] = Drow[(i0 + idx) * H + h];
    }
    __syncthreads();
    if (!active) continue;
    for (int t = 0; t < n; ++t) {
      const int64_t i = i0 + t;
      if (i < lo || i >= hi) continue;
      const T p = exp(scale * dot_reg<T, M>(kr, qs + t * D, D) - ls[t]);
      const T ds = p * (dot_reg<T, M>(vr, gs + t * Dv, Dv) - Ds[t]) * scale;
#pragma unroll
      for (int c = 0; c < M; ++c) {
        if (c < Dv) dva[c] += p * gs[t * Dv + c];
        if (c < D) dka[c] += ds * qs[t * D + c];
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int c = 0; c < M; ++c)
    if (c < D) dk[(j * H + h) * D + c] = dka[c];
#pragma unroll
  for (int c = 0; c < M; ++c)
    if (c < Dv) dv[(j * H + h) * Dv + c] = dva[c];
}

dim3 grid_of(const AttnGeometry& g) {
  return dim3(static_cast<unsigned>((g.N + kRows - 1) / kRows), static_cast<unsigned>(g.H));
}

template <class T, int M>
void forward_launch(const Tensor& q, const Tensor& k, const Tensor& v, const AttnGeometry& g, const Tensor& o,
                    const Tensor& lse) {
  const int TK = tile_rows<T>(static_cast<size_t>(g.D + g.Dv));
  forward_kernel<T, M><<<grid_of(g), kRows, TK * (g.D + g.Dv) * sizeof(T), current_stream()>>>(
      q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>(), lse.data<T>(), g, TK);
  CUDA_LAUNCH_CHECK();
}

template <class T, int M>
void backward_launch(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                     const Tensor& go, const AttnGeometry& g, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  Tensor Drow = engine::empty({g.N, g.H}, q.options());  // [N, H]
  const int TK = tile_rows<T>(static_cast<size_t>(g.D + g.Dv));
  dq_kernel<T, M><<<grid_of(g), kRows, TK * (g.D + g.Dv) * sizeof(T), current_stream()>>>(
      q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>(), lse.data<T>(), go.data<T>(), Drow.data<T>(),
      dq.data<T>(), g, TK);
  CUDA_LAUNCH_CHECK();
  const int TQ = tile_rows<T>(static_cast<size_t>(g.D + g.Dv + 2));
  dkdv_kernel<T, M><<<grid_of(g), kRows, TQ * (g.D + g.Dv + 2) * sizeof(T), current_stream()>>>(
      q.data<T>(), k.data<T>(), v.data<T>(), lse.data<T>(), go.data<T>(), Drow.data<T>(), dk.data<T>(),
      dv.data<T>(), g, TQ);
  CUDA_LAUNCH_CHECK();
}

void check_widths(const AttnGeometry& g) {
  ENGINE_CHECK(g.D <= 128 && g.Dv <= 128, "dense_attention", "CUDA kernels need D, Dv <= 128, got D = {}, Dv = {}",
               g.D, g.Dv);
}

// Calls f.template operator()<M>() with the register width M in {32, 64, 128} that fits D and Dv.
template <class F>
void by_width(const AttnGeometry& g, F&& f) {
  const int64_t w = std::max(g.D, g.Dv);
  if (w <= 32)
    f(std::integral_constant<int, 32>());
  else if (w <= 64)
    f(std::integral_constant<int, 64>());
  else
    f(std::integral_constant<int, 128>());
}

}  // namespace

void dense_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttnGeometry& g,
                             const Tensor& o, const Tensor& lse) {
  check_widths(g);
  if (g.N == 0 || g.H == 0) return;
  by_width(g, [&](auto mw) {
    constexpr int M = decltype(mw)::value;
    if (q.dtype() == engine::DType::F64)
      forward_launch<double, M>(q, k, v, g, o, lse);
    else
      forward_launch<float, M>(q, k, v, g, o, lse);
  });
}

void dense_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                              const Tensor& gout, const AttnGeometry& g, const Tensor& dq, const Tensor& dk,
                              const Tensor& dv) {
  check_widths(g);
  if (g.N == 0 || g.H == 0) return;
  by_width(g, [&](auto mw) {
    constexpr int M = decltype(mw)::value;
    if (q.dtype() == engine::DType::F64)
      backward_launch<double, M>(q, k, v, o, lse, gout, g, dq, dk, dv);
    else
      backward_launch<float, M>(q, k, v, o, lse, gout, g, dq, dk, dv);
  });
}

}  // namespace layers::cuda
