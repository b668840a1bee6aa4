// CUDA kernels of the SSD scan (layers/ssd_kernels.h), the same checkpointed state scan as the CPU kernels, made
// chunk-parallel by state passing. Every row p of a head's [P, n] state (and of its adjoint) evolves on its own,
// so one thread owns one row (n values in registers) of one (chunk, head):
//   forward:  (1) chunk_local: each chunk's final state from a zero start and its total decay prod(a);
//             (2) pass: one thread per (head, row) walks the chunks in scan order, S'_c = decay_c S'_{c-1} + local_c,
//                 writing the chunk-start checkpoints [H, nchunks, P, n] (kept for the backward);
//             (3) output: every chunk rescans from its checkpoint and writes y.
//   backward: (1) chunk_adjoint: each chunk's adjoint carry a_first G_first from a zero carry, and its decay;
//             (2) pass in reverse scan order: the carry entering each chunk from its right;
//             (3) chunk_backward: per chunk, states recomputed from the checkpoint in sub-chunks of 16 steps, the
//                 adjoint run backwards with every gradient; sums over rows go through shared memory in a fixed
//                 order, per-head B/C gradients [H, L, n] and per-chunk gA/gD partials are then summed in fixed
//                 order by small kernels. No atomics: results are deterministic.
// Limits on CUDA: P <= 1024, n <= 64, chunk <= 256 (checked).
#include <algorithm>

#include "kernels/common.cuh"
#include "layers/ssd_kernels.h"

namespace layers::cuda {

using engine::Tensor;
using namespace engine::cuda;

namespace {

constexpr int kSub = 16;     // sub-chunk length of the backward recomputation
constexpr int kMaxSub = 16;  // sub-checkpoints per chunk => chunk <= 256
constexpr int kMaxN = 64;

struct Geo {
  int64_t L, H, P, n, Q, nc;
  bool rev;
  __device__ int64_t time(int64_t k) const { return rev ? L - 1 - k : k; }
};

template <int NS>
constexpr int nmax() {
  return NS > 0 ? NS : kMaxN;
}

// Block (c, h), thread p: the chunk's final state row from a zero start; thread 0 also writes prod(a).
template <class T, int NS>
__global__ void chunk_local_kernel(Geo g, const T* x, const T* dt, const T* A, const T* B, T* local, T* decay) {
  constexpr int NM = nmax<NS>();
  const int n = NS > 0 ? NS : static_cast<int>(g.n);
  const int64_t c = blockIdx.x, h = blockIdx.y, p = threadIdx.x;
  const int64_t k0 = c * g.Q, k1 = min(g.L, k0 + g.Q);
  const T Ah = A[h];
  T s[NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) s[j] = T(0);
  T dec = T(1);
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t t = g.time(k);
    const T dtv = dt[t * g.H + h];
    const T a = exp(dtv * Ah);
    dec *= a;
    const T bx = dtv * x[(t * g.H + h) * g.P + p];
    const T* Bt = B + t * g.n;
#pragma unroll
    for (int j = 0; j < NM; ++j)
      if (j < n) s[j] = a * s[j] + bx * Bt[j];
  }
  T* out = local + ((h * g.nc + c) * g.P + p) * g.n;
#pragma unroll
  for (int j = 0; j < NM; ++j)
    if (j < n) out[j] = s[j];
  if (p == 0) decay[h * g.nc + c] = dec;
}

// Block (c, h), thread p: the chunk's adjoint carry a_{k0} G_{k0} from a zero carry at its end; thread 0: prod(a).
template <class T, int NS>
__global__ void chunk_adjoint_kernel(Geo g, const T* dt, const T* A, const T* C, const T* gy, T* local, T* decay) {
  constexpr int NM = nmax<NS>();
  const int n = NS > 0 ? NS : static_cast<int>(g.n);
  const int64_t c = blockIdx.x, h = blockIdx.y, p = threadIdx.x;
  const int64_t k0 = c * g.Q, k1 = min(g.L, k0 + g.Q);
  const T Ah = A[h];
  T s[NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) s[j] = T(0);
  T dec = T(1);
  for (int64_t k = k1 - 1; k >= k0; --k) {
    const int64_t t = g.time(k);
    const T a = exp(dt[t * g.H + h] * Ah);
    dec *= a;
    const T gyp = gy[(t * g.H + h) * g.P + p];
    const T* Ct = C + t * g.n;
#pragma unroll
    for (int j = 0; j < NM; ++j)
      if (j < n) s[j] = a * (s[j] + gyp * Ct[j]);
  }
  T* out = local + ((h * g.nc + c) * g.P + p) * g.n;
#pragma unroll
  for (int j = 0; j < NM; ++j)
    if (j < n) out[j] = s[j];
  if (p == 0) decay[h * g.nc + c] = dec;
}

// One thread per (h, p): walks the chunks (forward: in scan order; backward: reversed), writing the value entering
// each chunk, then v = decay_c v + local_c.
template <class T, int NS>
__global__ void pass_kernel(Geo g, const T* local, const T* decay, T* out, bool backward) {
  constexpr int NM = nmax<NS>();
  const int n = NS > 0 ? NS : static_cast<int>(g.n);
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= g.H * g.P) return;
  const int64_t h = idx / g.P, p = idx % g.P;
  T s[NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) s[j] = T(0);
  for (int64_t i = 0; i < g.nc; ++i) {
    const int64_t c = backward ? g.nc - 1 - i : i;
    const int64_t base = ((h * g.nc + c) * g.P + p) * g.n;
    const T d = decay[h * g.nc + c];
#pragma unroll
    for (int j = 0; j < NM; ++j)
      if (j < n) {
        out[base + j] = s[j];
        s[j] = d * s[j] + local[base + j];
      }
  }
}

// Block (c, h), thread p: rescan the chunk from its checkpoint and write y.
template <class T, int NS>
__global__ void output_kernel(Geo g, const T* x, const T* dt, const T* A, const T* B, const T* C, const T* D,
                              const T* ckpt, T* y) {
  constexpr int NM = nmax<NS>();
  const int n = NS > 0 ? NS : static_cast<int>(g.n);
  const int64_t c = blockIdx.x, h = blockIdx.y, p = threadIdx.x;
  const int64_t k0 = c * g.Q, k1 = min(g.L, k0 + g.Q);
  const T Ah = A[h], Dh = D ? D[h] : T(0);
  const T* ck = ckpt + ((h * g.nc + c) * g.P + p) * g.n;
  T s[NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) s[j] = j < n ? ck[j] : T(0);
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t t = g.time(k);
    const T dtv = dt[t * g.H + h];
    const T a = exp(dtv * Ah);
    const T xp = x[(t * g.H + h) * g.P + p];
    const T bx = dtv * xp;
    const T* Bt = B + t * g.n;
    const T* Ct = C + t * g.n;
    T acc = T(0);
#pragma unroll
    for (int j = 0; j < NM; ++j)
      if (j < n) {
        s[j] = a * s[j] + bx * Bt[j];
        acc += s[j] * Ct[j];
      }
    y[(t * g.H + h) * g.P + p] = acc + Dh * xp;
  }
}

// Block (c, h), thread p. Shared memory: [P][2n + 3] per-row contributions of one step (gC, gB/dt, x.u, <G, S_prev>,
// gy.x), summed over rows in order by the threads owning each column.
template <class T, int NS>
__global__ void chunk_backward_kernel(Geo g, const T* x, const T* dt, const T* A, const T* B, const T* C, const T* D,
                                      const T* ckpt, const T* carry, const T* gy, T* gx, T* gdt, T* gBh, T* gCh,
                                      double* gA_part, double* gD_part) {
  constexpr int NM = nmax<NS>();
  const int n = NS > 0 ? NS : static_cast<int>(g.n);
  extern __shared__ unsigned char smem_raw[];
  T* red = reinterpret_cast<T*>(smem_raw);
  const int W = 2 * n + 3;
  const int64_t c = blockIdx.x, h = blockIdx.y;
  const int p = threadIdx.x, P = static_cast<int>(g.P);
  const int64_t k0 = c * g.Q, k1 = min(g.L, k0 + g.Q);
  const T Ah = A[h], Dh = D ? D[h] : T(0);
  const int64_t row = ((h * g.nc + c) * g.P + p) * g.n;

  // Sub-checkpoints of this row every kSub steps.
  T ck[kMaxSub][NM];
  T s[NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) s[j] = j < n ? ckpt[row + j] : T(0);
  for (int64_t k = k0; k < k1; ++k) {
    if ((k - k0) % kSub == 0) {
      const int64_t sc = (k - k0) / kSub;
#pragma unroll
      for (int j = 0; j < NM; ++j) ck[sc][j] = s[j];
    }
    const int64_t t = g.time(k);
    const T dtv = dt[t * g.H + h];
    const T a = exp(dtv * Ah);
    const T bx = dtv * x[(t * g.H + h) * g.P + p];
    const T* Bt = B + t * g.n;
#pragma unroll
    for (int j = 0; j < NM; ++j)
      if (j < n) s[j] = a * s[j] + bx * Bt[j];
  }

  T G[NM];
#pragma unroll
  for (int j = 0; j < NM; ++j) G[j] = j < n ? carry[row + j] : T(0);
  double gA_acc = 0.0, gD_acc = 0.0;
  T sb[kSub + 1][NM];
  const int64_t nsub = (k1 - k0 + kSub - 1) / kSub;
  for (int64_t sc = nsub - 1; sc >= 0; --sc) {
    const int64_t kb = k0 + sc * kSub, ke = min(k1, kb + kSub);
#pragma unroll
    for (int j = 0; j < NM; ++j) sb[0][j] = ck[sc][j];
    for (int64_t i = 0; i < ke - kb; ++i) {
      const int64_t t = g.time(kb + i);
      const T dtv = dt[t * g.H + h];
      const T a = exp(dtv * Ah);
      const T bx = dtv * x[(t * g.H + h) * g.P + p];
      const T* Bt = B + t * g.n;
#pragma unroll
      for (int j = 0; j < NM; ++j)
        if (j < n) sb[i + 1][j] = a * sb[i][j] + bx * Bt[j];
    }
    for (int64_t i = ke - kb - 1; i >= 0; --i) {
      const int64_t t = g.time(kb + i);
      const T dtv = dt[t * g.H + h];
      const T a = exp(dtv * Ah);
      const T xp = x[(t * g.H + h) * g.P + p];
      const T gyp = gy[(t * g.H + h) * g.P + p];
      const T* Bt = B + t * g.n;
      const T* Ct = C + t * g.n;
      T* r = red + p * W;
      T u = T(0), dd = T(0);
#pragma unroll
      for (int j = 0; j < NM; ++j)
        if (j < n) {
          const T gj = G[j] + gyp * Ct[j];
          r[j] = gyp * sb[i + 1][j];
          r[n + j] = xp * gj;
          u += gj * Bt[j];
          dd += gj * sb[i][j];
          G[j] = a * gj;
        }
      gx[(t * g.H + h) * g.P + p] = dtv * u + Dh * gyp;
      r[2 * n] = xp * u;
      r[2 * n + 1] = dd;
      r[2 * n + 2] = gyp * xp;
      __syncthreads();
      for (int col = p; col < W; col += P) {
        if (col == 2 * n + 1) continue;  // summed with column 2n
        T sum = T(0);
        for (int q = 0; q < P; ++q) sum += red[q * W + col];
        if (col < n) {
          gCh[(h * g.L + t) * g.n + col] = sum;
        } else if (col < 2 * n) {
          gBh[(h * g.L + t) * g.n + col - n] = dtv * sum;
        } else if (col == 2 * n) {
          T gs = T(0);
          for (int q = 0; q < P; ++q) gs += red[q * W + 2 * n + 1];
          gdt[t * g.H + h] = sum + Ah * a * gs;
          gA_acc += static_cast<double>(dtv * a * gs);
        } else {
          gD_acc += static_cast<double>(sum);
        }
      }
      __syncthreads();
    }
  }
  if ((2 * n) % P == p) gA_part[h * g.nc + c] = gA_acc;
  if ((2 * n + 2) % P == p) gD_part[h * g.nc + c] = gD_acc;
}

// gB[i] = sum_h gBh[h, i], gC likewise (fixed head order).
template <class T>
__global__ void sum_heads_kernel(const T* gBh, const T* gCh, int64_t H, int64_t Ln, T* gB, T* gC) {
  CUDA_KERNEL_LOOP(i, Ln) {
    T sb = T(0), sc = T(0);
    for (int64_t h = 0; h < H; ++h) {
      sb += gBh[h * Ln + i];
      sc += gCh[h * Ln + i];
    }
    gB[i] = sb;
    gC[i] = sc;
  }
}

// gA[h] = sum_c part[h, c] (fixed chunk order), gD likewise when requested.
template <class T>
__global__ void sum_chunks_kernel(const double* gA_part, const double* gD_part, int64_t H, int64_t nc, T* gA, T* gD) {
  CUDA_KERNEL_LOOP(h, H) {
    double a = 0.0, d = 0.0;
    for (int64_t c = 0; c < nc; ++c) {
      a += gA_part[h * nc + c];
      d += gD_part[h * nc + c];
    }
    gA[h] = static_cast<T>(a);
    if (gD) gD[h] = static_cast<T>(d);
  }
}

Geo geo_of(const Tensor& x, const Tensor& B, int64_t chunk, bool reverse) {
  Geo g;
  g.L = x.size(0);
  g.H = x.size(1);
  g.P = x.size(2);
  g.n = B.size(1);
  g.Q = chunk;
  g.nc = (g.L + chunk - 1) / chunk;
  g.rev = reverse;
  ENGINE_CHECK(g.P <= 1024, "ssd_scan", "CUDA: headdim {} > 1024", g.P);
  ENGINE_CHECK(g.n <= kMaxN, "ssd_scan", "CUDA: d_state {} > {}", g.n, kMaxN);
  ENGINE_CHECK(chunk <= kSub * kMaxSub, "ssd_scan", "CUDA: chunk {} > {}", chunk, kSub * kMaxSub);
  return g;
}

template <class T, int NS>
void forward_impl(const Geo& g, const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                  const Tensor& D, const Tensor& y, const Tensor& ckpt_in) {
  const auto opt = x.options();
  Tensor ckpt = ckpt_in.defined() ? ckpt_in : engine::empty({g.H, g.nc, g.P, g.n}, opt);
  Tensor local = engine::empty({g.H, g.nc, g.P, g.n}, opt);
  Tensor decay = engine::empty({g.H, g.nc}, opt);
  const dim3 grid(static_cast<unsigned>(g.nc), static_cast<unsigned>(g.H));
  const unsigned threads = static_cast<unsigned>(g.P);
  const T* Dp = D.defined() ? D.data<T>() : nullptr;
  chunk_local_kernel<T, NS><<<grid, threads, 0, current_stream()>>>(g, x.data<T>(), dt.data<T>(), A.data<T>(),
                                                                     B.data<T>(), local.data<T>(), decay.data<T>());
  CUDA_LAUNCH_CHECK();
  pass_kernel<T, NS><<<blocks_for(g.H * g.P, 128), 128, 0, current_stream()>>>(g, local.data<T>(), decay.data<T>(),
                                                                                ckpt.data<T>(), false);
  CUDA_LAUNCH_CHECK();
  output_kernel<T, NS><<<grid, threads, 0, current_stream()>>>(g, x.data<T>(), dt.data<T>(), A.data<T>(), B.data<T>(),
                                                                C.data<T>(), Dp, ckpt.data<T>(), y.data<T>());
  CUDA_LAUNCH_CHECK();
}

template <class T, int NS>
void backward_impl(const Geo& g, const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                   const Tensor& D, const Tensor& ckpt, const Tensor& gy, const Tensor& gx, const Tensor& gdt,
                   const Tensor& gA, const Tensor& gB, const Tensor& gC, const Tensor& gD) {
  const auto opt = x.options();
  Tensor local = engine::empty({g.H, g.nc, g.P, g.n}, opt);
  Tensor carry = engine::empty({g.H, g.nc, g.P, g.n}, opt);
  Tensor decay = engine::empty({g.H, g.nc}, opt);
  Tensor gBh = engine::empty({g.H, g.L, g.n}, opt);
  Tensor gCh = engine::empty({g.H, g.L, g.n}, opt);
  const engine::TensorOptions dopt(engine::DType::F64, x.device());
  Tensor gA_part = engine::empty({g.H, g.nc}, dopt);
  Tensor gD_part = engine::empty({g.H, g.nc}, dopt);
  const dim3 grid(static_cast<unsigned>(g.nc), static_cast<unsigned>(g.H));
  const unsigned threads = static_cast<unsigned>(g.P);
  const T* Dp = D.defined() ? D.data<T>() : nullptr;
  chunk_adjoint_kernel<T, NS><<<grid, threads, 0, current_stream()>>>(g, dt.data<T>(), A.data<T>(), C.data<T>(),
                                                                       gy.data<T>(), local.data<T>(), decay.data<T>());
  CUDA_LAUNCH_CHECK();
  pass_kernel<T, NS><<<blocks_for(g.H * g.P, 128), 128, 0, current_stream()>>>(g, local.data<T>(), decay.data<T>(),
                                                                                carry.data<T>(), true);
  CUDA_LAUNCH_CHECK();
  const size_t smem = static_cast<size_t>(g.P) * (2 * g.n + 3) * sizeof(T);
  chunk_backward_kernel<T, NS><<<grid, threads, smem, current_stream()>>>(
      g, x.data<T>(), dt.data<T>(), A.data<T>(), B.data<T>(), C.data<T>(), Dp, ckpt.data<T>(), carry.data<T>(),
      gy.data<T>(), gx.data<T>(), gdt.data<T>(), gBh.data<T>(), gCh.data<T>(), gA_part.data<double>(),
      gD_part.data<double>());
  CUDA_LAUNCH_CHECK();
  const int64_t Ln = g.L * g.n;
  sum_heads_kernel<T><<<blocks_for(Ln), kThreads, 0, current_stream()>>>(gBh.data<T>(), gCh.data<T>(), g.H, Ln,
                                                                          gB.data<T>(), gC.data<T>());
  CUDA_LAUNCH_CHECK();
  sum_chunks_kernel<T><<<blocks_for(g.H), kThreads, 0, current_stream()>>>(
      gA_part.data<double>(), gD_part.data<double>(), g.H, g.nc, gA.data<T>(), gD.defined() ? gD.data<T>() : nullptr);
  CUDA_LAUNCH_CHECK();
}

}  // namespace

void ssd_forward(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                 const Tensor& D, int64_t chunk, bool reverse, const Tensor& y, const Tensor& ckpt) {
  const Geo g = geo_of(x, B, chunk, reverse);
  if (g.L == 0 || g.H == 0 || g.P == 0) return;
  const bool f64 = x.dtype() == engine::DType::F64;
  if (g.n == 16) {
    if (f64) forward_impl<double, 16>(g, x, dt, A, B, C, D, y, ckpt);
    else forward_impl<float, 16>(g, x, dt, A, B, C, D, y, ckpt);
  } else {
    if (f64) forward_impl<double, 0>(g, x, dt, A, B, C, D, y, ckpt);
    else forward_impl<float, 0>(g, x, dt, A, B, C, D, y, ckpt);
  }
}

void ssd_backward(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                  const Tensor& D, const Tensor& ckpt, const Tensor& gy, int64_t chunk, bool reverse,
                  const Tensor& gx, const Tensor& gdt, const Tensor& gA, const Tensor& gB, const Tensor& gC,
                  const Tensor& gD) {
  const Geo g = geo_of(x, B, chunk, reverse);
  if (g.L == 0 || g.H == 0 || g.P == 0) {
    for (Tensor t : {gA, gD, gB, gC, gdt})  // handles share storage: zero the caller's tensors
      if (t.defined()) t.fill_(0.0);
    return;
  }
  const bool f64 = x.dtype() == engine::DType::F64;
  if (g.n == 16) {
    if (f64) backward_impl<double, 16>(g, x, dt, A, B, C, D, ckpt, gy, gx, gdt, gA, gB, gC, gD);
    else backward_impl<float, 16>(g, x, dt, A, B, C, D, ckpt, gy, gx, gdt, gA, gB, gC, gD);
  } else {
    if (f64) backward_impl<double, 0>(g, x, dt, A, B, C, D, ckpt, gy, gx, gdt, gA, gB, gC, gD);
    else backward_impl<float, 0>(g, x, dt, A, B, C, D, ckpt, gy, gx, gdt, gA, gB, gC, gD);
  }
}

}  // namespace layers::cuda
