// Parameter initialisers: random fills through the engine's random factories, copied in place without autograd.
#include "engine/nn/init.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"

namespace engine::nn::init {

namespace {

Tensor& assign(Tensor& t, const Tensor& values) {
  NoGradGuard ng;
  t.copy_(values);
  return t;
}

void check_floating(const Tensor& t, const char* op) {
  check_defined(op, t, "tensor");
  ENGINE_CHECK(is_floating(t.dtype()), op, "needs a floating tensor, got {}", dtype_name(t.dtype()));
}

}  // namespace

std::pair<int64_t, int64_t> fans(const Tensor& t) {
  ENGINE_CHECK(t.dim() >= 2, "init", "fan in/out need a tensor of rank >= 2, got {}", shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid") return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  ENGINE_FAIL("calculate_gain", "unknown nonlinearity '{}'", nonlinearity);
}

Tensor& uniform_(Tensor& t, double lo, double hi, Generator* gen) {
  check_floating(t, "uniform_");
  ENGINE_CHECK(lo <= hi, "uniform_", "lo {} > hi {}", lo, hi);
  return assign(t, uniform(t.shape(), lo, hi, t.options(), gen));
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  check_floating(t, "normal_");
  ENGINE_CHECK(std >= 0, "normal_", "std must be >= 0, got {}", std);
  NoGradGuard ng;
  return assign(t, add(mul(randn(t.shape(), t.options(), gen), std), mean));
}

Tensor& zeros_(Tensor& t) {
  check_defined("zeros_", t, "tensor");
  t.fill_(0.0);
  return t;
}

Tensor& ones_(Tensor& t) {
  check_defined("ones_", t, "tensor");
  t.fill_(1.0);
  return t;
}

Tensor& kaiming_uniform_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity, Generator* gen) {
  check_floating(t, "kaiming_uniform_");
  auto [fan_in, fan_out] = fans(t);
  const int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  ENGINE_CHECK(fan > 0, "kaiming_uniform_", "zero fan for shape {}", shape_str(t.shape()));
  const double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / static_cast<double>(fan));
  return uniform_(t, -bound, bound, gen);
}

Tensor& xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  check_floating(t, "xavier_uniform_");
  auto [fan_in, fan_out] = fans(t);
  ENGINE_CHECK(fan_in + fan_out > 0, "xavier_uniform_", "zero fans for shape {}", shape_str(t.shape()));
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform_(t, -bound, bound, gen);
}

}  // namespace engine::nn::init
