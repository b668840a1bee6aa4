// fullmamba2: trainable parameter count (lampa-models.md table: 566,432), forward/backward on a random sector of
// N = 300 hits (not a multiple of the chunk), causality of the scan order, and a few Adam steps reducing a loss.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/engine.h"
#include "engine/optim/optimizer.h"
#include "gradcheck.h"
#include "models/catalog.h"

using engine::DType;
using engine::Tensor;

namespace {

models::ModelInput random_sector(int64_t N, uint64_t seed) {
  using namespace engine;
  models::ModelInput in;
  in.x = testing::rand_f32({N, 15}, seed, -1, 1);
  Tensor eta = testing::rand_f64({N, 1}, seed + 1, -4, 4, false), phi = testing::rand_f64({N, 1}, seed + 2, -M_PI, M_PI, false);
  Tensor r = testing::rand_f64({N, 1}, seed + 3, 0.03, 1.0, false), z = testing::rand_f64({N, 1}, seed + 4, -3, 3, false);
  in.coords = concat({eta, phi, r, phi / M_PI, z, eta}, 1).to(DType::F32);
  in.edge_index = zeros({2, 0}, TensorOptions(DType::I64));
  return in;
}

int64_t trainable(const engine::nn::Module& m) {
  int64_t n = 0;
  for (const Tensor& p : m.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace

TEST_CASE("fullmamba2: parameter count, forward/backward on N = 300, causal scan order") {
  engine::manual_seed(0);
  const auto& e = models::fullmamba2_entry();
  auto model = e.make(e.defaults());
  CHECK(std::string(e.name) == "fullmamba2");
  CHECK(trainable(*model) == 566432);
  CHECK(model->out_dim() == 32);
  models::ModelInput in = random_sector(300, 1);
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
  model->eval();
  models::ModelInput in = random_sector(300, 5);
  Tensor target = testing::rand_f32({300, 32}, 9, -1, 1);
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
