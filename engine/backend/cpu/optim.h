// CPU fused optimizer updates: one parallel pass over each parameter updating it and its state in place.
#pragma once
#include "engine/optim/kernel_args.h"
#include "engine/tensor.h"

namespace engine::cpu {

// param, grad, momentum_buf: same shape and floating dtype, any strides; momentum_buf is not touched (and may be
// undefined) when args.momentum == 0.
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, const SgdArgs& args);
// param, grad, exp_avg, exp_avg_sq: same shape and floating dtype, any strides.
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const AdamArgs& args);

}  // namespace engine::cpu
