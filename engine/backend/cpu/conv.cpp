// CPU kernels of the depthwise causal 1-D convolution. Work is split into tiles of kTileC channels x kTileT times;
// each tile of x (or grad) is first gathered, zero-padded, into a small dense buffer (reading along whichever of
// the channel and time strides is smaller, so [B, L, C]-major views stay cache friendly), then every channel runs
// K contiguous multiply-adds over the tile. The forward and dx run in parallel over (batch, channel tile); the
// weight and bias gradients over channel tiles only, summing (b, t) in a fixed order in double, so they do not
// depend on the thread count.
#include "engine/backend/cpu/conv.h"

#include <algorithm>
#include <vector>

#include "engine/backend/cpu/loops.h"

namespace engine::cpu {

namespace {

constexpr int64_t kTileC = 16;
constexpr int64_t kTileT = 512;

// A [B, C, L] view: typed base pointer and element strides.
template <class T>
struct View3 {
  const T* data;
  int64_t sb, sc, st, L;
  explicit View3(const Tensor& v)
      : data(v.data<T>()), sb(v.strides()[0]), sc(v.strides()[1]), st(v.strides()[2]), L(v.size(2)) {}

  // buf[i * width + j] = v[b, c0 + i, t0 + j] for i < nc, j < width; zero where t0 + j is outside [0, L).
  void gather(int64_t b, int64_t c0, int64_t nc, int64_t t0, int64_t width, T* buf) const {
    const T* base = data + b * sb + c0 * sc;
    const int64_t lo = std::clamp<int64_t>(-t0, 0, width), hi = std::clamp<int64_t>(L - t0, lo, width);
    for (int64_t i = 0; i < nc; ++i) {
      std::fill(buf + i * width, buf + i * width + lo, T(0));
      std::fill(buf + i * width + hi, buf + (i + 1) * width, T(0));
    }
    if (st <= sc) {
      for (int64_t i = 0; i < nc; ++i)
        for (int64_t j = lo; j < hi; ++j) buf[i * width + j] = base[i * sc + (t0 + j) * st];
    } else {
      for (int64_t j = lo; j < hi; ++j)
        for (int64_t i = 0; i < nc; ++i) buf[i * width + j] = base[i * sc + (t0 + j) * st];
    }
  }
};

int64_t channel_tiles(int64_t C) { return (C + kTileC - 1) / kTileC; }

// Runs f(b, c0, nc) in parallel over (batch, channel tile).
template <class F>
void for_each_batch_tile(int64_t B, int64_t C, int64_t L, F&& f) {
  const int64_t tiles = channel_tiles(C);
  parallel_for(0, B * tiles, std::max<int64_t>(1, 32768 / std::max<int64_t>(kTileC * L, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / tiles, c0 = (r % tiles) * kTileC;
      f(b, c0, std::min(kTileC, C - c0));
    }
  });
}

// out[b, c, t] = bias[c] + sum_k w[c, k] * x[b, c, t - K + 1 + k]
template <class T>
void forward_impl(const Tensor& x_t, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  const int64_t B = x_t.size(0), C = x_t.size(1), L = x_t.size(2), K = weight.size(1);
  const View3<T> x(x_t);
  const T* w = weight.data<T>();
  const T* pb = bias.defined() ? bias.data<T>() : nullptr;
  T* po = out.data<T>();
  for_each_batch_tile(B, C, L, [&](int64_t b, int64_t c0, int64_t nc) {
    std::vector<T> buf(static_cast<size_t>(kTileC * (kTileT + K - 1)));
    for (int64_t t0 = 0; t0 < L; t0 += kTileT) {
      const int64_t nt = std::min(kTileT, L - t0), width = nt + K - 1;
      x.gather(b, c0, nc, t0 - (K - 1), width, buf.data());  // buf[j] = x[t0 - K + 1 + j]
      for (int64_t i = 0; i < nc; ++i) {
        const int64_t c = c0 + i;
        T* o = po + (b * C + c) * L + t0;
        std::fill(o, o + nt, pb ? pb[c] : T(0));
        for (int64_t k = 0; k < K; ++k) {
          const T wk = w[c * K + k];
          const T* xs = buf.data() + i * width + k;
          for (int64_t j = 0; j < nt; ++j) o[j] += wk * xs[j];
        }
      }
    }
  });
}

// dx[b, c, s] = sum_k w[c, k] * grad[b, c, s + K - 1 - k]   (grad = 0 at times >= L)
template <class T>
void dx_impl(const Tensor& weight, const Tensor& grad_t, const Tensor& dx) {
  const int64_t B = grad_t.size(0), C = grad_t.size(1), L = grad_t.size(2), K = weight.size(1);
  const View3<T> g(grad_t);
  const T* w = weight.data<T>();
  T* pd = dx.data<T>();
  for_each_batch_tile(B, C, L, [&](int64_t b, int64_t c0, int64_t nc) {
    std::vector<T> buf(static_cast<size_t>(kTileC * (kTileT + K - 1)));
    for (int64_t t0 = 0; t0 < L; t0 += kTileT) {
      const int64_t nt = std::min(kTileT, L - t0), width = nt + K - 1;
      g.gather(b, c0, nc, t0, width, buf.data());  // buf[j] = grad[t0 + j]
      for (int64_t i = 0; i < nc; ++i) {
        const int64_t c = c0 + i;
        T* d = pd + (b * C + c) * L + t0;
        std::fill(d, d + nt, T(0));
        for (int64_t k = 0; k < K; ++k) {
          const T wk = w[c * K + k];
          const T* gs = buf.data() + i * width + (K - 1 - k);
          for (int64_t j = 0; j < nt; ++j) d[j] += wk * gs[j];
        }
      }
    }
  });
}

// dweight[c, k] = sum_{b, t} grad[b, c, t] * x[b, c, t - K + 1 + k];  dbias[c] = sum_{b, t} grad[b, c, t]
template <class T>
void dweight_impl(const Tensor& x_t, const Tensor& grad_t, int64_t K, const Tensor& dweight, const Tensor& dbias) {
  const int64_t B = x_t.size(0), C = x_t.size(1), L = x_t.size(2);
  const View3<T> x(x_t), g(grad_t);
  T* pdw = dweight.defined() ? dweight.data<T>() : nullptr;
  T* pdb = dbias.defined() ? dbias.data<T>() : nullptr;
  parallel_for(0, channel_tiles(C), 1, [&](int64_t tile0, int64_t tile1) {
    std::vector<T> xbuf(static_cast<size_t>(kTileC * (kTileT + K - 1))), gbuf(static_cast<size_t>(kTileC * kTileT));
    std::vector<double> acc(static_cast<size_t>(kTileC * (K + 1)));  // per channel: K taps, then the bias
    for (int64_t tile = tile0; tile < tile1; ++tile) {
      const int64_t c0 = tile * kTileC, nc = std::min(kTileC, C - c0);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t t0 = 0; t0 < L; t0 += kTileT) {
          const int64_t nt = std::min(kTileT, L - t0), width = nt + K - 1;
          x.gather(b, c0, nc, t0 - (K - 1), width, xbuf.data());
          g.gather(b, c0, nc, t0, nt, gbuf.data());
          for (int64_t i = 0; i < nc; ++i) {
            const T* gs = gbuf.data() + i * nt;
            double* a = acc.data() + i * (K + 1);
            for (int64_t k = 0; k < K && pdw; ++k) {
              const T* xs = xbuf.data() + i * width + k;
              double s = 0.0;
              for (int64_t j = 0; j < nt; ++j) s += static_cast<double>(gs[j]) * xs[j];
              a[k] += s;
            }
            double s = 0.0;
            for (int64_t j = 0; j < nt; ++j) s += gs[j];
            a[K] += s;
          }
        }
      }
      for (int64_t i = 0; i < nc; ++i) {
        for (int64_t k = 0; k < K && pdw; ++k) pdw[(c0 + i) * K + k] = static_cast<T>(acc[i * (K + 1) + k]);
        if (pdb) pdb[c0 + i] = static_cast<T>(acc[i * (K + 1) + K]);
      }
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
    if (dweight.defined() || dbias.defined()) dweight_impl<T>(x, grad, weight.size(1), dweight, dbias);
  });
}

}  // namespace engine::cpu
