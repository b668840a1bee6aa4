// EdgeConv and GravNetConv against explicit per-node loops (the reference's formulas, one node at a time, through
// the same module weights, run in float64 on the fused run's neighbour index), forward and every gradient of the
// float32 layers within 1e-5, duplicate points (kNN ties), plus float64 finite-difference checks.
#include <algorithm>
#include <vector>

#include "gradcheck.h"
#include "layers/graph_conv.h"
#include "layers/knn.h"

using engine::DType;
using engine::Tensor;
using engine::Tensors;

namespace {

// Explicit loop: node i's messages nn([x_i, x_j - x_i]) for j in index[i], then mean (or max).
Tensor edgeconv_reference(layers::EdgeConv& conv, const Tensor& x, const Tensor& index) {
  const int64_t N = x.size(0), k = index.size(1), h = x.size(1);
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < N; ++i) {
    const Tensor xi = x.narrow(0, i, 1).expand({k, h});
    const Tensor xj = engine::index_select(x, 0, index.select(0, i).contiguous());
    Tensor e = engine::concat({xi, xj - xi}, 1);
    e = engine::relu(conv.ln1->forward(conv.lin1->forward(e)));
    e = engine::relu(conv.ln2->forward(conv.lin2->forward(e)));
    rows.push_back(conv.aggr == layers::EdgeAggregation::Max ? engine::amax(e, {0}, true) : engine::mean(e, {0}, true));
  }
  return engine::concat(rows, 0);
}

Tensor gravnet_reference(layers::GravNetConv& conv, const Tensor& x, const Tensor& index) {
  const int64_t N = x.size(0);
  const Tensor s = conv.lin_s->forward(x), f = conv.lin_h->forward(x);
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < N; ++i) {
    const Tensor nb = index.select(0, i).contiguous();
    const Tensor sj = engine::index_select(s, 0, nb), fj = engine::index_select(f, 0, nb);
    const Tensor d2 = engine::sum(engine::square(sj - s.narrow(0, i, 1)), {1}, true);  // [k, 1]
    const Tensor ew = engine::exp(-(d2 * engine::exp(conv.edge_weight_w)));
    const Tensor msg = fj * ew;
    rows.push_back(engine::concat({engine::mean(msg, {0}, true), engine::amax(msg, {0}, true)}, 1));
  }
  return conv.lin_out1->forward(x) + conv.lin_out2->forward(engine::concat(rows, 0));
}

void zero_grads(engine::nn::Module& m, Tensor& x) {
  m.zero_grad();
  x.zero_grad();
}

// Runs f, backpropagates a fixed random upstream, returns {out, grad x, grads of all parameters}.
template <class F>
Tensors run(engine::nn::Module& m, Tensor& x, F&& f) {
  zero_grads(m, x);
  Tensor out = f();
  engine::sum(out * testing::upstream_for(out, 99)).backward();
  Tensors r{out.detach(), x.grad()};
  for (auto& [name, p] : m.named_parameters()) r.push_back(p.grad().defined() ? p.grad() : engine::zeros_like(p));
  return r;
}

// The reference on float64 copies of the module and of x (the neighbour index stays the fused run's), converted back
// to float32 weights on return: {out, grad x, grads of all parameters}, all float64.
template <class F>
Tensors run_f64(engine::nn::Module& m, const Tensor& x32, F&& reference) {
  m.to(DType::F64);
  Tensor x = x32.detach().to(DType::F64).requires_grad_();
  Tensors r = run(m, x, [&] { return reference(x); });
  for (Tensor& t : r) t = t.clone();
  m.zero_grad();
  m.to(DType::F32);
  return r;
}

void compare(const Tensors& got, const Tensors& ref, double tol) {
  REQUIRE(got.size() == ref.size());
  for (size_t t = 0; t < got.size(); ++t) {
    CAPTURE(t);
    // Relative to the largest magnitude of the reference tensor (gradients have many near-zero entries); the floor
    // 1e-2 covers gradients that are exactly zero in exact arithmetic (GravNet's lin_s bias cancels in s_j - s_i).
    auto r = ref[t].to_vector<double>();
    double scale = 0;
    for (double v : r) scale = std::max(scale, std::abs(v));
    CHECK_CLOSE(got[t], ref[t], tol * std::max(scale, 1e-2), tol);
  }
}

// Rows of the duplicate-points input below: row i < 10 of the base, then copies i + 10 (i < 10) and i + 20 (i < 3).
// Returns the gradient rows summed over each point's copies, [10, h].
Tensor sum_over_copies(const Tensor& grad) {
  const Tensor copies3 = grad.narrow(0, 20, 3);
  const Tensor tail = engine::concat({copies3, engine::zeros({7, grad.size(1)}, grad.options())}, 0);
  return grad.narrow(0, 0, 10) + grad.narrow(0, 10, 10) + tail;
}

}  // namespace

TEST_CASE("EdgeConv: forward and gradients match the per-node loop (float32, awkward sizes, tiles)") {
  engine::manual_seed(1);
  for (auto aggr : {layers::EdgeAggregation::Mean, layers::EdgeAggregation::Max}) {
    for (auto [N, k, tile] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {1, 32, 65536}, {5, 32, 65536}, {37, 8, 40}, {64, 16, 100}, {130, 32, 65536}}) {
      CAPTURE(N);
      CAPTURE(k);
      CAPTURE(tile);
      layers::EdgeConv conv(12, k, 5, aggr);
      conv.tile_edges = tile;
      Tensor x = testing::rand_f32({N, 12}, 7 + N, -2, 2);
      x.requires_grad_();
      const Tensor index = conv.neighbours(x);
      CHECK(index.size(1) == std::min(k, N));
      Tensors got = run(conv, x, [&] { return conv.forward(x); });
      Tensors ref = run_f64(conv, x, [&](const Tensor& u) { return edgeconv_reference(conv, u, index); });
      compare(got, ref, 1e-5);
    }
  }
}

TEST_CASE("EdgeConv and GravNetConv: duplicate points (ties in the kNN); EdgeConv's lin_s gets no gradient") {
  engine::manual_seed(2);
  layers::EdgeConv conv(6, 4, 3);
  Tensor base = testing::rand_f32({10, 6}, 3);
  Tensor x = engine::concat({base, base, base.narrow(0, 0, 3)}, 0).detach();
  x.requires_grad_();
  const Tensor index = conv.neighbours(x);
  Tensors got = run(conv, x, [&] { return conv.forward(x); });
  CHECK(!conv.lin_s->weight.grad().defined());
  CHECK(conv.lin1->weight.grad().defined());
  Tensors ref = run_f64(conv, x, [&](const Tensor& u) { return edgeconv_reference(conv, u, index); });
  compare(got, ref, 1e-5);
  // GravNet on the same duplicated points: coincident hits sit at distance 0 in the learned space too.
  layers::GravNetConv grav(6, 4, 3, 5);
  Tensor xg = x.detach().clone().requires_grad_();
  const Tensor gindex = grav.neighbours(xg);
  Tensors ggot = run(grav, xg, [&] { return grav.forward(xg); });
  Tensors gref = run_f64(grav, xg, [&](const Tensor& u) { return gravnet_reference(grav, u, gindex); });
  CHECK(engine::amax(engine::abs(ggot[4])).item() < 1e-5);  // lin_s.bias: zero in exact arithmetic
  ggot[4] = gref[4] = engine::zeros_like(gref[4]);
  // The max aggregation's gradient goes to one of the tied copies of a point. Which one is decided by float32
  // roundoff: the GEMMs may round a row by its position in the blocking, so copies of a point can differ by an ulp in
  // s and f (on an AVX2 machine, gradient of points 0 and 2 went to other copies than in the float64 reference). The
  // copies' summed gradient does not depend on which copy the tie picks.
  ggot[1] = sum_over_copies(ggot[1]);
  gref[1] = sum_over_copies(gref[1]);
  compare(ggot, gref, 1e-5);
}

TEST_CASE("GravNetConv: forward and gradients (x, lin_s through the edge weights, lin_h, w) match the loop") {
  engine::manual_seed(3);
  for (auto [N, k, tile] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 32, 65536}, {7, 32, 65536}, {41, 8, 30}, {150, 32, 65536}}) {
    CAPTURE(N);
    CAPTURE(k);
    layers::GravNetConv conv(10, k, 4, 6);
    conv.tile_edges = tile;
    Tensor x = testing::rand_f32({N, 10}, 11 + N, -1, 1);
    x.requires_grad_();
    const Tensor index = conv.neighbours(x);
    Tensors got = run(conv, x, [&] { return conv.forward(x); });
    CHECK(conv.lin_s->weight.grad().defined());
    CHECK(conv.edge_weight_w.grad().defined());
    Tensors ref = run_f64(conv, x, [&](const Tensor& u) { return gravnet_reference(conv, u, index); });
    // Entry 4 is lin_s.bias: zero in exact arithmetic (it cancels in s_j - s_i), roundoff in both; checked apart.
    CHECK(engine::amax(engine::abs(got[4])).item() < 1e-5);
    CHECK(engine::amax(engine::abs(ref[4])).item() < 1e-5);
    got[4] = ref[4] = engine::zeros_like(ref[4]);
    compare(got, ref, 1e-5);
  }
}

TEST_CASE("EdgeConv and GravNetConv: float64 gradchecks (fixed neighbour index), parameters included") {
  engine::manual_seed(4);
  {
    layers::EdgeConv conv(4, 4, 3);
    conv.tile_edges = 12;  // 3 nodes per tile, several tiles
    conv.to(engine::DType::F64);
    Tensor x = testing::rand_f64({9, 4}, 5);
    const Tensor index = conv.neighbours(x);
    Tensors in{x, testing::rand_f64({4, 8}, 6, -0.5, 0.5), testing::rand_f64({4}, 7), testing::rand_f64({4, 4}, 8),
               testing::rand_f64({4}, 9), testing::rand_f64({4}, 10), testing::rand_f64({4}, 11)};
    testing::gradcheck([&](const Tensors& t) {
      conv.lin1->weight = t[1];
      conv.lin1->bias = t[2];
      conv.lin2->weight = t[3];
      conv.ln1->weight = t[4];
      conv.ln2->bias = t[5];
      conv.ln2->weight = t[6];
      return conv.forward_with_index(t[0], index);
    }, in);
  }
  {
    layers::GravNetConv conv(5, 4, 3, 2);
    conv.tile_edges = 10;
    conv.to(engine::DType::F64);
    Tensor x = testing::rand_f64({11, 5}, 12);
    const Tensor index = conv.neighbours(x);
    Tensors in{x, testing::rand_f64({3, 5}, 13), testing::rand_f64({3}, 14), testing::rand_f64({2, 5}, 15),
               testing::rand_f64({1}, 16, -1, 0), testing::rand_f64({5, 4}, 17)};
    testing::gradcheck([&](const Tensors& t) {
      conv.lin_s->weight = t[1];
      conv.lin_s->bias = t[2];
      conv.lin_h->weight = t[3];
      conv.edge_weight_w = t[4];
      conv.lin_out2->weight = t[5];
      return conv.forward_with_index(t[0], index);
    }, in);
  }
}

TEST_CASE("EdgeConv and GravNetConv: empty input, wrong shapes, parameter counts") {
  layers::EdgeConv ec(64, 32, 32);
  CHECK(ec.num_parameters() == (128 * 64 + 64) + 128 + (64 * 64 + 64) + 128 + (64 * 32 + 32));  // 14,752
  layers::GravNetConv gn(72, 32, 32, 32);
  CHECK(gn.num_parameters() == 14537);
  CHECK(ec.forward(engine::zeros({0, 64})).shape() == engine::Shape{0, 64});
  CHECK(gn.forward(engine::zeros({0, 72})).shape() == engine::Shape{0, 72});
  CHECK_THROWS(ec.forward(engine::zeros({5, 63})));
  CHECK_THROWS(gn.forward(engine::zeros({5})));
}
