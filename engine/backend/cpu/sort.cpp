// CPU sorting kernels, all giving the stable order (value, then index; NaN after every number, NaNs equal, -0 == +0).
// A full sort of a long row is an LSD radix sort of order-preserving unsigned keys (stable by construction); a
// short row or a top-k (k much smaller than n) copies the row into (value, index) pairs and uses std::sort /
// std::partial_sort with that total order. Rows run in parallel.
#include "engine/backend/cpu/sort.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
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

constexpr int64_t kRadixMin = 256;  // rows at least this long use the radix sort

// The unsigned key whose unsigned order is the sort order of v (ascending): IEEE floats with the sign handled, NaNs
// made one value above +inf, -0 made +0; signed integers with the sign bit flipped.
inline uint32_t radix_key(float v) {
  if (std::isnan(v)) v = std::numeric_limits<float>::quiet_NaN();
  if (v == 0.0f) v = 0.0f;
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
inline uint64_t radix_key(double v) {
  if (std::isnan(v)) v = std::numeric_limits<double>::quiet_NaN();
  if (v == 0.0) v = 0.0;
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}
inline uint32_t radix_key(int32_t v) { return static_cast<uint32_t>(v) ^ 0x80000000u; }
inline uint64_t radix_key(int64_t v) { return static_cast<uint64_t>(v) ^ 0x8000000000000000ull; }
inline uint8_t radix_key(uint8_t v) { return v; }

// Stable LSD radix sort by 8-bit digits of keys[0, n), carrying index; digits that are equal over the whole row are
// skipped. keys / index / key_tmp / index_tmp are n long; the result is left in keys / index.
template <class U>
void radix_sort(std::vector<U>& keys, std::vector<int64_t>& index, std::vector<U>& key_tmp,
                std::vector<int64_t>& index_tmp) {
  constexpr int kDigits = sizeof(U);
  const size_t n = keys.size();
  std::array<std::array<size_t, 256>, kDigits> count{};
  for (size_t j = 0; j < n; ++j)
    for (int d = 0; d < kDigits; ++d) count[d][(keys[j] >> (8 * d)) & 0xFF]++;
  for (int d = 0; d < kDigits; ++d) {
    auto& c = count[d];
    if (c[(keys[0] >> (8 * d)) & 0xFF] == n) continue;  // one digit value everywhere: this pass would not move
    size_t offset = 0;
    for (size_t& x : c) {
      const size_t here = x;
      x = offset;
      offset += here;
    }
    for (size_t j = 0; j < n; ++j) {
      const size_t pos = c[(keys[j] >> (8 * d)) & 0xFF]++;
      key_tmp[pos] = keys[j];
      index_tmp[pos] = index[j];
    }
    keys.swap(key_tmp);
    index.swap(index_tmp);
  }
}

// Full stable sort of one row of n values (stride col_stride) by the radix keys (descending: the complemented keys,
// still stable); the buffers are reused across the rows of a chunk.
template <class T>
struct RadixRowSorter {
  using U = decltype(radix_key(T{}));
  std::vector<U> keys, key_tmp;
  std::vector<int64_t> index, index_tmp;
  void operator()(const T* px, int64_t n, int64_t col_stride, bool descending, T* pv, int64_t* pi) {
    keys.resize(static_cast<size_t>(n));
    key_tmp.resize(static_cast<size_t>(n));
    index.resize(static_cast<size_t>(n));
    index_tmp.resize(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      const U key = radix_key(px[j * col_stride]);
      keys[j] = descending ? static_cast<U>(~key) : key;
      index[j] = j;
    }
    radix_sort(keys, index, key_tmp, index_tmp);
    for (int64_t j = 0; j < n; ++j) {
      pi[j] = index[j];
      pv[j] = px[index[j] * col_stride];
    }
  }
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
  const bool radix = k == n && n >= kRadixMin;
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
    std::vector<Keyed<T>> row(radix ? 0 : static_cast<size_t>(n));
    RadixRowSorter<T> radix_row;
    for (int64_t r = r0; r < r1; ++r) {
      if (radix) {
        radix_row(px + r * row_stride, n, col_stride, descending, pv + r * k, pi + r * k);
        continue;
      }
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
