// Naive reference of the masked multi-head softmax attention for the tests: per head, the full N x N score matrix
// from engine primitives (matmul, an additive -1e30 mask built by an explicit loop over (i, j), softmax, matmul), so
// its autograd gives every gradient. Rows must see at least one key.
#pragma once
#include <cmath>
#include <vector>

#include "engine/engine.h"
#include "layers/dense_attention.h"

namespace testing {

inline bool attn_visible(int64_t N, const layers::DenseAttentionOptions& o, int64_t i, int64_t j) {
  const int64_t n_valid = o.n_valid < 0 ? N : o.n_valid;
  if (j >= n_valid) return false;
  if (o.group > 0 && i / o.group != j / o.group) return false;
  if (o.causal && j > i) return false;
  return true;
}

// q, k [N, H, D], v [N, H, Dv] -> [N, H, Dv].
inline engine::Tensor naive_attention(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                                      const layers::DenseAttentionOptions& o) {
  using namespace engine;
  const int64_t N = q.size(0), H = q.size(1), D = q.size(2);
  const double scale = o.scale > 0 ? o.scale : 1.0 / std::sqrt(static_cast<double>(D));
  std::vector<double> mask(static_cast<size_t>(N * N));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) mask[static_cast<size_t>(i * N + j)] = attn_visible(N, o, i, j) ? 0.0 : -1e30;
  Tensor m = from_vector(mask, {N, N}).to(q.dtype());
  std::vector<Tensor> heads;
  for (int64_t h = 0; h < H; ++h) {
    Tensor qh = q.select(1, h), kh = k.select(1, h), vh = v.select(1, h);  // [N, D], [N, D], [N, Dv]
    Tensor s = matmul(qh, kh.t()) * scale + m;                             // [N, N]
    heads.push_back(matmul(softmax(s, 1), vh));                            // [N, Dv]
  }
  return stack(heads, 1);
}

}  // namespace testing
