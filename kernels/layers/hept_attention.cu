// CUDA kernels of HEPT's bucketed RBF attention (see layers/hept_attention_kernels.h). One thread block per
// (bucket, head) of one hash table; the tables are launched one after another so every (row, head) slot is written by
// exactly one block per launch (deterministic, no atomics). Query/key tiles live in shared memory, the feature
// dimension is processed in chunks of DC so any head width fits; the B x B kernel matrix (and, in the backward, the
// B x B upstream matrix) stay in shared memory. Squared distances are computed as differences. The sort itself is
// done by the caller (engine::argsort on the float64 keys).
#include <algorithm>

#include "kernels/common.cuh"
#include "layers/hept_attention_kernels.h"

namespace layers::cuda {

using engine::Tensor;
using engine::cuda::blocks_for;
using engine::cuda::current_stream;
using engine::cuda::kThreads;

namespace {

constexpr int kBlockThreads = 256;

struct Geo {
  int64_t Np, H, D, C, T, B, nb, raw;
};

Geo geo_of(const Tensor& q, const Tensor& coords, const Tensor& perm_q, int64_t raw, int64_t block) {
  return Geo{q.size(0), q.size(1), q.size(2), coords.size(1), perm_q.size(0), block, q.size(0) / block, raw};
}

template <class T>
constexpr int chunk_of() {
  return sizeof(T) == 4 ? 32 : 16;
}

__device__ inline float dexp(float x) { return __expf(x); }
__device__ inline double dexp(double x) { return exp(x); }

// Shared layout: S [B*B], (G [B*B] in the backward), X [B*DC], Y [B*DC], Xc [B*C], Yc [B*C], iq [B], ik [B].
template <class T>
__device__ void load_indices(const Geo& g, const int64_t* pq, const int64_t* pk, int64_t b, int64_t* iq, int64_t* ik) {
  for (int64_t i = threadIdx.x; i < g.B; i += blockDim.x) {
    iq[i] = pq[b * g.B + i];
    ik[i] = pk[b * g.B + i];
  }
}

// Rows of `src` [Np, H, D] for head h, features [e0, e0 + dc), gathered by idx into dst [B][dc]; masked rows zero.
template <class T>
__device__ void load_chunk(const Geo& g, const T* src, const int64_t* idx, int64_t h, int64_t e0, int64_t dc, T* dst) {
  for (int64_t k = threadIdx.x; k < g.B * dc; k += blockDim.x) {
    const int64_t i = k / dc, e = k % dc;
    const int64_t n = idx[i];
    dst[k] = n < g.raw ? src[(n * g.H + h) * g.D + e0 + e] : T(0);
  }
}

template <class T>
__device__ void load_coords(const Geo& g, const T* coords, const int64_t* idx, T* dst) {
  for (int64_t k = threadIdx.x; k < g.B * g.C; k += blockDim.x) {
    const int64_t i = k / g.C, c = k % g.C;
    const int64_t n = idx[i];
    dst[k] = n < g.raw ? coords[n * g.C + c] : T(0);
  }
}

// S[i][j] = exp(-1/2 (|q_i - k_j|^2 + sum_c (s_c (cq_ic - ck_jc))^2)).
template <class T>
__device__ void kernel_matrix(const Geo& g, const T* q, const T* k, const T* s, const T* coords, const int64_t* iq,
                              const int64_t* ik, int64_t h, T* S, T* X, T* Y, T* Xc, T* Yc) {
  constexpr int DC = chunk_of<T>();
  const int64_t BB = g.B * g.B;
  for (int64_t p = threadIdx.x; p < BB; p += blockDim.x) S[p] = T(0);
  for (int64_t e0 = 0; e0 < g.D; e0 += DC) {
    const int64_t dc = min(static_cast<int64_t>(DC), g.D - e0);
    __syncthreads();
    load_chunk(g, q, iq, h, e0, dc, X);
    load_chunk(g, k, ik, h, e0, dc, Y);
    __syncthreads();
    for (int64_t p = threadIdx.x; p < BB; p += blockDim.x) {
      const int64_t i = p / g.B, j = p % g.B;
      T acc = S[p];
      for (int64_t e = 0; e < dc; ++e) {
        const T df = X[i * dc + e] - Y[j * dc + e];
        acc += df * df;
      }
      S[p] = acc;
    }
  }
  __syncthreads();
  load_coords(g, coords, iq, Xc);
  load_coords(g, coords, ik, Yc);
  __syncthreads();
  for (int64_t p = threadIdx.x; p < BB; p += blockDim.x) {
    const int64_t i = p / g.B, j = p % g.B;
    T acc = S[p];
    for (int64_t c = 0; c < g.C; ++c) {
      const T df = s[h * g.C + c] * (Xc[i * g.C + c] - Yc[j * g.C + c]);
      acc += df * df;
    }
    S[p] = dexp(T(-0.5) * acc);
  }
  __syncthreads();
}

template <class T>
__global__ void forward_kernel(Geo g, int64_t t, const T* q, const T* k, const T* v, const T* s, const T* coords,
                               const int64_t* perm_q, const int64_t* perm_k, T* out, T* den) {
  constexpr int DC = chunk_of<T>();
  extern __shared__ unsigned char smem_raw[];
  const int64_t b = blockIdx.x, h = blockIdx.y;
  int64_t* iq = reinterpret_cast<int64_t*>(smem_raw);
  int64_t* ik = iq + g.B;
  T* S = reinterpret_cast<T*>(ik + g.B);
  T* X = S + g.B * g.B;
  T* Y = X + g.B * DC;
  T* Xc = Y + g.B * DC;
  T* Yc = Xc + g.B * g.C;
  const int64_t* pq = perm_q + (t * g.H + h) * g.Np;
  const int64_t* pk = perm_k + (t * g.H + h) * g.Np;
  load_indices<T>(g, pq, pk, b, iq, ik);
  __syncthreads();
  kernel_matrix(g, q, k, s, coords, iq, ik, h, S, X, Y, Xc, Yc);
  for (int64_t i = threadIdx.x; i < g.B; i += blockDim.x) {
    T acc = T(0);
    for (int64_t j = 0; j < g.B; ++j) acc += S[i * g.B + j];
    den[iq[i] * g.H + h] += acc + T(1e-20);
  }
  for (int64_t e0 = 0; e0 < g.D; e0 += DC) {
    const int64_t dc = min(static_cast<int64_t>(DC), g.D - e0);
    __syncthreads();
    load_chunk(g, v, ik, h, e0, dc, Y);
    __syncthreads();
    for (int64_t p = threadIdx.x; p < g.B * dc; p += blockDim.x) {
      const int64_t i = p / dc, e = p % dc;
      T acc = T(0);
      for (int64_t j = 0; j < g.B; ++j) acc += S[i * g.B + j] * Y[j * dc + e];
      out[(iq[i] * g.H + h) * g.D + e0 + e] += acc;
    }
  }
}

template <class T>
__global__ void normalise_kernel(int64_t rows, int64_t D, T* out, const T* den) {
  CUDA_KERNEL_LOOP(idx, rows * D) { out[idx] /= den[idx / D]; }
}

// crow[r] = -(gout_r . out_r) / den_r
template <class T>
__global__ void crow_kernel(int64_t rows, int64_t D, const T* gout, const T* out, const T* den, T* crow) {
  CUDA_KERNEL_LOOP(r, rows) {
    T dot = T(0);
    for (int64_t e = 0; e < D; ++e) dot += gout[r * D + e] * out[r * D + e];
    crow[r] = -dot / den[r];
  }
}

// a = gout / den gathered like a query chunk.
template <class T>
__device__ void load_a_chunk(const Geo& g, const T* gout, const T* den, const int64_t* iq, int64_t h, int64_t e0,
                             int64_t dc, T* dst) {
  for (int64_t k = threadIdx.x; k < g.B * dc; k += blockDim.x) {
    const int64_t i = k / dc, e = k % dc;
    const int64_t r = iq[i] * g.H + h;
    dst[k] = gout[r * g.D + e0 + e] / den[r];
  }
}

template <class T>
__global__ void backward_kernel(Geo g, int64_t t, const T* q, const T* k, const T* v, const T* s, const T* coords,
                                const int64_t* perm_q, const int64_t* perm_k, const T* den, const T* gout,
                                const T* crow, T* gq, T* gk, T* gv, T* gs_part) {
  constexpr int DC = chunk_of<T>();
  extern __shared__ unsigned char smem_raw[];
  const int64_t b = blockIdx.x, h = blockIdx.y;
  int64_t* iq = reinterpret_cast<int64_t*>(smem_raw);
  int64_t* ik = iq + g.B;
  T* S = reinterpret_cast<T*>(ik + g.B);
  T* G = S + g.B * g.B;
  T* X = G + g.B * g.B;
  T* Y = X + g.B * DC;
  T* Xc = Y + g.B * DC;
  T* Yc = Xc + g.B * g.C;
  T* red = Yc + g.B * g.C;  // [blockDim]
  const int64_t BB = g.B * g.B;
  const int64_t* pq = perm_q + (t * g.H + h) * g.Np;
  const int64_t* pk = perm_k + (t * g.H + h) * g.Np;
  load_indices<T>(g, pq, pk, b, iq, ik);
  __syncthreads();
  kernel_matrix(g, q, k, s, coords, iq, ik, h, S, X, Y, Xc, Yc);  // S = kappa; Xc, Yc hold the coords
  for (int64_t p = threadIdx.x; p < BB; p += blockDim.x) G[p] = crow[iq[p / g.B] * g.H + h];
  // gv_j = sum_i kappa_ij a_i;  G_ij = c_i + a_i . v_j
  for (int64_t e0 = 0; e0 < g.D; e0 += DC) {
    const int64_t dc = min(static_cast<int64_t>(DC), g.D - e0);
    __syncthreads();
    load_a_chunk(g, gout, den, iq, h, e0, dc, X);
    load_chunk(g, v, ik, h, e0, dc, Y);
    __syncthreads();
    for (int64_t p = threadIdx.x; p < g.B * dc; p += blockDim.x) {
      const int64_t j = p / dc, e = p % dc;
      if (ik[j] >= g.raw) continue;
      T acc = T(0);
      for (int64_t i = 0; i < g.B; ++i) acc += S[i * g.B + j] * X[i * dc + e];
      gv[(ik[j] * g.H + h) * g.D + e0 + e] += acc;
    }
    for (int64_t p = threadIdx.x; p < BB; p += blockDim.x) {
      const int64_t i = p / g.B, j = p % g.B;
      T acc = G[p];
      for (int64_t e = 0; e < dc; ++e) acc += X[i * dc + e] * Y[j * dc + e];
      G[p] = acc;
    }
  }
  __syncthreads();
  for (int64_t p = threadIdx.x; p < BB; p += blockDim.x) G[p] *= S[p];  // E
  // gq_i = sum_j E_ij (k_j - q_i);  gk_j = sum_i E_ij (q_i - k_j)
  for (int64_t e0 = 0; e0 < g.D; e0 += DC) {
    const int64_t dc = min(static_cast<int64_t>(DC), g.D - e0);
    __syncthreads();
    load_chunk(g, q, iq, h, e0, dc, X);
    load_chunk(g, k, ik, h, e0, dc, Y);
    __syncthreads();
    for (int64_t p = threadIdx.x; p < g.B * dc; p += blockDim.x) {
      const int64_t i = p / dc, e = p % dc;
      if (iq[i] >= g.raw) continue;
      T acc = T(0);
      const T qe = X[i * dc + e];
      for (int64_t j = 0; j < g.B; ++j) acc += G[i * g.B + j] * (Y[j * dc + e] - qe);
      gq[(iq[i] * g.H + h) * g.D + e0 + e] += acc;
    }
    for (int64_t p = threadIdx.x; p < g.B * dc; p += blockDim.x) {
      const int64_t j = p / dc, e = p % dc;
      if (ik[j] >= g.raw) continue;
      T acc = T(0);
      const T ke = Y[j * dc + e];
      for (int64_t i = 0; i < g.B; ++i) acc += G[i * g.B + j] * (X[i * dc + e] - ke);
      gk[(ik[j] * g.H + h) * g.D + e0 + e] += acc;
    }
  }
  // gs_c partial = -s_c sum_ij E_ij (cq_ic - ck_jc)^2  (fixed-order tree reduction)
  for (int64_t c = 0; c < g.C; ++c) {
    T acc = T(0);
    for (int64_t p = threadIdx.x; p < BB; p += blockDim.x) {
      const int64_t i = p / g.B, j = p % g.B;
      const T df = Xc[i * g.C + c] - Yc[j * g.C + c];
      acc += G[p] * df * df;
    }
    __syncthreads();
    red[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned w = blockDim.x / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0) gs_part[((t * g.H + h) * g.nb + b) * g.C + c] = -s[h * g.C + c] * red[0];
  }
}

template <class T>
__global__ void gs_sum_kernel(Geo g, const T* part, T* gs) {
  CUDA_KERNEL_LOOP(idx, g.H * g.C) {
    const int64_t h = idx / g.C, c = idx % g.C;
    T acc = T(0);
    for (int64_t t = 0; t < g.T; ++t)
      for (int64_t b = 0; b < g.nb; ++b) acc += part[((t * g.H + h) * g.nb + b) * g.C + c];
    gs[idx] = acc;
  }
}

template <class T>
__global__ void project_kernel(Geo g, const T* q, const T* k, const T* s, const T* coords, const T* alpha, double* pq,
                               double* pk) {
  CUDA_KERNEL_LOOP(idx, g.Np * g.H) {
    const int64_t n = idx / g.H, h = idx % g.H;
    const int64_t E = g.D + g.C;
    const bool valid = n < g.raw;
    for (int64_t t = 0; t < g.T; ++t) {
      double aq = 0, ak = 0;
      if (valid) {
        const T* al = alpha + h * E * g.T + t;
        for (int64_t e = 0; e < g.D; ++e) {
          aq += static_cast<double>(q[(n * g.H + h) * g.D + e]) * static_cast<double>(al[e * g.T]);
          ak += static_cast<double>(k[(n * g.H + h) * g.D + e]) * static_cast<double>(al[e * g.T]);
        }
        double ac = 0;
        for (int64_t c = 0; c < g.C; ++c)
          ac += static_cast<double>(s[h * g.C + c] * coords[n * g.C + c]) * static_cast<double>(al[(g.D + c) * g.T]);
        aq += ac;
        ak += ac;
      }
      pq[(t * g.H + h) * g.Np + n] = aq;
      pk[(t * g.H + h) * g.Np + n] = ak;
    }
  }
}

template <class T>
size_t smem_bytes(const Geo& g, bool backward) {
  const int64_t DC = chunk_of<T>();
  int64_t elems = g.B * g.B * (backward ? 2 : 1) + 2 * g.B * DC + 2 * g.B * g.C + (backward ? kBlockThreads : 0);
  return static_cast<size_t>(2 * g.B) * sizeof(int64_t) + static_cast<size_t>(elems) * sizeof(T);
}

template <class K>
void prepare_smem(K kernel, size_t bytes, int64_t B) {
  int dev = 0, max_optin = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  ENGINE_CHECK(bytes <= static_cast<size_t>(max_optin), "hept_attention",
               "block_size {} needs {} bytes of shared memory per block, the device allows {}", B, bytes, max_optin);
  if (bytes > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

template <class T>
void forward_impl(const Geo& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                  const Tensor& coords, const Tensor& perm_q, const Tensor& perm_k, const Tensor& out,
                  const Tensor& den) {
  CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, static_cast<size_t>(out.numel()) * sizeof(T), current_stream()));
  CUDA_CHECK(cudaMemsetAsync(den.raw_data(), 0, static_cast<size_t>(den.numel()) * sizeof(T), current_stream()));
  const size_t smem = smem_bytes<T>(g, false);
  prepare_smem(forward_kernel<T>, smem, g.B);
  const dim3 grid(static_cast<unsigned>(g.nb), static_cast<unsigned>(g.H));
  for (int64_t t = 0; t < g.T; ++t) {
    forward_kernel<T><<<grid, kBlockThreads, smem, current_stream()>>>(
        g, t, q.data<T>(), k.data<T>(), v.data<T>(), s.data<T>(), coords.data<T>(), perm_q.data<int64_t>(),
        perm_k.data<int64_t>(), out.data<T>(), den.data<T>());
    CUDA_LAUNCH_CHECK();
  }
  normalise_kernel<T><<<blocks_for(g.Np * g.H * g.D), kThreads, 0, current_stream()>>>(g.Np * g.H, g.D,
                                                                                          out.data<T>(), den.data<T>());
  CUDA_LAUNCH_CHECK();
}

template <class T>
void backward_impl(const Geo& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                   const Tensor& coords, const Tensor& perm_q, const Tensor& perm_k, const Tensor& out,
                   const Tensor& den, const Tensor& gout, const Tensor& gq, const Tensor& gk, const Tensor& gv,
                   const Tensor& gs) {
  const size_t bytes = static_cast<size_t>(q.numel()) * sizeof(T);
  CUDA_CHECK(cudaMemsetAsync(gq.raw_data(), 0, bytes, current_stream()));
  CUDA_CHECK(cudaMemsetAsync(gk.raw_data(), 0, bytes, current_stream()));
  CUDA_CHECK(cudaMemsetAsync(gv.raw_data(), 0, bytes, current_stream()));
  Tensor crow = engine::empty({g.Np, g.H}, q.options());
  Tensor part = engine::empty({g.T, g.H, g.nb, g.C}, q.options());
  crow_kernel<T><<<blocks_for(g.Np * g.H), kThreads, 0, current_stream()>>>(g.Np * g.H, g.D, gout.data<T>(),
                                                                             out.data<T>(), den.data<T>(),
                                                                             crow.data<T>());
  CUDA_LAUNCH_CHECK();
  const size_t smem = smem_bytes<T>(g, true);
  prepare_smem(backward_kernel<T>, smem, g.B);
  const dim3 grid(static_cast<unsigned>(g.nb), static_cast<unsigned>(g.H));
  for (int64_t t = 0; t < g.T; ++t) {
    backward_kernel<T><<<grid, kBlockThreads, smem, current_stream()>>>(
        g, t, q.data<T>(), k.data<T>(), v.data<T>(), s.data<T>(), coords.data<T>(), perm_q.data<int64_t>(),
        perm_k.data<int64_t>(), den.data<T>(), gout.data<T>(), crow.data<T>(), gq.data<T>(), gk.data<T>(),
        gv.data<T>(), part.data<T>());
    CUDA_LAUNCH_CHECK();
  }
  gs_sum_kernel<T><<<blocks_for(g.H * g.C), kThreads, 0, current_stream()>>>(g, part.data<T>(), gs.data<T>());
  CUDA_LAUNCH_CHECK();
}

}  // namespace

void hept_project(const Tensor& q, const Tensor& k, const Tensor& s, const Tensor& coords, const Tensor& alpha,
                  int64_t raw_size, const Tensor& proj_q, const Tensor& proj_k) {
  Geo g{q.size(0), q.size(1), q.size(2), coords.size(1), alpha.size(2), 1, 0, raw_size};
  if (g.Np == 0) return;
  if (q.dtype() == engine::DType::F64) {
    project_kernel<double><<<blocks_for(g.Np * g.H), kThreads, 0, current_stream()>>>(
        g, q.data<double>(), k.data<double>(), s.data<double>(), coords.data<double>(), alpha.data<double>(),
        proj_q.data<double>(), proj_k.data<double>());
  } else {
    project_kernel<float><<<blocks_for(g.Np * g.H), kThreads, 0, current_stream()>>>(
        g, q.data<float>(), k.data<float>(), s.data<float>(), coords.data<float>(), alpha.data<float>(),
        proj_q.data<double>(), proj_k.data<double>());
  }
  CUDA_LAUNCH_CHECK();
}

void hept_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s, const Tensor& coords,
                            const Tensor& perm_q, const Tensor& perm_k, int64_t raw_size, int64_t block_size,
                            const Tensor& out, const Tensor& /*out_lo: CPU only*/, const Tensor& den,
                            const Tensor& /*key_avg: CPU only*/) {
  const Geo g = geo_of(q, coords, perm_q, raw_size, block_size);
  if (g.Np == 0) return;
  if (q.dtype() == engine::DType::F64) forward_impl<double>(g, q, k, v, s, coords, perm_q, perm_k, out, den);
  else forward_impl<float>(g, q, k, v, s, coords, perm_q, perm_k, out, den);
}

void hept_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                             const Tensor& coords, const Tensor& perm_q, const Tensor& perm_k, int64_t raw_size,
                             int64_t block_size, const Tensor& out, const Tensor& /*out_lo: CPU only*/,
                             const Tensor& den, const Tensor& /*key_avg: CPU only*/, const Tensor& gout,
                             const Tensor& gq, const Tensor& gk, const Tensor& gv, const Tensor& gs) {
  const Geo g = geo_of(q, coords, perm_q, raw_size, block_size);
  if (g.Np == 0) return;
  if (q.dtype() == engine::DType::F64)
    backward_impl<double>(g, q, k, v, s, coords, perm_q, perm_k, out, den, gout, gq, gk, gv, gs);
  else
    backward_impl<float>(g, q, k, v, s, coords, perm_q, perm_k, out, den, gout, gq, gk, gv, gs);
}

}  // namespace layers::cuda
