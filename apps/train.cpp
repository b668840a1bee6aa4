// train: trains a model of the catalog on tracking data (default) or on pile-up events (--task pileup).
//   train --model hmambav2 [--size S] [--config overrides.json] [--data DIR] [--epochs N] [--lr X] [--seed S]
//         [--device cpu|cuda] [--threads T] [--out RUN_DIR] [--resume] [--time-limit MIN] [--finish-by UNIX_S]
// With no --data, a small simulated dataset is made on first use (apps/lib/datasets.h). The run folder gets
// best.safetensors (by the task's main validation metric), last.safetensors (for --resume), metrics.jsonl, curve
// SVGs, run.json and final.json (held-out metrics of the best checkpoint). Ctrl-C saves last.safetensors and exits.
// --resume continues the run in --out: its data, seed, schedule and loss unless the command line changes them.
// Tracking: InfoNCE, StepLR, accuracy@0.9; the DBSCAN radius for apps/infer is tuned on a validation sample.
// Pile-up: focal loss, ReduceLROnPlateau, average precision; final.json compares AUC, AP and the leading-jet pT
// response with the CHS and PUPPI-style baselines.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>

#include "apps/lib/datasets.h"
#include "apps/lib/pileup_task.h"
#include "apps/lib/tracking_task.h"
#include "apps/lib/trainer.h"
#include "data/csv.h"
#include "data/pileup_metrics.h"
#include "data/track_building.h"
#include "engine/engine.h"
#include "models/common.h"
#include "models/pileup_model.h"
#include "models/registry.h"

namespace {

using Json = nlohmann::json;

// training samples that "input_standardization": "from_training_data" takes its statistics from
constexpr size_t kStandardizationSamples = 32;
constexpr size_t kDbscanTuningSamples = 4;  // validation samples the DBSCAN parameters are tuned on

struct Cli {
  std::string model_name, size, config_path, device_name = "cpu", task = "tracking";
  app::DataRequest data;
  app::TrainOptions opt;
  app::TrackingTaskOptions tracking;
  int pileup_events = 40;
  double lr = 0, time_limit_min = 0;
  double resumed_lr = 0;  // --resume: the base learning rate of the run being resumed (its run info)
  int epochs = 0, threads = 0;
  int64_t step_size = 0;
};

Json read_overrides(const std::string& path) {
  if (path.empty()) return Json::object();
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("--config {}: cannot open", path));
  try {
    return Json::parse(f);
  } catch (const Json::parse_error& e) {
    throw std::runtime_error(fmt::format("--config {}: {}", path, e.what()));
  }
}

// Pretty-printed JSON, written atomically (data/csv.h).
void write_json(const std::string& path, const Json& j) { data::write_text_file_atomic(path, j.dump(2) + "\n", false); }

// Mean of each metric over a split, with the model in eval mode.
Json mean_metrics(app::Task& task, data::Split split) {
  app::MeanMetrics mean;
  for (size_t i = 0; i < task.size(split); ++i) mean.add(task.run(split, i, true).metrics);
  Json out = Json::object();
  for (const auto& [k, v] : mean.means()) out[k] = v;
  return out;
}

// --resume continues the same run: every setting that the command line does not give comes from the run's info
// (run.json, also stored in the checkpoint): its data, seed, epochs, schedule and loss. The data can only be pointed
// at another copy with --data; options that would build other data are refused.
void take_resumed_run_settings(const Json& run, const CLI::App& cli, Cli& c) {
  if (!run.is_object()) return;
  const auto given = [&](const char* flag) { return cli.count(flag) > 0; };
  if (run.contains("data") && !given("--data")) {
    for (const char* flag : {"--sectors", "--sim-events", "--sim-mu", "--sim-seed", "--sim-sigma-z", "--pileup-events",
                             "--cache", "--detector"})
      if (given(flag))
        throw std::runtime_error(fmt::format("--resume trains on the run's own data ({}); {} cannot change it "
                                             "(--data DIR points the run at a moved copy)",
                                             run["data"].get<std::string>(), flag));
    c.data.data = run["data"].get<std::string>();
  }
  c.resumed_lr = run.value("lr", 0.0);
  if (!given("--sectors") && run.contains("sectors")) c.data.n_sectors = run["sectors"].get<int>();
  if (!given("--seed") && run.contains("seed")) c.opt.seed = run["seed"].get<uint64_t>();
  if (!given("--epochs") && run.contains("epochs")) c.epochs = run["epochs"].get<int>();
  if (!given("--step-size") && run.contains("step_size")) c.step_size = run["step_size"].get<int64_t>();
  if (!given("--schedule")) c.opt.scheduler = run.value("schedule", std::string("step"));
  if (!given("--warmup")) c.opt.warmup_steps = run.value("warmup_steps", int64_t{0});
  // epochs of this many steps set the cosine schedule's length
  if (!given("--max-steps")) c.opt.max_train_steps = run.value("max_steps", int64_t{0});
  if (!given("--loss-pairs") && run.contains("loss_pairs"))
    c.tracking.loss_pairs = run["loss_pairs"].get<std::string>();
  // runs from before the augmentation existed had none
  if (!given("--random-pairs")) c.tracking.random_pairs = run.value("random_pairs", 0.0);
  if (!given("--loss-pt-min"))
    c.tracking.loss_pt_min = run.value("loss_pt_min", app::TrackingTaskOptions{}.loss_pt_min);
}

// DBSCAN radius and min_samples for apps/infer: the best mean TrackML score (unweighted) on the first validation
// samples; one sample alone gave radii up to 40% off the best for another event.
data::TunedClustering tune_dbscan(models::TrackingModel& model, const data::Dataset& dataset, engine::Device device) {
  std::vector<engine::Tensor> embeddings;  // [N_i, d] float32 on the CPU
  std::vector<std::vector<int64_t>> particle_ids;
  const size_t n = std::min<size_t>(kDbscanTuningSamples, dataset.size(data::Split::Valid));
  const app::ExtraInputs extras = app::extra_inputs(model.config());
  fmt::print(stderr, "tuning the DBSCAN radius for infer on {} validation samples\n", n);
  for (size_t i = 0; i < n; ++i) {
    const data::Sample s = dataset.load(data::Split::Valid, i);
    embeddings.push_back(model.forward(app::model_input(s, device, extras))
                             .to(engine::Device::cpu())
                             .to(engine::DType::F32)
                             .contiguous());
    particle_ids.push_back(s.particle_id.to_vector<int64_t>());
  }
  std::vector<data::LabelledEmbedding> samples;
  for (size_t i = 0; i < n; ++i)
    samples.push_back({embeddings[i].data<float>(), embeddings[i].size(0), embeddings[i].size(1), particle_ids[i]});
  return data::tune_clustering(samples);
}

// Fills opt from the command line and the reference's per-model defaults; creates the run folder.
void finish_options(Cli& c, const std::string& ref_name) {
  const Json ref = models::reference_training(ref_name);
  // the schedule's base rate: --lr, else that of the run being resumed, else the reference's
  c.opt.lr = c.lr > 0 ? c.lr : c.resumed_lr > 0 ? c.resumed_lr : ref["lr"].get<double>();
  c.opt.resume_with_lr = c.opt.resume && c.lr > 0;  // --resume --lr X: continue at X (the new base rate)
  c.opt.epochs = c.epochs > 0 ? c.epochs : ref["epochs"].get<int>();
  c.opt.step_size = c.step_size > 0 ? c.step_size : ref["step_size"].get<int64_t>();
  c.opt.time_limit_s = c.time_limit_min * 60.0;
  if (c.opt.out_dir.empty()) {
    const std::time_t t = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&t));
    c.opt.out_dir = fmt::format("runs/{}{}-{}", c.task == "pileup" ? "pileup-" : "", c.model_name, stamp);
  }
  std::filesystem::create_directories(c.opt.out_dir);
}

int run_tracking(Cli& c, const Json& overrides, engine::Device device) {
  models::reference_training(c.model_name);  // an unknown model name fails here, before any data is built
  Json config = overrides;
  const Json full_config = models::build_tracking_model(c.model_name, config)->config();  // as does a bad config
  app::extra_inputs(full_config);  // and an unknown vertex z estimate
  c.data.radius_pairs = c.tracking.loss_pairs == "radius";
  const std::string cache = app::resolve_tracking_dataset(c.data);
  finish_options(c, c.model_name);
  if (full_config.value(models::kInputStandardization, Json()) == models::kStandardizeFromData) {
    config[models::kInputStandardization] =
        app::input_statistics(data::Dataset(cache), kStandardizationSamples, full_config);
    fmt::print(stderr, "input standardisation from the first {} training samples\n", kStandardizationSamples);
  }
  engine::manual_seed(c.opt.seed);  // model initialisation
  auto model = models::build_tracking_model(c.model_name, config);
  model->to(device);
  c.opt.config_json = model->config().dump();
  Json run = {{"task", "tracking"}, {"model", c.model_name}, {"config", model->config()}, {"data", cache},
              {"lr", c.opt.lr}, {"epochs", c.opt.epochs}, {"step_size", c.opt.step_size},
              {"schedule", c.opt.scheduler}, {"warmup_steps", c.opt.warmup_steps},
              {"max_steps", c.opt.max_train_steps},
              {"seed", c.opt.seed}, {"device", device.str()}, {"loss_pairs", c.tracking.loss_pairs},
              {"random_pairs", c.tracking.random_pairs}, {"loss_pt_min", c.tracking.loss_pt_min}};
  app::TrackingTask task(cache, *model, device, c.tracking);
  run["sectors"] = task.dataset().features().n_sectors;  // infer embeds events in the same sectors
  c.opt.run_info_json = run.dump();
  write_json(c.opt.out_dir + "/run.json", run);
  fmt::print(stderr, "model {} ({} trainable parameters); {} train / {} valid / {} test samples from {}; run {}\n",
             c.model_name, model->num_parameters(), task.size(data::Split::Train), task.size(data::Split::Valid),
             task.size(data::Split::Test), cache, c.opt.out_dir);
  app::install_interrupt_handler();
  const auto t0 = std::chrono::steady_clock::now();
  const app::TrainResult result = app::train(*model, c.model_name, task, c.opt);
  if (result.interrupted) return 130;
  if (result.best_epoch < 0) throw std::runtime_error("no epoch produced a finite validation metric");

  engine::io::load_checkpoint(c.opt.out_dir + "/best.safetensors", *model, nullptr, nullptr, c.model_name);
  model->eval();
  engine::NoGradGuard no_grad;
  const data::Split held_out = task.size(data::Split::Test) > 0 ? data::Split::Test : data::Split::Valid;
  const Json metrics = mean_metrics(task, held_out);
  const data::TunedClustering tuned = tune_dbscan(*model, task.dataset(), device);
  const Json final = {{"task", "tracking"}, {"model", c.model_name}, {"best_epoch", result.best_epoch},
                      {"best_valid_accuracy@0.9", result.best_metric},
                      {held_out == data::Split::Test ? "test" : "valid", metrics},
                      {"dbscan", {{"eps", tuned.eps}, {"min_samples", tuned.min_samples},
                                  {"samples", kDbscanTuningSamples}, {"mean_score_on_valid_samples", tuned.score}}},
                      {"train_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  write_json(c.opt.out_dir + "/final.json", final);
  fmt::print("{}: best epoch {}, held-out accuracy@0.9 {:.4f}, recall@0.9 {:.4f}; DBSCAN eps {:.4f} -> {}/final.json\n",
             c.model_name, result.best_epoch, metrics.value("accuracy@0.9", NAN), metrics.value("recall@0.9", NAN),
             tuned.eps, c.opt.out_dir);
  return 0;
}

int run_pileup(Cli& c, const Json& overrides, engine::Device device) {
  if (c.opt.scheduler != "step" || c.opt.warmup_steps != 0)
    throw std::runtime_error("--schedule and --warmup are for tracking; pile-up training reduces the rate on a "
                             "validation-loss plateau, as HEPT's pile-up trainer");
  const std::string dir = app::resolve_pileup_dataset(c.data.data, c.pileup_events, c.data.sim_seed);
  finish_options(c, c.model_name);
  c.opt.scheduler = "plateau";
  engine::manual_seed(c.opt.seed);
  models::PileupModel model(c.model_name, data::pileup::kFeatures, overrides);
  if (model.config().value(models::kInputStandardization, Json()) == models::kStandardizeFromData)
    throw std::runtime_error(fmt::format("\"{}\": \"{}\" is for tracking; pile-up training does not compute it",
                                         models::kInputStandardization, models::kStandardizeFromData));
  model.to(device);
  const std::string ckpt_name = "pileup-" + c.model_name;
  c.opt.config_json = model.config().dump();
  const Json run = {{"task", "pileup"}, {"model", c.model_name}, {"config", model.config()}, {"data", dir},
                    {"lr", c.opt.lr}, {"epochs", c.opt.epochs}, {"max_steps", c.opt.max_train_steps},
                    {"seed", c.opt.seed}, {"device", device.str()}};
  c.opt.run_info_json = run.dump();
  write_json(c.opt.out_dir + "/run.json", run);
  app::PileupTask task(dir, model, device);
  fmt::print(stderr, "pile-up model {} ({} trainable parameters); {} train / {} valid / {} test events from {}; run {}\n",
             c.model_name, model.num_parameters(), task.size(data::Split::Train), task.size(data::Split::Valid),
             task.size(data::Split::Test), dir, c.opt.out_dir);
  app::install_interrupt_handler();
  const app::TrainResult result = app::train(model, ckpt_name, task, c.opt);
  if (result.interrupted) return 130;
  if (result.best_epoch < 0) throw std::runtime_error("no epoch produced a finite validation metric");

  engine::io::load_checkpoint(c.opt.out_dir + "/best.safetensors", model, nullptr, nullptr, ckpt_name);
  model.eval();
  engine::NoGradGuard no_grad;
  // the model and the two baselines on the test events: classification of neutrals and leading-jet response
  std::vector<const data::pileup::PileupEvent*> test;
  for (const auto& ev : task.events(data::Split::Test)) test.push_back(&ev);
  const Json rows = app::compare_with_baselines(test, [&](const auto& ev) { return task.probabilities(ev); },
                                                c.model_name);
  const Json final = {{"task", "pileup"}, {"model", c.model_name}, {"best_epoch", result.best_epoch},
                      {"best_valid_average_precision", result.best_metric}, {"test", rows}};
  write_json(c.opt.out_dir + "/final.json", final);
  app::print_comparison("test events", rows);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Train a model of the catalog (Lampa / HEPT) for tracking or pile-up mitigation"};
  Cli c;
  bool list = false;
  cli.add_option("--model", c.model_name, "catalog model (see --list-models)");
  cli.add_flag("--list-models", list, "print the catalog and exit");
  cli.add_option("--task", c.task, "tracking or pileup")->check(CLI::IsMember({"tracking", "pileup"}));
  cli.add_option("--size", c.size, "paper size preset S, M, L, or ref (the shipped config, default)");
  cli.add_option("--config", c.config_path, "JSON file of model config overrides");
  cli.add_option("--data", c.data.data,
                 "processed cache, or folder of TrackML events (default: simulate; with --resume: the run's)");
  cli.add_option("--cache", c.data.cache_dir, "where to build the processed cache");
  cli.add_option("--detector", c.data.detector,
                 "detectors.csv[.gz] for featurising real TrackML events (default: one in or next to the --data "
                 "folder, else the built-in geometry)");
  cli.add_option("--sectors", c.data.n_sectors, "phi sectors per event (10: tracking-6k style; 1: whole events)");
  cli.add_option("--sim-events", c.data.sim_events, "events to simulate when no --data is given");
  cli.add_option("--sim-mu", c.data.sim_mu, "pile-up of the simulated tracking events");
  cli.add_option("--sim-seed", c.data.sim_seed, "seed of the simulated dataset");
  cli.add_option("--sim-sigma-z", c.data.sim_sigma_z,
                 "z spread of the simulated collision vertices in mm (55: as the throughput-phase events HEPT uses; "
                 "5.5: as the Kaggle events)")
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--pileup-events", c.pileup_events, "pile-up events to simulate when no --data is given");
  cli.add_option("--epochs", c.epochs, "epochs (default: the reference's; with --resume: the run's)");
  cli.add_option("--lr", c.lr, "Adam learning rate (default: the reference's; with --resume: continue at this rate)");
  cli.add_option("--step-size", c.step_size,
                 "StepLR step in epochs, gamma 0.5 (default: the reference's; with --resume: the run's)");
  cli.add_option("--schedule", c.opt.scheduler,
                 "tracking: step (StepLR, the reference's, default) or cosine (per step: --warmup steps of linear "
                 "warm-up, then cosine annealing to 0 at the end of --epochs; with --resume: the run's)")
      ->check(CLI::IsMember({"step", "cosine"}));
  cli.add_option("--warmup", c.opt.warmup_steps, "--schedule cosine: warm-up steps from lr / 10 (default 0)")
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--seed", c.opt.seed, "seed of the model init, shuffling and dropout (with --resume: the run's)");
  cli.add_option("--device", c.device_name, "cpu or cuda[:N]");
  cli.add_option("--threads", c.threads, "CPU threads (default: all cores)");
  cli.add_option("--out", c.opt.out_dir, "run folder (default runs/<model>-<time>)");
  cli.add_flag("--resume", c.opt.resume,
               "continue the run in --out from its last.safetensors, with its data and settings");
  cli.add_option("--time-limit", c.time_limit_min,
                 "training budget in minutes: at the pace of the slowest epoch so far (+10%), an epoch that would "
                 "end past it is cut to the steps that fit and is the last one, or is not run when under a tenth of "
                 "its steps fit (the first epoch always runs whole)")
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--finish-by", c.opt.finish_by_unix_s,
                 "the same budget as a wall-clock time, in seconds since the Unix epoch (e.g. $(date -d '+15 min' "
                 "+%s)); with --time-limit, the earlier of the two counts")
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--max-steps", c.opt.max_train_steps,
                 "training samples per epoch (default: all; with --resume: the resumed run's)");
  cli.add_flag("--train-metrics", c.opt.train_metrics, "also compute metrics on the training phase");
  cli.add_flag("!--no-test-each-epoch", c.opt.test_each_epoch,
               "evaluate the test split only at the end (the reference evaluates it every epoch)");
  cli.add_option("--loss-pairs", c.tracking.loss_pairs,
                 "radius (HEPT, default; with --resume: the resumed run's) or knn (Lampa's k = 60 graph)")
      ->check(CLI::IsMember({"knn", "radius"}));
  cli.add_option("--random-pairs", c.tracking.random_pairs,
                 "HEPT's training-only augmentation: about this fraction of the loss pairs again as random pairs "
                 "each step (default 0.2 as HEPT; 0: none; with --resume: the resumed run's)")
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--loss-pt-min", c.tracking.loss_pt_min,
                 "training loss anchors: reconstructable hits above this pT in GeV (default 0.9 as HEPT; the "
                 "validation and test losses keep 0.9; with --resume: the resumed run's)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(cli, argc, argv);

  try {
    if (list) {
      for (const std::string& n : models::tracking_model_names()) fmt::print("{}\n", n);
      return 0;
    }
    Json overrides = read_overrides(c.config_path);
    if (c.opt.resume) {  // the model and its config come from the run being resumed
      if (c.opt.out_dir.empty()) throw std::runtime_error("--resume needs --out RUN_DIR");
      const auto info = engine::io::read_checkpoint_info(c.opt.out_dir + "/last.safetensors");
      const std::string prefix = c.task == "pileup" ? "pileup-" : "";
      const std::string stored = info.model_name.rfind(prefix, 0) == 0 ? info.model_name.substr(prefix.size()) : info.model_name;
      if (!c.model_name.empty() && c.model_name != stored)
        throw std::runtime_error(fmt::format("--resume: {} holds a {} run, not {}", c.opt.out_dir, info.model_name, c.model_name));
      c.model_name = stored;
      if (info.extra.count("run")) take_resumed_run_settings(Json::parse(info.extra.at("run"), nullptr, false), cli, c);
      // the model as it was trained: keys newer than the run take their reference defaults (a run from before
      // the input standardisation used the raw features), and statistics never filled in mean the raw features too
      overrides = models::stored_config(stored, Json::parse(info.config_json));
      if (overrides.value(models::kInputStandardization, Json()) == models::kStandardizeFromData)
        overrides[models::kInputStandardization] = nullptr;
      overrides.erase("x_dim"), overrides.erase("coords_dim");
    }
    if (c.model_name.empty()) throw std::runtime_error("--model is required (see --list-models)");
    if (!c.size.empty()) overrides["size"] = c.size;
    const engine::Device device = engine::Device::parse(c.device_name);
    if (c.threads > 0) engine::set_num_threads(c.threads);
    return c.task == "pileup" ? run_pileup(c, overrides, device) : run_tracking(c, overrides, device);
  } catch (const std::exception& e) {
    fmt::print(stderr, "train: error: {}\n", e.what());
    return 1;
  }
}
