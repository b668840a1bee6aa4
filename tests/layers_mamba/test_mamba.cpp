// Mamba v1: the fused float32 selective scan vs a naive step-by-step reference built from engine ops and run in
// float64 (forward and every gradient on awkward lengths and chunk sizes, with and without the z gate, scaled error
// <= 1e-5), float64 finite differences, thread-count independence, the Mamba mixer vs its spec steps
// (lampa-models.md 3.2) in float64 and in float32 with every parameter gradient, and parameter counts.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "gradcheck.h"
#include "heap_shift.h"
#include "layers/mamba.h"
#include "layers/selective_scan.h"

using engine::DType;
using engine::Tensor;
using engine::Tensors;

namespace {

// The recurrence of lampa-models.md 3.2 step 6, one step at a time: [L, E] outputs from engine ops.
Tensor naive_scan(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                  const Tensor& D, const Tensor& bias, const Tensor& z) {
  const int64_t L = x.size(0), E = x.size(1), n = A.size(1);
  Tensor h = engine::zeros({E, n}, x.options());
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < L; ++t) {
    Tensor xt = x.narrow(0, t, 1).reshape({E, 1});
    Tensor dt = engine::softplus(delta.narrow(0, t, 1).reshape({E, 1}) + bias.reshape({E, 1}));  // [E, 1]
    h = engine::exp(dt * A) * h + (dt * xt) * B.narrow(0, t, 1);                                  // [E, n]
    ys.push_back(engine::sum(h * C.narrow(0, t, 1), {1}) + D * xt.reshape({E}));
  }
  Tensor y = L ? engine::stack(ys, 0) : engine::zeros({0, E}, x.options());
  return z.defined() ? y * engine::silu(z) : y;
}

// The Mamba mixer of lampa-models.md 3.2 spelled out with the naive scan: in_proj, causal conv + SiLU, x_proj,
// dt_proj, scan with the D skip and the SiLU(z) gate, out_proj.
Tensor naive_mamba(const layers::Mamba& m, const Tensor& u) {
  const int64_t E = m.d_inner, R = m.dt_rank, n = m.A_log.size(1);
  Tensor xz = engine::linear(u, m.in_proj->weight);                     // [L, 2E]
  Tensor xc = engine::silu(m.conv1d->forward(xz.narrow(1, 0, E)));      // [L, E]
  Tensor dbc = engine::linear(xc, m.x_proj->weight);                    // [L, R + 2n]
  Tensor delta = engine::linear(dbc.narrow(1, 0, R), m.dt_proj->weight);  // [L, E]
  Tensor y = naive_scan(xc, delta, engine::neg(engine::exp(m.A_log)), dbc.narrow(1, R, n), dbc.narrow(1, R + n, n),
                        m.D, m.dt_proj->bias, xz.narrow(1, E, E));
  return engine::linear(y, m.out_proj->weight);
}

struct ScanInputs {
  Tensor x, delta, A, B, C, D, bias, z;
  Tensors list() const { return {x, delta, A, B, C, D, bias, z}; }
};

ScanInputs scan_inputs(int64_t L, int64_t E, int64_t n, uint64_t seed, DType t, bool gate) {
  ScanInputs s;
  s.x = testing::rand_f64({L, E}, seed, -1, 1, false).to(t);
  s.delta = testing::rand_f64({L, E}, seed + 1, -3, 1, false).to(t);
  s.A = testing::rand_f64({E, n}, seed + 2, -3.0, -0.2, false).to(t);
  s.B = testing::rand_f64({L, n}, seed + 3, -1, 1, false).to(t);
  s.C = testing::rand_f64({L, n}, seed + 4, -1, 1, false).to(t);
  s.D = testing::rand_f64({E}, seed + 5, 0.5, 1.5, false).to(t);
  s.bias = testing::rand_f64({E}, seed + 6, -2, 0, false).to(t);
  if (gate) s.z = testing::rand_f64({L, E}, seed + 7, -2, 2, false).to(t);
  for (Tensor* p : {&s.x, &s.delta, &s.A, &s.B, &s.C, &s.D, &s.bias, &s.z})
    if (p->defined()) p->requires_grad_();
  return s;
}

ScanInputs f64_copy(const ScanInputs& s) {
  const Tensors c = testing::f64_copies(s.list());
  return {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]};
}

// The fused float32 scan vs the naive scan on float64 copies of the same inputs, with the same upstream gradient.
void compare_with_naive(int64_t L, int64_t E, int64_t n, int64_t chunk, bool gate, double tol) {
  ScanInputs a = scan_inputs(L, E, n, 300 + L, DType::F32, gate), b = f64_copy(a);
  Tensor ya = layers::selective_scan(a.x, a.delta, a.A, a.B, a.C, a.D, a.bias, a.z, chunk);
  Tensor yb = naive_scan(b.x, b.delta, b.A, b.B, b.C, b.D, b.bias, b.z);
  REQUIRE(ya.shape() == engine::Shape{L, E});
  CHECK_MESSAGE(testing::scaled_err(ya, yb) <= tol, "forward L=" << L << " err " << testing::scaled_err(ya, yb));
  if (L == 0) return;
  Tensor R = testing::rand_f64({L, E}, 7, -1, 1, false);
  engine::sum(ya * R.to(DType::F32)).backward();
  engine::sum(yb * R).backward();
  const char* names[] = {"x", "delta", "A", "B", "C", "D", "bias", "z"};
  Tensors la = a.list(), lb = b.list();
  for (int i = 0; i < 8; ++i) {
    if (!la[i].defined()) continue;
    REQUIRE(la[i].grad().defined());
    const double e = testing::scaled_err(la[i].grad(), lb[i].grad());
    CHECK_MESSAGE(e <= tol, "grad " << std::string(names[i]) << " L=" << L << " chunk=" << chunk << " err " << e);
  }
}

}  // namespace

TEST_CASE("selective_scan float32 vs the float64 naive scan: forward and all gradients, awkward lengths and chunks") {
  for (int64_t L : {1, 5, 16, 17, 40, 100}) {
    CAPTURE(L);
    compare_with_naive(L, 19, 16, 16, true, 1e-5);
  }
  compare_with_naive(37, 5, 3, 7, false, 1e-5);   // no gate, odd state width, partial last chunk
  compare_with_naive(37, 33, 16, 256, true, 1e-5);  // one chunk longer than the sequence; 3 channel blocks
  compare_with_naive(0, 4, 16, 16, true, 0);       // empty sequence
}

TEST_CASE("selective_scan float64 gradcheck (with and without the gate, chunk boundaries inside)") {
  for (bool gate : {true, false}) {
    ScanInputs s = scan_inputs(9, 3, 4, 71, DType::F64, gate);
    testing::gradcheck(
        [&](const Tensors& in) {
          return layers::selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], 4);
        },
        s.list());
  }
}

TEST_CASE("selective_scan results do not depend on the thread count") {
  const int saved = engine::get_num_threads();
  Tensor out[2], gB[2], gA[2];
  for (int k = 0; k < 2; ++k) {
    engine::set_num_threads(k == 0 ? 1 : 2);
    ScanInputs s = scan_inputs(130, 40, 16, 9, DType::F32, true);
    Tensor y = layers::selective_scan(s.x, s.delta, s.A, s.B, s.C, s.D, s.bias, s.z, 32);
    engine::sum(y * y).backward();
    out[k] = y.detach();
    gB[k] = s.B.grad();
    gA[k] = s.A.grad();
  }
  engine::set_num_threads(saved);
  CHECK(out[0].to_vector<float>() == out[1].to_vector<float>());
  CHECK(gB[0].to_vector<float>() == gB[1].to_vector<float>());
  CHECK(gA[0].to_vector<float>() == gA[1].to_vector<float>());
}

TEST_CASE("selective_scan: shape errors are clear") {
  ScanInputs s = scan_inputs(4, 3, 2, 1, DType::F32, false);
  CHECK_THROWS_WITH_AS(layers::selective_scan(s.x, s.delta, s.A, s.B.narrow(0, 0, 3), s.C, s.D, s.bias, s.z),
                       doctest::Contains("B"), std::exception);
  CHECK_THROWS_AS(layers::selective_scan(s.x, s.delta, s.A, s.B, s.C, s.D, s.bias, s.z, 0), std::exception);
}

TEST_CASE("Mamba mixer: parameter counts (lampa-models.md 1.1) and initialisation") {
  layers::MambaOptions o;
  o.n_layer = 6;
  layers::Mamba m(96, o);
  CHECK(m.dt_rank == 6);
  CHECK(m.num_parameters() == 68160);
  layers::MambaBlock b(96, o);
  CHECK(b.num_parameters() == 68352);
  CHECK(layers::Mamba(48).dt_rank == 3);
  auto A = m.A_log.to_vector<float>();
  CHECK(A[16 * 5 + 3] == doctest::Approx(std::log(4.0)));
  for (float v : m.D.to_vector<float>()) CHECK(v == 1.0f);
  for (float bias : m.dt_proj->bias.to_vector<float>()) {  // softplus(bias) in [1e-3, 0.1]
    const double dt = std::log1p(std::exp(static_cast<double>(bias)));
    CHECK(dt >= 0.999e-3);
    CHECK(dt <= 0.1001);
  }
}

TEST_CASE("Mamba mixer equals the spec's steps with the naive scan; float64 gradcheck of the block") {
  engine::manual_seed(5);
  layers::MambaOptions o;
  o.d_state = 4;
  o.chunk = 3;
  layers::Mamba m(8, o);
  m.to(DType::F64);
  Tensor u = testing::rand_f64({11, 8}, 3);
  CHECK(testing::scaled_err(m.forward(u), naive_mamba(m, u)) < 1e-12);
  layers::MambaBlock block(6, o);
  block.to(DType::F64);
  Tensors params = block.parameters();
  Tensors inputs{testing::rand_f64({7, 6}, 4)};
  inputs.insert(inputs.end(), params.begin(), params.end());
  testing::gradcheck([&](const Tensors& in) { return block.forward(in[0]); }, inputs);
}

TEST_CASE("Mamba mixer float32: output, input and every parameter gradient vs the naive mixer in float64") {
  engine::manual_seed(8);
  layers::MambaOptions o;
  o.chunk = 16;
  layers::Mamba m(48, o);  // hmambav2-S width: d_inner 96, d_state 16, dt_rank 3
  for (int64_t L : {1, 16, 37, 130}) {
    CAPTURE(L);
    testing::check_module_f32_vs_f64(
        m, testing::rand_f32({L, 48}, 40 + L), [&](const Tensor& u) { return m.forward(u); },
        [&](const Tensor& u) { return naive_mamba(m, u); });
  }
}

TEST_CASE("selective_scan is bit-identical whatever the heap's alignment") {
  testing::check_heap_independent([] {
    ScanInputs s = scan_inputs(130, 40, 16, 9, DType::F32, true);
    Tensor y = layers::selective_scan(s.x, s.delta, s.A, s.B, s.C, s.D, s.bias, s.z, 32);
    engine::sum(y * y).backward();
    return testing::float_contents({y, s.x.grad(), s.delta.grad(), s.A.grad(), s.B.grad(), s.C.grad(), s.D.grad()});
  });
}
