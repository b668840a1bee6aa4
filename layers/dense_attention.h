// Fused multi-head softmax attention (flash-attention style, one autograd node) and the multi-head attention module
// built on it, used by the mhaformer / casualformer models (dense or causal attention over the whole event,
// lampa-models.md 1) and by FlatFormer's group attention (3.6, layers/window_attention.h).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace layers {

struct DenseAttentionOptions {
  double scale = 0.0;    // 0: 1 / sqrt(D)
  bool causal = false;   // query i sees keys j <= i only (inside its group in group mode)
  int64_t group = 0;     // > 0: block-diagonal attention inside groups of `group` consecutive rows (last may be short)
  int64_t n_valid = -1;  // >= 0: keys at positions >= n_valid are masked (key padding); -1: all N keys are valid
};

// o_i = sum_j softmax_j(scale q_i . k_j) v_j per head over the visible keys j of row i (see the options).
// q, k [N, H, D], v [N, H, Dv] -> o [N, H, Dv]. Any N >= 0; a row that sees no key gets o = 0. Memory O(N H (D + Dv)):
// the forward keeps only the output and the per-row logsumexp; the backward recomputes the scores tile by tile.
// Float32 or float64, CPU or CUDA (CUDA needs D, Dv <= 128). Gradients for q, k and v.
engine::Tensor dense_attention(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                               const DenseAttentionOptions& opt = {});

// Multi-head attention with the reference's layout (transformer.py Attn / flatformer.py GroupAttention):
// w_q, w_k, w_v: Linear(dim -> heads * head_dim, no bias), out_linear: Linear(heads * head_dim -> dim) with bias;
// scale 1 / sqrt(head_dim). Parameters 3 dim H hd + H hd dim + dim. PyTorch default init.
class MultiHeadAttention : public engine::nn::Module {
 public:
  MultiHeadAttention(int64_t dim, int64_t heads, int64_t head_dim);
  // q_in, k_in, v_in [N, dim] -> [N, dim].
  engine::Tensor forward(const engine::Tensor& q_in, const engine::Tensor& k_in, const engine::Tensor& v_in,
                         const DenseAttentionOptions& opt = {}) const;

  int64_t dim, heads, head_dim;
  std::shared_ptr<engine::nn::Linear> w_q, w_k, w_v, out_linear;
};

}  // namespace layers
