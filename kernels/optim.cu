// CUDA fused optimizer updates: one grid-stride pass per parameter over strided operands (same formulas as
// engine/backend/cpu/optim.cpp, see engine/optim/kernel_args.h).
#include "engine/backend/cuda/optim.h"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

template <class T>
__global__ void sgd_kernel(int64_t n, StridedIndexer<3> ix, T* pp, const T* pg, T* pb, SgdArgs a, bool use_momentum) {
  const T lr = T(a.lr), wd = T(a.weight_decay), mom = T(a.momentum), damp = T(1.0 - a.dampening);
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[3];
    ix.offsets(i, off);
    T& p = pp[off[0]];
    T d = pg[off[1]] + wd * p;
    if (use_momentum) {
      T& b = pb[off[2]];
      b = a.first_step ? d : mom * b + damp * d;
      d = a.nesterov ? d + mom * b : b;
    }
    p -= lr * d;
  }
}

template <class T>
__global__ void adam_kernel(int64_t n, StridedIndexer<4> ix, T* pp, const T* pg, T* pm, T* pv, AdamArgs a) {
  const T decay = a.decoupled_weight_decay ? T(1.0 - a.lr * a.weight_decay) : T(1);
  const T l2 = a.decoupled_weight_decay ? T(0) : T(a.weight_decay);
  const T w1 = T(1.0 - a.beta1), b2 = T(a.beta2), w2 = T(1.0 - a.beta2);
  const T step_size = T(a.lr / a.bias_correction1), bc2 = T(a.bias_correction2_sqrt), eps = T(a.eps);
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[4];
    ix.offsets(i, off);
    T& p = pp[off[0]];
    T& m = pm[off[2]];
    T& v = pv[off[3]];
    const T g = pg[off[1]] + l2 * p;
    p *= decay;
    m += w1 * (g - m);
    v = b2 * v + w2 * g * g;
    p -= step_size * m / (sqrt(v) / bc2 + eps);
  }
}

template <class F>
void dispatch_float_cuda(DType t, const char* op, F&& f) {
  if (t == DType::F32) f(float{});
  else if (t == DType::F64) f(double{});
  else ENGINE_FAIL(op, "expected a float32 or float64 tensor, got {}", dtype_name(t));
}

}  // namespace

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, const SgdArgs& a) {
  const int64_t n = param.numel();
  if (n == 0) return;
  const bool use_momentum = a.momentum != 0.0;
  const Tensor& buf = use_momentum ? momentum_buf : param;  // stands in for the unused buffer's layout
  auto ix = make_indexer<3>(param.shape(), {param.strides(), grad.strides(), buf.strides()});
  dispatch_float_cuda(param.dtype(), "sgd_step", [&](auto zero) {
    using T = decltype(zero);
    sgd_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(n, ix, param.data<T>(), grad.data<T>(),
                                                                    buf.data<T>(), a, use_momentum);
    CUDA_LAUNCH_CHECK();
  });
}

void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const AdamArgs& a) {
  const int64_t n = param.numel();
  if (n == 0) return;
  auto ix = make_indexer<4>(param.shape(), {param.strides(), grad.strides(), exp_avg.strides(), exp_avg_sq.strides()});
  dispatch_float_cuda(param.dtype(), "adam_step", [&](auto zero) {
    using T = decltype(zero);
    adam_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(n, ix, param.data<T>(), grad.data<T>(),
                                                                     exp_avg.data<T>(), exp_avg_sq.data<T>(), a);
    CUDA_LAUNCH_CHECK();
  });
}

}  // namespace engine::cuda
