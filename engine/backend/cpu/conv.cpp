// CPU kernels of the depthwise causal 1-D convolution. The forward and dx loops run over (batch, channel) rows;
// the weight and bias gradients run one channel per task and sum over (b, t) in order in double, so they do not
// depend on the thread count.
#include "engine/backend/cpu/conv.h"

#include <algorithm>
#include <vector>

#include "engine/backend/cpu/loops.h"

namespace engine::cpu {

namespace {

// Element strides of a [B, C, L] view.
struct Strides3 {
  int64_t b, c, t;
  explicit Strides3(const Tensor& v) : b(v.strides()[0]), c(v.strides()[1]), t(v.strides()[2]) {}
};

template <class T>
void forward_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  const int64_t B = x.size(0), C = x.size(1), L = x.size(2), K = weight.size(1);
  const Strides3 sx(x);
  const T* px = x.data<T>();
  const T* pw = weight.data<T>();
  const T* pb = bias.defined() ? bias.data<T>() : nullptr;
  T* po = out.data<T>();
  parallel_for(0, B * C, std::max<int64_t>(1, 32768 / std::max<int64_t>(L * K, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / C, c = r % C;
      const T* xr = px + b * sx.b + c * sx.c;
      const T* w = pw + c * K;
      for (int64_t t = 0; t < L; ++t) {
        T acc = pb ? pb[c] : T(0);
        for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; ++k) acc += w[k] * xr[(t - K + 1 + k) * sx.t];
        po[r * L + t] = acc;
      }
    }
  });
}

// dx[b, c, s] = sum_k weight[c, k] * grad[b, c, s + K - 1 - k]   (grad = 0 at times >= L)
template <class T>
void dx_impl(const Tensor& weight, const Tensor& grad, const Tensor& dx) {
  const int64_t B = grad.size(0), C = grad.size(1), L = grad.size(2), K = weight.size(1);
  const Strides3 sg(grad);
  const T* pg = grad.data<T>();
  const T* pw = weight.data<T>();
  T* pd = dx.data<T>();
  parallel_for(0, B * C, std::max<int64_t>(1, 32768 / std::max<int64_t>(L * K, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / C, c = r % C;
      const T* gr = pg + b * sg.b + c * sg.c;
      const T* w = pw + c * K;
      for (int64_t s = 0; s < L; ++s) {
        T acc = T(0);
        for (int64_t k = std::max<int64_t>(0, s + K - L); k < K; ++k) acc += w[k] * gr[(s + K - 1 - k) * sg.t];
        pd[r * L + s] = acc;
      }
    }
  });
}

// dweight[c, k] = sum_{b, t} grad[b, c, t] * x[b, c, t - K + 1 + k];  dbias[c] = sum_{b, t} grad[b, c, t]
template <class T>
void dweight_impl(const Tensor& x, const Tensor& grad, const Tensor& dweight, const Tensor& dbias) {
  const int64_t B = x.size(0), C = x.size(1), L = x.size(2);
  const int64_t K = dweight.defined() ? dweight.size(1) : 0;  // 0: bias gradient only
  const Strides3 sx(x), sg(grad);
  const T* px = x.data<T>();
  const T* pg = grad.data<T>();
  T* pdw = dweight.defined() ? dweight.data<T>() : nullptr;
  T* pdb = dbias.defined() ? dbias.data<T>() : nullptr;
  parallel_for(0, C, std::max<int64_t>(1, 32768 / std::max<int64_t>(B * L * (K + 1), 1)), [&](int64_t c0, int64_t c1) {
    std::vector<double> acc(static_cast<size_t>(K));
    for (int64_t c = c0; c < c1; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0);
      double acc_bias = 0.0;
      for (int64_t b = 0; b < B; ++b) {
        const T* xr = px + b * sx.b + c * sx.c;
        const T* gr = pg + b * sg.b + c * sg.c;
        for (int64_t t = 0; t < L; ++t) {
          const double g = gr[t * sg.t];
          acc_bias += g;
          for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; ++k) acc[k] += g * xr[(t - K + 1 + k) * sx.t];
        }
      }
      if (pdb) pdb[c] = static_cast<T>(acc_bias);
      for (int64_t k = 0; pdw && k < K; ++k) pdw[c * K + k] = static_cast<T>(acc[k]);
    }
  });
}

}  // namespace

void causal_conv1d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  dispatch_float(x.dtype(), "causal_conv1d", [&](auto tag) {
    forward_impl<typename decltype(tag)::type>(x, weight, bias, out);
  });
}

void causal_conv1d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad, const Tensor& dx,
                            const Tensor& dweight, const Tensor& dbias) {
  dispatch_float(x.dtype(), "causal_conv1d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (dx.defined()) dx_impl<T>(weight, grad, dx);
    if (dweight.defined() || dbias.defined()) dweight_impl<T>(x, grad, dweight, dbias);
  });
}

}  // namespace engine::cpu
