// The Mamba-a family (fullhybrid2, fullfullhybrid2, hydra): parameter counts against lampa-models.md, forward and
// backward on a random sector that is not a multiple of the block size, a few Adam steps reduce a simple loss.
#include <doctest/doctest.h>

#include "engine/engine.h"
#include "models/catalog.h"

using namespace engine;

namespace {

int64_t buffer_elements(const nn::Module& m) {
  int64_t n = 0;
  for (const auto& [name, t] : m.named_buffers()) n += t.numel();
  return n;
}

models::ModelInput random_sector(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor x = randn({n, 15}, {}, &g);
  Tensor eta = uniform({n, 1}, -4, 4, {}, &g), phi = uniform({n, 1}, -3.14159, 3.14159, {}, &g);
  Tensor rest = uniform({n, 4}, -1, 1, {}, &g);
  return {x, concat({eta, phi, rest}, 1), Tensor()};
}

void check_model(const models::ModelEntry& entry, int64_t params, int64_t fixed, const models::Config& small) {
  manual_seed(7);
  auto model = entry.make(entry.defaults());
  CHECK(model->num_parameters() == params);
  CHECK(buffer_elements(*model) == fixed);
  // a small version trains
  models::Config c = entry.defaults();
  c.merge_patch(small);
  auto m = entry.make(c);
  const models::ModelInput in = random_sector(230, 3);  // 3 LSH blocks, the last one partial
  const Tensor target = randn({230, m->out_dim()});
  optim::Adam opt(m->named_parameters(), 3e-3);
  double first = 0, last = 0;
  for (int step = 0; step < 5; ++step) {
    const Tensor out = m->forward(in);
    REQUIRE(out.shape() == Shape{230, m->out_dim()});
    const Tensor loss = mean(square(out - target));
    opt.zero_grad();
    loss.backward();
    for (const auto& [name, p] : m->named_parameters())
      if (name.find("W.") != 0 && name.find("norm.") != 0 && name.find("rmsnorm.") != 0 &&
          name.find("w_rpe.bias") == std::string::npos)  // unused by the reference too (hept.md 3.2)
        CHECK_MESSAGE(p.grad().defined(), name);
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  MESSAGE(std::string(entry.name) << ": loss " << first << " -> " << last);
  CHECK(last < first);
}

}  // namespace

TEST_CASE("fullhybrid2 (Mamba-a): 1,209,200 parameters, trains") {
  check_model(models::fullhybrid2_entry(), 1209200, 3267, {{"h_dim", 32}, {"block_size", 100}});
}

TEST_CASE("fullfullhybrid2: 478,888 parameters, trains") {
  check_model(models::fullfullhybrid2_entry(), 478888, 1731, {{"h_dim", 32}});
}

TEST_CASE("hydra (Mamba-a, Hydra): 475,600 parameters, trains") {
  check_model(models::hydra_entry(), 475600, 1347, {{"n_layers", 2}});
}
