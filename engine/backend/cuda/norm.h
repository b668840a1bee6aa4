// CUDA LayerNorm / RMSNorm row kernels; signatures mirror engine/backend/cpu/norm.h.
#pragma once
#include "engine/tensor.h"

namespace engine::cuda {

void norm_forward_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool center,
                       const Tensor& y, const Tensor& mean, const Tensor& rstd);
void norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& gy, bool center, const Tensor& gx, const Tensor& gweight, const Tensor& gbias);

}  // namespace engine::cuda
