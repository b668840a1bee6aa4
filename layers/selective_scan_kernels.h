// Kernels of Mamba v1's selective scan (lampa-models.md 3.2 step 6, 6.2), with mamba_ssm's fusions:
//   dt_t[e] = softplus(delta_t[e] + delta_bias[e]),   a_t[e,s] = exp(dt_t[e] A[e,s])
//   h_t[e,s] = a_t[e,s] h_{t-1}[e,s] + dt_t[e] B_t[s] x_t[e],   h_{-1} = 0
//   y_t[e] = sum_s C_t[s] h_t[e,s] + D[e] x_t[e];   out_t[e] = y_t[e] * silu(z_t[e])   (z optional)
// Forward keeps the state of every channel at the start of each chunk of `chunk` steps (ckpt [nchunks, E, n]) and
// the pre-gate y [L, E]; backward recomputes each chunk's states from its checkpoint and runs the adjoint
//   G_t = C_t gy_t + a_{t+1} G_{t+1}
// in reverse. Training memory O(L E) + O(L/chunk E n), never O(L E n). Work is split over fixed blocks of channels;
// dB and dC (sums over channels) go through per-block partial buffers summed in block order, so results do not
// depend on the thread count.
// All tensors contiguous, one floating dtype, one device: x, delta [L, E]; A [E, n]; B, C [L, n]; D, delta_bias [E];
// z [L, E] or undefined. Outputs are preallocated (every element written).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers::cpu {

// out [L, E]; y_pre [L, E] (the ungated y, kept for backward; may equal out when z is undefined);
// ckpt [ceil(L/chunk), E, n] or undefined (inference).
void selective_scan_forward(const engine::Tensor& x, const engine::Tensor& delta, const engine::Tensor& A,
                            const engine::Tensor& B, const engine::Tensor& C, const engine::Tensor& D,
                            const engine::Tensor& delta_bias, const engine::Tensor& z, int64_t chunk,
                            const engine::Tensor& out, const engine::Tensor& y_pre, const engine::Tensor& ckpt);

// gout [L, E] -> gx, gdelta [L, E]; gA [E, n]; gB, gC [L, n]; gD, gbias [E]; gz [L, E] (undefined without z).
void selective_scan_backward(const engine::Tensor& x, const engine::Tensor& delta, const engine::Tensor& A,
                             const engine::Tensor& B, const engine::Tensor& C, const engine::Tensor& D,
                             const engine::Tensor& delta_bias, const engine::Tensor& z, const engine::Tensor& y_pre,
                             const engine::Tensor& ckpt, const engine::Tensor& gout, int64_t chunk,
                             const engine::Tensor& gx, const engine::Tensor& gdelta, const engine::Tensor& gA,
                             const engine::Tensor& gB, const engine::Tensor& gC, const engine::Tensor& gD,
                             const engine::Tensor& gbias, const engine::Tensor& gz);

}  // namespace layers::cpu

#ifdef ENGINE_WITH_CUDA
namespace layers::cuda {

void selective_scan_forward(const engine::Tensor& x, const engine::Tensor& delta, const engine::Tensor& A,
                            const engine::Tensor& B, const engine::Tensor& C, const engine::Tensor& D,
                            const engine::Tensor& delta_bias, const engine::Tensor& z, int64_t chunk,
                            const engine::Tensor& out, const engine::Tensor& y_pre, const engine::Tensor& ckpt);

void selective_scan_backward(const engine::Tensor& x, const engine::Tensor& delta, const engine::Tensor& A,
                             const engine::Tensor& B, const engine::Tensor& C, const engine::Tensor& D,
                             const engine::Tensor& delta_bias, const engine::Tensor& z, const engine::Tensor& y_pre,
                             const engine::Tensor& ckpt, const engine::Tensor& gout, int64_t chunk,
                             const engine::Tensor& gx, const engine::Tensor& gdelta, const engine::Tensor& gA,
                             const engine::Tensor& gB, const engine::Tensor& gC, const engine::Tensor& gD,
                             const engine::Tensor& gbias, const engine::Tensor& gz);

}  // namespace layers::cuda
#endif
