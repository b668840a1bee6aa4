// CPU kernels of the fused layer/RMS normalisation over the last dim of a dense [M, D] input. `center` selects
// LayerNorm (subtract the row mean) or RMSNorm (no centering; mean is written as 0).
#pragma once
#include "engine/tensor.h"

namespace engine::cpu {

// y = (x - mean) * rstd * weight + bias per row; weight/bias may be undefined. mean, rstd: [M] (float64 for f64 x,
// else float32), saved for backward.
void norm_forward_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center,
                       const Tensor& y, const Tensor& mean, const Tensor& rstd);
// gx for gy, with xhat = (x - mean) * rstd and gh = gy * weight:
// gx = rstd * (gh - [center] mean(gh) - xhat * mean(gh * xhat)).
void norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& gy, bool center, const Tensor& gx);

}  // namespace engine::cpu
