// The registry: every catalog model builds by name from its shipped config and runs on a small sector; unknown
// names, unknown keys and bad sizes give clear errors; overrides and size presets reach the model's config.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/engine.h"
#include "models/common.h"
#include "models/registry.h"
#include "model_checks.h"

using namespace engine;

TEST_CASE("registry: every model builds by name and embeds a small sector") {
  const auto names = models::tracking_model_names();
  CHECK(names.size() >= 10);
  Generator g(5);
  const int64_t n = 260;
  const Tensor x = randn({n, 15}, {}, &g);
  const Tensor coords = concat({uniform({n, 1}, -4, 4, {}, &g), uniform({n, 1}, -3.14, 3.14, {}, &g),
                                uniform({n, 4}, -1, 1, {}, &g)}, 1);
  std::vector<int64_t> edges;  // a ring graph with self loops, enough for gdlocal1
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d : {int64_t{0}, int64_t{1}, n - 1}) edges.push_back(i), edges.push_back((i + d) % n);
  Tensor edge_index = from_vector(edges, {n * 3, 2}).t().contiguous();
  for (const std::string& name : names) {
    CAPTURE(name);
    manual_seed(1);
    auto model = models::build_tracking_model(name);
    CHECK(model->name() == name);
    CHECK(model->config() == models::default_config(name));
    model->eval();
    NoGradGuard no_grad;
    const Tensor out = model->forward({x, coords, edge_index, Tensor()});
    CHECK(out.shape() == Shape{n, model->out_dim()});
  }
}

TEST_CASE("registry: errors and overrides") {
  CHECK_THROWS_WITH(models::build_tracking_model("nosuch"), doctest::Contains("unknown model 'nosuch'"));
  CHECK_THROWS_WITH(models::build_tracking_model("hept", {{"hdim", 3}}), doctest::Contains("unknown config key 'hdim'"));
  CHECK_THROWS_WITH(models::build_tracking_model("hept", {{"h_dim", "wide"}}), doctest::Contains("h_dim"));
  CHECK_THROWS_WITH(models::build_tracking_model("fullmamba2", {{"size", "S"}}), doctest::Contains("no size presets"));
  auto m = models::build_tracking_model("fullmamba2", {{"n_layers", 2}});
  CHECK(m->config()["n_layers"] == 2);
  CHECK(models::reference_training("hept")["lr"] == 1e-3);
  // paper sizes (paper-results.md: HEPT-S 0.33 M, Mamba-b-S 0.32 M)
  CHECK(models::build_tracking_model("hept", {{"size", "S"}})->num_parameters() == 326436);
  CHECK(models::build_tracking_model("hmambav2", {{"size", "S"}})->num_parameters() == 327752);  // vertex z, seeds
  CHECK_THROWS_WITH(models::build_tracking_model("hept", {{"size", "XL"}}), doctest::Contains("unknown size"));
}

TEST_CASE("registry: fixed input standardisation of the feature encoder") {
  Generator g(9);
  const int64_t n = 230, f = 15;
  const Tensor x = mul(randn({n, f}, {}, &g), 5.0) + 2.0;  // [N, 15]
  const Tensor coords = concat({uniform({n, 1}, -4, 4, {}, &g), uniform({n, 1}, -3.14, 3.14, {}, &g),
                                uniform({n, 4}, -1, 1, {}, &g)}, 1);
  std::vector<double> mean(f), stddev(f);
  for (int64_t c = 0; c < f; ++c) mean[c] = 0.5 * static_cast<double>(c) - 3.0, stddev[c] = 0.25 + 0.1 * static_cast<double>(c);
  const Tensor mean_t = from_vector(std::vector<float>(mean.begin(), mean.end()), {f});
  const Tensor std_t = from_vector(std::vector<float>(stddev.begin(), stddev.end()), {f});
  for (const std::string name : {"hmambav2", "hept", "dgcnn"}) {
    CAPTURE(name);
    manual_seed(3);
    models::Config size = {{"size", name == "dgcnn" ? "ref" : "S"}};
    if (name == "hmambav2")  // 15 features and HEPT's coords here; the extra inputs have tests of their own
      size["vertex_z_input"] = false, size["seed_input"] = false, size["seed_coords"] = false;
    auto plain = models::build_tracking_model(name, size);
    manual_seed(3);
    size["input_standardization"] = {{"mean", mean}, {"std", stddev}};
    auto standardized = models::build_tracking_model(name, size);
    CHECK(standardized->num_parameters() == plain->num_parameters());  // fixed, not trained
    CHECK(standardized->state_dict().size() == plain->state_dict().size());  // and not saved in checkpoints
    plain->eval(), standardized->eval();
    NoGradGuard no_grad;
    const Tensor expected = plain->forward({div(x - mean_t, std_t), coords, Tensor(), Tensor()});
    const Tensor got = standardized->forward({x, coords, Tensor(), Tensor()});
    CHECK(amax(abs(got - expected)).item() <= 1e-4 * std::max(1.0, amax(abs(expected)).item()));
  }
  // "from_training_data" (filled in by apps/train) builds as the identity until then
  manual_seed(3);
  auto pending = models::build_tracking_model("hmambav2", {{"size", "S"}, {"input_standardization", "from_training_data"}});
  manual_seed(3);
  auto plain = models::build_tracking_model("hmambav2", {{"size", "S"}});
  pending->eval(), plain->eval();
  NoGradGuard no_grad;
  const Tensor vertex_z = uniform({n, 1}, -0.3, 0.3, {}, &g);        // [N, 1]
  const Tensor seeds = uniform({n, models::kSeedInputs}, -1, 1, {}, &g);  // [N, 5]
  CHECK(amax(abs(pending->forward({x, coords, Tensor(), vertex_z, seeds}) -
                 plain->forward({x, coords, Tensor(), vertex_z, seeds})))
            .item() == 0.0);
  // bad values are errors that name the key
  stddev[4] = 0.0;
  CHECK_THROWS_WITH(models::build_tracking_model("hept", {{"input_standardization", {{"mean", mean}, {"std", stddev}}}}),
                    doctest::Contains("bad 'std' value"));
  mean.pop_back();
  CHECK_THROWS_WITH(models::build_tracking_model("hept", {{"input_standardization", {{"mean", mean}, {"std", stddev}}}}),
                    doctest::Contains("'mean' must be an array of 15 numbers"));
  CHECK_THROWS_WITH(models::build_tracking_model("hept", {{"input_standardization", "yes"}}),
                    doctest::Contains("input_standardization"));
}

TEST_CASE("registry: the vertex z estimate as one more input feature (hmambav2 S)") {
  Generator g(11);
  const int64_t n = 230;
  const Tensor x = randn({n, 15}, {}, &g);
  const Tensor coords = concat({uniform({n, 1}, -4, 4, {}, &g), uniform({n, 1}, -3.14, 3.14, {}, &g),
                                uniform({n, 4}, -1, 1, {}, &g)}, 1);
  const Tensor vertex_z = uniform({n, 1}, -0.3, 0.3, {}, &g);  // [N, 1] metres
  manual_seed(4);
  auto with = models::build_tracking_model("hmambav2", {{"size", "S"}, {"seed_input", false}, {"seed_coords", false}});
  manual_seed(4);
  auto without = models::build_tracking_model(
      "hmambav2", {{"size", "S"}, {"seed_input", false}, {"seed_coords", false}, {"vertex_z_input", false}});
  CHECK(with->config()["vertex_z_input"] == true);
  CHECK(with->config()["vertex_z_estimate"] == "sensor_depth");
  CHECK(with->num_parameters() == without->num_parameters() + 48);  // one more input column of the encoder (h 48)
  with->eval();
  NoGradGuard no_grad;
  const Tensor out = with->forward({x, coords, Tensor(), vertex_z});
  CHECK(out.shape() == Shape{n, with->out_dim()});
  // the column is read: another vertex z gives another embedding
  CHECK(amax(abs(with->forward({x, coords, Tensor(), vertex_z * 0.5}) - out)).item() > 1e-4);
  // a model that needs it says so when it is missing or of the wrong shape
  CHECK_THROWS_WITH(with->forward({x, coords, Tensor(), Tensor()}), doctest::Contains("vertex_z"));
  CHECK_THROWS_WITH(with->forward({x, coords, Tensor(), vertex_z.slice(0, 0, n - 1)}), doctest::Contains("vertex_z"));
  // a config stored before the key existed rebuilds the model it was: without the vertex z input, and with the
  // thirteenth session's estimate when only the estimate's key is missing
  models::Config older = without->config();
  older.erase("vertex_z_input");
  older.erase("vertex_z_estimate");
  CHECK(models::build_tracking_model("hmambav2", models::stored_config("hmambav2", older))->num_parameters() ==
        without->num_parameters());
  models::Config thirteenth = with->config();
  thirteenth.erase("vertex_z_estimate");
  CHECK(models::stored_config("hmambav2", thirteenth)["vertex_z_estimate"] == "cluster_eta");
  CHECK(models::build_tracking_model("hmambav2", older)->num_parameters() == with->num_parameters());  // the preset's
  CHECK(models::build_tracking_model("hmambav2", older)->config()["vertex_z_estimate"] == "sensor_depth");
  // the standardisation then has one more column than x
  std::vector<double> mean(16, 0.0), stddev(16, 1.0);
  const models::Config no_seeds = {{"size", "S"}, {"seed_input", false}, {"seed_coords", false}};
  models::Config standardized = no_seeds;
  standardized["input_standardization"] = {{"mean", mean}, {"std", stddev}};
  CHECK_NOTHROW(models::build_tracking_model("hmambav2", standardized));
  mean.pop_back(), stddev.pop_back();
  standardized["input_standardization"] = {{"mean", mean}, {"std", stddev}};
  CHECK_THROWS_WITH(models::build_tracking_model("hmambav2", standardized), doctest::Contains("16 numbers"));
}

TEST_CASE("registry: the triplet seeds as five more input features (hmambav2 S)") {
  const int64_t n = 230;
  const models::ModelInput in = model_checks::random_sector(n, 12);
  const Tensor &x = in.x, &coords = in.coords, &vertex_z = in.vertex_z, &seeds = in.seeds;  // [N, 15/6/1/5]
  manual_seed(5);
  auto with = models::build_tracking_model("hmambav2", {{"size", "S"}});
  manual_seed(5);
  auto without = models::build_tracking_model("hmambav2", {{"size", "S"}, {"seed_input", false}});
  CHECK(with->config()["seed_input"] == true);
  CHECK(with->num_parameters() == without->num_parameters() + 5 * 48);  // five more encoder inputs (h 48)
  with->eval();
  NoGradGuard no_grad;
  const Tensor out = with->forward({x, coords, Tensor(), vertex_z, seeds});
  CHECK(out.shape() == Shape{n, with->out_dim()});
  // the columns are read, after the vertex z
  CHECK(amax(abs(with->forward({x, coords, Tensor(), vertex_z, seeds * 0.5}) - out)).item() > 1e-4);
  CHECK(amax(abs(with->forward({x, coords, Tensor(), vertex_z * 0.5, seeds}) - out)).item() > 1e-4);
  // a model that needs them says so when they are missing or of the wrong shape
  CHECK_THROWS_WITH(with->forward({x, coords, Tensor(), vertex_z, Tensor()}), doctest::Contains("seeds"));
  CHECK_THROWS_WITH(with->forward({x, coords, Tensor(), vertex_z, seeds.slice(1, 0, 4)}), doctest::Contains("seeds"));
  // a config stored before the key existed rebuilds the model it was: without the seeds
  models::Config older = with->config();
  older.erase("seed_input");
  older.erase("seed_coords");
  const models::Config rebuilt = models::stored_config("hmambav2", older);
  CHECK(rebuilt["seed_coords"] == false);
  CHECK(models::build_tracking_model("hmambav2", rebuilt)->num_parameters() == without->num_parameters());
}

TEST_CASE("registry: hashing and scanning in the triplet seeds' frame (hmambav2 S)") {
  // seed_frame_coords: eta, phi, phi/pi and eta_rz from the seed where it was found, the rest as they were
  const Tensor coords = from_vector(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f,   //
                                                       1.1f, 1.2f, 1.3f, 1.4f, 1.5f, 1.6f}, {2, 6});
  const Tensor seeds = from_vector(std::vector<float>{0.25f, 0.7f, -0.8f, 0.01f, 1.0f,  // found
                                                      0.5f, 0.9f, 2.0f, -0.02f, 0.0f},  // not found
                                   {2, 5});
  const std::vector<float> got = models::seed_frame_coords(coords, seeds).to_vector<float>();
  const std::vector<float> expected = {-0.8f, 0.25f * static_cast<float>(M_PI), 0.3f, 0.25f, 0.5f, -0.8f,
                                       1.1f, 1.2f, 1.3f, 1.4f, 1.5f, 1.6f};
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-6));
  CHECK_THROWS_WITH(models::seed_frame_coords(coords, Tensor()), doctest::Contains("seed_coords"));
  CHECK_THROWS_WITH(models::seed_frame_coords(coords.slice(1, 0, 4), seeds), doctest::Contains("[N, 6]"));

  // in the model: no parameters of its own; hits without a seed stay where HEPT's coords put them
  const int64_t n = 230;
  const models::ModelInput in = model_checks::random_sector(n, 13);
  manual_seed(6);
  auto in_seed_frame = models::build_tracking_model("hmambav2", {{"size", "S"}, {"seed_input", false}});
  manual_seed(6);
  auto plain = models::build_tracking_model("hmambav2", {{"size", "S"}, {"seed_input", false}, {"seed_coords", false}});
  CHECK(in_seed_frame->config()["seed_coords"] == true);
  CHECK(in_seed_frame->num_parameters() == plain->num_parameters());
  in_seed_frame->eval(), plain->eval();
  NoGradGuard no_grad;
  const Tensor unseeded = concat({in.seeds.slice(1, 0, 4), zeros({n, 1})}, 1);  // [N, 5], found = 0
  const Tensor seeded = concat({in.seeds.slice(1, 0, 4), ones({n, 1})}, 1);     // [N, 5], found = 1
  const Tensor reference = plain->forward({in.x, in.coords, Tensor(), in.vertex_z, unseeded});
  CHECK(amax(abs(in_seed_frame->forward({in.x, in.coords, Tensor(), in.vertex_z, unseeded}) - reference)).item() == 0.0);
  CHECK(amax(abs(in_seed_frame->forward({in.x, in.coords, Tensor(), in.vertex_z, seeded}) - reference)).item() > 1e-4);
  CHECK_THROWS_WITH(in_seed_frame->forward({in.x, in.coords, Tensor(), in.vertex_z, Tensor()}), doctest::Contains("seeds"));
}
