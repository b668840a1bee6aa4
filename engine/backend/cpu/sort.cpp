// CPU sorting kernels: each row is copied into (value, index) pairs and ordered with a total order (value, then
// index), which makes std::sort / std::partial_sort give exactly the stable order. Rows run in parallel.
#include "engine/backend/cpu/sort.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/cpu/loops.h"

namespace engine::cpu {

namespace {

// x < y with NaN greater than every number (and NaNs equal to each other).
template <class T>
bool nan_last_less(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) return !std::isnan(x) && (std::isnan(y) || x < y);
  else return x < y;
}

template <class T>
struct Keyed {
  T value;
  int64_t index;
};

template <class T>
void sort_rows(const Tensor& x, bool descending, const Tensor& values, const Tensor& indices) {
  const int64_t rows = x.size(0), n = x.size(1), k = values.size(1);
  const int64_t row_stride = x.strides()[0], col_stride = x.strides()[1];
  const T* px = x.data<T>();
  T* pv = values.data<T>();
  int64_t* pi = indices.data<int64_t>();
  auto before = [descending](const Keyed<T>& a, const Keyed<T>& b) {
    const bool lt = descending ? nan_last_less(b.value, a.value) : nan_last_less(a.value, b.value);
    const bool gt = descending ? nan_last_less(a.value, b.value) : nan_last_less(b.value, a.value);
    return lt || (!gt && a.index < b.index);
  };
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
    std::vector<Keyed<T>> row(static_cast<size_t>(n));
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t j = 0; j < n; ++j) row[j] = {px[r * row_stride + j * col_stride], j};
      if (k * 8 < n) std::partial_sort(row.begin(), row.begin() + k, row.end(), before);
      else std::sort(row.begin(), row.end(), before);
      for (int64_t j = 0; j < k; ++j) {
        pv[r * k + j] = row[j].value;
        pi[r * k + j] = row[j].index;
      }
    }
  });
}

}  // namespace

void sort(const Tensor& x, bool descending, const Tensor& values, const Tensor& indices) {
  if (values.numel() == 0) return;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    sort_rows<T>(x, descending, values, indices);
  });
}

void sort_backward(const Tensor& grad, const Tensor& indices, const Tensor& grad_in) {
  const int64_t rows = grad.size(0), k = grad.size(1), n = grad_in.size(1);
  if (rows * k == 0) return;
  const int64_t* pi = indices.data<int64_t>();
  dispatch_float(grad.dtype(), "sort_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pg = grad.data<T>();
    T* po = grad_in.data<T>();
    parallel_for(0, rows, std::max<int64_t>(1, 32768 / k), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t j = 0; j < k; ++j) po[r * n + pi[r * k + j]] = pg[r * k + j];
    });
  });
}

}  // namespace engine::cpu
