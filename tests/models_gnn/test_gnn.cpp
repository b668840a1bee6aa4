// dgcnn and gravnet: trainable parameter counts (lampa-models.md table: 325,324 and 339,512), forward/backward on a
// random sector of N = 400 hits, state-dict names of the reference, and a few Adam steps reducing a simple loss.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/engine.h"
#include "model_testing.h"
#include "models/catalog.h"

using engine::Tensor;

namespace {

bool has_name(const engine::nn::Module& m, const std::string& name) {
  for (const auto& [n, p] : m.named_parameters())
    if (n == name) return true;
  return false;
}

void forward_backward(const models::ModelEntry& e, int64_t expect_params) {
  engine::manual_seed(0);
  auto model = e.make(e.defaults());
  CHECK(testing::trainable(*model) == expect_params);
  CHECK(model->out_dim() == 12);
  models::ModelInput in = testing::random_sector(400, 1);
  Tensor out = model->forward(in);
  REQUIRE(out.shape() == engine::Shape{400, 12});
  for (float v : out.to_vector<float>()) REQUIRE(std::isfinite(v));
  engine::mean(out * out).backward();
  int64_t with_grad = 0;
  for (const auto& [name, p] : model->named_parameters()) {
    // Unused in the reference too: norm1s, and DGCNN's lin_s (the kNN indices are not differentiable).
    if (name.rfind("norm1s.", 0) == 0 || name.find("model.lin_s") != std::string::npos) continue;
    CAPTURE(name);
    REQUIRE(p.grad().defined());
    with_grad++;
  }
  CHECK(with_grad > 40);
}

void adam_reduces_loss(const models::ModelEntry& e) {
  engine::manual_seed(2);
  auto model = e.make(e.defaults());
  const testing::LossDrop drop = testing::adam_fit(*model, testing::random_sector(400, 5));
  CHECK(drop.last < drop.first);
}

}  // namespace

TEST_CASE("dgcnn: parameter count 325,324, reference names, forward/backward on N = 400") {
  const auto& e = models::dgcnn_entry();
  CHECK(std::string(e.name) == "dgcnn");
  forward_backward(e, 325324);
  auto m = e.make(e.defaults());
  CHECK(has_name(*m, "convs.0.model.nn.0.weight"));
  CHECK(has_name(*m, "convs.3.model.nn.4.bias"));
  CHECK(has_name(*m, "convs.1.model.lin_s.weight"));
  CHECK(has_name(*m, "pre_ffs.2.1.weight"));
  CHECK(has_name(*m, "ffs.0.2.weight"));
  CHECK(has_name(*m, "W.weight"));
  // The max aggregation is an option with the same parameters.
  models::Config c = e.defaults();
  c["aggr"] = "max";
  CHECK(testing::trainable(*e.make(c)) == 325324);
  c["aggr"] = "sum";
  CHECK_THROWS(e.make(c));
}

TEST_CASE("gravnet: parameter count 339,512, reference names, forward/backward on N = 400") {
  const auto& e = models::gravnet_entry();
  CHECK(std::string(e.name) == "gravnet");
  forward_backward(e, 339512);
  auto m = e.make(e.defaults());
  CHECK(has_name(*m, "convs.0.edge_weight_w"));
  CHECK(has_name(*m, "convs.2.lin_out1.weight"));
  CHECK(!has_name(*m, "convs.2.lin_out1.bias"));
  CHECK(has_name(*m, "convs.3.lin_out2.bias"));
}

TEST_CASE("dgcnn and gravnet: a few Adam steps reduce a simple loss") {
  adam_reduces_loss(models::dgcnn_entry());
  adam_reduces_loss(models::gravnet_entry());
}

TEST_CASE("dgcnn and gravnet: tiny sectors (N < k) and a single hit") {
  for (const auto* e : {&models::dgcnn_entry(), &models::gravnet_entry()}) {
    auto model = e->make(e->defaults());
    model->eval();
    for (int64_t N : {1, 9}) {
      Tensor out = model->forward(testing::random_sector(N, 3));
      CHECK(out.shape() == engine::Shape{N, 12});
    }
  }
}
