// flatformer, mhaformer (and its causal variant) and pct: trainable parameter counts (lampa-models.md table 1:
// 500,835 and 238,548; hept.md 4.2: pct 329,412 = the paper's PCT-S, 0.33 M), forward/backward on random sectors
// (flatformer with N >= group_size, so with duplicated pad rows, and N < group_size), the aliased-concat switch,
// causality of the casualformer variant, and a few Adam steps reducing a loss.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/engine.h"
#include "model_testing.h"
#include "models/catalog.h"

using engine::Tensor;

namespace {

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
    CHECK(testing::trainable(*model) == c.params);
    CHECK(model->out_dim() == c.out);
    for (int64_t N : {450, 37}) {  // flatformer: 3 groups (last one padded by duplicates), and N < group_size
      CAPTURE(N);
      models::ModelInput in = testing::random_sector(N, 1, 12);
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
  CHECK(testing::trainable(*b) == 500835);
  a->eval();
  b->eval();
  models::ModelInput in = testing::random_sector(230, 4, 12);
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
  models::ModelInput in = testing::random_sector(64, 5, 12);
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
  models::ModelInput in = testing::random_sector(20, 6, 12);
  in.edge_index = Tensor();
  CHECK_THROWS_AS(model->forward(in), engine::EngineError);
}

TEST_CASE("attention models: a few Adam steps reduce a simple loss") {
  for (const Case& c : cases()) {
    CAPTURE(std::string(c.entry.name));
    engine::manual_seed(3);
    auto model = c.entry.make(c.entry.defaults());
    const testing::LossDrop drop = testing::adam_fit(*model, testing::random_sector(300, 5, 12));
    CHECK(drop.last < 0.9 * drop.first);
  }
}
