// E2LSH pieces of HEPT (hept.md 3.4-3.5, lampa-models.md 2.5): the fixed random projections `alpha`, the region
// counts `regions` (get_regions), and the per-(hash, head) region codes from equal-count (quantile) partitions of
// eta and phi. All of these are computed without gradient; codes are small int64 tensors on the coords' device.
//
// Region code conventions (both sort lexicographically by (phi region, eta region), which is all the attention
// uses; the numeric values only matter for the reference's floating sort key):
//   RegionMode::Src      (src/models/attention/hept.py, Lampa): ranks over the Np padded rows, padded rows
//                        (index >= raw_size) rank last as +inf; code = eta + phi * (ceil(R_eta) + 1).
//   RegionMode::Example  (example/transformer.py, the published checkpoint): ranks over the N real rows only;
//                        code = (phi << b) | eta with b = ceil(log2(max eta + 1)) per (hash, head).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace layers {

enum class RegionMode { Src, Example };

// regions [n_hashes, 2, num_heads] float32: [t, 0, h] eta counts, [t, 1, h] phi counts (get_regions: draw index
// i = h * n_hashes + t, a1, a2 ~ U(2, 2 sqrt(R) - 2), rescaled so a1 * a2 = R, rounded to thirds).
engine::Tensor get_regions(double num_regions, int64_t n_hashes, int64_t num_heads, engine::Generator* gen = nullptr);

// alpha [num_heads, dim, n_hashes] ~ N(0, 1) float32 (the E2LSH projections, dim = head_dim + coords_dim).
engine::Tensor e2lsh_alpha(int64_t num_heads, int64_t dim, int64_t n_hashes, engine::Generator* gen = nullptr);

// 1-based quantile regions of one ranking: region(n) = floor(rank(n) / ceil(M / R)) + 1, with ceil(M / R)
// evaluated in the precision of `regions` (float or double), as the reference does.
// order: the argsort of the M values (order[r] = index of rank r).
std::vector<int64_t> quantile_partition(const std::vector<int64_t>& order, double R, bool r_is_float32);

// Region codes [T, H, M] int64 on coords' device.
//   Src: coords [Np, >=2] (padded rows may hold anything: they are ranked as +inf), raw_size real rows, M = Np.
//   Example: coords [N, >=2] real rows only, raw_size ignored (= N), M = N.
// torch_ties: break ties in the eta/phi ranking as PyTorch 1.13's CPU argsort (std::sort, unstable) does instead
// of stably; only matters for duplicate coordinates.
engine::Tensor region_codes(const engine::Tensor& coords, int64_t raw_size, const engine::Tensor& regions,
                            RegionMode mode, bool torch_ties = false);

// argsort of `keys` (ascending) as PyTorch 1.13's CPU torch.argsort(stable=False) orders it: libstdc++ std::sort
// over (value, index) pairs compared by value only (NaN last). Deterministic, but ties come out in introsort order.
std::vector<int64_t> torch_cpu_argsort(const std::vector<double>& keys);
std::vector<int64_t> torch_cpu_argsort(const std::vector<int64_t>& keys);
// Stable ascending argsort (ties by index).
std::vector<int64_t> stable_argsort(const std::vector<double>& keys);

}  // namespace layers
