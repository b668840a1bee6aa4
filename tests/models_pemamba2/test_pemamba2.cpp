// pemamba2: trainable parameter count (lampa-models.md table 1: 594,112, no fixed buffers), forward/backward on
// random sectors with N >= group_size (several groups, the last one partial) and N < group_size, the shared model
// checks (small version trains), and the reference's aliased-concat switch (same parameters, different output).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/engine.h"
#include "model_checks.h"
#include "models/catalog.h"

using engine::Tensor;

namespace {

// Parameters the reference holds but never uses (besides norm., rmsnorm., which model_checks skips itself).
const std::vector<std::string> kUnused{"W0.", "backbone.layers.0.norm.", "backbone.layers.1.norm.",
                                       "backbone.layers.2.norm."};

bool unused(const std::string& name) {
  if (name.rfind("norm.", 0) == 0 || name.rfind("rmsnorm.", 0) == 0) return true;
  for (const std::string& p : kUnused)
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

}  // namespace

TEST_CASE("pemamba2: parameter count, fixed buffers, small version trains") {
  CHECK(std::string(models::pemamba2_entry().name) == "pemamba2");
  model_checks::check_model(models::pemamba2_entry(), 594112, 0, models::Config{{"n_layers", 2}, {"h_dim", 32}},
                            kUnused);
}

TEST_CASE("pemamba2: forward/backward on N = 450 (3 groups, last partial) and N = 37 (< group_size)") {
  engine::manual_seed(0);
  const auto& e = models::pemamba2_entry();
  auto model = e.make(e.defaults());
  CHECK(model->out_dim() == 32);
  for (int64_t N : {450, 37, 1}) {
    CAPTURE(N);
    const models::ModelInput in = model_checks::random_sector(N, 11);
    model->zero_grad();
    Tensor out = model->forward(in);
    REQUIRE(out.shape() == engine::Shape{N, 32});
    for (float v : out.to_vector<float>()) REQUIRE(std::isfinite(v));
    engine::mean(out * out).backward();
    for (const auto& [name, p] : model->named_parameters()) {
      CAPTURE(name);
      CHECK(p.grad().defined() != unused(name));
    }
  }
  models::ModelInput bad = model_checks::random_sector(10, 1);
  bad.coords = bad.coords.narrow(1, 0, 5).contiguous();
  CHECK_THROWS(model->forward(bad));
}

TEST_CASE("pemamba2: the aliased concat of the reference has the same parameters, a different output") {
  models::Config cfg = models::pemamba2_entry().defaults();
  engine::manual_seed(2);
  auto a = models::pemamba2_entry().make(cfg);
  cfg["concat"] = "aliased";
  engine::manual_seed(2);
  auto b = models::pemamba2_entry().make(cfg);
  CHECK(b->num_parameters() == 594112);
  a->eval();
  b->eval();
  const models::ModelInput in = model_checks::random_sector(230, 4);
  engine::NoGradGuard ng;
  const Tensor ya = a->forward(in), yb = b->forward(in);
  CHECK(engine::amax(engine::abs(ya - yb)).item() > 1e-4);
  cfg["concat"] = "bogus";
  CHECK_THROWS(models::pemamba2_entry().make(cfg));
}
