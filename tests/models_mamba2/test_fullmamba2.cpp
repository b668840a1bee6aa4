// fullmamba2: trainable parameter count (lampa-models.md table: 566,432), forward/backward on a random sector of
// N = 300 hits (not a multiple of the chunk), causality of the scan order, and a few Adam steps reducing a loss.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/engine.h"
#include "model_testing.h"
#include "models/catalog.h"

using engine::Tensor;

TEST_CASE("fullmamba2: parameter count, forward/backward on N = 300, causal scan order") {
  engine::manual_seed(0);
  const auto& e = models::fullmamba2_entry();
  auto model = e.make(e.defaults());
  CHECK(std::string(e.name) == "fullmamba2");
  CHECK(testing::trainable(*model) == 566432);
  CHECK(model->out_dim() == 32);
  models::ModelInput in = testing::random_sector(300, 1);
  Tensor out = model->forward(in);
  REQUIRE(out.shape() == engine::Shape{300, 32});
  for (float v : out.to_vector<float>()) REQUIRE(std::isfinite(v));
  engine::mean(out * out).backward();
  int64_t with_grad = 0;
  for (const auto& [name, p] : model->named_parameters()) {
    if (name.rfind("W.", 0) == 0 || name.rfind("norm.", 0) == 0 || name.rfind("rmsnorm.", 0) == 0) continue;  // unused
    CAPTURE(name);
    REQUIRE(p.grad().defined());
    with_grad++;
  }
  CHECK(with_grad > 100);
  // Causal: the first 200 rows do not depend on the last 100 hits (eval mode: no dropout).
  model->eval();
  engine::NoGradGuard ng;
  Tensor full = model->forward(in);
  models::ModelInput head = in;
  head.x = in.x.narrow(0, 0, 200).contiguous();
  head.coords = in.coords.narrow(0, 0, 200).contiguous();
  Tensor part = model->forward(head);
  CHECK(testing::closeness(part, full.narrow(0, 0, 200), 1e-5, 1e-5) <= 1.0);
}

TEST_CASE("fullmamba2: a few Adam steps reduce a simple loss") {
  engine::manual_seed(2);
  const auto& e = models::fullmamba2_entry();
  auto model = e.make(e.defaults());
  const testing::LossDrop drop = testing::adam_fit(*model, testing::random_sector(300, 5));
  CHECK(drop.last < 0.9 * drop.first);
}
