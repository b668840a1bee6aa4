// The shared trainer (apps/lib/trainer.h) on the pile-up task: for every pile-up model of issue 8 (hept, flatformer,
// pct, the Mamba-a models fullhybrid2 and hydra, the Mamba-b model hmambav2), small versions train for a few epochs
// on one tiny simulated event with the focal loss, write their run folder, and the training loss falls.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/lib/pileup_task.h"
#include "apps/lib/trainer.h"
#include "data/pileup_sim.h"
#include "engine/engine.h"
#include "models/pileup_model.h"

namespace fs = std::filesystem;

namespace {

// A dataset of 10 light events (mu 8-10): 8 train / 1 valid / 1 test by the manifest's 80/10/10 split.
std::string tiny_pileup_dataset() {
  const std::string dir = (fs::temp_directory_path() / "hep-test-pileup-training").string();
  data::pileup::PileupConfig cfg;
  cfg.seed = 11;
  cfg.mu_min = 8;
  cfg.mu_max = 10;
  data::pileup::write_pileup_dataset(dir, 10, cfg);
  return dir;
}

std::vector<double> train_losses(const std::string& run_dir) {
  std::ifstream f(run_dir + "/metrics.jsonl");
  std::vector<double> losses;
  std::string line;
  while (std::getline(f, line)) losses.push_back(nlohmann::json::parse(line)["train"]["loss"].get<double>());
  return losses;
}

}  // namespace

TEST_CASE("pile-up training: every pile-up model's focal loss falls under the shared trainer") {
  const std::string data_dir = tiny_pileup_dataset();
  // small widths so that the test stays fast; block sizes below the event size so LSH buckets are exercised
  const std::vector<std::pair<std::string, models::Config>> cases = {
      {"hept", {{"h_dim", 8}, {"n_layers", 2}, {"block_size", 50}}},
      {"flatformer", {{"h_dim", 8}, {"n_layers", 1}}},
      {"pct", {{"h_dim", 8}, {"n_layers", 2}}},
      {"fullhybrid2", {{"h_dim", 16}, {"n_layers", 2}, {"block_size", 50}}},
      {"hydra", {{"h_dim", 16}, {"n_layers", 2}, {"d_inner", 24}, {"block_size", 50}}},
      {"hmambav2", {{"h_dim", 16}, {"n_layers", 2}, {"block_size", 50}}},
  };
  for (const auto& [name, overrides] : cases) {
    CAPTURE(name);
    engine::manual_seed(3);
    models::PileupModel model(name, data::pileup::kFeatures, overrides);
    app::PileupTask task(data_dir, model, engine::Device::cpu());
    REQUIRE(task.size(data::Split::Train) == 8);
    app::TrainOptions o;
    o.out_dir = (fs::temp_directory_path() / ("hep-test-pileup-run-" + name)).string();
    fs::remove_all(o.out_dir);
    o.epochs = 4;
    o.lr = 3e-3;
    o.scheduler = "plateau";
    o.max_train_steps = 2;
    o.test_each_epoch = false;
    const app::TrainResult r = app::train(model, "pileup-" + name, task, o);
    CHECK(r.epochs_done == 4);
    CHECK(fs::exists(o.out_dir + "/best.safetensors"));
    const std::vector<double> losses = train_losses(o.out_dir);
    REQUIRE(losses.size() == 4);
    MESSAGE(name << " train loss per epoch: " << losses[0] << " -> " << losses[3]);
    CHECK(losses[3] < losses[0]);
  }
}

TEST_CASE("pile-up models: --size S picks the paper's pile-up S configs") {
  const std::vector<std::pair<std::string, int64_t>> widths = {{"hept", 24}, {"hmambav2", 48}, {"fullhybrid2", 24}, {"hydra", 24}};
  for (const auto& [name, h] : widths) {
    CAPTURE(name);
    models::PileupModel model(name, data::pileup::kFeatures, {{"size", "S"}});
    const auto params = model.named_parameters();
    CHECK(model.num_parameters() > 0);
    // the backbone's feature encoder maps the 8 features plus the 10-dim class embedding to h
    bool found = false;
    for (const auto& [pname, t] : params)
      if (pname.find("encoder.0.weight") != std::string::npos && t.dim() == 2 && t.size(1) == data::pileup::kFeatures - 1 + 10) {
        found = true;
        CHECK(t.size(0) == h);
        break;
      }
    CHECK(found);
  }
}
