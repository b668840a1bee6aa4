// LSHOrdering: projection keys and the two-pass stable argsort; the LSH-region scan order (see lsh_ordering.h).
#include "layers/lsh_ordering.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "engine/engine.h"
#include "layers/common.h"

namespace layers {

using engine::Tensor;

Tensor lsh_order(const Tensor& coords, const Tensor& alpha) {
  check_shape("lsh_order", "coords", coords, {-1, -1});
  check_shape("lsh_order", "alpha", alpha, {1, coords.size(1), 3});
  engine::NoGradGuard no_grad;
  const Tensor p = engine::matmul(coords, alpha.select(0, 0).to(coords.dtype()));  // [N, 3]
  const Tensor key = p.select(1, 0) + p.select(1, 1) * 2.0 + p.select(1, 2) * 4.0;    // [N]
  const Tensor by_norm = engine::argsort(engine::sqrt(engine::sum(coords * coords, {1})));
  const Tensor by_key = engine::argsort(engine::index_select(key, 0, by_norm));  // stable
  return engine::index_select(by_norm, 0, by_key);
}

Tensor region_scan_order(const Tensor& codes, const Tensor& coords, int64_t raw_size, int64_t within_column) {
  check_shape("region_scan_order", "coords", coords, {-1, -1});
  const int64_t rows = coords.size(0);
  check_shape("region_scan_order", "codes", codes, {-1, -1, rows});
  if (raw_size < 0 || raw_size > rows)
    throw std::invalid_argument(fmt::format("region_scan_order: raw_size {} outside [0, {}]", raw_size, rows));
  if (within_column < 0 || within_column >= coords.size(1))
    throw std::invalid_argument(fmt::format("region_scan_order: column {} outside coords [{}, {}]", within_column,
                                            rows, coords.size(1)));
  engine::NoGradGuard no_grad;
  const std::vector<int64_t> code = codes.select(0, 0).select(0, 0).to_vector<int64_t>();  // [Np] table 0, head 0
  const std::vector<double> within = coords.select(1, within_column).to_vector<double>();  // [Np]
  std::vector<int64_t> order(rows);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.begin() + raw_size, [&](int64_t a, int64_t b) {
    return code[a] != code[b] ? code[a] < code[b] : within[a] < within[b];
  });
  return engine::from_vector(order, {rows}).to(coords.device());
}

LSHOrdering::LSHOrdering(int64_t coords_dim, int64_t num_heads, double num_regions, engine::Generator* gen) {
  e2lsh = register_module("e2lsh", std::make_shared<E2LSH>(1, coords_dim, 3, /*with_beta=*/true, gen));
  regions = register_buffer("regions", get_regions(num_regions, 3, num_heads, gen));
}

}  // namespace layers
