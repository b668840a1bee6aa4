// Graph tests: kNN graph, capped radius graph and HEPT loss pairs against O(N^2) brute force on small point sets.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>

#include "data/graphs.h"

using namespace data;

namespace {

using EdgeSet = std::set<std::pair<int64_t, int64_t>>;

EdgeSet to_set(const engine::Tensor& e) {
  REQUIRE(e.dim() == 2);
  REQUIRE(e.size(0) == 2);
  REQUIRE(e.dtype() == engine::DType::I64);
  const auto v = e.to_vector<int64_t>();
  const int64_t n = e.size(1);
  EdgeSet s;
  for (int64_t j = 0; j < n; ++j) {
    if (j > 0) CHECK(std::make_pair(v[j - 1], v[n + j - 1]) < std::make_pair(v[j], v[n + j]));  // sorted, unique
    s.emplace(v[j], v[n + j]);
  }
  return s;
}

// Clustered points so that some have many neighbours within r.
std::vector<float> random_points(int n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  std::normal_distribution<float> g(0.f, 0.1f);
  std::vector<float> p;
  for (int i = 0; i < n; ++i) {
    const bool clustered = i % 3 == 0;
    p.push_back(clustered ? 1.f + g(gen) : u(gen));
    p.push_back(clustered ? -0.5f + g(gen) : u(gen));
  }
  return p;
}

double d2(const std::vector<float>& p, size_t i, size_t j) {
  const double dx = double(p[2 * i]) - p[2 * j], dy = double(p[2 * i + 1]) - p[2 * j + 1];
  return dx * dx + dy * dy;
}

// Brute force: per point, the others sorted by (distance, index).
std::vector<std::vector<size_t>> brute_sorted(const std::vector<float>& p) {
  const size_t n = p.size() / 2;
  std::vector<std::vector<size_t>> out(n);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) out[i].push_back(j);
    std::sort(out[i].begin(), out[i].end(), [&](size_t a, size_t b) {
      return std::make_pair(d2(p, i, a), a) < std::make_pair(d2(p, i, b), b);
    });
  }
  return out;
}

EdgeSet brute_radius(const std::vector<float>& p, double r, int cap) {
  const auto sorted = brute_sorted(p);
  EdgeSet s;
  for (size_t i = 0; i < sorted.size(); ++i) {
    int taken = 0;
    for (size_t j : sorted[i]) {
      if (j == i || !(d2(p, i, j) < r * r) || taken == cap) continue;
      ++taken;
      s.emplace(i, j), s.emplace(j, i);
    }
  }
  return s;
}

}  // namespace

TEST_CASE("knn graph equals brute force (undirected, self loops, awkward sizes)") {
  for (int n : {1, 2, 7, 301}) {
    for (int k : {1, 5, 60}) {
      const auto p = random_points(n, 11u + n);
      const auto sorted = brute_sorted(p);
      EdgeSet expect;
      for (size_t i = 0; i < sorted.size(); ++i) {
        for (int a = 0; a < std::min<int>(k, n); ++a) expect.emplace(i, sorted[i][a]), expect.emplace(sorted[i][a], i);
      }
      INFO("n=" << n << " k=" << k);
      CHECK(to_set(knn_graph(p, k)) == expect);
    }
  }
  CHECK(knn_graph({}, 60).shape() == engine::Shape{2, 0});
}

TEST_CASE("radius graph keeps the nearest max_neighbors within r, strict <") {
  const auto p = random_points(400, 5);
  for (auto [r, cap] : {std::pair{0.3, 256}, std::pair{0.3, 5}, std::pair{1.0, 17}, std::pair{0.05, 256}}) {
    INFO("r=" << r << " cap=" << cap);
    CHECK(to_set(undirected_edges(radius_neighbors(p, r, cap), false)) == brute_radius(p, r, cap));
  }
  // exactly at distance r is excluded
  const std::vector<float> line = {0.f, 0.f, 1.f, 0.f, 0.5f, 0.f};
  CHECK(to_set(undirected_edges(radius_neighbors(line, 1.0, 256), false)) == EdgeSet{{0, 2}, {1, 2}, {2, 0}, {2, 1}});
}

TEST_CASE("HEPT point pairs equal a brute-force restatement") {
  const int n = 300;
  const auto p = random_points(n, 9);
  std::vector<int64_t> pid(n);
  std::mt19937 gen(3);
  for (auto& v : pid) v = std::uniform_int_distribution<int>(0, 40)(gen) * 1000000000000LL;  // many 0s and big ids
  for (auto [r, cap] : {std::pair{1.0, 256}, std::pair{0.4, 6}}) {
    const EdgeSet nb = brute_radius(p, r, cap);
    EdgeSet expect;
    for (int64_t q = 1; q <= 40; ++q) {
      std::vector<int64_t> c;
      for (int i = 0; i < n; ++i)
        if (pid[i] == q * 1000000000000LL) c.push_back(i);
      if (c.size() < 2) continue;
      std::set<int64_t> np;
      for (auto [a, b] : nb)
        if (std::count(c.begin(), c.end(), a)) np.insert(b);
      for (int64_t i : c) {
        for (int64_t j : np) expect.emplace(i, j), expect.emplace(j, i);
        for (int64_t j : c) expect.emplace(i, j);
      }
    }
    std::erase_if(expect, [](const auto& e) { return e.first == e.second; });
    INFO("r=" << r << " cap=" << cap);
    CHECK(to_set(hept_point_pairs(p, pid, r, cap)) == expect);
  }
  CHECK_THROWS_AS(hept_point_pairs(p, std::vector<int64_t>(3), 1.0, 256), std::invalid_argument);
}

TEST_CASE("random pair augmentation: floor(f E / 2) draws, symmetric, no self pairs, the original pairs first") {
  const int n = 200;
  const engine::Tensor pairs = hept_point_pairs(random_points(n, 4), std::vector<int64_t>(n, 7), 0.3, 256);  // [2, E]
  const int64_t e = pairs.size(1);
  REQUIRE(e > 100);
  engine::Generator gen_a(11), gen_b(11);
  const engine::Tensor out = with_random_pairs(pairs, n, 0.2, &gen_a);
  const int64_t draws = static_cast<int64_t>(0.2 * static_cast<double>(e) / 2);
  const int64_t extra = out.size(1) - e;
  CHECK(extra > 0);
  CHECK(extra <= 2 * draws);
  CHECK(extra % 2 == 0);
  const auto v = out.to_vector<int64_t>();
  const auto orig = pairs.to_vector<int64_t>();
  for (int64_t k = 0; k < e; ++k) {  // the original pairs come first, unchanged
    REQUIRE(v[static_cast<size_t>(k)] == orig[static_cast<size_t>(k)]);
    REQUIRE(v[static_cast<size_t>(out.size(1) + k)] == orig[static_cast<size_t>(e + k)]);
  }
  EdgeSet added;
  for (int64_t k = e; k < out.size(1); ++k) {
    const int64_t i = v[static_cast<size_t>(k)], j = v[static_cast<size_t>(out.size(1) + k)];
    CHECK(i != j);
    CHECK((i >= 0 && i < n && j >= 0 && j < n));
    added.emplace(i, j);
  }
  CHECK(static_cast<int64_t>(added.size()) == extra);  // deduplicated among themselves
  for (auto [i, j] : added) CHECK(added.count({j, i}) == 1);
  // as (a, b), (b, a) with a < b, in increasing (a, b) order
  for (int64_t k = e; k < out.size(1); k += 2) {
    const auto at = [&](int64_t row, int64_t col) { return v[static_cast<size_t>(row * out.size(1) + col)]; };
    CHECK(at(0, k) < at(1, k));
    CHECK((at(0, k + 1) == at(1, k) && at(1, k + 1) == at(0, k)));
    if (k > e) CHECK(std::make_pair(at(0, k - 2), at(1, k - 2)) < std::make_pair(at(0, k), at(1, k)));
  }
  // the same generator state gives the same pairs; fraction 0 adds none
  CHECK(with_random_pairs(pairs, n, 0.2, &gen_b).to_vector<int64_t>() == v);
  CHECK(with_random_pairs(pairs, n, 0.0, &gen_b).size(1) == e);
  CHECK_THROWS_AS(with_random_pairs(pairs, n, -0.1, &gen_b), std::invalid_argument);
  CHECK_THROWS_AS(with_random_pairs(pairs.to(engine::DType::F32), n, 0.2, &gen_b), std::invalid_argument);
}
