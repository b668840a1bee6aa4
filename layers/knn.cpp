// knn / radius_neighbors: argument checks, the k clamp, and the choice of kernel (layers/knn_kernels.h).
#include "layers/knn.h"

#include <algorithm>
#include <vector>

#include "engine/engine.h"
#include "layers/common.h"
#include "layers/dispatch.h"
#include "layers/knn_kernels.h"

namespace layers {

using engine::Tensor;

namespace {

void check_points(const char* where, const Tensor& points) {
  check_shape(where, "points", points, {-1, -1});
  ENGINE_CHECK(engine::is_floating(points.dtype()), where, "points must be float32 or float64, got {}",
               engine::dtype_name(points.dtype()));
  ENGINE_CHECK(points.size(1) >= 1 || points.size(0) == 0, where, "points need at least one dimension");
}

}  // namespace

Tensor knn(const Tensor& points, int64_t k, bool include_self, KnnMethod method) {
  const char* where = "knn";
  check_points(where, points);
  ENGINE_CHECK(k >= 0, where, "k must be >= 0, got {}", k);
  const int64_t N = points.size(0);
  const int64_t available = include_self ? N : std::max<int64_t>(N - 1, 0);
  const int64_t kk = std::min(k, available);  // documented clamp
  Tensor out = engine::empty({N, kk}, engine::TensorOptions(engine::DType::I64, points.device()));
  if (N == 0 || kk == 0) return out;
  engine::NoGradGuard ng;
  const Tensor p = points.detach().contiguous();
  if (p.device().is_cuda()) {
    ENGINE_CHECK(method != KnnMethod::KdTree, where, "the kd-tree method runs on the CPU only");
    LAYER_DISPATCH(p.device(), knn_bruteforce, p, kk, include_self, out);
    return out;
  }
  if (method == KnnMethod::KdTree) {
    cpu::knn_kdtree(p, kk, include_self, out);
  } else if (method == KnnMethod::BruteForce) {
    cpu::knn_bruteforce(p, kk, include_self, out);
  } else {
    // Auto: the kd-tree unless its probe queries show it would look at more than 15% of the points per query
    // (then the brute force is faster); D <= 6 always keeps the tree.
    const double give_up = p.size(1) <= 6 ? 0.0 : 0.15;
    if (!cpu::knn_kdtree(p, kk, include_self, out, give_up)) cpu::knn_bruteforce(p, kk, include_self, out);
  }
  return out;
}

Tensor radius_neighbors(const Tensor& points, double r, int64_t max_neighbors) {
  const char* where = "radius_neighbors";
  check_points(where, points);
  ENGINE_CHECK(r >= 0, where, "r must be >= 0, got {}", r);
  ENGINE_CHECK(max_neighbors >= 1, where, "max_neighbors must be >= 1, got {}", max_neighbors);
  const engine::Device dev = points.device();
  const Tensor p = points.detach().to(engine::Device::cpu()).to(engine::DType::F64).contiguous();
  const int64_t N = p.size(0), D = p.size(1);
  // The max_neighbors nearest by (distance, index), then cut at r: exactly the capped radius set.
  const Tensor nb = knn(p, max_neighbors, true, KnnMethod::Auto);
  const int64_t k = nb.size(1);
  const double* x = p.data<double>();
  const int64_t* id = nb.data<int64_t>();
  const double r2 = r * r;
  std::vector<int64_t> pairs;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t t = 0; t < k; ++t) {
      const int64_t j = id[i * k + t];
      double acc = 0;
      for (int64_t d = 0; d < D; ++d) {
        const double v = x[j * D + d] - x[i * D + d];
        acc += v * v;
      }
      if (acc > r2) break;  // rows are sorted by distance
      pairs.push_back(i);
      pairs.push_back(j);
    }
  const int64_t E = static_cast<int64_t>(pairs.size() / 2);
  return engine::from_vector(pairs, {E, 2}).to(dev);
}

}  // namespace layers
