// app::input_statistics, the training split's per-feature mean and standard deviation that apps/train stores as the
// models' "input_standardization": checked against a direct computation on a small simulated dataset, and the
// standardised model built from it embeds the raw features as the plain model embeds the standardised ones.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "apps/lib/tracking_task.h"
#include "data/cache.h"
#include "data/features.h"
#include "data/seeding.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "small_cache.h"

namespace fs = std::filesystem;
using namespace engine;

TEST_CASE("input statistics of the training split") {
  const std::string root = (fs::temp_directory_path() / "hep-test-input-statistics").string();
  const data::Dataset dataset(small_simulated_cache(root));
  REQUIRE(dataset.size(data::Split::Train) >= 3);

  const nlohmann::json stats = app::input_statistics(dataset, 3);
  std::vector<Tensor> xs;  // the first 3 training samples' features, [N_i, 15] each
  for (size_t i = 0; i < 3; ++i) xs.push_back(dataset.load(data::Split::Train, i).x.to(DType::F64));
  const Tensor all = concat(xs, 0);                                      // [N, 15]
  const std::vector<double> means = mean(all, {0}).to_vector<double>();    // [15]
  const Tensor centred = all - from_vector(means, {15});
  const std::vector<double> var = mean(centred * centred, {0}).to_vector<double>();
  REQUIRE(stats["mean"].size() == 15);
  REQUIRE(stats["std"].size() == 15);
  for (size_t c = 0; c < 15; ++c) {
    CAPTURE(c);
    CHECK(stats["mean"][c].get<double>() == doctest::Approx(means[c]).epsilon(1e-9).scale(1.0));
    const double expected_std = var[c] > 1e-12 * std::max(1.0, means[c] * means[c]) ? std::sqrt(var[c]) : 1.0;
    CHECK(stats["std"][c].get<double>() == doctest::Approx(expected_std).epsilon(1e-6));
  }
  CHECK_THROWS_WITH(app::input_statistics(dataset, 0), doctest::Contains("training split is empty"));

  // the statistics as a model config: finite, and accepted by every model's encoder
  auto model = models::build_tracking_model(
      "hmambav2", {{"size", "S"}, {"vertex_z_input", false}, {"seed_input", false}, {"input_standardization", stats}});
  CHECK(model->config()["input_standardization"] == stats);

  // with the vertex z input (the hmambav2 S preset): one more column, the estimates' own mean and spread
  const nlohmann::json with_z =
      app::input_statistics(dataset, 3, {{"vertex_z_input", true}, {"vertex_z_estimate", "sensor_depth"}});
  REQUIRE(with_z["mean"].size() == 16);
  for (size_t c = 0; c < 15; ++c) CHECK(with_z["mean"][c].get<double>() == stats["mean"][c].get<double>());
  std::vector<Tensor> zs;  // [N_i, 1] each
  for (size_t i = 0; i < 3; ++i) {
    const Tensor x = dataset.load(data::Split::Train, i).x;  // [N_i, 15]
    zs.push_back(data::vertex_z_estimates(x, data::VertexZMethod::SensorDepth).to(DType::F64));
  }
  CHECK(with_z["mean"][15].get<double>() == doctest::Approx(mean(concat(zs, 0)).item()).epsilon(1e-9).scale(1.0));
  CHECK(with_z["std"][15].get<double>() > 0.0);
  // the thirteenth session's estimate (a config without the key) gives other estimates; an unknown name is an error
  const nlohmann::json cluster_eta = app::input_statistics(dataset, 3, {{"vertex_z_input", true}});
  CHECK(cluster_eta["mean"][15].get<double>() != with_z["mean"][15].get<double>());
  CHECK_THROWS_WITH(app::input_statistics(dataset, 3, {{"vertex_z_input", true}, {"vertex_z_estimate", "beam_spot"}}),
                    doctest::Contains("unknown vertex z estimate 'beam_spot'"));
  auto with_model =
      models::build_tracking_model("hmambav2", {{"size", "S"}, {"seed_input", false}, {"input_standardization", with_z}});
  CHECK(with_model->config()["vertex_z_input"] == true);

  // with the triplet seeds as well (the hmambav2 S preset): five more columns, after the vertex z
  const nlohmann::json with_seeds = app::input_statistics(
      dataset, 3, {{"vertex_z_input", true}, {"vertex_z_estimate", "sensor_depth"}, {"seed_input", true}});
  REQUIRE(with_seeds["mean"].size() == 21);
  for (size_t c = 0; c < 16; ++c) CHECK(with_seeds["mean"][c].get<double>() == with_z["mean"][c].get<double>());
  std::vector<Tensor> seeds;  // [N_i, 5] each
  for (size_t i = 0; i < 3; ++i) seeds.push_back(data::triplet_seeds(dataset.load(data::Split::Train, i).x).to(DType::F64));
  const std::vector<double> seed_means = mean(concat(seeds, 0), {0}).to_vector<double>();  // [5]
  for (size_t c = 0; c < 5; ++c)
    CHECK(with_seeds["mean"][16 + c].get<double>() == doctest::Approx(seed_means[c]).epsilon(1e-9).scale(1.0));
  // a fraction of the hits has a seed: those of particles above ~0.45 GeV, not the many softer ones and the noise
  CHECK(with_seeds["mean"][16 + data::kSeedFound].get<double>() > 0.1);
  CHECK(with_seeds["mean"][16 + data::kSeedFound].get<double>() < 0.9);
  auto preset_model = models::build_tracking_model("hmambav2", {{"size", "S"}, {"input_standardization", with_seeds}});
  CHECK(preset_model->config()["seed_input"] == true);
  fs::remove_all(root);
}
