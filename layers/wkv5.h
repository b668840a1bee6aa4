// RWKV-5's WKV recurrence (Lampa's rwkv model, lampa-models.md 3.9 step 5) as one autograd node, per head h with a
// key-by-value state S [N, N], S_{-1} = 0:
//   y_t[i] = sum_j r_t[j] (u[j] k_t[j] v_t[i] + S_{t-1}[j, i]),    S_t[j, i] = w[j] S_{t-1}[j, i] + k_t[j] v_t[i]
// with a static per-channel decay w in (0, 1) (the model passes exp(-exp(time_decay))) and bonus u. Forward keeps the
// state at the start of every chunk; backward recomputes each chunk and runs the adjoint in reverse, so memory is
// O(L H N) + O(L/chunk H N^2). Computed in the input dtype (the reference casts to bf16).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers {

// r, k, v [L, H, N]; w, u [H, N] -> y [L, H, N]. Gradients for all five.
engine::Tensor wkv5(const engine::Tensor& r, const engine::Tensor& k, const engine::Tensor& v, const engine::Tensor& w,
                    const engine::Tensor& u, int64_t chunk = 64);

}  // namespace layers
