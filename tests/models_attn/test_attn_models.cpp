// flatformer, mhaformer (and its causal variant) and pct: trainable parameter counts (lampa-models.md table 1:
// 500,835 and 238,548; hept.md 4.2: pct 329,412 = the paper's PCT-S, 0.33 M), forward/backward on random sectors
// (flatformer with N >= group_size, so with duplicated pad rows, and N < group_size), the aliased-concat switch,
// causality of the casualformer variant, and a few Adam steps reducing a loss.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <utility>

#include "engine/engine.h"
#include "engine/optim/optimizer.h"
#include "gradcheck.h"
#include "models/catalog.h"

using engine::DType;
using engine::Tensor;

namespace {

// Each hit linked to its k nearest hits in (eta, phi) plus itself, symmetrised (as the dataset's graph).
Tensor knn_edges(const Tensor& coords, int64_t k) {
  const int64_t N = coords.size(0);
  auto c = coords.to_vector<float>();
  std::set<std::pair<int64_t, int64_t>> edges;
  std::vector<int64_t> idx(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    std::iota(idx.begin(), idx.end(), 0);
    auto d2 = [&](int64_t j) {
      const double de = c[i * 6] - c[j * 6], dp = c[i * 6 + 1] - c[j * 6 + 1];
      return de * de + dp * dp;
    };
    std::partial_sort(idx.begin(), idx.begin() + std::min(k + 1, N), idx.end(),
                      [&](int64_t a, int64_t b) { return d2(a) < d2(b) || (d2(a) == d2(b) && a < b); });
    for (int64_t r = 0; r < std::min(k + 1, N); ++r) {
      edges.insert({idx[r], i});
      edges.insert({i, idx[r]});
    }
  }
  std::vector<int64_t> flat(2 * edges.size());
  size_t e = 0;
  for (const auto& [s, d] : edges) {
    flat[e] = s;
    flat[edges.size() + e] = d;
    ++e;
  }
  return engine::from_vector(flat, {2, static_cast<int64_t>(edges.size())});
}

models::ModelInput random_sector(int64_t N, uint64_t seed) {
  using namespace engine;
  models::ModelInput in;
  in.x = testing::rand_f32({N, 15}, seed, -1, 1);
  Tensor eta = testing::rand_f64({N, 1}, seed + 1, -4, 4, false);
  Tensor phi = testing::rand_f64({N, 1}, seed + 2, -M_PI, M_PI, false);
  Tensor r = testing::rand_f64({N, 1}, seed + 3, 0.03, 1.0, false);
  Tensor z = testing::rand_f64({N, 1}, seed + 4, -3, 3, false);
  in.coords = concat({eta, phi, r, phi / M_PI, z, eta}, 1).to(DType::F32);
  in.edge_index = knn_edges(in.coords, 12);
  return in;
}

int64_t trainable(const engine::nn::Module& m) {
  int64_t n = 0;
  for (const Tensor& p : m.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

struct Case {
  const models::ModelEntry& entry;
  int64_t params, out;
};

std::vector<Case> cases() {
  return {{models::flatformer_entry(), 500835, 15}, {models::mhaformer_entry(), 238548, 12},
          {models::pct_entry(), 329412, 12}};
}

}  // namespace

TEST_CASE("attention models: parameter counts, forward/backward") {
  for (const Case& c : cases()) {
    CAPTURE(std::string(c.entry.name));
    engine::manual_seed(0);
    auto model = c.entry.make(c.entry.defaults());
    CHECK(model->name() == c.entry.name);
    CHECK(trainable(*model) == c.params);
    CHECK(model->out_dim() == c.out);
    for (int64_t N : {450, 37}) {  // flatformer: 3 groups (last one padded by duplicates), and N < group_size
      CAPTURE(N);
      models::ModelInput in = random_sector(N, 1);
      model->zero_grad();
      Tensor out = model->forward(in);
      REQUIRE(out.shape() == engine::Shape{N, c.out});
      for (float v : out.to_vector<float>()) REQUIRE(std::isfinite(v));
      engine::mean(out * out).backward();
      for (const auto& [name, p] : model->named_parameters()) {
        if (name.find("w_rpe") != std::string::npos) continue;  // unused in the reference too
        CAPTURE(name);
        CHECK(p.grad().defined());
      }
    }
  }
}

TEST_CASE("flatformer: the aliased concat of the reference has the same parameters, a different output") {
  models::Config cfg = models::flatformer_entry().defaults();
  engine::manual_seed(2);
  auto a = models::flatformer_entry().make(cfg);
  cfg["concat"] = "aliased";
  engine::manual_seed(2);
  auto b = models::flatformer_entry().make(cfg);
  CHECK(trainable(*b) == 500835);
  a->eval();
  b->eval();
  models::ModelInput in = random_sector(230, 4);
  Tensor ya = a->forward(in), yb = b->forward(in);
  CHECK(engine::amax(engine::abs(ya - yb)).item() > 1e-4);
  cfg["concat"] = "bogus";
  CHECK_THROWS(models::flatformer_entry().make(cfg));
}

TEST_CASE("mhaformer with causal attention (casualformer): rows do not see later hits") {
  models::Config cfg = models::mhaformer_entry().defaults();
  cfg["causal"] = true;
  engine::manual_seed(3);
  auto model = models::mhaformer_entry().make(cfg);
  model->eval();
  models::ModelInput in = random_sector(64, 5);
  Tensor y1 = model->forward(in);
  std::vector<float> x = in.x.to_vector<float>();
  for (int64_t c = 0; c < 15; ++c) x[static_cast<size_t>(63 * 15 + c)] += 0.5f;
  in.x = engine::from_vector(x, {64, 15});
  Tensor y2 = model->forward(in);
  CHECK(engine::amax(engine::abs(y1.narrow(0, 0, 63) - y2.narrow(0, 0, 63))).item() == 0.0);
  CHECK(engine::amax(engine::abs(y1.narrow(0, 63, 1) - y2.narrow(0, 63, 1))).item() > 0.0);
}

TEST_CASE("pct: a clear error without edge_index") {
  auto model = models::pct_entry().make(models::pct_entry().defaults());
  models::ModelInput in = random_sector(20, 6);
  in.edge_index = Tensor();
  CHECK_THROWS_AS(model->forward(in), engine::EngineError);
}

TEST_CASE("attention models: a few Adam steps reduce a simple loss") {
  for (const Case& c : cases()) {
    CAPTURE(std::string(c.entry.name));
    engine::manual_seed(3);
    auto model = c.entry.make(c.entry.defaults());
    model->eval();
    models::ModelInput in = random_sector(300, 5);
    Tensor target = testing::rand_f32({300, c.out}, 9, -1, 1);
    engine::optim::Adam opt(model->named_parameters(), 1e-3);
    double first = 0, last = 0;
    for (int step = 0; step < 6; ++step) {
      opt.zero_grad();
      Tensor d = model->forward(in) - target;
      Tensor loss = engine::mean(d * d);
      loss.backward();
      opt.step();
      (step == 0 ? first : last) = loss.item();
    }
    CHECK(last < 0.9 * first);
  }
}
