// Shared checks of catalog models: trainable and fixed (buffer) element counts of the shipped config, and a small
// version that runs forward/backward on a random sector (not a multiple of the block size) with every used
// parameter receiving a gradient, and whose loss falls over a few Adam steps.
#pragma once
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/engine.h"
#include "models/catalog.h"

using namespace engine;

namespace model_checks {

inline int64_t buffer_elements(const nn::Module& m) {
  int64_t n = 0;
  for (const auto& [name, t] : m.named_buffers()) n += t.numel();
  return n;
}

inline models::ModelInput random_sector(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor x = randn({n, 15}, {}, &g);
  Tensor eta = uniform({n, 1}, -4, 4, {}, &g), phi = uniform({n, 1}, -3.14159, 3.14159, {}, &g);
  Tensor rest = uniform({n, 4}, -1, 1, {}, &g);
  Tensor vertex_z = uniform({n, 1}, -0.3, 0.3, {}, &g);  // metres
  Tensor seeds = uniform({n, 5}, -1, 1, {}, &g);         // [N, 5] as data::triplet_seeds' columns
  return {x, concat({eta, phi, rest}, 1), Tensor(), vertex_z, seeds};
}

// Parameters the reference holds but never uses get no gradient: W, norm, rmsnorm (Mamba-a), w_rpe.bias (hept.md
// 3.2), and those whose names start with one of `unused` (e.g. hmamba's LSHAtt norm2/ff).
inline bool used_parameter(const std::string& name, const std::vector<std::string>& unused) {
  if (name.find("W.") == 0 || name.find("norm.") == 0 || name.find("rmsnorm.") == 0 ||
      name.find("w_rpe.bias") != std::string::npos)
    return false;
  for (const std::string& prefix : unused)
    if (name.find(prefix) == 0) return false;
  return true;
}

inline void check_model(const models::ModelEntry& entry, int64_t params, int64_t fixed, const models::Config& small,
                        const std::vector<std::string>& unused = {}) {
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
      if (used_parameter(name, unused)) CHECK_MESSAGE(p.grad().defined(), name);
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  MESSAGE(std::string(entry.name) << ": loss " << first << " -> " << last);
  CHECK(last < first);
}

}  // namespace model_checks
