// Analytic forward FLOPs of the fused dense attention (engine/profile.h): per head and visible (query, key) pair
// 2 D + 2 Dv + 2, so the count follows the mask: full N^2 pairs, causal N (N + 1) / 2, groups, key padding.
#include <doctest/doctest.h>

#include "engine/engine.h"
#include "engine/profile.h"
#include "layers/dense_attention.h"

namespace {

int64_t attention_flops(int64_t N, int64_t H, int64_t D, int64_t Dv, const layers::DenseAttentionOptions& opt) {
  const engine::Tensor q = engine::randn({N, H, D}), k = engine::randn({N, H, D}), v = engine::randn({N, H, Dv});
  engine::profile::FlopScope scope;
  layers::dense_attention(q, k, v, opt);
  return scope.flops();
}

}  // namespace

TEST_CASE("dense_attention FLOPs count the visible pairs of the mask") {
  const int64_t N = 7, H = 2, D = 3, Dv = 5, per_pair = H * (2 * D + 2 * Dv + 2);
  layers::DenseAttentionOptions full, causal, group, padded;
  causal.causal = true;
  group.group = 3;     // groups 3, 3, 1: 9 + 9 + 1 pairs
  padded.n_valid = 4;  // every query sees 4 keys
  CHECK(attention_flops(N, H, D, Dv, full) == N * N * per_pair);
  CHECK(attention_flops(N, H, D, Dv, causal) == N * (N + 1) / 2 * per_pair);
  CHECK(attention_flops(N, H, D, Dv, group) == 19 * per_pair);
  CHECK(attention_flops(N, H, D, Dv, padded) == N * 4 * per_pair);
}
