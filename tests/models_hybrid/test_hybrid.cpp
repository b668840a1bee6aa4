// The Mamba-a family (fullhybrid2, fullfullhybrid2, hydra): parameter counts against lampa-models.md, forward and
// backward on a random sector that is not a multiple of the block size, a few Adam steps reduce a simple loss.
#include <doctest/doctest.h>

#include "engine/engine.h"
#include "models/catalog.h"
#include "model_checks.h"

using namespace engine;


TEST_CASE("fullhybrid2 (Mamba-a): 1,209,200 parameters, trains") {
  model_checks::check_model(models::fullhybrid2_entry(), 1209200, 3267, {{"h_dim", 32}, {"block_size", 100}});
}

TEST_CASE("fullfullhybrid2: 478,888 parameters, trains") {
  model_checks::check_model(models::fullfullhybrid2_entry(), 478888, 1731, {{"h_dim", 32}});
}

TEST_CASE("hydra (Mamba-a, Hydra): 475,600 parameters, trains") {
  model_checks::check_model(models::hydra_entry(), 475600, 1347, {{"n_layers", 2}});
}
