// LSHOrdering (lampa-models.md 3.7): the token order hmambav1 scans in. Keys are key = p0 + 2 p1 + 4 p2 with
// p = coords . alpha[0] (three fixed Gaussian projections, no bucketing: the reference's "shift" is exactly zero),
// ties broken by ||coords||_2: argsort by the norm, then a stable argsort by the key.
#pragma once
#include <memory>

#include "engine/nn/module.h"
#include "engine/tensor.h"
#include "layers/e2lsh.h"
#include "layers/hept_attention.h"

namespace layers {

// coords [N, C], alpha [1, C, 3] -> permutation [N] int64 (scan position -> row). No gradient.
engine::Tensor lsh_order(const engine::Tensor& coords, const engine::Tensor& alpha);

// The module holding the fixed tensors the reference saves: alpha [1, C, 3], beta [1, 3] (unused, as in the
// reference) and regions [3, 2, num_heads] (unused; kept so checkpoints carry the same buffers).
class LSHOrdering : public engine::nn::Module {
 public:
  LSHOrdering(int64_t coords_dim, int64_t num_heads, double num_regions, engine::Generator* gen = nullptr);
  engine::Tensor order(const engine::Tensor& coords) const { return lsh_order(coords, e2lsh->alpha); }

  std::shared_ptr<E2LSH> e2lsh;
  engine::Tensor regions;
};

}  // namespace layers
