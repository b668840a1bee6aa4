// Shared by the CPU and CUDA sum kernels: brings the reduced dims of x into one block, so that the dense result reads
// as [A, R, B] (A kept dims before, R reduced, B kept dims after). Copies only when the dims are not a block already
// or x is not dense.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace engine {

struct ReduceLayout {
  Tensor x;  // dense [A, R, B] data
  int64_t A = 1, R = 1, B = 1;
};

ReduceLayout reduce_layout(const Tensor& x, const std::vector<int64_t>& dims);

// x with `dim` moved last, dense, viewed as [M, R] (R = size of dim). Undo with rows_to_dim.
Tensor dim_to_rows(const Tensor& x, int64_t dim);
// Inverse of dim_to_rows: rows [M, R] back to `shape` with the row dim at position `dim`.
Tensor rows_to_dim(const Tensor& rows, const Shape& shape, int64_t dim);

}  // namespace engine
