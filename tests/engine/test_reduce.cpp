// Reductions: amax/amin/argmax/argmin, var, softmax family, cumsum/cumprod against naive loops and gradchecks.
#include <cmath>

#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;
using testing::rand_f32;
using testing::rand_f64;

namespace {

// Naive row-wise reference over the last dim of a [M, R] float64 tensor.
std::vector<double> row_ref(const Tensor& x, const std::function<void(const double*, double*, int64_t)>& f) {
  auto v = x.contiguous().to_vector<double>();
  int64_t R = x.size(-1), M = R ? x.numel() / R : 0;
  std::vector<double> out(v.size());
  for (int64_t m = 0; m < M; ++m) f(v.data() + m * R, out.data() + m * R, R);
  return out;
}

}  // namespace

TEST_CASE("amax/amin/argmax/argmin pick the first extreme") {
  Tensor x = from_vector<double>({1, 5, 5, 2, -3, -3, 0, 9}, {2, 4});
  CHECK(amax(x, {1}).to_vector<double>() == std::vector<double>{5, 9});
  CHECK(amin(x, {1}).to_vector<double>() == std::vector<double>{1, -3});
  CHECK(amax(x).item() == 9);
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 3});
  CHECK(argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  CHECK(argmax(x, 0, true).shape() == Shape{1, 4});
  CHECK(amax(x, {0}, true).to_vector<double>() == std::vector<double>{-3 > 1 ? -3 : 1, 5, 5, 9});
  Tensor n = from_vector<double>({1, NAN, 3}, {3});
  CHECK(argmax(n, 0).item() == 1);
  CHECK(std::isnan(amax(n).item()));
  // gradient only to the first maximum
  Tensor t = from_vector<double>({2, 7, 7, 1}, {4}).requires_grad_();
  amax(t).backward();
  CHECK(t.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0});
  CHECK_THROWS_AS(argmax(zeros({2, 0}), 1), EngineError);
  CHECK_THROWS_AS(amax(x, {1, 1}), EngineError);
  CHECK_THROWS_AS(amax(x, {2}), EngineError);
}

TEST_CASE("var matches the two-pass formula") {
  Tensor x = rand_f64({3, 5}, 3, -2, 2, false);
  auto v = x.to_vector<double>();
  for (int64_t corr : {0, 1}) {
    Tensor r = var(x, {1}, corr);
    for (int i = 0; i < 3; ++i) {
      double mu = 0, ss = 0;
      for (int j = 0; j < 5; ++j) mu += v[i * 5 + j] / 5;
      for (int j = 0; j < 5; ++j) ss += (v[i * 5 + j] - mu) * (v[i * 5 + j] - mu);
      CHECK(r.to_vector<double>()[i] == doctest::Approx(ss / (5 - corr)).epsilon(1e-12));
    }
  }
  Tensor big = add(rand_f32({1000}, 4), 1e4);  // large mean: naive E[x^2]-E[x]^2 would cancel in float32
  CHECK(var(big).item() == doctest::Approx(var(big.to(DType::F64)).item()).epsilon(1e-3));
  CHECK_THROWS_AS(var(zeros({1}), {0}, 1), EngineError);
}

TEST_CASE("softmax family matches naive rows on awkward shapes") {
  for (int64_t R : {1, 7, 1000}) {
    Tensor x = rand_f32({3, R}, 10 + R, -30, 30);
    auto sm = row_ref(x, [](const double* a, double* o, int64_t n) {
      double m = -INFINITY, s = 0;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, a[i]);
      for (int64_t i = 0; i < n; ++i) s += std::exp(a[i] - m);
      for (int64_t i = 0; i < n; ++i) o[i] = std::exp(a[i] - m) / s;
    });
    CHECK_CLOSE(softmax(x, -1), from_vector(sm, {3, R}), 1e-6, 1e-5);
    std::vector<double> lsm(sm.size());
    for (size_t i = 0; i < sm.size(); ++i) lsm[i] = std::log(sm[i]);
    CHECK_CLOSE(log_softmax(x, 1), from_vector(lsm, {3, R}), 1e-4, 1e-5);
    CHECK_CLOSE(exp(logsumexp(x, {1}, true)), sum(exp(x.to(DType::F64)), {1}, true), 1e-6, 1e-4);
  }
  CHECK(softmax(zeros({0, 4}), 1).shape() == Shape{0, 4});
  Tensor ninf = full({2, 3}, -INFINITY, DType::F64);
  CHECK(std::isinf(logsumexp(ninf, {1}).to_vector<double>()[0]));
}

TEST_CASE("cumsum and cumprod match naive loops, zeros included") {
  Tensor x = from_vector<double>({1, 2, 0, 3, 2, -1, 4, 0.5}, {2, 4});
  CHECK(cumsum(x, 1).to_vector<double>() == std::vector<double>{1, 3, 3, 6, 2, 1, 5, 5.5});
  CHECK(cumsum(x, 0).to_vector<double>() == std::vector<double>{1, 2, 0, 3, 3, 1, 4, 3.5});
  CHECK(cumprod(x, 1).to_vector<double>() == std::vector<double>{1, 2, 0, 0, 2, -2, -8, -4});
  CHECK(cumsum(arange(0, 5, DType::I64), 0).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 3, 6, 10});
}

TEST_CASE("gradcheck: reductions") {
  Tensor x = rand_f64({3, 4, 5}, 21);
  gradcheck([](const Tensors& t) { return amax(t[0], {1}); }, {x});
  gradcheck([](const Tensors& t) { return amin(t[0].transpose(0, 2), {0, 2}, true); }, {x});
  gradcheck([](const Tensors& t) { return var(t[0], {0, 2}); }, {x});
  gradcheck([](const Tensors& t) { return var(t[0], {}, 0, true); }, {x});
  gradcheck([](const Tensors& t) { return softmax(t[0], 1); }, {x});
  gradcheck([](const Tensors& t) { return softmax(t[0].permute({2, 0, 1}), -1); }, {x});
  gradcheck([](const Tensors& t) { return log_softmax(t[0], 0); }, {x});
  gradcheck([](const Tensors& t) { return logsumexp(t[0], {1, 2}); }, {x});
  gradcheck([](const Tensors& t) { return cumsum(t[0], 1); }, {x});
  gradcheck([](const Tensors& t) { return cumsum(t[0].transpose(1, 2), -1); }, {x});
  gradcheck([](const Tensors& t) { return cumprod(t[0], 2); }, {x});
  Tensor z = from_vector<double>({0.5, 0.0, 2.0, 0.0, 1.5, 0.0, 3.0, 1.0, -2.0}, {3, 3}).requires_grad_();
  gradcheck([](const Tensors& t) { return cumprod(t[0], 1); }, {z});  // exact with zeros (one and two per row)
  gradcheck([](const Tensors& t) { return cumprod(t[0], 0); }, {z});
}

TEST_CASE("sum is independent of the thread count") {
  Tensor x = rand_f32({257, 1031}, 5, -1, 1);
  int before = get_num_threads();
  set_num_threads(1);
  auto a = sum(x, {0}).to_vector<float>();
  auto b = sum(x, {1}).to_vector<float>();
  set_num_threads(2);
  CHECK(sum(x, {0}).to_vector<float>() == a);
  CHECK(sum(x, {1}).to_vector<float>() == b);
  set_num_threads(before);
}
