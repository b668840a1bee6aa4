// CPU kernels of the fused layer/RMS normalisation over the last dim of a dense [M, D] input. `center` selects
// LayerNorm (subtract the row mean) or RMSNorm (no centering; mean is written as 0).
#pragma once
#include "engine/tensor.h"

namespace engine::cpu {

// y = (x - mean) * rstd * weight + bias per row; weight/bias may be undefined. mean, rstd: [M] of x's dtype, saved
// for backward.
void norm_forward_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center,
                       const Tensor& y, const Tensor& mean, const Tensor& rstd);
// One fused backward pass, with xhat = (x - mean) * rstd and gh = gy * weight:
//   gx = rstd * (gh - [center] mean(gh) - xhat * mean(gh * xhat))   [M, D]
//   gweight = sum over rows of gy * xhat, gbias = sum over rows of gy  [D]
// Any of gx, gweight, gbias may be undefined (not wanted). Column sums are deterministic (fixed row blocks added in
// block order, independent of the thread count).
void norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& gy, bool center, const Tensor& gx, const Tensor& gweight, const Tensor& gbias);

}  // namespace engine::cpu
