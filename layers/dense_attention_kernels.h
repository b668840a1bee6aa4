// Kernels of the fused multi-head softmax attention (layers/dense_attention.h), flash-attention style.
//
// Per head h and query row i, with the key range [lo_i, hi_i) of the mask (whole sequence, or i's group of `group`
// consecutive rows; keys >= n_valid dropped; with `causal` also keys > i):
//   s_ij = scale * q_i . k_j,  lse_i = log sum_j exp(s_ij),  o_i = sum_j exp(s_ij - lse_i) v_j
// computed over key tiles with an online softmax (running max and sum), so no N x N matrix is ever stored. A row
// with no visible key gets o_i = 0 and lse_i = -inf (and zero gradients).
// Backward (recomputes the probabilities from lse): D_i = dO_i . o_i, p_ij = exp(s_ij - lse_i),
//   ds_ij = p_ij (dO_i . v_j - D_i),  dq_i = scale sum_j ds_ij k_j,  dk_j = scale sum_i ds_ij q_i,
//   dv_j = sum_i p_ij dO_i
// as two passes: one over query rows (dq, D) and one over key rows (dk, dv), each writing only its own rows, so there
// are no atomics and results do not depend on the thread count or the launch geometry.
//
// All tensors contiguous, one floating dtype (float or double), one device: q, k [N, H, D], v [N, H, Dv],
// o [N, H, Dv], lse [N, H]. Outputs preallocated (every element written).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers {

struct AttnGeometry {
  int64_t N = 0, H = 0, D = 0, Dv = 0;
  int64_t group = 0;    // 0: one group spanning the sequence; else block-diagonal groups of this many rows
  int64_t n_valid = 0;  // keys at positions >= n_valid are masked (key padding)
  bool causal = false;
  double scale = 1.0;
};

#ifdef __CUDACC__
#define ATTN_HD __host__ __device__
#else
#define ATTN_HD
#endif

// Keys visible to query row i: [*lo, *hi) (empty when *lo >= *hi).
ATTN_HD inline void attn_key_range(const AttnGeometry& g, int64_t i, int64_t* lo, int64_t* hi) {
  const int64_t start = g.group > 0 ? i / g.group * g.group : 0;
  int64_t end = g.group > 0 ? start + g.group : g.N;
  if (end > g.N) end = g.N;
  if (end > g.n_valid) end = g.n_valid;
  if (g.causal && end > i + 1) end = i + 1;
  *lo = start;
  *hi = end;
}

// Queries that see key row j: [*lo, *hi) (the transpose of attn_key_range).
ATTN_HD inline void attn_query_range(const AttnGeometry& g, int64_t j, int64_t* lo, int64_t* hi) {
  int64_t start = g.group > 0 ? j / g.group * g.group : 0;
  int64_t end = g.group > 0 ? start + g.group : g.N;
  if (end > g.N) end = g.N;
  if (g.causal && start < j) start = j;
  if (j >= g.n_valid) end = start;
  *lo = start;
  *hi = end;
}

// Union of the key ranges of rows [r0, r1), r0 < r1 (both range ends are nondecreasing in the row index).
ATTN_HD inline void attn_block_key_range(const AttnGeometry& g, int64_t r0, int64_t r1, int64_t* lo, int64_t* hi) {
  int64_t a, b;
  attn_key_range(g, r0, lo, &b);
  attn_key_range(g, r1 - 1, &a, hi);
}

// A superset of the union of the query ranges of key rows [r0, r1): first row's group start to last row's group end.
ATTN_HD inline void attn_block_query_range(const AttnGeometry& g, int64_t r0, int64_t r1, int64_t* lo,
                                           int64_t* hi) {
  *lo = g.group > 0 ? r0 / g.group * g.group : 0;
  const int64_t end = g.group > 0 ? (r1 - 1) / g.group * g.group + g.group : g.N;
  *hi = end < g.N ? end : g.N;
}

}  // namespace layers

namespace layers::cpu {

void dense_attention_forward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                             const AttnGeometry& g, const engine::Tensor& o, const engine::Tensor& lse);

// gout [N, H, Dv] -> dq, dk [N, H, D], dv [N, H, Dv].
void dense_attention_backward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                              const engine::Tensor& o, const engine::Tensor& lse, const engine::Tensor& gout,
                              const AttnGeometry& g, const engine::Tensor& dq, const engine::Tensor& dk,
                              const engine::Tensor& dv);

}  // namespace layers::cpu

#ifdef ENGINE_WITH_CUDA
namespace layers::cuda {

void dense_attention_forward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                             const AttnGeometry& g, const engine::Tensor& o, const engine::Tensor& lse);

void dense_attention_backward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                              const engine::Tensor& o, const engine::Tensor& lse, const engine::Tensor& gout,
                              const AttnGeometry& g, const engine::Tensor& dq, const engine::Tensor& dk,
                              const engine::Tensor& dv);

}  // namespace layers::cuda
#endif
