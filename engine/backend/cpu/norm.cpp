// CPU LayerNorm / RMSNorm row kernels (double accumulation, two passes for the variance).
#include "engine/backend/cpu/norm.h"

#include <cmath>

#include "engine/backend/cpu/loops.h"

namespace engine::cpu {

void norm_forward_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center,
                       const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const int64_t M = x.shape()[0], D = x.shape()[1];
  dispatch_float(x.dtype(), "norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* pw = weight.defined() ? weight.data<T>() : nullptr;
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    T* py = y.data<T>();
    T* pm = mean.data<T>();
    T* pr = rstd.data<T>();
    parallel_for(0, M, std::max<int64_t>(1, 4096 / std::max<int64_t>(D, 1)), [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        const T* row = px + m * D;
        double mu = 0;
        if (center) {
          for (int64_t d = 0; d < D; ++d) mu += row[d];
          mu /= static_cast<double>(D);
        }
        double ss = 0;
        for (int64_t d = 0; d < D; ++d) ss += (row[d] - mu) * (row[d] - mu);
        double r = 1.0 / std::sqrt(ss / static_cast<double>(D) + eps);
        pm[m] = static_cast<T>(mu);
        pr[m] = static_cast<T>(r);
        T* out = py + m * D;
        for (int64_t d = 0; d < D; ++d) {
          double v = (row[d] - mu) * r;
          if (pw) v *= pw[d];
          if (pb) v += pb[d];
          out[d] = static_cast<T>(v);
        }
      }
    });
  });
}

void norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& gy, bool center, const Tensor& gx) {
  const int64_t M = x.shape()[0], D = x.shape()[1];
  dispatch_float(x.dtype(), "norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* pw = weight.defined() ? weight.data<T>() : nullptr;
    const T* pm = mean.data<T>();
    const T* pr = rstd.data<T>();
    const T* pg = gy.data<T>();
    T* pgx = gx.data<T>();
    parallel_for(0, M, std::max<int64_t>(1, 4096 / std::max<int64_t>(D, 1)), [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        const T* row = px + m * D;
        const T* g = pg + m * D;
        const double mu = pm[m], r = pr[m];
        double sum_gh = 0, sum_ghx = 0;
        for (int64_t d = 0; d < D; ++d) {
          double gh = pw ? static_cast<double>(g[d]) * pw[d] : g[d];
          sum_gh += gh;
          sum_ghx += gh * (row[d] - mu) * r;
        }
        const double mean_gh = center ? sum_gh / static_cast<double>(D) : 0.0;
        const double mean_ghx = sum_ghx / static_cast<double>(D);
        T* out = pgx + m * D;
        for (int64_t d = 0; d < D; ++d) {
          double gh = pw ? static_cast<double>(g[d]) * pw[d] : g[d];
          out[d] = static_cast<T>(r * (gh - mean_gh - (row[d] - mu) * r * mean_ghx));
        }
      }
    });
  });
}

}  // namespace engine::cpu
