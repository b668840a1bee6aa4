// CUDA fused optimizer updates (kernels/optim.cu); signatures mirror engine/backend/cpu/optim.h.
#pragma once
#include "engine/optim/kernel_args.h"
#include "engine/tensor.h"

namespace engine::cuda {

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, const SgdArgs& args);
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const AdamArgs& args);

}  // namespace engine::cuda
