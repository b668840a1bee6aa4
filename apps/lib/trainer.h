// The training loop shared by every task (tracking, pile-up): Adam, a per-epoch LR schedule (StepLR as in Lampa, or
// ReduceLROnPlateau as in HEPT's pile-up trainer), train / valid / test phases each epoch, the best checkpoint by the
// task's main validation metric, metrics.jsonl and a training-curve SVG in the run folder, a progress display,
// Ctrl-C (save and exit cleanly) and resume (continues the same run: epoch, optimizer, schedule, best metric).
#pragma once
#include <atomic>
#include <cmath>
#include <limits>
#include <cstdint>
#include <map>
#include <string>

#include "data/cache.h"
#include "engine/tensor.h"
#include "engine/nn/module.h"

namespace app {

// Running means of named metrics over samples (non-finite values are skipped).
class MeanMetrics {
 public:
  void add(const std::map<std::string, double>& values) {
    for (const auto& [k, v] : values)
      if (std::isfinite(v)) {
        sum_[k] += v;
        count_[k] += 1;
      }
  }
  std::map<std::string, double> means() const {
    std::map<std::string, double> m;
    for (const auto& [k, s] : sum_) m[k] = s / count_.at(k);
    return m;
  }
  double get(const std::string& key) const {
    auto it = sum_.find(key);
    return it == sum_.end() ? std::numeric_limits<double>::quiet_NaN() : it->second / count_.at(key);
  }

 private:
  std::map<std::string, double> sum_, count_;
};

// One sample through the model: the loss (with a graph when training) and per-sample metrics.
struct StepOutput {
  engine::Tensor loss;                    // scalar
  std::map<std::string, double> metrics;  // averaged over samples per phase (NaN entries are skipped)
  double hits = 0;                        // work done, for the throughput display
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;         // "tracking", "pileup"
  virtual std::string main_metric() const = 0;  // maximised on the validation split, e.g. "accuracy@0.9"
  virtual size_t size(data::Split split) const = 0;
  // Runs sample `index` of `split`. `with_metrics`: also compute the (possibly costly) metrics.
  virtual StepOutput run(data::Split split, size_t index, bool with_metrics) = 0;
};

struct TrainOptions {
  std::string out_dir;               // run folder: best.safetensors, last.safetensors, metrics.jsonl, curve.svg
  int epochs = 20;
  double lr = 1e-3;
  std::string scheduler = "step";    // "step" (StepLR, gamma 0.5, step_size epochs), "plateau" (valid loss,
                                     // factor 0.5, patience 20, as HEPT's pile-up trainer) or "cosine" (per
                                     // optimizer step: a linear warm-up, then cosine annealing to 0 at the last
                                     // step of the last epoch)
  int64_t step_size = 500;
  int64_t warmup_steps = 0;          // "cosine": steps of the linear warm-up from lr / 10
  uint64_t seed = 42;
  bool resume = false;
  bool resume_with_lr = false;       // with resume: continue at `lr` (the schedule's base rate either way) instead
                                     // of the current rate saved in the checkpoint
  bool train_metrics = false;        // metrics on the training phase too (the reference does; costs a kNN per step)
  bool test_each_epoch = true;       // the reference evaluates the test split every epoch
  // Time budget, the earlier of these two limits: at the pace of the slowest epoch so far (+10%), an epoch that would
  // end past it is cut to the training steps that fit, and training stops after it, or before it when fewer than a
  // tenth of its steps fit (steps_that_fit); the first epoch always runs whole.
  double time_limit_s = 0;           // seconds from the start of training (0 = none)
  double finish_by_unix_s = 0;       // a wall-clock time, seconds since the Unix epoch (0 = none)
  int64_t max_train_steps = 0;       // per epoch (0 = the whole training split)
  std::string config_json = "{}";    // saved with checkpoints: the model config
  std::string run_info_json = "{}";  // saved with checkpoints and in run.json: the command line options
};

struct TrainResult {
  int epochs_done = 0;
  double best_metric = 0;
  int best_epoch = -1;
  bool interrupted = false;
  std::map<std::string, double> last_valid, last_test;
};

// The training steps of the next epoch that fit in `left_s` seconds, at `step_s` per step plus `eval_s` for the
// epoch's evaluation: all `full_steps` when they fit; else the most that fit if that is at least a tenth of the
// epoch (a partial last epoch); else 0 (stop before it).
int64_t steps_that_fit(double left_s, double step_s, double eval_s, int64_t full_steps);

// Set by the SIGINT handler installed by install_interrupt_handler(); the loop saves and returns when it is set.
std::atomic<bool>& interrupt_flag();
void install_interrupt_handler();

// Trains `model` (registered as `model_name` in checkpoints) on `task`.
TrainResult train(engine::nn::Module& model, const std::string& model_name, Task& task, const TrainOptions& options);

}  // namespace app
