// Matrix products with autograd: matmul with NumPy-style batch broadcasting (1-D operands as in NumPy),
// and linear(x, W, b) = x @ W^T + b as PyTorch's nn.Linear computes it.
#pragma once
#include "engine/tensor.h"

namespace engine {

Tensor matmul(const Tensor& a, const Tensor& b);
// x: [..., in], weight: [out, in], bias: [out] or undefined -> [..., out]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace engine
