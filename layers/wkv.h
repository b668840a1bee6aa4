// The RWKV WKV recurrences as fused autograd nodes (forward keeps the state at the start of every chunk; backward
// recomputes each chunk and runs the adjoint in reverse: memory O(L H N) + O(L/chunk H N^2); computed in the input
// dtype, where the reference casts to bf16).
//
// wkv5 (RWKV-5, Lampa's rwkv model, lampa-models.md 3.9 step 5), per head h with a key-by-value state S [N, N],
// S_{-1} = 0:
//   y_t[i] = sum_j r_t[j] (u[j] k_t[j] v_t[i] + S_{t-1}[j, i]),    S_t[j, i] = w[j] S_{t-1}[j, i] + k_t[j] v_t[i]
// with a static per-channel decay w in (0, 1) (the model passes exp(-exp(time_decay))) and bonus u.
//
// wkv7 (RWKV-7's generalised delta rule, Lampa's rwkv7 model, 3.10 step 5), per head with a value-by-key state S:
//   d_t = exp(-exp(w_t)),  S_t = S_{t-1} (diag(d_t) + a_t b_t^T) + v_t k_t^T,  y_t = S_t r_t
// (the model passes a = -kk, b = kk * a_gate). Every row of S evolves on its own; no step divides by a decay.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers {

// r, k, v [L, H, N]; w, u [H, N] -> y [L, H, N]. Gradients for all five.
engine::Tensor wkv5(const engine::Tensor& r, const engine::Tensor& k, const engine::Tensor& v, const engine::Tensor& w,
                    const engine::Tensor& u, int64_t chunk = 64);

// r, w, k, v, a, b [L, H, N] -> y [L, H, N]. Gradients for all six.
engine::Tensor wkv7(const engine::Tensor& r, const engine::Tensor& w, const engine::Tensor& k, const engine::Tensor& v,
                    const engine::Tensor& a, const engine::Tensor& b, int64_t chunk = 64);

}  // namespace layers
