// The pile-up loss (hept.md 5.2): focal loss on the neutral targets, FL = alpha (1 - p_t)^gamma BCE with
// p_t = exp(-BCE), flat alpha (no class weighting), each log clamped at -100 as PyTorch's BCE does; mean over the
// selected particles.
#pragma once
#include "engine/tensor.h"

namespace models {

// logits: [N] (pre-sigmoid), label: [N] int64 0/1, mask: [N] bool/uint8 (the is_neu targets). Returns a scalar.
// Throws when the mask selects nothing.
engine::Tensor focal_loss(const engine::Tensor& logits, const engine::Tensor& label, const engine::Tensor& mask,
                          double alpha = 0.25, double gamma = 2.0);

}  // namespace models
