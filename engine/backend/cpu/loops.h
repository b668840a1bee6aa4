// CPU kernel helpers: dtype dispatch, and a parallel loop over the elements of N strided operands that hands the
// kernel runs of consecutive elements along the innermost (coalesced) dimension.
#pragma once
#include <array>
#include <cstdint>

#include "engine/backend/dtype_dispatch.h"
#include "engine/error.h"
#include "engine/parallel.h"
#include "engine/tensor.h"

namespace engine::cpu {

// Merges adjacent dims that are contiguous with each other in every operand; drops size-1 dims.
template <size_t N>
void coalesce(Shape& shape, std::array<Strides, N>& strides) {
  Shape s;
  std::array<Strides, N> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!s.empty()) {
      bool merge = true;
      for (size_t k = 0; k < N; ++k)
        if (st[k].back() != strides[k][d] * shape[d]) merge = false;
      if (merge) {
        s.back() *= shape[d];
        for (size_t k = 0; k < N; ++k) st[k].back() = strides[k][d];
        continue;
      }
    }
    s.push_back(shape[d]);
    for (size_t k = 0; k < N; ++k) st[k].push_back(strides[k][d]);
  }
  if (s.empty()) {
    s.push_back(1);
    for (size_t k = 0; k < N; ++k) st[k].push_back(0);
  }
  shape = s;
  strides = st;
}

// Visits every element of `shape` once. f(offsets, count, steps): `count` consecutive elements along the innermost
// dim start at element offsets `offsets[k]` of operand k and advance by `steps[k]`.
template <size_t N, class F>
void for_each_strided(Shape shape, std::array<Strides, N> strides, F&& f, int64_t grain = 32768) {
  int64_t numel = shape_numel(shape);
  if (numel == 0) return;
  coalesce(shape, strides);
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t inner = shape[rank - 1];
  std::array<int64_t, N> steps;
  for (size_t k = 0; k < N; ++k) steps[k] = strides[k][rank - 1];
  parallel_for(0, numel, grain, [&](int64_t b, int64_t e) {
    std::array<int64_t, 16> idx{};
    std::array<int64_t, N> off{};
    int64_t rem = b;
    for (int64_t d = rank - 1; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      for (size_t k = 0; k < N; ++k) off[k] += idx[d] * strides[k][d];
    }
    while (b < e) {
      int64_t cnt = std::min(inner - idx[rank - 1], e - b);
      f(off, cnt, steps);
      b += cnt;
      idx[rank - 1] += cnt;
      for (size_t k = 0; k < N; ++k) off[k] += cnt * steps[k];
      for (int64_t d = rank - 1; d > 0 && idx[d] == shape[d]; --d) {
        idx[d] = 0;
        idx[d - 1]++;
        for (size_t k = 0; k < N; ++k) off[k] += strides[k][d - 1] - shape[d] * strides[k][d];
      }
    }
  });
}

// Strides of `t` viewed at the broadcast shape `shape` (size-1 and missing leading dims get stride 0).
Strides broadcast_strides(const Tensor& t, const Shape& shape);

}  // namespace engine::cpu
