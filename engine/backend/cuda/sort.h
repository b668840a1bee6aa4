// CUDA sorting kernels (CUB): stable row sorts (also the k-prefix that topk keeps) and the gradient scatter back
// through the sort permutation.
#pragma once
#include "engine/tensor.h"

namespace engine::cuda {

// x: [rows, n] (any strides); values: [rows, k] contiguous (x's dtype), indices: [rows, k] int64 contiguous, k <= n.
// Each row is ordered stably (equal keys keep their index order; NaN compares greater than every number, so it
// comes last ascending and first descending) and its first k entries are written.
void sort(const Tensor& x, bool descending, const Tensor& values, const Tensor& indices);
// grad: [rows, k] contiguous, indices: [rows, k] int64 (distinct within a row), grad_in: [rows, n] contiguous,
// zero-filled by the caller: grad_in[r, indices[r, j]] = grad[r, j].
void sort_backward(const Tensor& grad, const Tensor& indices, const Tensor& grad_in);

}  // namespace engine::cuda
