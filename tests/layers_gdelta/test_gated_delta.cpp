// Gated delta rule, Gated DeltaProduct, LocalAggregation and the blocks: fused rule vs a naive step-by-step
// reference (forward and all five gradients, float32 against a float64 naive run, T = 0, 1, 7, 64, 65, 150, chunk
// sizes 1, 5, 16, 64), float64 finite-difference checks of the op, the attention, LocalAggregation and both blocks,
// thread-count independence, module references and parameter counts (lampa-models.md 1.1, 3.8).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "engine/parallel.h"
#include "gdelta_reference.h"
#include "gradcheck.h"
#include "heap_shift.h"
#include "layers/gated_delta.h"
#include "layers/local_aggregation.h"

using engine::DType;
using engine::Tensor;
using engine::Tensors;

namespace {

// q, k, v, g, beta with realistic ranges: g = log decay in [-1.5, 0] (some exactly 0, as the DeltaProduct's second
// sub-steps), beta in (0, 1); every third q row is zero (the DeltaProduct's query-free sub-steps).
Tensors rule_inputs(int64_t T, int64_t H, int64_t K, int64_t V, uint64_t seed, DType t) {
  using namespace engine;
  Tensor q = testing::rand_f64({T, H, K}, seed, -1, 1, false);
  if (T > 0) {
    std::vector<double> qv = q.to_vector<double>();
    for (int64_t s = 0; s < T; s += 3)
      for (int64_t i = 0; i < H * K; ++i) qv[static_cast<size_t>(s * H * K + i)] = 0.0;
    q = from_vector(qv, {T, H, K});
  }
  Tensor g = testing::rand_f64({T, H}, seed + 3, -1.5, 0.0, false);
  if (T > 0) {
    std::vector<double> gv = g.to_vector<double>();
    for (size_t i = 1; i < gv.size(); i += 4) gv[i] = 0.0;
    g = from_vector(gv, {T, H});
  }
  Tensors in{q, testing::rand_f64({T, H, K}, seed + 1, -1, 1, false), testing::rand_f64({T, H, V}, seed + 2, -1, 1, false),
             g, testing::rand_f64({T, H}, seed + 4, 0.05, 0.95, false)};
  for (Tensor& x : in) x = x.to(t).requires_grad_();
  return in;
}

Tensors copy_as(const Tensors& in, DType t) {
  Tensors out;
  for (const Tensor& x : in) out.push_back(x.detach().to(t).clone().requires_grad_());
  return out;
}

void compare_with_naive(int64_t T, int64_t H, int64_t K, int64_t V, int64_t chunk, double tol) {
  CAPTURE(T);
  CAPTURE(chunk);
  Tensors a = rule_inputs(T, H, K, V, 100 + T, DType::F32), b = copy_as(a, DType::F64);
  Tensor oa = layers::gated_delta_rule(a[0], a[1], a[2], a[3], a[4], chunk);
  Tensor ob = gd_ref::naive_rule(b[0], b[1], b[2], b[3], b[4]);
  REQUIRE(oa.shape() == engine::Shape{T, H, V});
  REQUIRE(oa.dtype() == DType::F32);
  CHECK_MESSAGE(testing::scaled_err(oa, ob) <= tol, "forward err " << testing::scaled_err(oa, ob));
  if (T == 0) return;
  Tensor R = testing::rand_f64({T, H, V}, 7, -1, 1, false);
  engine::sum(oa * R.to(DType::F32)).backward();
  engine::sum(ob * R).backward();
  const char* names[] = {"q", "k", "v", "g", "beta"};
  for (int i = 0; i < 5; ++i) {
    REQUIRE(a[i].grad().defined());
    const double e = testing::scaled_err(a[i].grad(), b[i].grad());
    CHECK_MESSAGE(e <= tol, "grad " << std::string(names[i]) << " err " << e);
  }
}

Tensor randn_like_scale(const engine::Shape& s, uint64_t seed, double lo, double hi, DType t) {
  return testing::rand_f64(s, seed, lo, hi, false).to(t);
}

// Sets every parameter of m to a random value in [lo, hi) (so tests exercise non-trivial weights), keeping A_log,
// dt_bias and norm weights in their natural ranges.
void randomise(engine::nn::Module& m, uint64_t seed) {
  engine::NoGradGuard ng;
  uint64_t s = seed;
  for (auto& [name, p] : m.named_parameters()) {
    double lo = -0.4, hi = 0.4;
    if (name.find("A_log") != std::string::npos) lo = -1.0, hi = 1.0;
    if (name.find("dt_bias") != std::string::npos) lo = -3.0, hi = -1.0;
    if (name.find("norm") != std::string::npos) lo = 0.5, hi = 1.5;
    p.copy_(randn_like_scale(p.shape(), ++s, lo, hi, p.dtype()));
  }
}

// Random graph on N nodes: a self loop for each node plus `per` random in-edges, some nodes with none.
Tensor random_edges(int64_t N, int64_t per, uint64_t seed, bool self_loops = true) {
  std::vector<int64_t> src, dst;
  uint64_t s = seed * 2654435761ULL + 1;
  auto next = [&]() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  };
  for (int64_t i = 0; i < N; ++i) {
    if (i % 5 == 4) continue;  // isolated (apart from the loop below)
    if (self_loops) src.push_back(i), dst.push_back(i);
    for (int64_t e = 0; e < per; ++e) src.push_back(static_cast<int64_t>(next() % N)), dst.push_back(i);
  }
  const int64_t E = static_cast<int64_t>(src.size());
  std::vector<int64_t> all(src);
  all.insert(all.end(), dst.begin(), dst.end());
  return engine::from_vector(all, {2, E});
}

}  // namespace

TEST_CASE("gated_delta_rule: forward and all gradients match the naive recurrence (float32 vs float64 naive)") {
  for (int64_t T : {0, 1, 7, 64, 65, 150})
    for (int64_t chunk : {64, 16, 5, 1}) compare_with_naive(T, 3, 16, 32, chunk, 1e-5);
  // Generic widths (not the K = 16, V = 32 fast path).
  compare_with_naive(37, 2, 5, 7, 8, 1e-5);
}

TEST_CASE("gated_delta_rule: float64 finite-difference check") {
  for (int64_t chunk : {4, 64}) {
    Tensors in = rule_inputs(11, 2, 3, 4, 9, DType::F64);
    testing::gradcheck([&](const Tensors& x) { return layers::gated_delta_rule(x[0], x[1], x[2], x[3], x[4], chunk); },
                       in);
  }
}

TEST_CASE("gated_delta_rule: results do not depend on the thread count; checkpoints change nothing") {
  Tensors in = rule_inputs(200, 6, 16, 32, 3, DType::F32);
  auto run = [&](int threads, int64_t chunk) {
    engine::set_num_threads(threads);
    Tensors c = copy_as(in, DType::F32);
    Tensor o = layers::gated_delta_rule(c[0], c[1], c[2], c[3], c[4], chunk);
    engine::sum(o * o).backward();
    Tensors r{o.detach()};
    for (const Tensor& x : c) r.push_back(x.grad());
    return r;
  };
  const int before = engine::get_num_threads();
  Tensors one = run(1, 64), two = run(2, 64), three = run(3, 64), other_chunk = run(2, 7);
  engine::set_num_threads(before);
  for (size_t i = 0; i < one.size(); ++i) {
    CHECK(one[i].to_vector<float>() == two[i].to_vector<float>());
    CHECK(one[i].to_vector<float>() == three[i].to_vector<float>());
    CHECK(one[i].to_vector<float>() == other_chunk[i].to_vector<float>());  // same arithmetic, other checkpoints
  }
  // Inference (no grad): no checkpoints, same output.
  engine::NoGradGuard ng;
  Tensor o = layers::gated_delta_rule(in[0].detach(), in[1].detach(), in[2].detach(), in[3].detach(), in[4].detach());
  CHECK(o.to_vector<float>() == one[0].to_vector<float>());
}

TEST_CASE("gated_delta_rule: shape errors are clear") {
  Tensors in = rule_inputs(5, 2, 4, 6, 1, DType::F32);
  CHECK_THROWS_WITH_AS(layers::gated_delta_rule(in[0], in[1], in[2], in[3].narrow(0, 0, 4), in[4]),
                       doctest::Contains("g must be"), engine::EngineError);
  CHECK_THROWS_AS(layers::gated_delta_rule(in[0], in[1], in[2], in[3], in[4], 0), engine::EngineError);
}

TEST_CASE("GatedDeltaProduct / GatedMLP / blocks / LocalAggregation: parameter counts (lampa-models.md 1.1)") {
  CHECK(layers::GatedDeltaProduct(48).num_parameters() == 54284);
  CHECK(layers::GatedDeltaProduct(96).num_parameters() == 105836);
  for (int64_t d : {48, 96}) {
    CHECK(layers::GatedDeltaProduct(d).num_parameters() == 1074 * d + 2732);
    CHECK(layers::GatedMLP(d).num_parameters() == 768 * d);
    CHECK(layers::LocalAggregation(d).num_parameters() == 2 * d * d + d);
    CHECK(layers::GatedDeltaProductBlock(d, false).num_parameters() == 1074 * d + 2732 + 768 * d + 2 * d);
    CHECK(layers::GatedDeltaProductBlock(d, true).num_parameters() ==
          1074 * d + 2732 + 768 * d + 2 * d + 2 * d * d + d + d);
  }
  // Names follow the reference's state_dict.
  auto names = layers::GatedDeltaProductBlock(48, true).named_parameters();
  std::vector<std::string> want{"attn.q_proj.weight", "attn.k_projs.1.weight", "attn.v_conv1ds.0.weight",
                                "attn.A_log", "attn.dt_bias", "attn.o_norm.weight", "mlp.down_proj.weight",
                                "local_agg.lin_self.bias", "local_agg_norm.weight"};
  for (const auto& w : want) {
    CAPTURE(w);
    CHECK(std::any_of(names.begin(), names.end(), [&](const auto& p) { return p.first == w; }));
  }
}

TEST_CASE("GatedDeltaProduct: fused module matches the per-token reference (output, input and parameter grads)") {
  engine::manual_seed(3);
  for (int64_t L : {1, 13, 40}) {
    CAPTURE(L);
    layers::GatedDeltaProductOptions o;
    o.chunk = 16;  // 2L sub-steps span several chunks
    layers::GatedDeltaProduct m(8, o);
    randomise(m, 10 + L);
    Tensor x = testing::rand_f32({L, 8}, 20 + L, -1, 1);
    testing::check_module_f32_vs_f64(
        m, x, [&](const Tensor& u) { return m.forward(u); }, [&](const Tensor& u) { return gd_ref::naive_gdp(m, u); },
        1e-5);
  }
  // Three Householder steps, other head sizes.
  layers::GatedDeltaProductOptions o3;
  o3.num_householder = 3;
  o3.num_heads = 2;
  o3.head_dim = 4;
  o3.chunk = 5;
  layers::GatedDeltaProduct m3(6, o3);
  randomise(m3, 77);
  testing::check_module_f32_vs_f64(
      m3, testing::rand_f32({9, 6}, 4, -1, 1), [&](const Tensor& u) { return m3.forward(u); },
      [&](const Tensor& u) { return gd_ref::naive_gdp(m3, u); }, 1e-5);
}

TEST_CASE("GatedDeltaProduct: float64 finite-difference check (input and a few parameters)") {
  engine::manual_seed(4);
  layers::GatedDeltaProductOptions o;
  o.num_heads = 2;
  o.head_dim = 3;
  o.chunk = 4;
  layers::GatedDeltaProduct m(5, o);
  randomise(m, 3);
  m.to(DType::F64);
  Tensor x = testing::rand_f64({6, 5}, 8);
  testing::gradcheck([&](const Tensors& in) { return m.forward(in[0]); }, {x});
  // Parameter gradients: substitute leaves through copy_ (the module's handles stay the same).
  for (Tensor* p : {&m.A_log, &m.dt_bias, &m.q_conv1d->weight, &m.o_norm->weight}) {
    Tensor leaf = p->detach().clone().requires_grad_();
    Tensor saved = *p;
    *p = leaf;
    testing::gradcheck([&](const Tensors&) { return m.forward(x.detach()); }, {leaf});
    *p = saved;
  }
}

TEST_CASE("LocalAggregation: explicit-loop reference, isolated nodes, float64 gradcheck") {
  engine::manual_seed(5);
  layers::LocalAggregation m(6);
  randomise(m, 4);
  Tensor ei = random_edges(23, 4, 3);
  testing::check_module_f32_vs_f64(
      m, testing::rand_f32({23, 6}, 2, -1, 1), [&](const Tensor& u) { return m.forward(u, ei); },
      [&](const Tensor& u) { return gd_ref::naive_local_agg(m, u, ei); }, 1e-5);
  // No edges at all: gelu(W_self x + b).
  Tensor x = testing::rand_f32({4, 6}, 3, -1, 1);
  Tensor none = engine::zeros({2, 0}, engine::TensorOptions(DType::I64));
  CHECK(testing::scaled_err(m.forward(x, none), engine::gelu(gd_ref::lin(x, *m.lin_self))) <= 1e-6);
  // Out-of-range edge: a clear error.
  CHECK_THROWS(m.forward(x, engine::from_vector(std::vector<int64_t>{0, 9}, {2, 1})));
  m.to(DType::F64);
  Tensor x64 = testing::rand_f64({23, 6}, 6);
  testing::gradcheck([&](const Tensors& in) { return m.forward(in[0], ei); }, {x64});
  Tensor w = m.lin_msg->weight.detach().clone().requires_grad_(), saved = m.lin_msg->weight;
  m.lin_msg->weight = w;
  testing::gradcheck([&](const Tensors&) { return m.forward(x64.detach(), ei); }, {w});
  m.lin_msg->weight = saved;
}

TEST_CASE("GatedDeltaProductBlock (plain and local1): reference composition and float64 gradcheck") {
  engine::manual_seed(6);
  for (bool local : {false, true}) {
    CAPTURE(local);
    layers::GatedDeltaProductOptions o;
    o.chunk = 8;
    layers::GatedDeltaProductBlock blk(8, local, o);
    randomise(blk, 30);
    const int64_t N = 17;
    Tensor ei = random_edges(N, 3, 8);
    auto naive = [&](const Tensor& x) {
      using namespace engine;
      Tensor h = x;
      if (local) h = x + gd_ref::rmsn(gd_ref::naive_local_agg(*blk.local_agg, x, ei), blk.local_agg_norm->weight, 1e-6);
      Tensor r = gd_ref::naive_gdp(*blk.attn, gd_ref::rmsn(h, blk.attn_norm->weight, 1e-6)) + x;
      Tensor n = gd_ref::rmsn(r, blk.mlp_norm->weight, 1e-6);
      Tensor gt = gd_ref::lin(n, *blk.mlp->gate_proj);
      return r + gd_ref::lin(gt * sigmoid(gt) * gd_ref::lin(n, *blk.mlp->up_proj), *blk.mlp->down_proj);
    };
    testing::check_module_f32_vs_f64(
        blk, testing::rand_f32({N, 8}, 40, -1, 1), [&](const Tensor& u) { return blk.forward(u, ei); }, naive, 1e-5);
    // Small float64 gradcheck of the whole block w.r.t. its input.
    layers::GatedDeltaProductOptions s;
    s.num_heads = 2;
    s.head_dim = 2;
    s.chunk = 3;
    layers::GatedDeltaProductBlock small(4, local, s);
    randomise(small, 50);
    small.to(DType::F64);
    Tensor ei5 = random_edges(5, 2, 1);
    testing::gradcheck([&](const Tensors& in) { return small.forward(in[0], ei5); }, {testing::rand_f64({5, 4}, 9)});
  }
}

TEST_CASE("GatedDeltaProduct: causal and initialised as the reference") {
  engine::manual_seed(7);
  layers::GatedDeltaProduct m(48);
  // A_log = log U(0, 16) <= log 16; dt_bias = softplus^-1(dt), dt in [1e-3, 0.1].
  for (float a : m.A_log.to_vector<float>()) CHECK(a <= std::log(16.0f) + 1e-6f);
  for (float b : m.dt_bias.to_vector<float>()) {
    const double dt = std::log1p(std::exp(static_cast<double>(b)));
    CHECK(dt >= 1e-3 - 1e-6);
    CHECK(dt <= 0.1 + 1e-6);
  }
  Tensor x = testing::rand_f32({50, 48}, 1, -1, 1);
  engine::NoGradGuard ng;
  Tensor full = m.forward(x);
  Tensor part = m.forward(x.narrow(0, 0, 30).contiguous());
  CHECK(testing::closeness(part, full.narrow(0, 0, 30), 1e-6, 1e-5) <= 1.0);
}

TEST_CASE("gated_delta_rule is bit-identical whatever the heap's alignment") {
  const Tensors in = rule_inputs(200, 6, 16, 32, 3, DType::F32);
  testing::check_heap_independent([&] {
    Tensors c = copy_as(in, DType::F32);
    Tensor o = layers::gated_delta_rule(c[0], c[1], c[2], c[3], c[4], 64);
    engine::sum(o * o).backward();
    Tensors all{o};
    for (const Tensor& x : c) all.push_back(x.grad());
    return testing::float_contents(all);
  });
}
