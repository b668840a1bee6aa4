// CPU reductions and row kernels. Sums read the input as [A, R, B] and add in a fixed order over fixed tiles (double
// accumulators for float32), so results do not depend on the thread count; row kernels run one row per task.
#include "engine/backend/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "engine/backend/cpu/elementwise.h"
#include "engine/backend/cpu/loops.h"
#include "engine/ops/reduce_layout.h"

namespace engine::cpu {

namespace {

template <class T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// Work split of the [A, R, B] sum. Tasks are fixed tiles of (a, rows r0..r1, columns b0..b0+n) that depend only on
// the shape, never on the thread count; each tile adds its rows in order, and tiles of one output combine in order.
constexpr int64_t kSumCols = 1024;        // columns per tile when B > 1
constexpr int64_t kSumTileElems = 32768;  // elements per tile (rows per tile = this / columns)

// acc[0..n) = sum over rows r0..r1 of x[a, r, b0..b0+n). For B == 1 eight lanes are combined in a fixed tree.
template <class T>
void sum_tile(const T* x, int64_t R, int64_t B, int64_t a, int64_t r0, int64_t r1, int64_t b0, int64_t n,
              Acc<T>* acc) {
  if (B == 1) {
    const T* row = x + a * R;
    Acc<T> lane[8] = {};
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8)
      for (int k = 0; k < 8; ++k) lane[k] += row[r + k];
    for (; r < r1; ++r) lane[0] += row[r];
    acc[0] = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    return;
  }
  std::fill(acc, acc + n, Acc<T>(0));
  for (int64_t r = r0; r < r1; ++r) {
    const T* row = x + (a * R + r) * B + b0;
    for (int64_t i = 0; i < n; ++i) acc[i] += row[i];
  }
}

// out[a, b] = sum_r x[a, r, b] for a dense x. Long reductions are split into row chunks whose partial sums
// (partial: [A, nr, B]) are added in chunk order.
template <class T>
void sum_arb(const T* x, T* out, int64_t A, int64_t R, int64_t B) {
  const int64_t cols = std::min(B, kSumCols), nb = (B + cols - 1) / cols;
  const int64_t rows_per_tile = std::max<int64_t>(1, kSumTileElems / cols);
  const int64_t nr = (R + rows_per_tile - 1) / rows_per_tile;
  std::vector<Acc<T>> partial(nr > 1 ? A * nr * B : 0);
  parallel_for(0, A * nr * nb, 1, [&](int64_t t0, int64_t t1) {
    std::vector<Acc<T>> acc(cols);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t / (nr * nb), rc = t / nb % nr, b0 = t % nb * cols, n = std::min(cols, B - b0);
      const int64_t r0 = rc * rows_per_tile, r1 = std::min(R, r0 + rows_per_tile);
      sum_tile(x, R, B, a, r0, r1, b0, n, acc.data());
      for (int64_t i = 0; i < n; ++i) {
        if (nr == 1) out[a * B + b0 + i] = static_cast<T>(acc[i]);
        else partial[(a * nr + rc) * B + b0 + i] = acc[i];
      }
    }
  });
  if (nr == 1) return;
  parallel_for(0, A * B, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t a = i / B, b = i % B;
      Acc<T> total = 0;
      for (int64_t rc = 0; rc < nr; ++rc) total += partial[(a * nr + rc) * B + b];
      out[i] = static_cast<T>(total);
    }
  });
}

// Calls f(row_index, row_length) for every row of a dense [M, R] tensor, in parallel.
template <class F>
void for_rows(const Tensor& x, F&& f) {
  const int64_t M = x.shape()[0], R = x.shape()[1];
  parallel_for(0, M, std::max<int64_t>(1, 8192 / std::max<int64_t>(R, 1)), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) f(m, R);
  });
}

}  // namespace

void sum(const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out) {
  if (dims.empty()) return cpu::copy(x, out);
  if (x.numel() == 0) return cpu::fill(out, 0.0);
  ReduceLayout l = reduce_layout(x, dims);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    sum_arb<T>(l.x.data<T>(), out.data<T>(), l.A, l.R, l.B);
  });
}

void arg_extreme_rows(const Tensor& x, const Tensor& out, bool is_max) {
  int64_t* po = out.data<int64_t>();
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    for_rows(x, [&](int64_t m, int64_t R) {
      const T* row = px + m * R;
      int64_t best = 0;
      for (int64_t r = 1; r < R; ++r) {
        T v = row[r], b = row[best];
        if (b != b) break;  // NaN already chosen
        if (v != v || (is_max ? v > b : v < b)) best = r;
      }
      po[m] = best;
    });
  });
}

void softmax_rows(const Tensor& x, const Tensor& out, bool log) {
  dispatch_float(x.dtype(), "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_rows(x, [&](int64_t m, int64_t R) {
      const T* row = px + m * R;
      T* dst = po + m * R;
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t r = 0; r < R; ++r) mx = std::max(mx, row[r]);
      if (std::isinf(mx) && mx < 0) mx = 0;  // a row of -inf: avoid (-inf) - (-inf)
      double s = 0;
      for (int64_t r = 0; r < R; ++r) s += std::exp(static_cast<double>(row[r] - mx));
      if (log) {
        T lse = static_cast<T>(std::log(s)) + mx;
        for (int64_t r = 0; r < R; ++r) dst[r] = row[r] - lse;
      } else {
        T inv = static_cast<T>(1.0 / s);
        for (int64_t r = 0; r < R; ++r) dst[r] = std::exp(row[r] - mx) * inv;
      }
    });
  });
}

void cumsum_rows(const Tensor& x, const Tensor& out, bool reverse) {
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_rows(x, [&](int64_t m, int64_t R) {
      Acc<T> acc = 0;
      for (int64_t i = 0; i < R; ++i) {
        int64_t r = reverse ? R - 1 - i : i;
        acc += px[m * R + r];
        po[m * R + r] = static_cast<T>(acc);
      }
    });
  });
}

void cumprod_rows(const Tensor& x, const Tensor& out) {
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_rows(x, [&](int64_t m, int64_t R) {
      Acc<T> acc = 1;
      for (int64_t r = 0; r < R; ++r) {
        acc *= px[m * R + r];
        po[m * R + r] = static_cast<T>(acc);
      }
    });
  });
}

// Before the first zero z: gx[i] = (sum_{j>=i} g[j] out[j]) / x[i]. At z: sum_{j>=z} g[j] out[z-1] prod_{z<k<=j} x[k].
// After z: 0 (every product that depends on x[i] also contains x[z] = 0).
void cumprod_backward_rows(const Tensor& x, const Tensor& out, const Tensor& g, const Tensor& gx) {
  dispatch_float(x.dtype(), "cumprod", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* pout = out.data<T>();
    const T* pg = g.data<T>();
    T* pgx = gx.data<T>();
    for_rows(x, [&](int64_t m, int64_t R) {
      const T* xr = px + m * R;
      const T* outr = pout + m * R;
      const T* gr = pg + m * R;
      T* gxr = pgx + m * R;
      int64_t z = R;
      for (int64_t r = 0; r < R; ++r)
        if (xr[r] == T(0)) { z = r; break; }
      double tail = 0;  // sum_{j>=i} g[j] out[j]
      for (int64_t i = R - 1; i >= 0; --i) {
        tail += static_cast<double>(gr[i]) * outr[i];
        if (i < z) gxr[i] = static_cast<T>(tail / xr[i]);
        else gxr[i] = 0;
      }
      if (z < R) {
        double prefix = z > 0 ? static_cast<double>(outr[z - 1]) : 1.0;
        double run = prefix, acc = 0;
        for (int64_t j = z; j < R; ++j) {
          if (j > z) run *= xr[j];
          acc += static_cast<double>(gr[j]) * run;
        }
        gxr[z] = static_cast<T>(acc);
      }
    });
  });
}

}  // namespace engine::cpu
