// SSD scan, Mamba2 and Hydra: fused float32 scan vs a naive step-by-step reference run in float64 (forward and every
// gradient, awkward lengths, both directions, scaled error <= 1e-5), float64 finite-difference checks, thread-count
// independence, module references (Mamba2 spec 3.3, Hydra spec 3.4 steps 1-7; both also in float32 with every parameter
// gradient against their float64 naive reimplementations) and parameter counts (lampa-models.md 1.1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "gradcheck.h"
#include "heap_shift.h"
#include "layers/hydra.h"
#include "layers/mamba2.h"
#include "layers/ssd.h"
#include "ssd_reference.h"

using engine::DType;
using engine::Tensor;
using engine::Tensors;

namespace {

struct ScanInputs {
  Tensor x, dt, A, B, C, D;
  Tensors list() const { return {x, dt, A, B, C, D}; }
};

// Realistic ranges: dt > 0 (after softplus), A < 0, D around 1.
ScanInputs scan_inputs(int64_t L, int64_t H, int64_t P, int64_t n, uint64_t seed, DType t, bool with_D = true) {
  ScanInputs s;
  s.x = testing::rand_f64({L, H, P}, seed, -1, 1, false).to(t);
  s.dt = testing::rand_f64({L, H}, seed + 1, 0.01, 0.6, false).to(t);
  s.A = testing::rand_f64({H}, seed + 2, -2.0, -0.3, false).to(t);
  s.B = testing::rand_f64({L, n}, seed + 3, -1, 1, false).to(t);
  s.C = testing::rand_f64({L, n}, seed + 4, -1, 1, false).to(t);
  if (with_D) s.D = testing::rand_f64({H}, seed + 5, 0.5, 1.5, false).to(t);
  for (Tensor* p : {&s.x, &s.dt, &s.A, &s.B, &s.C, &s.D})
    if (p->defined()) p->requires_grad_();
  return s;
}

ScanInputs f64_copy(const ScanInputs& s) {
  const Tensors c = testing::f64_copies(s.list());
  return {c[0], c[1], c[2], c[3], c[4], c[5]};
}

// Runs the fused float32 scan and the naive scan on float64 copies of the same inputs with the same upstream
// gradient; checks the output and every input gradient.
void compare_with_naive(int64_t L, int64_t H, int64_t P, int64_t n, int64_t chunk, bool reverse, bool with_D,
                        double tol) {
  ScanInputs a = scan_inputs(L, H, P, n, 100 + L, DType::F32, with_D), b = f64_copy(a);
  Tensor ya = layers::ssd_scan(a.x, a.dt, a.A, a.B, a.C, a.D, chunk, reverse);
  Tensor yb = ssd_ref::naive_ssd(b.x, b.dt, b.A, b.B, b.C, b.D, reverse);
  REQUIRE(ya.shape() == engine::Shape{L, H, P});
  CHECK_MESSAGE(testing::scaled_err(ya, yb) <= tol, "forward L=" << L << " err " << testing::scaled_err(ya, yb));
  if (L == 0) return;
  Tensor R = testing::rand_f64({L, H, P}, 7, -1, 1, false);
  engine::sum(ya * R.to(DType::F32)).backward();
  engine::sum(yb * R).backward();
  const char* names[] = {"x", "dt", "A", "B", "C", "D"};
  Tensors la = a.list(), lb = b.list();
  for (int i = 0; i < 6; ++i) {
    if (!la[i].defined()) continue;
    REQUIRE(la[i].grad().defined());
    const double e = testing::scaled_err(la[i].grad(), lb[i].grad());
    CHECK_MESSAGE(e <= tol, "grad " << std::string(names[i]) << " L=" << L << " reverse=" << reverse << " err " << e);
  }
}

}  // namespace

TEST_CASE("ssd_scan float32 vs the float64 naive scan: forward and all gradients, awkward lengths, both directions") {
  for (bool reverse : {false, true})
    for (int64_t L : {1, 5, 63, 64, 65, 200}) {
      CAPTURE(L);
      CAPTURE(reverse);
      compare_with_naive(L, 3, 16, 16, 64, reverse, true, 1e-5);
    }
}

TEST_CASE("ssd_scan float32: odd widths (P 12, n 5), small chunks, no D, empty sequence") {
  compare_with_naive(37, 2, 12, 5, 8, false, false, 1e-5);
  compare_with_naive(37, 2, 12, 5, 7, true, true, 1e-5);
  compare_with_naive(130, 4, 12, 16, 64, true, false, 1e-5);
  compare_with_naive(0, 2, 4, 3, 64, false, true, 0);
}

TEST_CASE("ssd_scan float64 gradcheck (both directions, with and without D)") {
  for (bool reverse : {false, true})
    for (bool with_D : {true, false}) {
      ScanInputs s = scan_inputs(11, 2, 3, 4, 55, DType::F64, with_D);
      testing::gradcheck(
          [&](const Tensors& in) { return layers::ssd_scan(in[0], in[1], in[2], in[3], in[4], in[5], 4, reverse); },
          s.list());
    }
}

TEST_CASE("ssd_scan results do not depend on the thread count") {
  const int saved = engine::get_num_threads();
  Tensor out[2], gx[2], gB[2];
  for (int k = 0; k < 2; ++k) {
    engine::set_num_threads(k == 0 ? 1 : 2);
    ScanInputs s = scan_inputs(150, 5, 16, 16, 9, DType::F32);
    Tensor y = layers::ssd_scan(s.x, s.dt, s.A, s.B, s.C, s.D, 64, false);
    engine::sum(y * y).backward();
    out[k] = y.detach();
    gx[k] = s.x.grad();
    gB[k] = s.B.grad();
  }
  engine::set_num_threads(saved);
  CHECK(out[0].to_vector<float>() == out[1].to_vector<float>());
  CHECK(gx[0].to_vector<float>() == gx[1].to_vector<float>());
  CHECK(gB[0].to_vector<float>() == gB[1].to_vector<float>());
}

TEST_CASE("ssd_scan rejects bad shapes") {
  ScanInputs s = scan_inputs(5, 2, 3, 4, 1, DType::F32);
  CHECK_THROWS(layers::ssd_scan(s.x, s.dt.narrow(0, 0, 4), s.A, s.B, s.C, s.D));
  CHECK_THROWS(layers::ssd_scan(s.x, s.dt, s.A, s.B, s.C.narrow(1, 0, 3), s.D));
  CHECK_THROWS(layers::ssd_scan(s.x, s.dt, s.A, s.B, s.C, s.D, 0));
}

TEST_CASE("Mamba2 and Hydra parameter counts (lampa-models.md 1.1)") {
  engine::manual_seed(1);
  CHECK(layers::Mamba2(64).num_parameters() == 28088);
  CHECK(layers::Mamba2(128).num_parameters() == 106192);
  CHECK(layers::Hydra(48).num_parameters() == 19352);
  layers::Mamba2 m(64);
  std::vector<std::string> names;
  for (auto& [name, t] : m.named_parameters()) names.push_back(name);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"A_log", "D", "conv1d.bias", "conv1d.weight", "dt_bias", "in_proj.weight",
                                          "norm.weight", "out_proj.weight"});
  // Init ranges of spec 9: A = exp(A_log) in [1, 16], dt = softplus(dt_bias) in [1e-3, 0.1], D = 1.
  for (double a : engine::exp(m.A_log).to_vector<double>()) CHECK((a >= 1.0 - 1e-5 && a <= 16.0 + 1e-4));
  for (double d : engine::softplus(m.dt_bias).to_vector<double>()) CHECK((d >= 1e-3 * 0.999 && d <= 0.1 * 1.001));
  for (double d : m.D.to_vector<double>()) CHECK(d == 1.0);
}

TEST_CASE("Mamba2 matches the naive spec-3.3 reimplementation (float64, L not a multiple of the chunk)") {
  engine::manual_seed(3);
  layers::Mamba2Options o;
  o.chunk = 16;
  layers::Mamba2 m(16, o);
  m.to(DType::F64);
  for (int64_t L : {1, 37}) {
    Tensor u = testing::rand_f64({L, 16}, 5 + L, -1, 1, false);
    Tensor a = m.forward(u), b = ssd_ref::naive_mamba2(m, u);
    CHECK(testing::scaled_err(a, b) < 1e-12);
  }
  // pe is added to u before in_proj.
  Tensor u = testing::rand_f64({9, 16}, 8, -1, 1, false), pe = testing::rand_f64({9, 16}, 9, -1, 1, false);
  CHECK(testing::scaled_err(m.forward(u, pe), m.forward(u + pe)) < 1e-14);
}

TEST_CASE("Mamba2 float64 gradcheck (small d; input and every parameter)") {
  engine::manual_seed(4);
  layers::Mamba2Options o;
  o.d_state = 4;
  o.headdim = 4;
  o.chunk = 4;
  layers::Mamba2 m(6, o);
  m.to(DType::F64);
  Tensor u = testing::rand_f64({9, 6}, 11);
  Tensors inputs{u};
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  testing::gradcheck([&](const Tensors& in) { return m.forward(in[0]); }, inputs);
}

TEST_CASE("Hydra matches a naive reimplementation of spec 3.4 steps 1-7 (float64)") {
  engine::manual_seed(5);
  layers::HydraOptions o;
  o.chunk = 16;
  layers::Hydra h(48, o);
  h.to(DType::F64);
  for (int64_t L : {1, 2, 41}) {
    CAPTURE(L);
    Tensor u = testing::rand_f64({L, 48}, 20 + L, -1, 1, false);
    Tensor a = h.forward(u), b = ssd_ref::naive_hydra(h, u);
    CHECK(testing::scaled_err(a, b) < 1e-12);
  }
}

TEST_CASE("Hydra float32 forward and gradients vs the float64 naive reimplementation (L = 130, default dims)") {
  engine::manual_seed(6);
  layers::Hydra h(48);
  testing::check_module_f32_vs_f64(
      h, testing::rand_f32({130, 48}, 31), [&](const Tensor& u) { return h.forward(u); },
      [&](const Tensor& u) { return ssd_ref::naive_hydra(h, u); });
}

TEST_CASE("Mamba2 float32: output, input and every parameter gradient vs the naive spec-3.3 steps in float64") {
  engine::manual_seed(9);
  layers::Mamba2Options o;
  o.chunk = 16;
  layers::Mamba2 m(48, o);
  for (int64_t L : {1, 16, 37, 130}) {
    CAPTURE(L);
    testing::check_module_f32_vs_f64(
        m, testing::rand_f32({L, 48}, 50 + L), [&](const Tensor& u) { return m.forward(u); },
        [&](const Tensor& u) { return ssd_ref::naive_mamba2(m, u); });
  }
}

TEST_CASE("Hydra float64 gradcheck (small dims; input and every parameter)") {
  engine::manual_seed(7);
  layers::HydraOptions o;
  o.d_inner = 8;
  o.headdim = 4;
  o.d_state = 3;
  o.chunk = 4;
  layers::Hydra h(5, o);
  h.to(DType::F64);
  Tensor u = testing::rand_f64({9, 5}, 12);
  Tensors inputs{u};
  for (const Tensor& p : h.parameters()) inputs.push_back(p);
  testing::gradcheck([&](const Tensors& in) { return h.forward(in[0]); }, inputs);
}

TEST_CASE("ssd_scan is bit-identical whatever the heap's alignment") {
  testing::check_heap_independent([] {
    ScanInputs s = scan_inputs(150, 5, 16, 16, 9, DType::F32);
    Tensor y = layers::ssd_scan(s.x, s.dt, s.A, s.B, s.C, s.D, 64, false);
    engine::sum(y * y).backward();
    return testing::float_contents({y, s.x.grad(), s.dt.grad(), s.A.grad(), s.B.grad(), s.C.grad(), s.D.grad()});
  });
}
