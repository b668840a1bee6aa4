// CUDA kernels of the gated delta rule (layers/gated_delta_kernels.h): the same checkpointed sequential scan as the
// CPU kernels. One thread block per head; thread j owns column j of the head's [K, V] state (K values in registers),
// so the state update, the prediction S^T kn and the output S^T qs are all local to a thread:
//   forward:  inputs staged in shared memory a tile of steps at a time (q and k L2-normalised there), then the
//             recurrence runs from shared memory; the state is written to ckpt [H, nchunks, K, V] at chunk starts.
//   backward: per chunk in reverse: the chunk's states are recomputed from its checkpoint into a per-head workspace
//             [H, chunk + 1, K, V] (each thread only touches its own column, so no synchronisation is needed), then
//             the adjoint G (a column per thread, in registers) runs backwards. The sums over columns (dqs, dkn,
//             dbeta, dg) go through warp shuffles and a fixed-order pass over the warps' partials in shared memory:
//             deterministic, no atomics. A last elementwise kernel applies the L2-norm Jacobians to dq and dk.
// Limits on CUDA: K <= 128, V <= 1024 (checked).
#include <algorithm>

#include "kernels/common.cuh"
#include "layers/gated_delta_kernels.h"

namespace layers::cuda {

using engine::Tensor;
using namespace engine::cuda;

namespace {

struct Geo {
  int64_t T, H, K, V, Q, nchunks;
};

Geo geo_of(const Tensor& q, const Tensor& v, int64_t chunk) {
  Geo g;
  g.T = q.size(0);
  g.H = q.size(1);
  g.K = q.size(2);
  g.V = v.size(2);
  g.Q = chunk;
  g.nchunks = (g.T + chunk - 1) / chunk;
  return g;
}

int threads_for(int64_t V) { return static_cast<int>((V + 31) / 32 * 32); }

template <class T>
__device__ T inv_sqrt_norm(T ss, T eps) {
  return T(1) / sqrt(ss + eps);
}

// ---------------------------------------------------------------- forward

template <class T, int KM>
__global__ void forward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                               const T* __restrict__ g, const T* __restrict__ beta, T* __restrict__ o,
                               T* __restrict__ ckpt, Geo d, T scale, T eps, int TS) {
  extern __shared__ unsigned char smem_raw[];
  T* kn = reinterpret_cast<T*>(smem_raw);  // [TS, K]
  T* qs = kn + TS * d.K;                   // [TS, K]
  T* vv = qs + TS * d.K;                   // [TS, V]
  T* ga = vv + TS * d.V;                   // [TS] exp(g)
  T* bb = ga + TS;                         // [TS]
  const int64_t h = blockIdx.x, H = d.H, K = d.K, V = d.V;
  const int j = threadIdx.x, nt = blockDim.x;
  T s[KM];
#pragma unroll
  for (int r = 0; r < KM; ++r) s[r] = T(0);
  for (int64_t t0 = 0; t0 < d.T; t0 += TS) {
    const int64_t rem = d.T - t0;
    const int len = rem < TS ? static_cast<int>(rem) : TS;
    __syncthreads();  // the previous tile is consumed
    for (int idx = j; idx < len * K; idx += nt) {
      const int64_t i = idx / K, r = idx % K, off = ((t0 + i) * H + h) * K + r;
      kn[idx] = k[off];
      qs[idx] = q[off];
    }
    for (int idx = j; idx < len * V; idx += nt) {
      const int64_t i = idx / V, c = idx % V;
      vv[idx] = v[((t0 + i) * H + h) * V + c];
    }
    for (int i = j; i < len; i += nt) {
      ga[i] = exp(g[(t0 + i) * H + h]);
      bb[i] = beta[(t0 + i) * H + h];
    }
    __syncthreads();
    for (int i = j; i < len; i += nt) {
      T sk = T(0), sq = T(0);
      for (int64_t r = 0; r < K; ++r) {
        sk += kn[i * K + r] * kn[i * K + r];
        sq += qs[i * K + r] * qs[i * K + r];
      }
      const T nk = inv_sqrt_norm(sk, eps), nq = inv_sqrt_norm(sq, eps) * scale;
      for (int64_t r = 0; r < K; ++r) {
        kn[i * K + r] *= nk;
        qs[i * K + r] *= nq;
      }
    }
    __syncthreads();
    if (j < V) {
      for (int i = 0; i < len; ++i) {
        const int64_t t = t0 + i;
        if (ckpt && t % d.Q == 0) {
          T* cp = ckpt + ((h * d.nchunks + t / d.Q) * K) * V + j;
#pragma unroll
          for (int r = 0; r < KM; ++r)
            if (r < K) cp[r * V] = s[r];
        }
        const T* kr = kn + i * K;
        const T* qr = qs + i * K;
        T acc = T(0);
#pragma unroll
        for (int r = 0; r < KM; ++r)
          if (r < K) acc += s[r] * kr[r];
        const T a = ga[i];
        const T u = bb[i] * (vv[i * V + j] - a * acc);
        T oacc = T(0);
#pragma unroll
        for (int r = 0; r < KM; ++r)
          if (r < K) {
            s[r] = a * s[r] + kr[r] * u;
            oacc += s[r] * qr[r];
          }
        o[(t * H + h) * V + j] = oacc;
      }
    }
  }
}

// ---------------------------------------------------------------- backward

template <class T>
__device__ T warp_sum(T x) {
  for (int off = 16; off > 0; off >>= 1) x += __shfl_down_sync(0xffffffffu, x, off);
  return x;  // complete in lane 0
}

// Loads row (t, h) of a [T, H, K] tensor and returns 1 / sqrt(|row|^2 + eps); row[] receives the raw values.
template <class T, int KM>
__device__ T load_row(const T* x, int64_t t, int64_t h, int64_t H, int64_t K, T eps, T (&row)[KM]) {
  T ss = T(0);
#pragma unroll
  for (int r = 0; r < KM; ++r) {
    row[r] = r < K ? x[(t * H + h) * K + r] : T(0);
    ss += row[r] * row[r];
  }
  return inv_sqrt_norm(ss, eps);
}

// Writes the raw dqs (into dq) and dkn (into dk); post_kernel turns them into dq and dk.
template <class T, int KM>
__global__ void backward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                const T* __restrict__ g, const T* __restrict__ beta, const T* __restrict__ ckpt,
                                const T* __restrict__ gout, T* __restrict__ work, T* __restrict__ dq,
                                T* __restrict__ dk, T* __restrict__ dv, T* __restrict__ dg, T* __restrict__ dbeta,
                                Geo d, T scale, T eps) {
  extern __shared__ unsigned char smem_raw[];
  const int nw = blockDim.x / 32, nred = 2 * static_cast<int>(d.K) + 2;
  T* red = reinterpret_cast<T*>(smem_raw);  // [2][nred][nw]
  const int64_t h = blockIdx.x, H = d.H, K = d.K, V = d.V, KV = K * V;
  const int j = threadIdx.x, lane = j % 32, warp = j / 32;
  const bool valid = j < V;
  T* Sb = work + h * (d.Q + 1) * KV;
  T G[KM];
#pragma unroll
  for (int r = 0; r < KM; ++r) G[r] = T(0);
  int buf = 0;
  for (int64_t c = d.nchunks - 1; c >= 0; --c) {
    const int64_t t0 = c * d.Q, len = d.T - t0 < d.Q ? d.T - t0 : d.Q;
    // Recompute the chunk's states into the workspace (own column only).
    if (valid) {
      T s[KM];
      const T* cp = ckpt + ((h * d.nchunks + c) * K) * V + j;
#pragma unroll
      for (int r = 0; r < KM; ++r)
        if (r < K) {
          s[r] = cp[r * V];
          Sb[r * V + j] = s[r];
        }
      for (int64_t i = 0; i < len; ++i) {
        const int64_t t = t0 + i;
        T kr[KM];
        const T nk = load_row<T, KM>(k, t, h, H, K, eps, kr);
        T acc = T(0);
#pragma unroll
        for (int r = 0; r < KM; ++r) {
          kr[r] *= nk;
          if (r < K) acc += s[r] * kr[r];
        }
        const T a = exp(g[t * H + h]);
        const T u = beta[t * H + h] * (v[(t * H + h) * V + j] - a * acc);
        T* sn = Sb + (i + 1) * KV + j;
#pragma unroll
        for (int r = 0; r < KM; ++r)
          if (r < K) {
            s[r] = a * s[r] + kr[r] * u;
            sn[r * V] = s[r];
          }
      }
    }
    // Adjoint recurrence over the chunk in reverse.
    for (int64_t i = len - 1; i >= 0; --i) {
      const int64_t t = t0 + i;
      T kr[KM], qr[KM];
      const T nk = load_row<T, KM>(k, t, h, H, K, eps, kr);
      const T nq = load_row<T, KM>(q, t, h, H, K, eps, qr) * scale;
#pragma unroll
      for (int r = 0; r < KM; ++r) {
        kr[r] *= nk;
        qr[r] *= nq;
      }
      const T a = exp(g[t * H + h]), b = beta[t * H + h];
      const T vj = valid ? v[(t * H + h) * V + j] : T(0);
      const T doj = valid ? gout[(t * H + h) * V + j] : T(0);
      const T* Sprev = Sb + i * KV + j;
      const T* Scur = Sb + (i + 1) * KV + j;
      T du = T(0), wacc = T(0);
#pragma unroll
      for (int r = 0; r < KM; ++r)
        if (r < K) {
          G[r] += qr[r] * doj;
          du += G[r] * kr[r];
          if (valid) wacc += Sprev[r * V] * kr[r];
        }
      const T w = vj - a * wacc, u = b * w, e = -b * du;
      if (valid) dv[(t * H + h) * V + j] = b * du;
      T* rb = red + buf * nred * nw;
      T pdg = T(0);
#pragma unroll
      for (int r = 0; r < KM; ++r)
        if (r < K) {
          const T sp = valid ? Sprev[r * V] : T(0), sc = valid ? Scur[r * V] : T(0);
          const T pq = warp_sum(sc * doj);
          const T pk = warp_sum(G[r] * u + a * sp * e);
          if (lane == 0) {
            rb[r * nw + warp] = pq;
            rb[(K + r) * nw + warp] = pk;
          }
          const T ds = G[r] + kr[r] * e;
          pdg += ds * sp;
          G[r] = a * ds;
        }
      const T sdb = warp_sum(du * w), sdg = warp_sum(pdg);
      if (lane == 0) {
        rb[(2 * K) * nw + warp] = sdb;
        rb[(2 * K + 1) * nw + warp] = sdg;
      }
      __syncthreads();
      for (int idx = j; idx < nred; idx += blockDim.x) {
        T sum = T(0);
        for (int w2 = 0; w2 < nw; ++w2) sum += rb[idx * nw + w2];
        if (idx < K)
          dq[(t * H + h) * K + idx] = sum;  // raw dqs
        else if (idx < 2 * K)
          dk[(t * H + h) * K + (idx - K)] = sum;  // raw dkn
        else if (idx == 2 * K)
          dbeta[t * H + h] = sum;
        else
          dg[t * H + h] = a * sum;
      }
      buf ^= 1;  // the next step writes the other buffer; the sync of that step orders reuse of this one
    }
  }
}

// L2-norm Jacobians, one thread per (t, h): dk = (dkn - kn (kn . dkn)) nk, dq = scale (dqs - qn (qn . dqs)) nq.
template <class T>
__global__ void post_kernel(const T* __restrict__ q, const T* __restrict__ k, T* __restrict__ dq, T* __restrict__ dk,
                            int64_t rows, int64_t K, T scale, T eps) {
  CUDA_KERNEL_LOOP(row, rows) {
    const T* qr = q + row * K;
    const T* kr = k + row * K;
    T* dqr = dq + row * K;
    T* dkr = dk + row * K;
    T sk = T(0), sq = T(0);
    for (int64_t r = 0; r < K; ++r) {
      sk += kr[r] * kr[r];
      sq += qr[r] * qr[r];
    }
    const T nk = inv_sqrt_norm(sk, eps), nq = inv_sqrt_norm(sq, eps);
    T pk = T(0), pq = T(0);
    for (int64_t r = 0; r < K; ++r) {
      pk += kr[r] * nk * dkr[r];
      pq += qr[r] * nq * dqr[r];
    }
    for (int64_t r = 0; r < K; ++r) {
      dkr[r] = (dkr[r] - kr[r] * nk * pk) * nk;
      dqr[r] = scale * (dqr[r] - qr[r] * nq * pq) * nq;
    }
  }
}

constexpr size_t kSmemLimit = 48 * 1024;

void check_sizes(const Geo& d) {
  ENGINE_CHECK(d.K <= 128, "gated_delta_rule", "CUDA kernels support K <= 128, got {}", d.K);
  ENGINE_CHECK(d.V <= 1024, "gated_delta_rule", "CUDA kernels support V <= 1024, got {}", d.V);
}

template <class T, int KM>
void forward_launch(const Geo& d, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                    const Tensor& beta, double scale, double eps, const Tensor& o, const Tensor& ckpt) {
  const size_t row = (2 * d.K + d.V + 2) * sizeof(T);
  const int TS = static_cast<int>(std::max<size_t>(1, std::min<size_t>(32, kSmemLimit / row)));
  forward_kernel<T, KM><<<static_cast<unsigned>(d.H), threads_for(d.V), TS * row, current_stream()>>>(
      q.data<T>(), k.data<T>(), v.data<T>(), g.data<T>(), beta.data<T>(), o.data<T>(),
      ckpt.defined() ? ckpt.data<T>() : nullptr, d, static_cast<T>(scale), static_cast<T>(eps), TS);
  CUDA_LAUNCH_CHECK();
}

template <class T, int KM>
void backward_launch(const Geo& d, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                     const Tensor& beta, const Tensor& ckpt, const Tensor& gout, double scale, double eps,
                     const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dg, const Tensor& dbeta) {
  const int threads = threads_for(d.V), nw = threads / 32;
  const size_t smem = 2 * (2 * d.K + 2) * nw * sizeof(T);
  ENGINE_CHECK(smem <= kSmemLimit, "gated_delta_rule", "CUDA backward: K = {}, V = {} need too much shared memory",
               d.K, d.V);
  Tensor work = engine::empty({d.H, d.Q + 1, d.K, d.V}, q.options());
  backward_kernel<T, KM><<<static_cast<unsigned>(d.H), threads, smem, current_stream()>>>(
      q.data<T>(), k.data<T>(), v.data<T>(), g.data<T>(), beta.data<T>(), ckpt.data<T>(), gout.data<T>(),
      work.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>(), dg.data<T>(), dbeta.data<T>(), d,
      static_cast<T>(scale), static_cast<T>(eps));
  CUDA_LAUNCH_CHECK();
  const int64_t rows = d.T * d.H;
  post_kernel<T><<<blocks_for(rows), kThreads, 0, current_stream()>>>(q.data<T>(), k.data<T>(), dq.data<T>(),
                                                                       dk.data<T>(), rows, d.K,
                                                                       static_cast<T>(scale), static_cast<T>(eps));
  CUDA_LAUNCH_CHECK();
}

template <class T>
void forward_typed(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                   int64_t chunk, double scale, double eps, const Tensor& o, const Tensor& ckpt) {
  const Geo d = geo_of(q, v, chunk);
  check_sizes(d);
  if (d.T == 0 || d.H == 0) return;
  if (d.K <= 16)
    forward_launch<T, 16>(d, q, k, v, g, beta, scale, eps, o, ckpt);
  else if (d.K <= 32)
    forward_launch<T, 32>(d, q, k, v, g, beta, scale, eps, o, ckpt);
  else if (d.K <= 64)
    forward_launch<T, 64>(d, q, k, v, g, beta, scale, eps, o, ckpt);
  else
    forward_launch<T, 128>(d, q, k, v, g, beta, scale, eps, o, ckpt);
}

template <class T>
void backward_typed(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                    const Tensor& ckpt, const Tensor& gout, int64_t chunk, double scale, double eps,
                    const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dg, const Tensor& dbeta) {
  const Geo d = geo_of(q, v, chunk);
  check_sizes(d);
  if (d.T == 0 || d.H == 0) return;
  if (d.K <= 16)
    backward_launch<T, 16>(d, q, k, v, g, beta, ckpt, gout, scale, eps, dq, dk, dv, dg, dbeta);
  else if (d.K <= 32)
    backward_launch<T, 32>(d, q, k, v, g, beta, ckpt, gout, scale, eps, dq, dk, dv, dg, dbeta);
  else if (d.K <= 64)
    backward_launch<T, 64>(d, q, k, v, g, beta, ckpt, gout, scale, eps, dq, dk, dv, dg, dbeta);
  else
    backward_launch<T, 128>(d, q, k, v, g, beta, ckpt, gout, scale, eps, dq, dk, dv, dg, dbeta);
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

}  // namespace layers::cuda
