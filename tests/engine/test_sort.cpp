// Sort/argsort/topk tests: std::stable_sort references on ties, NaN placement, awkward shapes (empty, k = 0, 1, n),
// a large single row, gradchecks of the values and argument errors.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;
using testing::rand_f64;

namespace {

// Reference: stable order of each row of a [rows, n] host matrix; returns (values, indices) of the first k.
std::pair<std::vector<double>, std::vector<int64_t>> reference_rows(const std::vector<double>& v, int64_t rows,
                                                                    int64_t n, int64_t k, bool descending) {
  std::vector<double> vals;
  std::vector<int64_t> idxs;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    const double* row = v.data() + r * n;
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return descending ? row[a] > row[b] : row[a] < row[b]; });
    for (int64_t j = 0; j < k; ++j) {
      vals.push_back(row[order[j]]);
      idxs.push_back(order[j]);
    }
  }
  return {vals, idxs};
}

// Values drawn from a few integers, so rows are full of ties.
Tensor tied(const Shape& shape, uint64_t seed) {
  Tensor u = rand_f64(shape, seed, 0.0, 5.0, false);
  std::vector<double> v = u.to_vector<double>();
  for (double& x : v) x = std::floor(x);
  return from_vector(v, shape);
}

// Checks sort / topk of x along its last dim against the reference, for float32 and float64.
void check_rows_against_reference(const Tensor& x, int64_t k, bool descending) {
  const int64_t n = x.size(-1), rows = n == 0 ? 0 : x.numel() / n;
  auto [ref_v, ref_i] = reference_rows(x.contiguous().to_vector<double>(), rows, n, k, descending);
  Shape out_shape = x.shape();
  out_shape.back() = k;
  for (DType t : {DType::F64, DType::F32}) {
    auto [v, i] = k == n ? sort(x.to(t), -1, descending) : topk(x.to(t), k, -1, descending);
    CHECK(v.shape() == out_shape);
    CHECK(i.dtype() == DType::I64);
    CHECK(v.to_vector<double>() == ref_v);
    CHECK(i.to_vector<int64_t>() == ref_i);
  }
}

}  // namespace

TEST_CASE("sort and topk are stable on ties and match std::stable_sort") {
  for (Shape s : {Shape{1, 1}, Shape{3, 17}, Shape{4, 1000}, Shape{2, 0}, Shape{0, 5}, Shape{2, 3, 33}}) {
    Tensor x = tied(s, 7);
    const int64_t n = s.back();
    for (bool desc : {false, true}) {
      check_rows_against_reference(x, n, desc);
      for (int64_t k : {std::min<int64_t>(1, n), n / 2, int64_t(0)}) check_rows_against_reference(x, k, desc);
    }
  }
}

TEST_CASE("sort along an inner dim of a non-contiguous tensor") {
  Tensor base = tied({5, 4, 6}, 3);
  Tensor x = base.transpose(0, 2);  // [6, 4, 5], sort along dim 0 (base's dim 2)
  auto [v, i] = sort(x, 0, true);
  CHECK(v.shape() == Shape{6, 4, 5});
  CHECK(v.is_contiguous());
  auto [rv, ri] = sort(base, 2, true);
  CHECK(v.to_vector<double>() == rv.transpose(0, 2).contiguous().to_vector<double>());
  CHECK(i.to_vector<int64_t>() == ri.transpose(0, 2).contiguous().to_vector<int64_t>());
  CHECK(argsort(x, 0, true).to_vector<int64_t>() == i.to_vector<int64_t>());
  auto [tv, ti] = topk(x, 2, 0, false);
  CHECK(tv.shape() == Shape{2, 4, 5});
  CHECK(ti.to_vector<int64_t>() == sort(x, 0).second.narrow(0, 0, 2).contiguous().to_vector<int64_t>());
}

TEST_CASE("sort puts NaN last ascending and first descending; integers sort too") {
  const double nan = std::nan("");
  Tensor x = from_vector<double>({3, nan, 1, -nan, 2, -0.0, 0.0}, {7});
  auto [v, i] = sort(x);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{5, 6, 2, 4, 0, 1, 3});
  CHECK(std::isnan(v.to_vector<double>()[6]));
  CHECK(sort(x, 0, true).second.to_vector<int64_t>() == std::vector<int64_t>{1, 3, 0, 4, 2, 5, 6});
  CHECK(topk(x, 2, 0, false).second.to_vector<int64_t>() == std::vector<int64_t>{5, 6});
  Tensor ints = from_vector<int64_t>({5, -2, 5, 9, -2}, {5});
  auto [iv, ii] = sort(ints, 0, true);
  CHECK(iv.dtype() == DType::I64);
  CHECK(iv.to_vector<int64_t>() == std::vector<int64_t>{9, 5, 5, -2, -2});
  CHECK(ii.to_vector<int64_t>() == std::vector<int64_t>{3, 0, 2, 1, 4});
}

TEST_CASE("long rows (the radix path) keep the total order: NaN, -0 / +0, infinities, ties, every dtype") {
  // Rows of n >= 256 take the radix sort; the reference is std::stable_sort with the documented order.
  const double nan = std::nan("");
  const std::vector<double> pool{nan, -nan, -0.0, 0.0, INFINITY, -INFINITY, -1.5, 2.0, 1e-30, -1e-30, 7.0, -7.0};
  const int64_t rows = 3, n = 600;
  std::vector<double> v(static_cast<size_t>(rows * n));
  const auto u = rand_f64({rows * n}, 5, 0.0, static_cast<double>(pool.size()), false).to_vector<double>();
  for (size_t j = 0; j < v.size(); ++j) v[j] = pool[static_cast<size_t>(u[j])];
  auto less = [](double a, double b) { return !std::isnan(a) && (std::isnan(b) || a < b); };
  for (DType t : {DType::F64, DType::F32}) {
    for (bool desc : {false, true}) {
      CAPTURE(desc);
      auto [sv, si] = sort(from_vector(v, {rows, n}).to(t), -1, desc);
      const auto got = si.to_vector<int64_t>();
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<int64_t> order(static_cast<size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        const double* row = v.data() + r * n;
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t b) { return desc ? less(row[b], row[a]) : less(row[a], row[b]); });
        CHECK(std::vector<int64_t>(got.begin() + r * n, got.begin() + (r + 1) * n) == order);
      }
    }
  }
  std::vector<double> iv(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) iv[j] = static_cast<double>((j * 37) % 11) - 5;  // ties and negatives
  const Tensor x = from_vector(iv, {n});
  for (DType t : {DType::I64, DType::I32, DType::U8}) {
    const Tensor xt = t == DType::U8 ? (x + 5.0).to(t) : x.to(t);
    for (bool desc : {false, true}) {
      auto ref = reference_rows(xt.to(DType::F64).to_vector<double>(), 1, n, n, desc);
      auto [sv, si] = sort(xt, 0, desc);
      CHECK(si.to_vector<int64_t>() == ref.second);
      CHECK(sv.to(DType::F64).to_vector<double>() == ref.first);
    }
  }
}

TEST_CASE("a single large row sorts correctly") {
  const int64_t n = 100000;
  Tensor x = testing::rand_f32({n}, 11);
  auto t0 = std::chrono::steady_clock::now();
  auto [v, i] = sort(x);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("sort of " << n << " float32 values: " << ms << " ms");  // speed is benchmarked, not tested
  auto vv = v.to_vector<float>();
  auto iv = i.to_vector<int64_t>();
  auto xv = x.to_vector<float>();
  CHECK(std::is_sorted(vv.begin(), vv.end()));
  bool consistent = true;
  for (int64_t j = 0; j < n; ++j) consistent &= xv[iv[j]] == vv[j];
  CHECK(consistent);
  std::sort(iv.begin(), iv.end());
  CHECK(iv == arange(0, n).to_vector<int64_t>());
  auto [tv, ti] = topk(x, 5);
  CHECK(tv.to_vector<float>() == std::vector<float>(vv.rbegin(), vv.rbegin() + 5));
}

TEST_CASE("gradcheck: sort and topk values") {
  Tensor x = rand_f64({3, 6}, 21), y = rand_f64({4, 2, 5}, 22);
  gradcheck([](const Tensors& t) { return sort(t[0]).first; }, {x});
  gradcheck([](const Tensors& t) { return sort(t[0].t(), -1, true).first; }, {x});
  gradcheck([](const Tensors& t) { return sort(t[0].transpose(0, 2), 1).first; }, {y});
  gradcheck([](const Tensors& t) { return topk(t[0], 2, 1).first; }, {x});
  gradcheck([](const Tensors& t) { return topk(t[0].t(), 1, 0, false).first; }, {x});
  gradcheck([](const Tensors& t) { return topk(t[0], 5, -1).first; }, {y});
  CHECK_FALSE(argsort(x).requires_grad());
  CHECK_FALSE(sort(x).second.requires_grad());
}

TEST_CASE("sort errors name the op and the shapes") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH_AS(topk(x, 4, 1), doctest::Contains("topk: k = 4 is out of range [0, 3] for dim 1 of x [2, 3]"),
                       EngineError);
  CHECK_THROWS_AS(topk(x, -1, 1), EngineError);
  CHECK_THROWS_WITH_AS(sort(x, 2), doctest::Contains("sort: dim 2 out of range"), EngineError);
  CHECK_THROWS_AS(argsort(x, -3), EngineError);
  CHECK_THROWS_WITH_AS(sort(scalar_tensor(1.0)), doctest::Contains("rank-0"), EngineError);
  CHECK_THROWS_AS(sort(Tensor()), EngineError);
}
