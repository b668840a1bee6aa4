// Sorting ops (stable): sort returns values and int64 indices; values are differentiable (the gradient is scattered
// back through the permutation); argsort and topk indices carry no gradient. NaN ranks above every number (last in
// ascending order, first in descending order, as in torch) and -0.0 equals +0.0. Any dtype sorts; rank >= 1.
#pragma once
#include <utility>

#include "engine/tensor.h"

namespace engine {

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
// k largest (or smallest) along dim, in sorted order, ties broken by lower index first.
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);

}  // namespace engine
