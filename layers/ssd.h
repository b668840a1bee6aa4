// The Mamba2 SSD scan as one fused autograd node (lampa-models.md 3.3, 6.2).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers {

// Multi-head scalar-decay state-space scan with a state S of shape [P, n] per head:
//   S_t = exp(dt_t A_h) S_{t-1} + dt_t x_t B_t^T,   y_t = S_t C_t + D_h x_t
// x [L, H, P], dt [L, H] (after softplus), A [H] (negative), B [L, n], C [L, n] (shared by every head),
// D [H] or undefined (no skip) -> y [L, H, P]. reverse = true runs the scan from t = L-1 down to 0 (Hydra's
// backward direction without materialised flips). Gradients for x, dt, A, B, C and D. Any L >= 0 (no padding
// needed: zero-padding a causal scan to a multiple of `chunk` is exact, so none is done). `chunk` only sets the
// checkpoint spacing: training memory is O(L*H*P) + O(L/chunk * H*P*n). Float32 or float64, CPU or CUDA.
// The scan always starts from S = 0 (at t = L-1 when reverse) and returns y only, not the final state: no catalog
// model carries an SSD state from one call into the next (every Mamba2 / Hydra call scans one event's whole,
// possibly re-ordered, sequence, lampa-models.md 5; the reference's HydraMamba.step is unused, 8.3). A carried-in
// state is therefore not part of the API, and the gradient tests start from the zero state.
engine::Tensor ssd_scan(const engine::Tensor& x, const engine::Tensor& dt, const engine::Tensor& A,
                        const engine::Tensor& B, const engine::Tensor& C, const engine::Tensor& D,
                        int64_t chunk = 64, bool reverse = false);

}  // namespace layers
