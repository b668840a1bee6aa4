// CPU fused optimizer updates over strided operands (parallel over runs of the innermost dimension).
#include "engine/backend/cpu/optim.h"

#include <cmath>

#include "engine/backend/cpu/loops.h"

namespace engine::cpu {

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, const SgdArgs& a) {
  const bool use_momentum = a.momentum != 0.0;
  const Tensor& buf = use_momentum ? momentum_buf : param;  // stands in for the unused buffer's layout
  dispatch_float(param.dtype(), "sgd_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* pp = param.data<T>();
    const T* pg = grad.data<T>();
    T* pb = buf.data<T>();
    const T lr = T(a.lr), wd = T(a.weight_decay), mom = T(a.momentum), damp = T(1.0 - a.dampening);
    auto update = [&](T& p, T g, T& b) {
      T d = g + wd * p;
      if (use_momentum) {
        b = a.first_step ? d : mom * b + damp * d;
        d = a.nesterov ? d + mom * b : b;
      }
      p -= lr * d;
    };
    for_each_strided<3>(param.shape(), {param.strides(), grad.strides(), buf.strides()},
                        [&](auto off, int64_t n, auto step) {
                          T* p = pp + off[0];
                          const T* g = pg + off[1];
                          T* b = pb + off[2];
                          if (step[0] == 1 && step[1] == 1 && step[2] == 1) {
                            for (int64_t i = 0; i < n; ++i) update(p[i], g[i], b[i]);
                          } else {
                            for (int64_t i = 0; i < n; ++i) update(p[i * step[0]], g[i * step[1]], b[i * step[2]]);
                          }
                        });
  });
}

void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const AdamArgs& a) {
  dispatch_float(param.dtype(), "adam_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* pp = param.data<T>();
    const T* pg = grad.data<T>();
    T* pm = exp_avg.data<T>();
    T* pv = exp_avg_sq.data<T>();
    const T decay = a.decoupled_weight_decay ? T(1.0 - a.lr * a.weight_decay) : T(1);
    const T l2 = a.decoupled_weight_decay ? T(0) : T(a.weight_decay);
    const T w1 = T(1.0 - a.beta1), b2 = T(a.beta2), w2 = T(1.0 - a.beta2);
    const T step_size = T(a.lr / a.bias_correction1), bc2 = T(a.bias_correction2_sqrt), eps = T(a.eps);
    auto update = [&](T& p, T g, T& m, T& v) {
      g += l2 * p;
      p *= decay;
      m += w1 * (g - m);
      v = b2 * v + w2 * g * g;
      p -= step_size * m / (std::sqrt(v) / bc2 + eps);
    };
    for_each_strided<4>(param.shape(), {param.strides(), grad.strides(), exp_avg.strides(), exp_avg_sq.strides()},
                        [&](auto off, int64_t n, auto step) {
                          T* p = pp + off[0];
                          const T* g = pg + off[1];
                          T* m = pm + off[2];
                          T* v = pv + off[3];
                          if (step[0] == 1 && step[1] == 1 && step[2] == 1 && step[3] == 1) {
                            for (int64_t i = 0; i < n; ++i) update(p[i], g[i], m[i], v[i]);
                          } else {
                            for (int64_t i = 0; i < n; ++i)
                              update(p[i * step[0]], g[i * step[1]], m[i * step[2]], v[i * step[3]]);
                          }
                        });
  });
}

}  // namespace engine::cpu
