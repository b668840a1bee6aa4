// The shared training loop (see trainer.h).
#include "apps/lib/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <vector>

#include "apps/lib/progress.h"
#include "data/svg_plot.h"
#include "engine/engine.h"

namespace app {

namespace fs = std::filesystem;
using engine::Tensor;
using Clock = std::chrono::steady_clock;

std::atomic<bool>& interrupt_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}

namespace {

extern "C" void on_sigint(int) {
  if (interrupt_flag().exchange(true)) std::_Exit(130);  // a second Ctrl-C exits at once
}

std::string status_line(const MeanMetrics& m, const std::string& main_metric) {
  std::string s = fmt::format("loss {:.4f}", m.get("loss"));
  const double main = m.get(main_metric);
  if (std::isfinite(main)) s += fmt::format(" {} {:.4f}", main_metric, main);
  return s;
}

const char* split_name(data::Split s) { return s == data::Split::Train ? "train" : s == data::Split::Valid ? "valid" : "test"; }

// Evaluates one split without gradients; returns the mean metrics.
std::map<std::string, double> evaluate(engine::nn::Module& model, Task& task, data::Split split, int epoch) {
  model.eval();
  engine::NoGradGuard no_grad;
  MeanMetrics metrics;
  Progress progress(fmt::format("epoch {} {}", epoch + 1, split_name(split)), static_cast<int64_t>(task.size(split)));
  for (size_t i = 0; i < task.size(split) && !interrupt_flag(); ++i) {
    StepOutput out = task.run(split, i, /*with_metrics=*/true);
    out.metrics["loss"] = out.loss.item();
    metrics.add(out.metrics);
    progress.update(static_cast<int64_t>(i + 1), status_line(metrics, task.main_metric()), out.hits);
  }
  progress.finish(status_line(metrics, task.main_metric()));
  return metrics.means();
}

// One of: a per-epoch schedule (StepLR), a per-optimizer-step one (warm-up + cosine), or one on the validation loss.
struct Schedulers {
  std::unique_ptr<engine::optim::StepLR> per_epoch;
  std::unique_ptr<engine::optim::StepwiseScheduler> per_step;
  std::unique_ptr<engine::optim::ReduceLROnPlateau> plateau;
  engine::optim::LRScheduler* active() const {
    if (per_epoch) return per_epoch.get();
    if (per_step) return per_step.get();
    return plateau.get();
  }
};

Schedulers make_scheduler(engine::optim::Optimizer& opt, const TrainOptions& o, int64_t steps_per_epoch) {
  Schedulers s;
  if (o.scheduler == "step") {
    s.per_epoch = std::make_unique<engine::optim::StepLR>(opt, o.step_size, 0.5);
  } else if (o.scheduler == "cosine") {
    const int64_t total = static_cast<int64_t>(o.epochs) * steps_per_epoch;
    if (o.warmup_steps < 0 || o.warmup_steps >= total)
      throw std::invalid_argument(fmt::format("cosine schedule: {} warm-up steps, but the run has {} steps in all",
                                              o.warmup_steps, total));
    auto cosine = std::make_unique<engine::optim::CosineAnnealingLR>(opt, total - o.warmup_steps);
    if (o.warmup_steps == 0)
      s.per_step = std::move(cosine);
    else
      s.per_step = std::make_unique<engine::optim::LinearWarmup>(opt, o.warmup_steps, 0.1, std::move(cosine));
  } else if (o.scheduler == "plateau") {
    engine::optim::PlateauOptions p;
    p.mode = engine::optim::PlateauOptions::Mode::Min;  // on the validation loss, as HEPT's pile-up trainer
    p.factor = 0.5;
    p.patience = 20;
    s.plateau = std::make_unique<engine::optim::ReduceLROnPlateau>(opt, p);
  } else {
    throw std::invalid_argument(fmt::format("unknown scheduler '{}' (step, cosine or plateau)", o.scheduler));
  }
  return s;
}

void append_jsonl(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path, std::ios::app);
  f << j.dump() << "\n";
  if (!f) throw std::runtime_error("cannot append to " + path);
}

// Training curves from metrics.jsonl: loss per phase, and the main metric per phase.
void write_curves(const std::string& out_dir, const std::string& main_metric) {
  std::ifstream f(out_dir + "/metrics.jsonl");
  std::map<std::string, data::PlotSeries> loss, main;
  std::string line;
  while (std::getline(f, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("epoch")) continue;
    const double epoch = j["epoch"].get<double>();
    for (const char* phase : {"train", "valid", "test"}) {
      if (!j.contains(phase)) continue;
      const auto& m = j[phase];
      if (m.contains("loss")) {
        loss[phase].name = phase;
        loss[phase].xs.push_back(epoch);
        loss[phase].ys.push_back(m["loss"].get<double>());
      }
      if (m.contains(main_metric)) {
        main[phase].name = phase;
        main[phase].xs.push_back(epoch);
        main[phase].ys.push_back(m[main_metric].get<double>());
      }
    }
  }
  auto values = [](const std::map<std::string, data::PlotSeries>& m) {
    std::vector<data::PlotSeries> v;
    for (const auto& [k, s] : m) v.push_back(s);
    return v;
  };
  if (!loss.empty()) data::write_line_plot(out_dir + "/curve-loss.svg", "training loss", "epoch", "loss", values(loss));
  if (!main.empty())
    data::write_line_plot(out_dir + "/curve-" + main_metric + ".svg", main_metric, "epoch", main_metric, values(main));
}

// The earlier of the time limit (from t_start) and the finish-by time, on the steady clock; none if neither is set.
std::optional<Clock::time_point> training_deadline(const TrainOptions& o, Clock::time_point t_start) {
  std::optional<Clock::time_point> deadline;
  auto take = [&](double seconds_from_start) {
    const auto d = t_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_from_start));
    deadline = deadline ? std::min(*deadline, d) : d;
  };
  if (o.time_limit_s > 0) take(o.time_limit_s);
  if (o.finish_by_unix_s > 0) {
    const double now_unix =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    take(o.finish_by_unix_s - now_unix);
  }
  return deadline;
}

}  // namespace

void install_interrupt_handler() { std::signal(SIGINT, on_sigint); }

int64_t steps_that_fit(double left_s, double step_s, double eval_s, int64_t full_steps) {
  if (left_s >= eval_s + step_s * static_cast<double>(full_steps)) return full_steps;
  const double fit = step_s > 0 ? std::floor((left_s - eval_s) / step_s) : 0.0;
  const int64_t steps = fit > 0 ? static_cast<int64_t>(fit) : 0;
  return 10 * steps >= full_steps ? steps : 0;
}

TrainResult train(engine::nn::Module& model, const std::string& model_name, Task& task, const TrainOptions& o) {
  using engine::io::CheckpointInfo;
  fs::create_directories(o.out_dir);
  const std::string last_path = o.out_dir + "/last.safetensors", best_path = o.out_dir + "/best.safetensors";
  const std::string metrics_path = o.out_dir + "/metrics.jsonl";
  if (task.size(data::Split::Train) == 0) throw std::runtime_error("the training split is empty");

  const size_t n_train = task.size(data::Split::Train);
  const size_t steps = o.max_train_steps > 0 ? std::min<size_t>(n_train, o.max_train_steps) : n_train;
  engine::optim::Adam optimizer(model.named_parameters(), o.lr);
  Schedulers sched = make_scheduler(optimizer, o, static_cast<int64_t>(steps));
  TrainResult result;
  result.best_metric = -std::numeric_limits<double>::infinity();
  int start_epoch = 0;
  int64_t global_step = 0;
  if (o.resume) {
    if (!fs::exists(last_path))
      throw std::runtime_error(fmt::format("--resume: {} does not exist (nothing to resume)", last_path));
    const CheckpointInfo info = engine::io::load_checkpoint(last_path, model, &optimizer, sched.active(), model_name);
    start_epoch = static_cast<int>(info.epoch);
    global_step = info.step;
    if (info.extra.count("best_metric")) result.best_metric = std::stod(info.extra.at("best_metric"));
    if (info.extra.count("best_epoch")) result.best_epoch = std::stoi(info.extra.at("best_epoch"));
    if (o.resume_with_lr) {
      fmt::print(stderr, "resuming at lr {:.3g} (the checkpoint had {:.3g})\n", o.lr, optimizer.lr());
      optimizer.set_lr(o.lr);
    }
    fmt::print(stderr, "resuming {} from epoch {} (best {} so far {:.4f})\n", o.out_dir, start_epoch,
               task.main_metric(), result.best_metric);
  } else {
    std::error_code ec;
    fs::remove(metrics_path, ec);
  }
  auto info_at = [&](int epochs_done) {
    CheckpointInfo info;
    info.model_name = model_name;
    info.config_json = o.config_json;
    info.epoch = epochs_done;
    info.step = global_step;
    info.extra = {{"best_metric", fmt::format("{}", result.best_metric)},
                  {"best_epoch", std::to_string(result.best_epoch)},
                  {"task", task.name()},
                  {"main_metric", task.main_metric()},
                  {"run", o.run_info_json}};
    return info;
  };

  auto save_last = [&](int epochs_done) {
    engine::io::save_checkpoint(last_path, model, &optimizer, sched.active(), info_at(epochs_done));
  };
  const auto t_start = Clock::now();
  const std::optional<Clock::time_point> deadline = training_deadline(o, t_start);
  double slowest_step_s = 0, slowest_eval_s = 0;  // per training step, per epoch's evaluation
  size_t epoch_steps = steps;                      // fewer in a partial last epoch (time budget)
  for (int epoch = start_epoch; epoch < o.epochs; ++epoch) {
    // Every epoch's shuffling and dropout depend only on (seed, epoch): a resumed run repeats them exactly.
    engine::manual_seed(o.seed * 1000003ULL + static_cast<uint64_t>(epoch));
    engine::Generator shuffle_gen(o.seed * 7919ULL + static_cast<uint64_t>(epoch));
    const std::vector<int64_t> order = engine::randperm(static_cast<int64_t>(n_train), &shuffle_gen).to_vector<int64_t>();
    const auto t_epoch = Clock::now();
    model.train();
    MeanMetrics train_metrics;
    Progress progress(fmt::format("epoch {}/{} train", epoch + 1, o.epochs), static_cast<int64_t>(epoch_steps));
    for (size_t s = 0; s < epoch_steps; ++s) {
      StepOutput out = task.run(data::Split::Train, static_cast<size_t>(order[s]), o.train_metrics);
      const double loss = out.loss.item();
      if (std::isfinite(loss)) {  // as the reference: a NaN loss skips the update
        optimizer.zero_grad();
        out.loss.backward();
        optimizer.step();
        ++global_step;
        if (sched.per_step) sched.per_step->step();
      } else {
        fmt::print(stderr, "\nwarning: non-finite loss on training sample {}: update skipped\n", order[s]);
      }
      out.metrics["loss"] = loss;
      train_metrics.add(out.metrics);
      progress.update(static_cast<int64_t>(s + 1), status_line(train_metrics, task.main_metric()) +
                                                       fmt::format(" lr {:.2e}", optimizer.lr()), out.hits);
      if (interrupt_flag()) {
        progress.finish("interrupted");
        save_last(epoch);
        fmt::print(stderr, "interrupted: saved {} (resume with --resume; epoch {} restarts)\n", last_path, epoch + 1);
        result.interrupted = true;
        return result;
      }
    }
    progress.finish(status_line(train_metrics, task.main_metric()));
    const auto t_eval = Clock::now();
    nlohmann::json line = {{"epoch", epoch + 1}, {"lr", optimizer.lr()}, {"step", global_step}, {"train_steps", epoch_steps}};
    line["train"] = train_metrics.means();
    result.last_valid = evaluate(model, task, data::Split::Valid, epoch);
    line["valid"] = result.last_valid;
    if (o.test_each_epoch && task.size(data::Split::Test) > 0) {
      result.last_test = evaluate(model, task, data::Split::Test, epoch);
      line["test"] = result.last_test;
    }
    if (interrupt_flag()) {  // during evaluation: the epoch's training is done but not its bookkeeping
      save_last(epoch);
      fmt::print(stderr, "interrupted: saved {} (resume with --resume)\n", last_path);
      result.interrupted = true;
      return result;
    }
    const double main = result.last_valid.count(task.main_metric()) ? result.last_valid.at(task.main_metric())
                                                                    : std::numeric_limits<double>::quiet_NaN();
    if (sched.per_epoch) sched.per_epoch->step();
    const double valid_loss = result.last_valid.count("loss") ? result.last_valid.at("loss") : NAN;
    if (sched.plateau && std::isfinite(valid_loss)) sched.plateau->step(valid_loss);
    const bool improved = std::isfinite(main) && main > result.best_metric;
    if (improved) {
      result.best_metric = main;
      result.best_epoch = epoch + 1;
      engine::io::save_checkpoint(best_path, model, nullptr, nullptr, info_at(epoch + 1));
    }
    const double epoch_seconds = std::chrono::duration<double>(Clock::now() - t_epoch).count();
    line["epoch_seconds"] = epoch_seconds;
    line["best_" + task.main_metric()] = result.best_metric;
    append_jsonl(metrics_path, line);
    save_last(epoch + 1);
    write_curves(o.out_dir, task.main_metric());
    fmt::print(stderr, "epoch {}: valid {} {:.4f}{} (best {:.4f} at epoch {})\n", epoch + 1, task.main_metric(), main,
               improved ? " *" : "", result.best_metric, result.best_epoch);
    result.epochs_done = epoch + 1;
    if (epoch_steps < steps) break;  // the partial last epoch that the time budget allowed
    // the epoch's pace: its training steps, and what follows them (evaluation, checkpoints, curves)
    const double train_seconds = std::chrono::duration<double>(t_eval - t_epoch).count();
    slowest_step_s = std::max(slowest_step_s, train_seconds / static_cast<double>(epoch_steps));
    slowest_eval_s = std::max(slowest_eval_s, std::chrono::duration<double>(Clock::now() - t_eval).count());
    if (deadline && epoch + 1 < o.epochs) {
      const double left_s = std::chrono::duration<double>(*deadline - Clock::now()).count();
      const double step_s = 1.1 * slowest_step_s, eval_s = 1.1 * slowest_eval_s;
      epoch_steps = static_cast<size_t>(steps_that_fit(left_s, step_s, eval_s, static_cast<int64_t>(steps)));
      if (epoch_steps == 0) {
        fmt::print(stderr, "time limit: stopping after epoch {} ({} left, another epoch takes up to {})\n", epoch + 1,
                   format_duration(std::max(left_s, 0.0)),
                   format_duration(eval_s + step_s * static_cast<double>(steps)));
        break;
      }
      if (epoch_steps < steps)
        fmt::print(stderr, "time limit: a last epoch of {} of {} steps fits ({} left)\n", epoch_steps, steps,
                   format_duration(std::max(left_s, 0.0)));
    }
  }
  return result;
}

}  // namespace app
