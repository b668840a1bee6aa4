// CUDA reduction kernels.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace engine::cuda {

// out (contiguous, x's shape with reduced dims of size 1) = sum of x over `dims` (sorted, unique).
void sum(const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out);

}  // namespace engine::cuda
