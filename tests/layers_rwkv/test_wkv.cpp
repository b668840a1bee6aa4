// WKV5 and WKV7 (the RWKV-5 and RWKV-7 recurrences): the fused float32 ops vs naive step-by-step references built from
// engine ops and run in float64 (output and every input gradient on awkward lengths and chunk sizes, scaled error
// <= 1e-5), float64 finite differences, thread-count independence; the RWKV time-mix / channel-mix blocks: parameter
// counts (lampa-models.md 1.1), float64 gradchecks, and float32 blocks (output, input and parameter gradients) against
// the same blocks in float64, whose fused scans equal the naive recurrences to 1e-12.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "gradcheck.h"
#include "heap_shift.h"
#include "layers/rwkv.h"
#include "layers/wkv.h"

using engine::DType;
using engine::Tensor;
using engine::Tensors;

namespace {

// lampa-models.md 3.9 step 5, one step at a time, state [H, N(j), N(i)].
Tensor naive_wkv5(const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u) {
  using namespace engine;
  const int64_t L = r.size(0), H = r.size(1), N = r.size(2);
  Tensor S = zeros({H, N, N}, r.options());
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < L; ++t) {
    Tensor rt = r.select(0, t), kt = k.select(0, t), vt = v.select(0, t);  // [H, N]
    Tensor kv = kt.unsqueeze(2) * vt.unsqueeze(1);                         // [H, N, N]
    ys.push_back(sum(rt.unsqueeze(2) * (u.unsqueeze(2) * kv + S), {1}));   // [H, N]
    S = w.unsqueeze(2) * S + kv;
  }
  return L ? stack(ys, 0) : zeros({0, H, N}, r.options());
}

// lampa-models.md 3.10 step 5, one step at a time, state [H, N(i, value), N(j, key)].
Tensor naive_wkv7(const Tensors& in) {
  using namespace engine;
  const Tensor &r = in[0], &w = in[1], &k = in[2], &v = in[3], &a = in[4], &b = in[5];
  const int64_t L = r.size(0), H = r.size(1), N = r.size(2);
  Tensor S = zeros({H, N, N}, r.options());
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < L; ++t) {
    const Tensor d = exp(neg(exp(w.select(0, t))));                           // [H, N]
    const Tensor sa = sum(S * a.select(0, t).unsqueeze(1), {2});              // [H, N]
    S = S * d.unsqueeze(1) + sa.unsqueeze(2) * b.select(0, t).unsqueeze(1) +
        v.select(0, t).unsqueeze(2) * k.select(0, t).unsqueeze(1);
    ys.push_back(sum(S * r.select(0, t).unsqueeze(1), {2}));
  }
  return L ? stack(ys, 0) : zeros({0, H, N}, r.options());
}

// Realistic RWKV-7 ranges: w <= -0.5 (decay in [0.55, 1)), a = -kk and b = kk * gate with |kk| = 1 per head.
Tensors wkv7_inputs(int64_t L, int64_t H, int64_t N, uint64_t seed, DType t) {
  using namespace engine;
  const Tensor kk = testing::rand_f64({L, H, N}, seed, -1, 1, false);
  const Tensor kn = kk / sqrt(sum(square(kk), {2}, true) + 1e-12);
  const Tensor gate = testing::rand_f64({L, H, N}, seed + 1, 0, 1, false);
  Tensors in{testing::rand_f64({L, H, N}, seed + 2, -1, 1, false), testing::rand_f64({L, H, N}, seed + 3, -3, -0.5, false),
             testing::rand_f64({L, H, N}, seed + 4, -1, 1, false), testing::rand_f64({L, H, N}, seed + 5, -1, 1, false),
             neg(kn), kn * gate};
  for (Tensor& x : in) x = x.to(t).detach().requires_grad_();
  return in;
}

Tensors wkv_inputs(int64_t L, int64_t H, int64_t N, uint64_t seed, DType t) {
  Tensors in{testing::rand_f64({L, H, N}, seed, -1, 1, false).to(t), testing::rand_f64({L, H, N}, seed + 1, -1, 1, false).to(t),
             testing::rand_f64({L, H, N}, seed + 2, -1, 1, false).to(t), testing::rand_f64({H, N}, seed + 3, 0.3, 0.99, false).to(t),
             testing::rand_f64({H, N}, seed + 4, -0.5, 0.5, false).to(t)};
  for (Tensor& x : in) x.requires_grad_();
  return in;
}

// The fused float32 op vs the naive recurrence on float64 copies of the same inputs, with the same upstream gradient.
void compare_with_naive(int64_t L, int64_t H, int64_t N, int64_t chunk) {
  Tensors a = wkv_inputs(L, H, N, 10 + L, DType::F32), b = testing::f64_copies(a);
  Tensor ya = layers::wkv5(a[0], a[1], a[2], a[3], a[4], chunk), yb = naive_wkv5(b[0], b[1], b[2], b[3], b[4]);
  CHECK_MESSAGE(testing::scaled_err(ya, yb) <= 1e-5, "forward L=" << L << " err " << testing::scaled_err(ya, yb));
  if (L == 0) return;
  Tensor R = testing::rand_f64({L, H, N}, 5, -1, 1, false);
  engine::sum(ya * R.to(DType::F32)).backward();
  engine::sum(yb * R).backward();
  const char* names[] = {"r", "k", "v", "w", "u"};
  for (int i = 0; i < 5; ++i) {
    // the naive chain leaves w without a gradient when no state reaches an output (L = 1): that gradient is 0
    const Tensor ref = b[i].grad().defined() ? b[i].grad() : engine::zeros_like(b[i]);
    const double e = testing::scaled_err(a[i].grad(), ref);
    CHECK_MESSAGE(e <= 1e-5, "grad " << std::string(names[i]) << " L=" << L << " chunk=" << chunk << " err " << e);
  }
}

void compare7_with_naive(int64_t L, int64_t H, int64_t N, int64_t chunk) {
  Tensors a = wkv7_inputs(L, H, N, 40 + L, DType::F32), b = testing::f64_copies(a);
  Tensor ya = layers::wkv7(a[0], a[1], a[2], a[3], a[4], a[5], chunk), yb = naive_wkv7(b);
  CHECK_MESSAGE(testing::scaled_err(ya, yb) <= 1e-5, "forward L=" << L << " err " << testing::scaled_err(ya, yb));
  if (L == 0) return;
  Tensor R = testing::rand_f64({L, H, N}, 6, -1, 1, false);
  engine::sum(ya * R.to(DType::F32)).backward();
  engine::sum(yb * R).backward();
  const char* names[] = {"r", "w", "k", "v", "a", "b"};
  for (int i = 0; i < 6; ++i) {
    const Tensor ref = b[i].grad().defined() ? b[i].grad() : engine::zeros_like(b[i]);
    const double e = testing::scaled_err(a[i].grad(), ref);
    CHECK_MESSAGE(e <= 1e-5, "grad " << std::string(names[i]) << " L=" << L << " chunk=" << chunk << " err " << e);
  }
}

}  // namespace

TEST_CASE("wkv7 float32 matches the float64 naive recurrence: output and all gradients, awkward lengths and chunks") {
  for (int64_t L : {1, 7, 16, 17, 50}) {
    CAPTURE(L);
    compare7_with_naive(L, 3, 16, 16);
  }
  compare7_with_naive(37, 2, 5, 7);
  compare7_with_naive(40, 2, 16, 256);
  compare7_with_naive(0, 2, 16, 16);
}

TEST_CASE("wkv7 float64 gradcheck with chunk boundaries inside") {
  testing::gradcheck([](const Tensors& in) { return layers::wkv7(in[0], in[1], in[2], in[3], in[4], in[5], 3); },
                     wkv7_inputs(8, 2, 3, 4, DType::F64));
}

TEST_CASE("wkv5 float32 matches the float64 naive recurrence: output and all gradients, awkward lengths and chunks") {
  for (int64_t L : {1, 7, 16, 17, 50}) {
    CAPTURE(L);
    compare_with_naive(L, 3, 16, 16);
  }
  compare_with_naive(37, 2, 5, 7);     // odd head size, partial last chunk
  compare_with_naive(40, 2, 16, 256);  // one chunk longer than the sequence
  compare_with_naive(0, 2, 16, 16);    // empty sequence
}

TEST_CASE("wkv5 float64 gradcheck with chunk boundaries inside") {
  testing::gradcheck([](const Tensors& in) { return layers::wkv5(in[0], in[1], in[2], in[3], in[4], 3); },
                     wkv_inputs(8, 2, 3, 4, DType::F64));
}

TEST_CASE("wkv5 results do not depend on the thread count; shape errors are clear") {
  const int saved = engine::get_num_threads();
  std::vector<float> first;
  for (int threads : {1, 2}) {
    engine::set_num_threads(threads);
    Tensors in = wkv_inputs(90, 5, 16, 3, DType::F32);
    Tensor y = layers::wkv5(in[0], in[1], in[2], in[3], in[4], 32);
    engine::sum(y * y).backward();
    std::vector<float> all = y.to_vector<float>();
    for (const Tensor& x : in)
      for (float g : x.grad().to_vector<float>()) all.push_back(g);
    if (first.empty()) first = all;
    else CHECK(all == first);
  }
  engine::set_num_threads(saved);
  Tensors in = wkv_inputs(4, 2, 3, 1, DType::F32);
  CHECK_THROWS_WITH_AS(layers::wkv5(in[0], in[1], in[2], in[3].narrow(1, 0, 2), in[4]), doctest::Contains("w"),
                       std::exception);
}

TEST_CASE("RWKV blocks: parameter counts (lampa-models.md 1.1) and float64 gradchecks") {
  layers::RWKVTimeMix5 tm(128, 16, 1, 4);
  CHECK(tm.num_parameters() == 108288);
  layers::RWKVChannelMix cm(128, 448, 1, 4);
  CHECK(cm.num_parameters() == 131328);
  CHECK(layers::RWKVTimeMix7(64, 16, 1, 3).num_parameters() == 66304);
  CHECK(layers::RWKVChannelMix(64, 224, 1, 3).num_parameters() == 32896);
  engine::manual_seed(3);
  layers::RWKVBlock block(16, 8, 56, 0, 2);  // layer 0: with ln0
  block.to(DType::F64);
  Tensors inputs{testing::rand_f64({9, 16}, 2)};
  for (const auto& [name, p] : block.named_parameters())
    if (name.find("time_decay_w") == std::string::npos && name != "att.time_mix_w")  // held but unused (3.9 step 4)
      inputs.push_back(p);
  testing::gradcheck([&](const Tensors& in) { return block.forward(in[0]); }, inputs, 1e-6, 1e-6, 1e-4);
}

TEST_CASE("RWKV-7 block float64 gradcheck (input and every parameter)") {
  engine::manual_seed(6);
  layers::RWKVBlock block(16, 8, 56, 0, 2, 7);
  block.to(DType::F64);
  Tensors inputs{testing::rand_f64({9, 16}, 3)};
  for (const Tensor& p : block.parameters()) inputs.push_back(p);
  testing::gradcheck([&](const Tensors& in) { return block.forward(in[0]); }, inputs, 1e-6, 1e-6, 1e-4);
}

TEST_CASE("wkv5 and wkv7 in float64 equal the naive recurrences (so a float64 block is a reference for float32)") {
  for (int64_t L : {1, 37, 130}) {
    CAPTURE(L);
    const Tensors a = wkv_inputs(L, 2, 16, 60 + L, DType::F64);
    CHECK(testing::scaled_err(layers::wkv5(a[0], a[1], a[2], a[3], a[4], 16),
                              naive_wkv5(a[0], a[1], a[2], a[3], a[4])) < 1e-12);
    const Tensors b = wkv7_inputs(L, 2, 16, 70 + L, DType::F64);
    CHECK(testing::scaled_err(layers::wkv7(b[0], b[1], b[2], b[3], b[4], b[5], 16), naive_wkv7(b)) < 1e-12);
  }
}

TEST_CASE("RWKV-5 and RWKV-7 blocks float32: output, input and every parameter gradient vs the block in float64") {
  // Catalog widths (lampa-models.md 1.1): rwkv C 128, head 16, ffn 448; rwkv7 C 64, head 16, ffn 224. Layer 0
  // carries ln0; L = 130 spans several chunks of the scans with a partial last one.
  engine::manual_seed(10);
  for (int version : {5, 7}) {
    CAPTURE(version);
    const int64_t C = version == 5 ? 128 : 64;
    layers::RWKVBlock block(C, 16, version == 5 ? 448 : 224, 0, 4, version);
    for (int64_t L : {1, 37, 130}) {
      CAPTURE(L);
      auto run = [&](const Tensor& x) { return block.forward(x); };
      testing::check_module_f32_vs_f64(block, testing::rand_f32({L, C}, 80 + L), run, run);
    }
  }
}

TEST_CASE("orthogonal_init: orthonormal rows (wide) or columns (tall) times the gain") {
  engine::manual_seed(1);
  for (auto shape : {engine::Shape{4, 9}, engine::Shape{9, 4}}) {
    Tensor w = engine::zeros(shape);
    layers::orthogonal_init(w, 0.5);
    const Tensor gram = shape[0] <= shape[1] ? engine::matmul(w, w.t()) : engine::matmul(w.t(), w);  // 0.25 I
    const auto g = gram.to_vector<float>();
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 4; ++j) CHECK(g[i * 4 + j] == doctest::Approx(i == j ? 0.25 : 0.0).scale(1));
  }
}

TEST_CASE("wkv5 and wkv7 are bit-identical whatever the heap's alignment") {
  auto run = [](bool v7) {
    Tensors in = v7 ? wkv7_inputs(90, 3, 16, 5, DType::F32) : wkv_inputs(90, 5, 16, 3, DType::F32);
    Tensor y = v7 ? layers::wkv7(in[0], in[1], in[2], in[3], in[4], in[5], 32)
                  : layers::wkv5(in[0], in[1], in[2], in[3], in[4], 32);
    engine::sum(y * y).backward();
    Tensors all{y};
    for (const Tensor& x : in) all.push_back(x.grad());
    return testing::float_contents(all);
  };
  testing::check_heap_independent([&] { return run(false); });
  testing::check_heap_independent([&] { return run(true); });
}
