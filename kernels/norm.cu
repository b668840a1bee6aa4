// CUDA LayerNorm / RMSNorm row kernels (see engine/backend/cpu/norm.h for the formulas): one block per row, double
// accumulation and a fixed reduction tree, so results are deterministic.
#include <cmath>

#include "engine/backend/cuda/norm.h"
#include "kernels/block_reduce.cuh"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

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

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <class F>
void dispatch_real(DType t, F&& f) {
  if (t == DType::F64) f(TypeTag<double>{});
  else f(TypeTag<float>{});
}

}  // namespace

void norm_forward_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center,
                       const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const int64_t M = x.shape()[0], D = x.shape()[1];
  if (M == 0) return;
  dispatch_real(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    norm_forward_kernel<T><<<row_blocks(M), kRowThreads, 0, current_stream()>>>(
        x.data<T>(), ptr_or_null<T>(weight), ptr_or_null<T>(bias), eps, center, y.data<T>(), mean.data<T>(),
        rstd.data<T>(), M, D);
    CUDA_LAUNCH_CHECK();
  });
}

void norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& gy, bool center, const Tensor& gx) {
  const int64_t M = x.shape()[0], D = x.shape()[1];
  if (M == 0) return;
  dispatch_real(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    norm_backward_kernel<T><<<row_blocks(M), kRowThreads, 0, current_stream()>>>(
        x.data<T>(), ptr_or_null<T>(weight), mean.data<T>(), rstd.data<T>(), gy.data<T>(), center, gx.data<T>(), M, D);
    CUDA_LAUNCH_CHECK();
  });
}

}  // namespace engine::cuda
