// CUDA kernels of the depthwise causal 1-D convolution: one thread per output element for the forward and for dx;
// the weight and bias gradients use one block per (channel, tap) that sums over (b, t) with a fixed per-thread
// order and a fixed shared-memory tree (double accumulators), so they are deterministic without atomics.
#include "engine/backend/cuda/conv.h"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

// Element strides of a [B, C, L] view.
struct Strides3 {
  int64_t b, c, t;
};
Strides3 strides3(const Tensor& v) { return {v.strides()[0], v.strides()[1], v.strides()[2]}; }

// out[b, c, t] = bias[c] + sum_k w[c, k] * x[b, c, t - K + 1 + k]; out contiguous [B, C, L]
template <class T>
__global__ void forward_kernel(const T* x, Strides3 sx, const T* w, const T* bias, int64_t C, int64_t L, int64_t K,
                               int64_t total, T* out) {
  CUDA_KERNEL_LOOP(i, total) {
    const int64_t t = i % L, c = (i / L) % C, b = i / (L * C);
    const T* xr = x + b * sx.b + c * sx.c;
    T acc = bias ? bias[c] : T(0);
    for (int64_t k = K - 1 - t > 0 ? K - 1 - t : 0; k < K; ++k) acc += w[c * K + k] * xr[(t - K + 1 + k) * sx.t];
    out[i] = acc;
  }
}

// dx[b, c, s] = sum_k w[c, k] * grad[b, c, s + K - 1 - k]; dx contiguous [B, C, L]
template <class T>
__global__ void dx_kernel(const T* grad, Strides3 sg, const T* w, int64_t C, int64_t L, int64_t K, int64_t total,
                          T* dx) {
  CUDA_KERNEL_LOOP(i, total) {
    const int64_t s = i % L, c = (i / L) % C, b = i / (L * C);
    const T* gr = grad + b * sg.b + c * sg.c;
    T acc = T(0);
    for (int64_t k = s + K - L > 0 ? s + K - L : 0; k < K; ++k) acc += w[c * K + k] * gr[(s + K - 1 - k) * sg.t];
    dx[i] = acc;
  }
}

// Block (c, k): dweight[c, k] = sum_{b, t} grad[b, c, t] * x[b, c, t - K + 1 + k] for k < K, and
// dbias[c] = sum_{b, t} grad[b, c, t] for k == K. Null outputs are skipped.
template <class T>
__global__ void dweight_kernel(const T* x, Strides3 sx, const T* grad, Strides3 sg, int64_t B, int64_t L, int64_t K,
                               T* dweight, T* dbias) {
  const int64_t c = blockIdx.x, k = blockIdx.y;
  T* target = k < K ? dweight : dbias;
  if (!target) return;  // uniform across the block
  double acc = 0.0;
  for (int64_t j = threadIdx.x; j < B * L; j += blockDim.x) {
    const int64_t b = j / L, t = j % L;
    const double g = grad[b * sg.b + c * sg.c + t * sg.t];
    if (k == K) {
      acc += g;
    } else {
      const int64_t s = t - K + 1 + k;
      if (s >= 0) acc += g * static_cast<double>(x[b * sx.b + c * sx.c + s * sx.t]);
    }
  }
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) target[k < K ? c * K + k : c] = static_cast<T>(partial[0]);
}

template <class T>
void forward_typed(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  const int64_t total = out.numel();
  if (total == 0) return;
  forward_kernel<T><<<blocks_for(total), kThreads, 0, current_stream()>>>(
      x.data<T>(), strides3(x), weight.data<T>(), bias.defined() ? bias.data<T>() : nullptr, x.size(1), x.size(2),
      weight.size(1), total, out.data<T>());
  CUDA_LAUNCH_CHECK();
}

template <class T>
void backward_typed(const Tensor& x, const Tensor& weight, const Tensor& grad, const Tensor& dx,
                    const Tensor& dweight, const Tensor& dbias) {
  const int64_t B = x.size(0), C = x.size(1), L = x.size(2), K = weight.size(1);
  if (dx.defined() && dx.numel() > 0) {
    dx_kernel<T><<<blocks_for(dx.numel()), kThreads, 0, current_stream()>>>(
        grad.data<T>(), strides3(grad), weight.data<T>(), C, L, K, dx.numel(), dx.data<T>());
    CUDA_LAUNCH_CHECK();
  }
  if ((dweight.defined() || dbias.defined()) && C > 0) {
    ENGINE_CHECK(K < 65535, "causal_conv1d", "kernel size {} too large for the CUDA weight-gradient grid", K);
    const dim3 grid(static_cast<unsigned>(C), static_cast<unsigned>(K + 1));
    dweight_kernel<T><<<grid, kThreads, 0, current_stream()>>>(
        x.data<T>(), strides3(x), grad.data<T>(), strides3(grad), B, L, K,
        dweight.defined() ? dweight.data<T>() : nullptr, dbias.defined() ? dbias.data<T>() : nullptr);
    CUDA_LAUNCH_CHECK();
  }
}

}  // namespace

void causal_conv1d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  if (x.dtype() == DType::F64) forward_typed<double>(x, weight, bias, out);
  else forward_typed<float>(x, weight, bias, out);
}

void causal_conv1d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad, const Tensor& dx,
                            const Tensor& dweight, const Tensor& dbias) {
  if (x.dtype() == DType::F64) backward_typed<double>(x, weight, grad, dx, dweight, dbias);
  else backward_typed<float>(x, weight, grad, dx, dweight, dbias);
}

}  // namespace engine::cuda
