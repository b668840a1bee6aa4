// CUDA LayerNorm / RMSNorm kernels (see engine/backend/cpu/norm.h for the formulas): one block per row with double
// accumulation and a fixed reduction tree for y and gx; weight/bias gradients as fixed row-chunk partial sums added
// in chunk order (no atomics), so every result is deterministic.
#include <algorithm>
#include <cmath>

#include "engine/backend/cuda/norm.h"
#include "engine/backend/dtype_dispatch.h"
#include "kernels/block_reduce.cuh"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

constexpr int64_t kNormRowChunk = 64;  // rows per partial sum of the weight/bias gradients

template <class T>
__global__ void norm_forward_kernel(const T* x, const T* w, const T* b, double eps, bool center, T* y, T* mean,
                                    T* rstd, int64_t M, int64_t D) {
  __shared__ double shared[kRowThreads];
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const T* row = x + m * D;
    double mu = 0;
    if (center) {
      for (int64_t d = threadIdx.x; d < D; d += kRowThreads) mu += row[d];
      mu = block_reduce(mu, SumOp{}, shared) / static_cast<double>(D);
    }
    double ss = 0;
    for (int64_t d = threadIdx.x; d < D; d += kRowThreads) ss += (row[d] - mu) * (row[d] - mu);
    ss = block_reduce(ss, SumOp{}, shared);
    const double r = 1.0 / sqrt(ss / static_cast<double>(D) + eps);
    if (threadIdx.x == 0) {
      mean[m] = static_cast<T>(mu);
      rstd[m] = static_cast<T>(r);
    }
    for (int64_t d = threadIdx.x; d < D; d += kRowThreads) {
      double v = (row[d] - mu) * r;
      if (w) v *= w[d];
      if (b) v += b[d];
      y[m * D + d] = static_cast<T>(v);
    }
  }
}

template <class T>
__global__ void norm_backward_kernel(const T* x, const T* w, const T* mean, const T* rstd, const T* gy, bool center,
                                     T* gx, int64_t M, int64_t D) {
  __shared__ double shared[kRowThreads];
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const T* row = x + m * D;
    const T* g = gy + m * D;
    const double mu = mean[m], r = rstd[m];
    double sum_gh = 0, sum_ghx = 0;
    for (int64_t d = threadIdx.x; d < D; d += kRowThreads) {
      double gh = w ? static_cast<double>(g[d]) * w[d] : static_cast<double>(g[d]);
      sum_gh += gh;
      sum_ghx += gh * (row[d] - mu) * r;
    }
    sum_gh = block_reduce(sum_gh, SumOp{}, shared);
    sum_ghx = block_reduce(sum_ghx, SumOp{}, shared);
    const double mean_gh = center ? sum_gh / static_cast<double>(D) : 0.0;
    const double mean_ghx = sum_ghx / static_cast<double>(D);
    for (int64_t d = threadIdx.x; d < D; d += kRowThreads) {
      double gh = w ? static_cast<double>(g[d]) * w[d] : static_cast<double>(g[d]);
      gx[m * D + d] = static_cast<T>(r * (gh - mean_gh - (row[d] - mu) * r * mean_ghx));
    }
  }
}

// partial[c, d] = sum over rows of chunk c (in order) of gy * xhat (pw) and gy (pb); one thread per (c, d), so
// neighbouring threads read neighbouring columns. pw or pb may be null.
template <class T>
__global__ void norm_param_partials_kernel(const T* x, const T* mean, const T* rstd, const T* gy, int64_t M, int64_t D,
                                           int64_t chunks, double* pw, double* pb) {
  CUDA_KERNEL_LOOP(i, chunks * D) {
    const int64_t c = i / D, d = i % D, m1 = (c + 1) * kNormRowChunk < M ? (c + 1) * kNormRowChunk : M;
    double aw = 0, ab = 0;
    for (int64_t m = c * kNormRowChunk; m < m1; ++m) {
      const double g = gy[m * D + d];
      aw += g * (x[m * D + d] - static_cast<double>(mean[m])) * static_cast<double>(rstd[m]);
      ab += g;
    }
    if (pw) pw[i] = aw;
    if (pb) pb[i] = ab;
  }
}

// out[d] = sum over chunks c (in order) of partial[c, d], for the gradients that are wanted (non-null).
template <class T>
__global__ void norm_param_finish_kernel(const double* pw, const double* pb, int64_t chunks, int64_t D, T* gw, T* gb) {
  CUDA_KERNEL_LOOP(d, D) {
    double sw = 0, sb = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      if (pw) sw += pw[c * D + d];
      if (pb) sb += pb[c * D + d];
    }
    if (gw) gw[d] = static_cast<T>(sw);
    if (gb) gb[d] = static_cast<T>(sb);
  }
}

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void norm_forward_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center,
                       const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const int64_t M = x.shape()[0], D = x.shape()[1];
  if (M == 0) return;
  dispatch_float(x.dtype(), "norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    norm_forward_kernel<T><<<row_blocks(M), kRowThreads, 0, current_stream()>>>(
        x.data<T>(), ptr_or_null<T>(weight), ptr_or_null<T>(bias), eps, center, y.data<T>(), mean.data<T>(),
        rstd.data<T>(), M, D);
    CUDA_LAUNCH_CHECK();
  });
}

void norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& gy, bool center, const Tensor& gx, const Tensor& gweight, const Tensor& gbias) {
  const int64_t M = x.shape()[0], D = x.shape()[1];
  const int64_t chunks = std::max<int64_t>(1, (M + kNormRowChunk - 1) / kNormRowChunk);
  dispatch_float(x.dtype(), "norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (gx.defined() && M > 0) {
      norm_backward_kernel<T><<<row_blocks(M), kRowThreads, 0, current_stream()>>>(
          x.data<T>(), ptr_or_null<T>(weight), mean.data<T>(), rstd.data<T>(), gy.data<T>(), center, gx.data<T>(), M,
          D);
      CUDA_LAUNCH_CHECK();
    }
    if (!gweight.defined() && !gbias.defined()) return;
    Tensor partial = empty({2, chunks, D}, TensorOptions(DType::F64, x.device()));  // [gw | gb, chunks, D]
    double* pw = gweight.defined() ? partial.data<double>() : nullptr;
    double* pb = gbias.defined() ? partial.data<double>() + chunks * D : nullptr;
    norm_param_partials_kernel<T><<<blocks_for(chunks * D), kThreads, 0, current_stream()>>>(
        x.data<T>(), mean.data<T>(), rstd.data<T>(), gy.data<T>(), M, D, chunks, pw, pb);
    CUDA_LAUNCH_CHECK();
    norm_param_finish_kernel<T><<<blocks_for(D), kThreads, 0, current_stream()>>>(pw, pb, chunks, D,
                                                                                   ptr_or_null<T>(gweight),
                                                                                   ptr_or_null<T>(gbias));
    CUDA_LAUNCH_CHECK();
  });
}

}  // namespace engine::cuda
