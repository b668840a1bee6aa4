// Kernels of the Mamba2 state-space-duality (SSD) scan with a scalar decay per head (lampa-models.md 3.3, 6.2).
//
// Per head h, with state S of shape [P, n] and a_t = exp(dt_t A_h):
//   S_t = a_t S_{t-1} + dt_t x_t B_t^T,   y_t = S_t C_t + D_h x_t
// (reverse = true runs the same recurrence from t = L-1 down to 0, i.e. S_t = a_t S_{t+1} + ...).
//
// Algorithm: the state is kept in registers/cache and scanned step by step; the forward saves the state at the
// start of every chunk of `chunk` steps (in scan order) into `ckpt` [H, nchunks, P, n]. The backward walks the chunks
// in reverse scan order, recomputes the chunk's states from its checkpoint and runs the adjoint recurrence
//   G_t = gy_t C_t^T + a_{t+next} G_{t+next}
// from which every input gradient follows. Training memory: O(L*H*P) for the inputs/outputs plus
// O(L/chunk * H*P*n) for the checkpoints. The CUDA version computes the same checkpoints with chunk-parallel state
// passing (local chunk states, then a sequential pass over chunk totals) and is deterministic (no atomics).
//
// All tensors are contiguous, of one floating dtype (float or double) and on one device:
//   x [L, H, P], dt [L, H] (already softplus'ed), A [H] (negative), B [L, n], C [L, n], D [H] or undefined.
// Outputs are preallocated by the caller (every element is written).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers::cpu {

// y [L, H, P]; ckpt [H, ceil(L/chunk), P, n] or undefined (inference: no checkpoints kept).
void ssd_forward(const engine::Tensor& x, const engine::Tensor& dt, const engine::Tensor& A, const engine::Tensor& B,
                 const engine::Tensor& C, const engine::Tensor& D, int64_t chunk, bool reverse,
                 const engine::Tensor& y, const engine::Tensor& ckpt);

// gy [L, H, P] -> gx [L, H, P], gdt [L, H], gA [H], gB [L, n], gC [L, n], gD [H] (undefined when D is undefined).
void ssd_backward(const engine::Tensor& x, const engine::Tensor& dt, const engine::Tensor& A,
                  const engine::Tensor& B, const engine::Tensor& C, const engine::Tensor& D,
                  const engine::Tensor& ckpt, const engine::Tensor& gy, int64_t chunk, bool reverse,
                  const engine::Tensor& gx, const engine::Tensor& gdt, const engine::Tensor& gA,
                  const engine::Tensor& gB, const engine::Tensor& gC, const engine::Tensor& gD);

}  // namespace layers::cpu

#ifdef ENGINE_WITH_CUDA
namespace layers::cuda {

void ssd_forward(const engine::Tensor& x, const engine::Tensor& dt, const engine::Tensor& A, const engine::Tensor& B,
                 const engine::Tensor& C, const engine::Tensor& D, int64_t chunk, bool reverse,
                 const engine::Tensor& y, const engine::Tensor& ckpt);

void ssd_backward(const engine::Tensor& x, const engine::Tensor& dt, const engine::Tensor& A,
                  const engine::Tensor& B, const engine::Tensor& C, const engine::Tensor& D,
                  const engine::Tensor& ckpt, const engine::Tensor& gy, int64_t chunk, bool reverse,
                  const engine::Tensor& gx, const engine::Tensor& gdt, const engine::Tensor& gA,
                  const engine::Tensor& gB, const engine::Tensor& gC, const engine::Tensor& gD);

}  // namespace layers::cuda
#endif
