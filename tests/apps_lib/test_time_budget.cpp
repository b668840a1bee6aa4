// The trainer's time budget: how many steps of the next epoch fit (app::steps_that_fit), and a run whose budget
// ends inside its second epoch: that epoch is cut to the steps that fit, and training stops after it.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/lib/trainer.h"
#include "engine/engine.h"
#include "engine/nn/layers.h"

namespace fs = std::filesystem;
using namespace engine;

TEST_CASE("time budget: the steps of the next epoch that fit") {
  // the whole epoch fits: 10 s of evaluation + 90 steps of 1 s
  CHECK(app::steps_that_fit(100.0, 1.0, 10.0, 90) == 90);
  CHECK(app::steps_that_fit(1e9, 1.0, 10.0, 90) == 90);
  // a partial epoch: the most steps that fit with the evaluation after them
  CHECK(app::steps_that_fit(99.5, 1.0, 10.0, 90) == 89);
  CHECK(app::steps_that_fit(50.0, 2.0, 4.0, 90) == 23);
  CHECK(app::steps_that_fit(19.0, 1.0, 10.0, 90) == 9);  // exactly a tenth: still worth running
  // fewer than a tenth of the epoch, no time left, or not even the evaluation: stop
  CHECK(app::steps_that_fit(18.9, 1.0, 10.0, 90) == 0);
  CHECK(app::steps_that_fit(0.0, 1.0, 10.0, 90) == 0);
  CHECK(app::steps_that_fit(-5.0, 1.0, 10.0, 90) == 0);
  CHECK(app::steps_that_fit(5.0, 1.0, 10.0, 90) == 0);
  // a one-step epoch either fits or not
  CHECK(app::steps_that_fit(2.0, 1.0, 0.5, 1) == 1);
  CHECK(app::steps_that_fit(1.0, 1.0, 0.5, 1) == 0);
}

namespace {

// A task whose training steps take a fixed time: the loss is the squared weight of a 1 x 1 linear layer (no bias).
class SleepyTask final : public app::Task {
 public:
  SleepyTask(nn::Linear& layer, std::chrono::milliseconds step_time) : layer_(layer), step_time_(step_time) {}
  std::string name() const override { return "sleepy"; }
  std::string main_metric() const override { return "score"; }
  size_t size(data::Split split) const override { return split == data::Split::Train ? 10 : 1; }
  app::StepOutput run(data::Split split, size_t, bool) override {
    if (split == data::Split::Train) std::this_thread::sleep_for(step_time_);
    app::StepOutput out;
    out.loss = sum(square(layer_.weight));
    out.metrics["score"] = 1.0 - out.loss.item();
    return out;
  }

 private:
  nn::Linear& layer_;
  std::chrono::milliseconds step_time_;
};

}  // namespace

TEST_CASE("time budget: a run cut inside its second epoch trains the steps that fit and stops") {
  const fs::path dir = fs::temp_directory_path() / "hep-test-time-budget";
  fs::remove_all(dir);
  nn::Linear layer(1, 1, /*bias=*/false);
  SleepyTask task(layer, std::chrono::milliseconds(30));  // an epoch: 10 steps, 0.3 s
  app::TrainOptions o;
  o.out_dir = dir.string();
  o.epochs = 5;
  o.time_limit_s = 0.5;  // after the first epoch ~0.2 s are left: ~6 steps of 33 ms (the pace + 10%)
  o.test_each_epoch = false;
  const app::TrainResult r = app::train(layer, "sleepy", task, o);
  CHECK(r.epochs_done == 2);
  std::ifstream f(dir / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["train_steps"].get<int>() == 10);
  const int cut = lines[1]["train_steps"].get<int>();
  CHECK(cut >= 1);
  CHECK(cut < 10);
  CHECK(lines[1]["step"].get<int>() == 10 + cut);
  fs::remove_all(dir);
}
