// Depthwise causal 1-D convolution (Mamba's short conv): one filter per channel, left zero-padding so output t sees
// inputs t-K+1..t. Fused single node with backward to x, weight and bias.
#pragma once
#include "engine/tensor.h"

namespace engine {

// x: [B, C, L], weight: [C, K], bias: [C] or undefined -> [B, C, L]
Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace engine
