// Fused normalisation ops with autograd (single nodes, saving only mean/rstd as llm.c does).
#pragma once
#include "engine/tensor.h"

namespace engine {

// Normalises over the last weight.dim() dims (normalized_shape = weight.shape()); weight/bias may be undefined
// only together with an explicit normalized size through layer_norm(x, n, ...) below.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// Normalises over the last `normalized` elements without affine parameters.
Tensor layer_norm(const Tensor& x, int64_t normalized, double eps = 1e-5);
// x * rsqrt(mean(x^2, last dim) + eps) * weight (weight: [D]; undefined = no scale).
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-5);

}  // namespace engine
