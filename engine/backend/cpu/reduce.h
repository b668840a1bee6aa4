// CPU reduction kernels. Row kernels take a dense [M, R] input (the reduced dim last) and work row by row.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace engine::cpu {

// out (contiguous, x's shape with reduced dims of size 1) = sum of x over `dims` (sorted, unique).
void sum(const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out);
// out[m] (int64) = index of the first maximum (or minimum) of row m; NaN counts as the extreme.
void arg_extreme_rows(const Tensor& x, const Tensor& out, bool is_max);
// out = softmax (or log_softmax) of each row.
void softmax_rows(const Tensor& x, const Tensor& out, bool log);
// out = inclusive prefix sums of each row, from the end when reverse.
void cumsum_rows(const Tensor& x, const Tensor& out, bool reverse);
void cumprod_rows(const Tensor& x, const Tensor& out);
// gx = d(sum_j g[j] * cumprod(x)[j]) / dx per row, exact when rows contain zeros.
void cumprod_backward_rows(const Tensor& x, const Tensor& out, const Tensor& g, const Tensor& gx);

}  // namespace engine::cpu
