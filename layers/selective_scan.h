// Mamba v1's selective scan as one autograd node (CPU and CUDA kernels in layers/selective_scan_kernels.h):
//   y = (scan(x, softplus(delta + delta_bias), A, B, C) + D x) * silu(z)
// with the recurrence h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t, y_t = C_t . h_t per channel (mamba_ssm's
// selective_scan_fn with delta_softplus=True). Training memory O(L E) plus chunk-boundary states.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers {

// x, delta [L, E]; A [E, n] (negative); B, C [L, n]; D, delta_bias [E]; z [L, E] or undefined -> y [L, E].
// Gradients for every defined input.
engine::Tensor selective_scan(const engine::Tensor& x, const engine::Tensor& delta, const engine::Tensor& A,
                              const engine::Tensor& B, const engine::Tensor& C, const engine::Tensor& D,
                              const engine::Tensor& delta_bias, const engine::Tensor& z, int64_t chunk = 256);

}  // namespace layers
