// CPU reductions and row kernels. Sums read the input as [A, R, B] and add in a fixed order (double accumulators for
// float32), so results do not depend on the thread count; row kernels run one row per task.
#include "engine/backend/cpu/reduce.h"

#include <cmath>
#include <limits>

#include "engine/backend/cpu/elementwise.h"
#include "engine/backend/cpu/loops.h"
#include "engine/ops/reduce_layout.h"

namespace engine::cpu {

namespace {

template <class T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// out[a, b] = sum_r x[a, r, b] for a dense x.
template <class T>
void sum_arb(const T* x, T* out, int64_t A, int64_t R, int64_t B) {
  if (B == 1) {
    parallel_for(0, A, std::max<int64_t>(1, 16384 / std::max<int64_t>(R, 1)), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        const T* row = x + a * R;
        Acc<T> acc[8] = {};
        int64_t r = 0;
        for (; r + 8 <= R; r += 8)
          for (int k = 0; k < 8; ++k) acc[k] += row[r + k];
        for (; r < R; ++r) acc[0] += row[r];
        out[a] = static_cast<T>(((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
      }
    });
    return;
  }
  // Parallel over (a, b-chunk) tiles; each tile accumulates rows r in order.
  const int64_t chunk = 1024;
  const int64_t nb = (B + chunk - 1) / chunk;
  parallel_for(0, A * nb, 1, [&](int64_t t0, int64_t t1) {
    std::vector<Acc<T>> acc(chunk);
    for (int64_t t = t0; t < t1; ++t) {
      int64_t a = t / nb, b0 = (t % nb) * chunk, n = std::min(chunk, B - b0);
      std::fill(acc.begin(), acc.begin() + n, Acc<T>(0));
      for (int64_t r = 0; r < R; ++r) {
        const T* row = x + (a * R + r) * B + b0;
        for (int64_t i = 0; i < n; ++i) acc[i] += row[i];
      }
      for (int64_t i = 0; i < n; ++i) out[a * B + b0 + i] = static_cast<T>(acc[i]);
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
