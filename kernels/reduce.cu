// CUDA reductions (see engine/backend/cuda/reduce.h). Sums read the input as [A, R, B] (engine/ops/reduce_layout.h)
// and reduce in a fixed order: one block per row chunk with a shared-memory tree when B == 1, one thread per
// column and row chunk otherwise, then the chunk partials the same way (no atomics).
// Accumulators match the CPU (double for floating types, int64 for integers).
#include <cmath>
#include <type_traits>

#include "engine/backend/cuda/elementwise.h"
#include "engine/backend/cuda/reduce.h"
#include "engine/ops/reduce_layout.h"
#include "engine/backend/dtype_dispatch.h"
#include "kernels/block_reduce.cuh"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

template <class T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

constexpr int64_t kRowChunk = 65536;  // elements of one row summed by one block (B == 1)
constexpr int64_t kColChunk = 512;    // rows summed by one thread (B > 1)

// out[a * nr + c] = sum of x[a, r] over the c-th chunk of kRowChunk elements of row a; one block per (a, c).
template <class In, class Out>
__global__ void sum_rows_kernel(const In* x, Out* out, int64_t A, int64_t R, int64_t nr) {
  __shared__ Acc<In> shared[kRowThreads];
  for (int64_t t = blockIdx.x; t < A * nr; t += gridDim.x) {
    const int64_t a = t / nr, r0 = t % nr * kRowChunk, r1 = r0 + kRowChunk < R ? r0 + kRowChunk : R;
    Acc<In> acc = 0;
    for (int64_t r = r0 + threadIdx.x; r < r1; r += kRowThreads) acc += x[a * R + r];
    acc = block_reduce(acc, SumOp{}, shared);
    if (threadIdx.x == 0) out[t] = static_cast<Out>(acc);
  }
}

// out[(a * nr + c) * B + b] = sum of x[a, r, b] over the c-th chunk of kColChunk rows; one thread per output.
template <class In, class Out>
__global__ void sum_columns_kernel(const In* x, Out* out, int64_t A, int64_t R, int64_t B, int64_t nr) {
  CUDA_KERNEL_LOOP(i, A * nr * B) {
    const int64_t a = i / (nr * B), c = i / B % nr, b = i % B;
    const int64_t r0 = c * kColChunk, r1 = r0 + kColChunk < R ? r0 + kColChunk : R;
    Acc<In> acc = 0;
    for (int64_t r = r0; r < r1; ++r) acc += x[(a * R + r) * B + b];
    out[i] = static_cast<Out>(acc);
  }
}

// out[a, b] = sum_r x[a, r, b] (dense x). A reduction longer than one chunk first writes per-chunk partial sums
// ([A, nr, B] in the accumulator type) and then sums those the same way, so the order is fixed by the shape.
template <class In, class Out>
void sum_arb(const In* x, Out* out, int64_t A, int64_t R, int64_t B, Device device) {
  const int64_t nr = (R + (B == 1 ? kRowChunk : kColChunk) - 1) / (B == 1 ? kRowChunk : kColChunk);
  Tensor partial;  // [A, nr, B] partial sums, only when a row needs more than one chunk
  Acc<In>* dst = nullptr;
  if (nr > 1) {
    partial = empty({A, nr, B}, TensorOptions(dtype_of<Acc<In>>(), device));
    dst = partial.data<Acc<In>>();
  }
  auto launch = [&](auto* target) {
    if (B == 1) {
      sum_rows_kernel<<<row_blocks(A * nr), kRowThreads, 0, current_stream()>>>(x, target, A, R, nr);
    } else {
      sum_columns_kernel<<<blocks_for(A * nr * B), kThreads, 0, current_stream()>>>(x, target, A, R, B, nr);
    }
    CUDA_LAUNCH_CHECK();
  };
  if (nr == 1) return launch(out);
  launch(dst);
  sum_arb<Acc<In>, Out>(dst, out, A, nr, B, device);
}

template <class T>
__device__ bool better(T v, T b, bool is_max) {
  if (b != b) return false;
  return v != v || (is_max ? v > b : v < b);
}

template <class T>
__global__ void arg_extreme_kernel(const T* x, int64_t* out, int64_t M, int64_t R, bool is_max) {
  __shared__ T sv[kRowThreads];
  __shared__ int64_t si[kRowThreads];
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const T* row = x + m * R;
    int64_t best = -1;
    for (int64_t r = threadIdx.x; r < R; r += kRowThreads)
      if (best < 0 || better(row[r], row[best], is_max)) best = r;
    sv[threadIdx.x] = best < 0 ? T(0) : row[best];
    si[threadIdx.x] = best;
    __syncthreads();
    for (int s = kRowThreads / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) {
        int64_t j = si[threadIdx.x + s], i = si[threadIdx.x];
        // Take the other candidate when it is strictly better, or equally good with a lower index.
        bool take = j >= 0 && (i < 0 || better(sv[threadIdx.x + s], sv[threadIdx.x], is_max) ||
                               (!better(sv[threadIdx.x], sv[threadIdx.x + s], is_max) && j < i));
        if (take) {
          sv[threadIdx.x] = sv[threadIdx.x + s];
          si[threadIdx.x] = j;
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) out[m] = si[0] < 0 ? 0 : si[0];
    __syncthreads();
  }
}

template <class T>
__global__ void softmax_kernel(const T* x, T* out, int64_t M, int64_t R, bool log) {
  __shared__ double shared[kRowThreads];
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const T* row = x + m * R;
    T* dst = out + m * R;
    double mx = -INFINITY;
    for (int64_t r = threadIdx.x; r < R; r += kRowThreads) mx = fmax(mx, static_cast<double>(row[r]));
    mx = block_reduce(mx, MaxOp{}, shared);
    if (isinf(mx) && mx < 0) mx = 0;
    const T tmx = static_cast<T>(mx);
    double s = 0;
    for (int64_t r = threadIdx.x; r < R; r += kRowThreads) s += exp(static_cast<double>(row[r] - tmx));
    s = block_reduce(s, SumOp{}, shared);
    if (log) {
      const T lse = static_cast<T>(::log(s)) + tmx;
      for (int64_t r = threadIdx.x; r < R; r += kRowThreads) dst[r] = row[r] - lse;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t r = threadIdx.x; r < R; r += kRowThreads) dst[r] = static_cast<T>(exp(row[r] - tmx)) * inv;
    }
  }
}

template <class T>
__global__ void cumsum_kernel(const T* x, T* out, int64_t M, int64_t R, bool reverse) {
  CUDA_KERNEL_LOOP(m, M) {
    Acc<T> acc = 0;
    for (int64_t i = 0; i < R; ++i) {
      const int64_t r = reverse ? R - 1 - i : i;
      acc += x[m * R + r];
      out[m * R + r] = static_cast<T>(acc);
    }
  }
}

template <class T>
__global__ void cumprod_kernel(const T* x, T* out, int64_t M, int64_t R) {
  CUDA_KERNEL_LOOP(m, M) {
    Acc<T> acc = 1;
    for (int64_t r = 0; r < R; ++r) {
      acc *= x[m * R + r];
      out[m * R + r] = static_cast<T>(acc);
    }
  }
}

// Same formula as the CPU kernel (engine/backend/cpu/reduce.cpp).
template <class T>
__global__ void cumprod_backward_kernel(const T* x, const T* out, const T* g, T* gx, int64_t M, int64_t R) {
  CUDA_KERNEL_LOOP(m, M) {
    const T* xr = x + m * R;
    const T* outr = out + m * R;
    const T* gr = g + m * R;
    T* gxr = gx + m * R;
    int64_t z = R;
    for (int64_t r = 0; r < R; ++r)
      if (xr[r] == T(0)) { z = r; break; }
    double tail = 0;
    for (int64_t i = R - 1; i >= 0; --i) {
      tail += static_cast<double>(gr[i]) * outr[i];
      gxr[i] = i < z ? static_cast<T>(tail / xr[i]) : T(0);
    }
    if (z < R) {
      double run = z > 0 ? static_cast<double>(outr[z - 1]) : 1.0, acc = 0;
      for (int64_t j = z; j < R; ++j) {
        if (j > z) run *= xr[j];
        acc += static_cast<double>(gr[j]) * run;
      }
      gxr[z] = static_cast<T>(acc);
    }
  }
}

int64_t rows_of(const Tensor& t) { return t.shape()[0]; }
int64_t cols_of(const Tensor& t) { return t.shape()[1]; }

}  // namespace

void sum(const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out) {
  if (dims.empty()) return cuda::copy(x, out);
  if (x.numel() == 0) return cuda::fill(out, 0.0);
  ReduceLayout l = reduce_layout(x, dims);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    sum_arb<T, T>(l.x.data<T>(), out.data<T>(), l.A, l.R, l.B, x.device());
  });
}

void arg_extreme_rows(const Tensor& x, const Tensor& out, bool is_max) {
  if (rows_of(x) == 0) return;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    arg_extreme_kernel<T><<<row_blocks(rows_of(x)), kRowThreads, 0, current_stream()>>>(
        x.data<T>(), out.data<int64_t>(), rows_of(x), cols_of(x), is_max);
    CUDA_LAUNCH_CHECK();
  });
}

void softmax_rows(const Tensor& x, const Tensor& out, bool log) {
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), "reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmax_kernel<T><<<row_blocks(rows_of(x)), kRowThreads, 0, current_stream()>>>(x.data<T>(), out.data<T>(),
                                                                                     rows_of(x), cols_of(x), log);
    CUDA_LAUNCH_CHECK();
  });
}

void cumsum_rows(const Tensor& x, const Tensor& out, bool reverse) {
  if (x.numel() == 0) return;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    cumsum_kernel<T><<<blocks_for(rows_of(x)), kThreads, 0, current_stream()>>>(x.data<T>(), out.data<T>(), rows_of(x),
                                                                                 cols_of(x), reverse);
    CUDA_LAUNCH_CHECK();
  });
}

void cumprod_rows(const Tensor& x, const Tensor& out) {
  if (x.numel() == 0) return;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    cumprod_kernel<T><<<blocks_for(rows_of(x)), kThreads, 0, current_stream()>>>(x.data<T>(), out.data<T>(),
                                                                                  rows_of(x), cols_of(x));
    CUDA_LAUNCH_CHECK();
  });
}

void cumprod_backward_rows(const Tensor& x, const Tensor& out, const Tensor& g, const Tensor& gx) {
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), "reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cumprod_backward_kernel<T><<<blocks_for(rows_of(x)), kThreads, 0, current_stream()>>>(
        x.data<T>(), out.data<T>(), g.data<T>(), gx.data<T>(), rows_of(x), cols_of(x));
    CUDA_LAUNCH_CHECK();
  });
}

}  // namespace engine::cuda
