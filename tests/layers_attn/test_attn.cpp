// Fused dense / group / causal softmax attention: float32 op vs a float64 naive masked reference (forward and the
// q, k, v gradients at 1e-5 relative error), float64 finite-difference gradchecks, awkward shapes (N = 0, N = 1,
// N not a multiple of the 32-row block or the 64-key tile, N smaller than one group, a partial last group, key
// padding), thread-count independence and argument errors; MultiHeadAttention parameter count.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attn_reference.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "gradcheck.h"
#include "heap_shift.h"
#include "layers/dense_attention.h"

using engine::DType;
using engine::Tensor;
using engine::Tensors;
using layers::DenseAttentionOptions;

namespace {

Tensors qkv(int64_t N, int64_t H, int64_t D, int64_t Dv, uint64_t seed) {
  return {testing::rand_f64({N, H, D}, seed, -1.5, 1.5), testing::rand_f64({N, H, D}, seed + 1, -1.5, 1.5),
          testing::rand_f64({N, H, Dv}, seed + 2, -1, 1)};
}

// Fused f32 vs naive f64: output and the three gradients under a fixed random upstream gradient.
void compare_with_naive(int64_t N, int64_t H, int64_t D, int64_t Dv, const DenseAttentionOptions& o, uint64_t seed) {
  CAPTURE(N);
  CAPTURE(o.group);
  CAPTURE(o.causal);
  CAPTURE(o.n_valid);
  Tensors ref_in = qkv(N, H, D, Dv, seed);
  Tensor ref = testing::naive_attention(ref_in[0], ref_in[1], ref_in[2], o);
  Tensor R = testing::upstream_for(ref, seed + 9);
  engine::sum(ref * R).backward();
  Tensors in;
  for (const Tensor& t : ref_in) in.push_back(t.detach().to(DType::F32).requires_grad_());
  Tensor out = layers::dense_attention(in[0], in[1], in[2], o);
  engine::sum(out * R.to(DType::F32)).backward();
  CHECK(testing::scaled_err(out, ref) < 1e-5);
  for (int a = 0; a < 3; ++a) {
    CAPTURE(a);
    CHECK(testing::scaled_err(in[a].grad(), ref_in[a].grad()) < 1e-5);
  }
}

}  // namespace

TEST_CASE("dense_attention matches the naive reference: dense, causal, awkward lengths") {
  for (int64_t N : {1, 2, 31, 33, 64, 65, 150})
    for (bool causal : {false, true}) {
      DenseAttentionOptions o;
      o.causal = causal;
      compare_with_naive(N, 3, 7, 5, o, 10 + N);
    }
}

TEST_CASE("dense_attention matches the naive reference: groups, partial last group, key padding") {
  DenseAttentionOptions o;
  o.group = 20;
  compare_with_naive(7, 2, 6, 6, o, 1);    // N smaller than one group
  compare_with_naive(20, 2, 6, 6, o, 2);   // exactly one group
  compare_with_naive(95, 2, 6, 6, o, 3);   // several groups, partial last one
  o.causal = true;
  compare_with_naive(95, 2, 6, 6, o, 4);   // causal inside groups
  o.causal = false;
  o.n_valid = 87;                          // padded tail masked as keys; the last group still has 7 valid keys
  compare_with_naive(100, 2, 6, 6, o, 5);
  o.group = 0;
  o.n_valid = 40;
  compare_with_naive(70, 2, 30, 30, o, 6);  // dense with key padding, the flatformer head width
  o.n_valid = -1;
  o.scale = 0.3;
  compare_with_naive(40, 1, 4, 9, o, 7);    // explicit scale, Dv != D
}

TEST_CASE("dense_attention: empty input, rows without keys, large tiles") {
  Tensors e = qkv(0, 2, 4, 4, 3);
  Tensor o = layers::dense_attention(e[0], e[1], e[2]);
  CHECK(o.shape() == engine::Shape{0, 2, 4});
  Tensors in = qkv(10, 1, 4, 4, 4);
  DenseAttentionOptions m;
  m.n_valid = 0;  // no key visible: zero output and zero gradients
  Tensor z = layers::dense_attention(in[0], in[1], in[2], m);
  CHECK(engine::amax(engine::abs(z)).item() == 0.0);
  engine::sum(z).backward();
  for (const Tensor& t : in) CHECK(engine::amax(engine::abs(t.grad())).item() == 0.0);
  DenseAttentionOptions d;
  compare_with_naive(300, 2, 16, 16, d, 8);  // several key tiles per row with large scores
}

TEST_CASE("dense_attention float64 gradcheck") {
  for (auto [N, group, causal, n_valid] : std::vector<std::tuple<int64_t, int64_t, bool, int64_t>>{
           {1, 0, false, -1}, {9, 0, true, -1}, {13, 5, false, -1}, {13, 5, true, -1}, {12, 0, false, 8},
           {70, 0, false, -1}}) {
    DenseAttentionOptions o;
    o.group = group;
    o.causal = causal;
    o.n_valid = n_valid;
    CAPTURE(N);
    testing::gradcheck([&](const Tensors& x) { return layers::dense_attention(x[0], x[1], x[2], o); },
                       qkv(N, 2, 3, 4, 50 + N));
  }
}

TEST_CASE("dense_attention does not depend on the thread count") {
  Tensors in = qkv(200, 3, 8, 8, 77);
  auto run = [&](int threads) {
    engine::set_num_threads(threads);
    Tensors x;
    for (const Tensor& t : in) x.push_back(t.detach().to(DType::F32).requires_grad_());
    DenseAttentionOptions o;
    o.group = 64;
    Tensor out = layers::dense_attention(x[0], x[1], x[2], o);
    engine::sum(out * out).backward();
    return Tensors{out, x[0].grad(), x[1].grad(), x[2].grad()};
  };
  Tensors a = run(1), b = run(4);
  engine::set_num_threads(0);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector<float>() == b[i].to_vector<float>());
}

TEST_CASE("dense_attention argument errors") {
  Tensors in = qkv(5, 2, 3, 3, 1);
  CHECK_THROWS_WITH_AS(layers::dense_attention(in[0], in[1].narrow(0, 0, 4), in[2]),
                       doctest::Contains("dense_attention"), engine::EngineError);
  DenseAttentionOptions o;
  o.n_valid = 6;
  CHECK_THROWS_WITH_AS(layers::dense_attention(in[0], in[1], in[2], o), doctest::Contains("n_valid"),
                       engine::EngineError);
}

TEST_CASE("MultiHeadAttention: parameter count and naive equivalence") {
  layers::MultiHeadAttention mha(24, 4, 24);
  int64_t n = 0;
  for (auto& [name, p] : mha.named_parameters()) n += p.numel();
  CHECK(n == 3 * 24 * 96 + 96 * 24 + 24);
  Tensor x = testing::rand_f32({11, 24}, 3);
  Tensor y = mha.forward(x, x, x);
  CHECK(y.shape() == engine::Shape{11, 24});
}

TEST_CASE("dense_attention is bit-identical whatever the heap's alignment") {
  const Tensors in = qkv(200, 3, 8, 8, 77);
  for (bool causal : {false, true}) {
    testing::check_heap_independent([&] {
      Tensors x;
      for (const Tensor& t : in) x.push_back(t.detach().to(DType::F32).requires_grad_());
      DenseAttentionOptions o;
      o.causal = causal;
      Tensor out = layers::dense_attention(x[0], x[1], x[2], o);
      engine::sum(out * out).backward();
      return testing::float_contents({out, x[0].grad(), x[1].grad(), x[2].grad()});
    });
  }
}
