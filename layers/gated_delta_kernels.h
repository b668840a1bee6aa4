// Kernels of the gated delta rule (Gated DeltaNet / DeltaProduct recurrence; lampa-models.md 3.8 step 6, 6.2).
//
// Per head h, with a state S of shape [K, V], S_0 = 0, and per step t (a "sub-step" for DeltaProduct):
//   kn = k_t / sqrt(|k_t|^2 + eps),  qs = scale * q_t / sqrt(|q_t|^2 + eps),  a_t = exp(g_t)
//   S'_t = a_t S_{t-1},  w_t = v_t - S'_t^T kn,  u_t = beta_t w_t,  S_t = S'_t + kn u_t^T,  o_t = S_t^T qs
// i.e. S_t = (I - beta kn kn^T) e^g S_{t-1} + beta kn v^T (the L2 normalisation of q and k is fused, as fla's
// use_qk_l2norm_in_kernel=True does).
//
// Algorithm: a sequential scan per head; the forward saves the state at the start of every chunk of `chunk` steps
// into ckpt [H, nchunks, K, V]. The backward walks the chunks in reverse, recomputes the chunk's states from its
// checkpoint (never dividing by e^g) and runs the adjoint recurrence, with G_t = dLoss/dS_t:
//   G_t += qs_t do_t^T;  dqs = S_t do_t;  du = G_t^T kn;  dv = beta du;  dbeta = du . w;  e = -beta du
//   dkn = G_t u + S'_t e;  dS' = G_t + kn e^T;  dg = <dS', S'_t>;  G_{t-1} = a_t dS'
// then the L2-norm Jacobians give dq and dk. Training memory: O(T*H*(K+V)) for the inputs plus
// O(T/chunk * H*K*V) for the checkpoints; no per-step state is stored.
//
// All tensors contiguous, one floating dtype (float or double), one device:
//   q, k [T, H, K], v [T, H, V], g [T, H] (log decay), beta [T, H]. Outputs preallocated (every element written).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers::cpu {

// o [T, H, V]; ckpt [H, ceil(T/chunk), K, V] or undefined (inference: no checkpoints kept).
void gated_delta_forward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                         const engine::Tensor& g, const engine::Tensor& beta, int64_t chunk, double scale, double eps,
                         const engine::Tensor& o, const engine::Tensor& ckpt);

// gout [T, H, V] -> dq, dk [T, H, K], dv [T, H, V], dg, dbeta [T, H].
void gated_delta_backward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                          const engine::Tensor& g, const engine::Tensor& beta, const engine::Tensor& ckpt,
                          const engine::Tensor& gout, int64_t chunk, double scale, double eps,
                          const engine::Tensor& dq, const engine::Tensor& dk, const engine::Tensor& dv,
                          const engine::Tensor& dg, const engine::Tensor& dbeta);

}  // namespace layers::cpu

#ifdef ENGINE_WITH_CUDA
namespace layers::cuda {

void gated_delta_forward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                         const engine::Tensor& g, const engine::Tensor& beta, int64_t chunk, double scale, double eps,
                         const engine::Tensor& o, const engine::Tensor& ckpt);

void gated_delta_backward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                          const engine::Tensor& g, const engine::Tensor& beta, const engine::Tensor& ckpt,
                          const engine::Tensor& gout, int64_t chunk, double scale, double eps,
                          const engine::Tensor& dq, const engine::Tensor& dk, const engine::Tensor& dv,
                          const engine::Tensor& dg, const engine::Tensor& dbeta);

}  // namespace layers::cuda
#endif
