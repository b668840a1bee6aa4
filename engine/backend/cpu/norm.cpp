// CPU LayerNorm / RMSNorm row kernels (double accumulation, two passes for the variance) and the fused backward.
#include "engine/backend/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

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

namespace {

constexpr int64_t kNormRowBlock = 64;  // rows per block of the deterministic weight/bias gradient sums

// Backward of the rows [m0, m1): writes gx rows (when px_out) and adds gy * xhat, gy into pw_acc, pb_acc (when set).
template <class T>
void norm_backward_block(const T* px, const T* pw, const T* pm, const T* pr, const T* pg, bool center, int64_t D,
                         int64_t m0, int64_t m1, T* pgx, double* pw_acc, double* pb_acc) {
  for (int64_t m = m0; m < m1; ++m) {
    const T* row = px + m * D;
    const T* g = pg + m * D;
    const double mu = pm[m], r = pr[m];
    if (pw_acc || pb_acc) {
      for (int64_t d = 0; d < D; ++d) {
        if (pw_acc) pw_acc[d] += static_cast<double>(g[d]) * (row[d] - mu) * r;
        if (pb_acc) pb_acc[d] += g[d];
      }
    }
    if (!pgx) continue;
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
}

// dst[d] = sum over blocks k (in order) of partial[k, d], converted to T. partial: [blocks, D].
template <class T>
void sum_blocks(const std::vector<double>& partial, int64_t blocks, int64_t D, T* dst) {
  for (int64_t d = 0; d < D; ++d) {
    double s = 0;
    for (int64_t k = 0; k < blocks; ++k) s += partial[k * D + d];
    dst[d] = static_cast<T>(s);
  }
}

}  // namespace

void norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& gy, bool center, const Tensor& gx, const Tensor& gweight, const Tensor& gbias) {
  const int64_t M = x.shape()[0], D = x.shape()[1];
  const int64_t blocks = (M + kNormRowBlock - 1) / kNormRowBlock;
  std::vector<double> pw_part(gweight.defined() ? blocks * D : 0), pb_part(gbias.defined() ? blocks * D : 0);
  dispatch_float(x.dtype(), "norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pw = weight.defined() ? weight.data<T>() : nullptr;
    T* pgx = gx.defined() ? gx.data<T>() : nullptr;
    parallel_for(0, blocks, std::max<int64_t>(1, 256 / std::max<int64_t>(D, 1)), [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        norm_backward_block(x.data<T>(), pw, mean.data<T>(), rstd.data<T>(), gy.data<T>(), center, D,
                            k * kNormRowBlock, std::min(M, (k + 1) * kNormRowBlock), pgx,
                            pw_part.empty() ? nullptr : pw_part.data() + k * D,
                            pb_part.empty() ? nullptr : pb_part.data() + k * D);
      }
    });
    if (gweight.defined()) sum_blocks(pw_part, blocks, D, gweight.data<T>());
    if (gbias.defined()) sum_blocks(pb_part, blocks, D, gbias.data<T>());
  });
}

}  // namespace engine::cpu
