// Accuracy of the vectorisable elementary functions of engine/simd_math.h (used by the elementwise ops' float
// kernels and the selective-scan, HEPT, dense-attention and loss CPU kernels) against the C library, over the whole
// range the kernels feed them.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/simd_math.h"

namespace {

double rel_err(double got, double want) { return std::abs(got - want) / std::abs(want); }

}  // namespace

TEST_CASE("simd_math: simd_exp(float) within 3e-7 relative of exp on [-87, 88], exactly 0 below -87") {
  double worst = 0;
  for (int i = 0; i <= 2000000; ++i) {
    const float x = -87.0f + 175.0f * static_cast<float>(i) / 2000000.0f;
    worst = std::max(worst, rel_err(engine::simd_exp(x), std::exp(static_cast<double>(x))));
  }
  CHECK(worst < 3e-7);
  // Half-integer multiples of ln 2 are where the range reduction rounds (ties): both neighbours must be right.
  for (int k = -120; k <= 120; ++k) {
    const float x = static_cast<float>((k + 0.5) * std::log(2.0));
    if (x < -87.0f || x > 88.0f) continue;
    CHECK(rel_err(engine::simd_exp(x), std::exp(static_cast<double>(x))) < 3e-7);
  }
  CHECK(engine::simd_exp(0.0f) == 1.0f);
  CHECK(engine::simd_exp(-87.5f) == 0.0f);
  CHECK(engine::simd_exp(-1e30f) == 0.0f);
  CHECK(engine::simd_exp(-std::numeric_limits<float>::infinity()) == 0.0f);
}

TEST_CASE("simd_math: simd_softplus and simd_sigmoid (float) against log1p / exp in double") {
  double worst_sp = 0, worst_sg = 0;
  for (int i = 0; i <= 400000; ++i) {
    const float v = -40.0f + 80.0f * static_cast<float>(i) / 400000.0f;
    const double vd = v;
    const double sp = std::max(vd, 0.0) + std::log1p(std::exp(-std::abs(vd)));
    worst_sp = std::max(worst_sp, rel_err(engine::simd_softplus(v), sp));
    worst_sg = std::max(worst_sg, rel_err(engine::simd_sigmoid(v), 1.0 / (1.0 + std::exp(-vd))));
  }
  CHECK(worst_sp < 1e-6);
  CHECK(worst_sg < 1e-6);
}

TEST_CASE("simd_math: simd_tanh (float) within 1e-6 relative of tanh in double, odd, saturating") {
  double worst = 0;
  for (int i = 0; i <= 400000; ++i) {
    const float x = -20.0f + 40.0f * static_cast<float>(i) / 400000.0f;
    if (x == 0.0f) continue;
    worst = std::max(worst, rel_err(engine::simd_tanh(x), std::tanh(static_cast<double>(x))));
  }
  CHECK(worst < 1e-6);
  // both sides of the switch at |x| = 0.625, tiny arguments, and the ends
  for (float x : {0.6249f, 0.625f, 0.6251f, 1e-3f, 1e-20f})
    for (float sx : {x, -x}) CHECK(rel_err(engine::simd_tanh(sx), std::tanh(static_cast<double>(sx))) < 1e-6);
  CHECK(engine::simd_tanh(0.0f) == 0.0f);
  CHECK(engine::simd_tanh(100.0f) == 1.0f);
  CHECK(engine::simd_tanh(-1e30f) == -1.0f);
  CHECK(engine::simd_tanh(std::numeric_limits<float>::infinity()) == 1.0f);
}
