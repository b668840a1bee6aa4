// Focal loss: value against a direct evaluation of the formula, float64 gradient check, mask handling.
#include <cmath>

#include "engine/engine.h"
#include "gradcheck.h"
#include "models/pileup_loss.h"

using namespace engine;

TEST_CASE("focal loss: value, gradient, mask") {
  const std::vector<double> z{-2.0, -0.3, 0.1, 1.5, 3.0, 0.7};
  const std::vector<int64_t> y{0, 1, 1, 0, 1, 0};
  const std::vector<int64_t> m{1, 1, 0, 1, 1, 1};
  double want = 0;
  int count = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    if (!m[i]) continue;
    const double p = 1 / (1 + std::exp(-z[i]));
    const double bce = -(y[i] * std::log(p) + (1 - y[i]) * std::log(1 - p));
    want += 0.25 * std::pow(1 - std::exp(-bce), 2) * bce;
    ++count;
  }
  want /= count;
  const Tensor logits = from_vector(z, {6}), label = from_vector(y, {6}), mask = from_vector(m, {6});
  CHECK(models::focal_loss(logits, label, mask).item() == doctest::Approx(want).epsilon(1e-12));
  Tensor leaf = testing::rand_f64({6}, 3, -3, 3);
  testing::gradcheck([&](const Tensors& t) { return models::focal_loss(t[0], label, mask); }, {leaf});
  CHECK_THROWS_WITH(models::focal_loss(logits, label, zeros({6}, {DType::I64})), doctest::Contains("selects no"));
  // saturated logits stay finite (log clamped at -100 as in PyTorch)
  const Tensor big = from_vector<double>({200, -200}, {2});
  CHECK(std::isfinite(models::focal_loss(big, from_vector<int64_t>({0, 1}, {2}), ones({2}, {DType::I64})).item()));
}
