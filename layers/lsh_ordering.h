// LSHOrdering (lampa-models.md 3.7): the token order hmambav1 scans in. Keys are key = p0 + 2 p1 + 4 p2 with
// p = coords . alpha[0] (three fixed Gaussian projections, no bucketing: the reference's "shift" is exactly zero),
// ties broken by ||coords||_2: argsort by the norm, then a stable argsort by the key. Also the LSH-region scan order
// of the paper's Mamba-b (region_scan_order).
#pragma once
#include <memory>

#include "engine/nn/module.h"
#include "engine/tensor.h"
#include "layers/e2lsh.h"
#include "layers/hept_attention.h"

namespace layers {

// coords [N, C], alpha [1, C, 3] -> permutation [N] int64 (scan position -> row). No gradient.
engine::Tensor lsh_order(const engine::Tensor& coords, const engine::Tensor& alpha);

// The scan order of bucketing once by LSH regions (the paper's Mamba-b): rows sorted by their (phi region, eta region)
// code of hash table 0, head 0 (codes [T, H, Np] from region_codes, RegionMode::Src), and inside a region by
// coords[:, within_column] ascending (ties by row). Padded rows (index >= raw_size) come last, in row order, so a
// causal scan never carries padding into a real row.
// coords [Np, C], raw_size <= Np -> permutation [Np] int64 on coords' device (scan position -> row). No gradient.
engine::Tensor region_scan_order(const engine::Tensor& codes, const engine::Tensor& coords, int64_t raw_size,
                                 int64_t within_column);

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
