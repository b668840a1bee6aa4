// CUDA reduction kernels; signatures mirror engine/backend/cpu/reduce.h.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace engine::cuda {

void sum(const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out);
void arg_extreme_rows(const Tensor& x, const Tensor& out, bool is_max);
void softmax_rows(const Tensor& x, const Tensor& out, bool log);
void cumsum_rows(const Tensor& x, const Tensor& out, bool reverse);
void cumprod_rows(const Tensor& x, const Tensor& out);
void cumprod_backward_rows(const Tensor& x, const Tensor& out, const Tensor& g, const Tensor& gx);

}  // namespace engine::cuda
