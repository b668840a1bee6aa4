// LSHOrdering: projection keys and the two-pass stable argsort (see lsh_ordering.h).
#include "layers/lsh_ordering.h"

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

LSHOrdering::LSHOrdering(int64_t coords_dim, int64_t num_heads, double num_regions, engine::Generator* gen) {
  e2lsh = register_module("e2lsh", std::make_shared<E2LSH>(1, coords_dim, 3, /*with_beta=*/true, gen));
  regions = register_buffer("regions", get_regions(num_regions, 3, num_heads, gen));
}

}  // namespace layers
