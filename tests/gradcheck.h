// Test helpers: finite-difference gradient checks in float64, float64 copies for naive references, and tensor
// comparisons.
// gradcheck(f, inputs): loss = sum(f(inputs) * R) with a fixed random upstream gradient R; the analytic gradient of
// every input that requires grad is compared with central differences, element by element.
// check_module_f32_vs_f64(m, x, fused, reference): a module run in float32 against a reference run on float64 copies
// of the same weights and input; output, input gradient and every parameter gradient.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/nn/module.h"

namespace testing {

using engine::Tensor;
using engine::Tensors;

// Random float64 leaf of the given shape, values in [lo, hi).
inline Tensor rand_f64(const engine::Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                       bool requires_grad = true) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<size_t>(engine::shape_numel(shape)));
  for (double& x : v) x = u(rng);
  Tensor t = engine::from_vector(v, shape);
  if (requires_grad) t.requires_grad_();
  return t;
}

inline Tensor rand_f32(const engine::Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return rand_f64(shape, seed, lo, hi, false).to(engine::DType::F32);
}

// Detached float64 copies of (float32) inputs, each requiring grad; undefined entries stay undefined. The naive
// references run on these, so a fused float32 result is compared with a reference free of float32 rounding.
inline Tensors f64_copies(const Tensors& in) {
  Tensors out;
  for (const Tensor& x : in)
    out.push_back(x.defined() ? x.detach().to(engine::DType::F64).clone().requires_grad_() : Tensor());
  return out;
}

// Max |a - b| / (atol + rtol * |b|) over all elements; <= 1 means "close".
inline double closeness(const Tensor& a, const Tensor& b, double atol, double rtol) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  REQUIRE(va.size() == vb.size());
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) || std::isnan(vb[i])) {
      if (std::isnan(va[i]) != std::isnan(vb[i])) return INFINITY;
      continue;
    }
    worst = std::max(worst, std::abs(va[i] - vb[i]) / (atol + rtol * std::abs(vb[i])));
  }
  return worst;
}

// max |a - b| / max |b|: the error relative to the tensor's scale (the fused-vs-naive comparisons use it).
inline double scaled_err(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    num = std::max(num, std::abs(va[i] - vb[i]));
    den = std::max(den, std::abs(vb[i]));
  }
  return den == 0 ? num : num / den;
}

// Module-level float32 check. `fused(x)` runs the module as it is (float32) on a copy of x32; then the module's
// weights are converted to float64 and `reference(x)` (a naive composition, or the module itself where its fused
// kernels are checked against naive ones elsewhere) runs on a float64 copy of x32. With the same random upstream
// gradient, the output, the input gradient and the gradient of every parameter must agree within tol (scaled_err).
// A parameter the reference leaves without a gradient is skipped; names in `near_zero` have an exact gradient of
// zero (roundoff on both sides), checked as max |g| < tol instead. The module is float32 again on return.
inline void check_module_f32_vs_f64(engine::nn::Module& m, const Tensor& x32,
                                    const std::function<Tensor(const Tensor&)>& fused,
                                    const std::function<Tensor(const Tensor&)>& reference, double tol = 1e-5,
                                    const std::set<std::string>& near_zero = {}) {
  auto param_grads = [&m] {
    Tensors gs;
    for (const Tensor& p : m.parameters()) gs.push_back(p.grad().defined() ? p.grad().clone() : Tensor());
    return gs;
  };
  m.zero_grad();
  Tensor xa = x32.detach().clone().requires_grad_();
  Tensor ya = fused(xa);
  Tensor R = rand_f64(ya.shape(), 5, -1.0, 1.0, false);
  engine::sum(ya * R.to(engine::DType::F32)).backward();
  const Tensors ga = param_grads();
  m.zero_grad();
  m.to(engine::DType::F64);
  Tensor xb = x32.detach().to(engine::DType::F64).clone().requires_grad_();
  Tensor yb = reference(xb);
  engine::sum(yb * R).backward();
  const Tensors gb = param_grads();
  const double e_out = scaled_err(ya, yb), e_x = scaled_err(xa.grad(), xb.grad());
  CHECK_MESSAGE(e_out <= tol, "forward err " << e_out);
  CHECK_MESSAGE(e_x <= tol, "grad x err " << e_x);
  const auto names = m.named_parameters();
  for (size_t i = 0; i < names.size(); ++i) {
    CAPTURE(names[i].first);
    if (!gb[i].defined()) continue;
    REQUIRE(ga[i].defined());
    if (near_zero.count(names[i].first)) {
      CHECK(engine::amax(engine::abs(ga[i])).item() < tol);
      CHECK(engine::amax(engine::abs(gb[i])).item() < tol);
      continue;
    }
    const double e = scaled_err(ga[i], gb[i]);
    CHECK_MESSAGE(e <= tol, "grad " << names[i].first << " err " << e);
  }
  m.zero_grad();
  m.to(engine::DType::F32);
}

#define CHECK_CLOSE(a, b, atol, rtol)                                              \
  do {                                                                             \
    CHECK((a).shape() == (b).shape());                                             \
    double worst_ = ::testing::closeness((a), (b), (atol), (rtol));                \
    CHECK_MESSAGE(worst_ <= 1.0, "tensors differ: worst scaled error " << worst_); \
  } while (0)

inline Tensor upstream_for(const Tensor& out, uint64_t seed) {
  Tensor r = rand_f64(out.shape(), seed, -1.0, 1.0, false);
  return r.to(out.dtype());
}

// Checks d(sum(f(x) * R))/dx against central differences for every input with requires_grad.
inline void gradcheck(const std::function<Tensor(const Tensors&)>& f, const Tensors& inputs, double eps = 1e-6,
                      double atol = 1e-6, double rtol = 1e-4, uint64_t seed = 1234) {
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) {
      REQUIRE(t.dtype() == engine::DType::F64);
      t.impl()->grad.reset();
    }
  }
  Tensor out = f(inputs);
  Tensor R = upstream_for(out, seed);
  engine::sum(engine::mul(out, R)).backward();
  auto loss_at = [&]() {
    engine::NoGradGuard ng;
    return engine::sum(engine::mul(f(inputs), R)).item();
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    REQUIRE_MESSAGE(x.is_contiguous(), "gradcheck inputs must be contiguous leaves");
    Tensor analytic = x.grad();
    REQUIRE_MESSAGE(analytic.defined(), "input " << k << " received no gradient");
    auto ga = analytic.to_vector<double>();
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      double orig = p[i];
      p[i] = orig + eps;
      double lp = loss_at();
      p[i] = orig - eps;
      double lm = loss_at();
      p[i] = orig;
      double numeric = (lp - lm) / (2 * eps);
      double err = std::abs(numeric - ga[i]);
      if (err > atol + rtol * std::abs(numeric)) {
        FAIL_CHECK("input " << k << " element " << i << ": analytic " << ga[i] << " vs numeric " << numeric);
        return;
      }
    }
  }
}

}  // namespace testing
