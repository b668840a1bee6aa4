// Fused LayerNorm / RMSNorm against naive loops and gradchecks.
#include <cmath>

#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;
using testing::rand_f32;
using testing::rand_f64;

namespace {

std::vector<double> naive_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps, bool center) {
  auto v = x.to_vector<double>();
  int64_t D = x.size(-1), M = x.numel() / D;
  auto wv = w.defined() ? w.to_vector<double>() : std::vector<double>(D, 1.0);
  auto bv = b.defined() ? b.to_vector<double>() : std::vector<double>(D, 0.0);
  std::vector<double> out(v.size());
  for (int64_t m = 0; m < M; ++m) {
    double mu = 0, ss = 0;
    if (center)
      for (int64_t d = 0; d < D; ++d) mu += v[m * D + d] / D;
    for (int64_t d = 0; d < D; ++d) ss += (v[m * D + d] - mu) * (v[m * D + d] - mu) / D;
    for (int64_t d = 0; d < D; ++d) out[m * D + d] = (v[m * D + d] - mu) / std::sqrt(ss + eps) * wv[d] + bv[d];
  }
  return out;
}

}  // namespace

TEST_CASE("layer_norm and rms_norm match naive rows") {
  for (int64_t D : {1, 7, 1000}) {
    Tensor x = rand_f32({5, D}, D, -3, 5);
    Tensor w = rand_f32({D}, D + 1), b = rand_f32({D}, D + 2);
    CHECK_CLOSE(layer_norm(x, w, b), from_vector(naive_norm(x, w, b, 1e-5, true), {5, D}), 1e-5, 1e-4);
    CHECK_CLOSE(layer_norm(x, D), from_vector(naive_norm(x, {}, {}, 1e-5, true), {5, D}), 1e-5, 1e-4);
    CHECK_CLOSE(rms_norm(x, w), from_vector(naive_norm(x, w, {}, 1e-5, false), {5, D}), 1e-5, 1e-4);
  }
  CHECK(layer_norm(zeros({0, 4}), ones({4}), zeros({4})).shape() == Shape{0, 4});
}

TEST_CASE("norm argument errors") {
  CHECK_THROWS_WITH_AS(layer_norm(zeros({2, 4}), ones({3}), zeros({3})), doctest::Contains("layer_norm"), EngineError);
  CHECK_THROWS_AS(rms_norm(zeros({2, 4}), ones({5})), EngineError);
  CHECK_THROWS_AS(layer_norm(zeros({2, 4}), ones({4}), zeros({4}, DType::F64)), EngineError);
}

TEST_CASE("gradcheck: layer_norm and rms_norm") {
  Tensor x = rand_f64({2, 3, 6}, 1, -2, 2), w = rand_f64({6}, 2), b = rand_f64({6}, 3);
  gradcheck([](const Tensors& t) { return layer_norm(t[0], t[1], t[2]); }, {x, w, b});
  gradcheck([](const Tensors& t) { return layer_norm(t[0].transpose(0, 1), t[1], t[2]); }, {x, w, b});
  gradcheck([](const Tensors& t) { return layer_norm(t[0], 6); }, {x});
  gradcheck([](const Tensors& t) { return rms_norm(t[0], t[1]); }, {x, w});
  gradcheck([](const Tensors& t) { return rms_norm(t[0].transpose(0, 1), Tensor()); }, {x});
  Tensor w2 = rand_f64({3, 6}, 4), b2 = rand_f64({3, 6}, 5);
  gradcheck([](const Tensors& t) { return layer_norm(t[0], t[1], t[2]); }, {x, w2, b2});  // 2-D normalized shape
}
