// CUDA kernels of the depthwise causal 1-D convolution (one filter per channel, left zero padding).
#pragma once
#include "engine/tensor.h"

namespace engine::cuda {

// x: [B, C, L] (any strides), weight: [C, K] contiguous, bias: [C] contiguous or undefined, out: [B, C, L] contiguous.
// out[b, c, t] = bias[c] + sum_k weight[c, k] * x[b, c, t - K + 1 + k]   (x = 0 at negative times)
void causal_conv1d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out);
// grad: [B, C, L] (any strides). Writes each defined output (contiguous): dx [B, C, L], dweight [C, K], dbias [C].
// dweight and dbias are summed over (b, t) in a fixed order, so they are deterministic.
void causal_conv1d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad, const Tensor& dx,
                            const Tensor& dweight, const Tensor& dbias);

}  // namespace engine::cuda
