// rwkv and rwkv7: trainable parameter counts of the shipped configs (lampa-models.md table: 1,153,984 and 389,344),
// small versions train; the head is orthogonal with gain 0.5.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/engine.h"
#include "model_checks.h"
#include "models/catalog.h"

TEST_CASE("rwkv: 1,153,984 parameters, trains; orthogonal head") {
  model_checks::check_model(models::rwkv_entry(), 1153984, 0, {{"h_dim", 32}, {"n_layers", 2}, {"dim_ffn", 96}},
                            {"blocks.0.att.time_mix_w", "blocks.1.att.time_mix_w", "blocks.0.att.time_decay_w",
                             "blocks.1.att.time_decay_w"});
  manual_seed(2);
  auto m = models::rwkv_entry().make(models::rwkv_entry().defaults());
  for (const auto& [name, p] : m->named_parameters())
    if (name == "head.weight") {
      const Tensor gram = matmul(p, p.t());  // [64, 64] = 0.25 I
      const auto g = gram.to_vector<float>();
      for (int64_t i = 0; i < 64; ++i)
        for (int64_t j = 0; j < 64; ++j) CHECK(g[i * 64 + j] == doctest::Approx(i == j ? 0.25 : 0.0).epsilon(1e-4).scale(1));
    }
}

TEST_CASE("rwkv7: 389,344 parameters, trains") {
  model_checks::check_model(models::rwkv7_entry(), 389344, 0, {{"h_dim", 32}, {"n_layers", 2}, {"dim_ffn", 96}});
}
