// layers::knn and layers::radius_neighbors against an obvious brute-force reference (all pairs, sorted by
// (squared distance from differences, index)), for every method, several dimensions, ties, tiny and empty inputs.
#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "gradcheck.h"
#include "heap_shift.h"
#include "layers/knn.h"

using engine::Tensor;
using layers::KnnMethod;

namespace {

// Naive reference: every pair, distances in double from differences, stable order (d2, j).
std::vector<std::vector<std::pair<double, int64_t>>> all_sorted(const Tensor& points, bool include_self) {
  const auto p = points.to_vector<double>();
  const int64_t N = points.size(0), D = points.size(1);
  std::vector<std::vector<std::pair<double, int64_t>>> rows(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      if (j == i && !include_self) continue;
      double acc = 0;
      for (int64_t d = 0; d < D; ++d) {
        const double v = p[static_cast<size_t>(j * D + d)] - p[static_cast<size_t>(i * D + d)];
        acc += v * v;
      }
      rows[static_cast<size_t>(i)].push_back({acc, j});
    }
    std::sort(rows[static_cast<size_t>(i)].begin(), rows[static_cast<size_t>(i)].end());
  }
  return rows;
}

std::vector<int64_t> naive_knn(const Tensor& points, int64_t k, bool include_self) {
  auto rows = all_sorted(points, include_self);
  std::vector<int64_t> out;
  for (auto& r : rows)
    for (int64_t t = 0; t < std::min<int64_t>(k, static_cast<int64_t>(r.size())); ++t)
      out.push_back(r[static_cast<size_t>(t)].second);
  return out;
}

Tensor uniform_points(int64_t N, int64_t D, uint64_t seed) { return testing::rand_f32({N, D}, seed, -1.0, 1.0); }

// Points on a 3-D manifold embedded in D dims by a fixed random linear map (learned embeddings of hits look so).
Tensor manifold_points(int64_t N, int64_t D, uint64_t seed) {
  Tensor base = testing::rand_f64({N, 3}, seed, -1.0, 1.0, false);
  Tensor map = testing::rand_f64({3, D}, seed + 1, -1.0, 1.0, false);
  return engine::tanh(engine::matmul(base, map)).to(engine::DType::F32);
}

void check_knn(const Tensor& pts, int64_t k, bool include_self, KnnMethod method) {
  const Tensor got = layers::knn(pts, k, include_self, method);
  const int64_t N = pts.size(0);
  const int64_t expect_k = std::min<int64_t>(k, include_self ? N : std::max<int64_t>(N - 1, 0));
  REQUIRE(got.dtype() == engine::DType::I64);
  REQUIRE(got.shape() == engine::Shape{N, expect_k});
  CHECK(got.to_vector<int64_t>() == naive_knn(pts, k, include_self));
}

}  // namespace

TEST_CASE("knn: matches brute force for D = 2, 3, 6, 16, 32 with every method") {
  for (int64_t D : {2, 3, 6, 16, 32}) {
    for (KnnMethod m : {KnnMethod::Auto, KnnMethod::KdTree, KnnMethod::BruteForce}) {
      CAPTURE(D);
      CAPTURE(static_cast<int>(m));
      check_knn(uniform_points(413, D, 10 + D), 32, true, m);
      check_knn(uniform_points(300, D, 20 + D), 7, false, m);
      check_knn(manifold_points(500, D, 30 + D), 32, true, m);
    }
  }
}

TEST_CASE("knn: float64 points, self first at distance 0") {
  Tensor p = testing::rand_f64({257, 5}, 3, -10, 10, false);
  check_knn(p, 9, true, KnnMethod::KdTree);
  check_knn(p, 9, true, KnnMethod::BruteForce);
  auto idx = layers::knn(p, 9).to_vector<int64_t>();
  for (int64_t i = 0; i < 257; ++i) CHECK(idx[static_cast<size_t>(i * 9)] == i);
}

TEST_CASE("knn: duplicate points and ties are broken by index") {
  // Coordinates on a coarse lattice: many exact duplicates and many equal distances.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> u(0, 3);
  for (int64_t D : {2, 3, 16}) {
    std::vector<float> v(static_cast<size_t>(200 * D));
    for (float& x : v) x = static_cast<float>(u(rng));
    Tensor p = engine::from_vector(v, {200, D});
    for (KnnMethod m : {KnnMethod::KdTree, KnnMethod::BruteForce}) {
      check_knn(p, 20, true, m);
      check_knn(p, 20, false, m);
    }
  }
  // All points identical: neighbours are the lowest indices.
  Tensor same = engine::zeros({50, 3});
  auto idx = layers::knn(same, 4).to_vector<int64_t>();
  for (int64_t i = 0; i < 50; ++i)
    CHECK(std::vector<int64_t>(idx.begin() + i * 4, idx.begin() + i * 4 + 4) == std::vector<int64_t>{0, 1, 2, 3});
}

TEST_CASE("knn: k larger than N is clamped; N = 1; empty; bad arguments") {
  for (KnnMethod m : {KnnMethod::KdTree, KnnMethod::BruteForce}) {
    check_knn(uniform_points(5, 3, 1), 32, true, m);   // [5, 5]
    check_knn(uniform_points(5, 40, 1), 32, false, m);  // [5, 4]
    Tensor one = uniform_points(1, 2, 2);
    CHECK(layers::knn(one, 32, true, m).to_vector<int64_t>() == std::vector<int64_t>{0});
    CHECK(layers::knn(one, 32, false, m).shape() == engine::Shape{1, 0});
  }
  CHECK(layers::knn(engine::empty({0, 3}), 8).shape() == engine::Shape{0, 0});
  CHECK(layers::knn(uniform_points(10, 2, 3), 0).shape() == engine::Shape{10, 0});
  CHECK_THROWS(layers::knn(uniform_points(10, 2, 3), -1));
  CHECK_THROWS(layers::knn(engine::zeros({10}), 3));
  CHECK_THROWS(layers::knn(engine::zeros({10, 2}, engine::DType::I64), 3));
}

TEST_CASE("radius_neighbors: capped radius sets match brute force") {
  for (int64_t D : {2, 3, 8}) {
    Tensor p = uniform_points(400, D, 40 + D);
    for (double r : {0.0, 0.15, 0.4}) {
      for (int64_t cap : {1, 5, 1000}) {
        CAPTURE(D);
        CAPTURE(r);
        CAPTURE(cap);
        auto rows = all_sorted(p, true);
        std::vector<int64_t> expect;
        for (int64_t i = 0; i < 400; ++i) {
          int64_t taken = 0;
          for (auto& [d2, j] : rows[static_cast<size_t>(i)]) {
            if (d2 > r * r || taken == cap) break;
            expect.push_back(i);
            expect.push_back(j);
            ++taken;
          }
        }
        Tensor got = layers::radius_neighbors(p, r, cap);
        REQUIRE(got.dim() == 2);
        CHECK(got.size(1) == 2);
        CHECK(got.to_vector<int64_t>() == expect);
      }
    }
  }
  CHECK(layers::radius_neighbors(engine::empty({0, 2}), 1.0, 4).shape() == engine::Shape{0, 2});
  CHECK_THROWS(layers::radius_neighbors(uniform_points(4, 2, 1), -1.0, 4));
  CHECK_THROWS(layers::radius_neighbors(uniform_points(4, 2, 1), 1.0, 0));
}

TEST_CASE("knn: results do not depend on the thread count") {
  Tensor p = manifold_points(2000, 32, 77);
  const int prev = engine::get_num_threads();
  engine::set_num_threads(1);
  auto a = layers::knn(p, 16, true, KnnMethod::KdTree).to_vector<int64_t>();
  auto b = layers::knn(p, 16, true, KnnMethod::BruteForce).to_vector<int64_t>();
  engine::set_num_threads(2);
  auto c = layers::knn(p, 16, true, KnnMethod::KdTree).to_vector<int64_t>();
  auto d = layers::knn(p, 16, true, KnnMethod::BruteForce).to_vector<int64_t>();
  engine::set_num_threads(prev);
  CHECK(a == b);
  CHECK(a == c);
  CHECK(a == d);
}

TEST_CASE("knn: Auto on N >= 4096 (probe path) agrees with brute force on noise and on a manifold") {
  for (bool noise : {true, false}) {
    Tensor p = noise ? uniform_points(4500, 24, 91) : manifold_points(4500, 24, 92);
    auto a = layers::knn(p, 12, true, KnnMethod::Auto).to_vector<int64_t>();
    auto b = layers::knn(p, 12, true, KnnMethod::BruteForce).to_vector<int64_t>();
    CHECK(a == b);
  }
}

TEST_CASE("knn is identical whatever the heap's alignment") {
  const Tensor pts = testing::rand_f32({700, 5}, 21);
  for (KnnMethod method : {KnnMethod::BruteForce, KnnMethod::KdTree}) {
    testing::check_heap_independent([&] { return testing::float_contents({layers::knn(pts, 12, true, method)}); });
  }
}
