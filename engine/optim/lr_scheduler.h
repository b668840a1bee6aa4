// Learning-rate schedules with PyTorch semantics, driving an Optimizer's lr from its initial_lr():
// StepLR, CosineAnnealingLR (closed form), LinearWarmup (LinearLR ramp, then an optional wrapped schedule, as
// SequentialLR([LinearLR, after], milestones=[warmup])) and ReduceLROnPlateau. As in PyTorch, constructing a
// step-count schedule sets the lr for step 0; each step() advances one step (or epoch). State save/restore as string
// metadata; restoring does not change the optimizer's lr (the optimizer's own state holds it).
#pragma once
#include <memory>
#include <string>

#include "engine/optim/optimizer.h"

namespace engine::optim {

class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer) : opt_(optimizer) {}
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;
  virtual std::string kind() const = 0;
  double lr() const { return opt_.lr(); }
  virtual io::Metadata state_dict() const = 0;  // always holds "kind"
  virtual void load_state_dict(const io::Metadata& state) = 0;

 protected:
  void check_kind(const io::Metadata& state) const;
  Optimizer& opt_;
};

// Schedules that are a function of the step count.
class StepwiseScheduler : public LRScheduler {
 public:
  using LRScheduler::LRScheduler;
  void step();  // last_step += 1, then lr = lr_at(last_step)
  int64_t last_step() const { return last_step_; }
  virtual double lr_at(int64_t step) const = 0;
  io::Metadata state_dict() const override;
  void load_state_dict(const io::Metadata& state) override;

 protected:
  void start() { opt_.set_lr(lr_at(0)); }  // called by each concrete constructor
  double base_lr() const { return opt_.initial_lr(); }

 private:
  int64_t last_step_ = 0;
};

// lr = base * gamma^(step / step_size).
class StepLR : public StepwiseScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  std::string kind() const override { return "StepLR"; }
  double lr_at(int64_t step) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// lr = eta_min + (base - eta_min) * (1 + cos(pi * step / t_max)) / 2.
class CosineAnnealingLR : public StepwiseScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min = 0.0);
  std::string kind() const override { return "CosineAnnealingLR"; }
  double lr_at(int64_t step) const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

// step < warmup: lr = base * (start_factor + (1 - start_factor) * step / warmup);
// afterwards after->lr_at(step - warmup), or base without a wrapped schedule.
class LinearWarmup : public StepwiseScheduler {
 public:
  LinearWarmup(Optimizer& optimizer, int64_t warmup_steps, double start_factor,
               std::unique_ptr<StepwiseScheduler> after = nullptr);
  std::string kind() const override;
  double lr_at(int64_t step) const override;

 private:
  int64_t warmup_;
  double start_factor_;
  std::unique_ptr<StepwiseScheduler> after_;
};

struct PlateauOptions {
  enum class Mode { Min, Max } mode = Mode::Min;
  double factor = 0.1;
  int64_t patience = 10;
  double threshold = 1e-4;
  bool relative_threshold = true;  // threshold_mode "rel" (else "abs")
  int64_t cooldown = 0;
  double min_lr = 0.0;
  double eps = 1e-8;  // reductions smaller than eps are ignored
};

class ReduceLROnPlateau : public LRScheduler {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer, PlateauOptions options = {});
  std::string kind() const override { return "ReduceLROnPlateau"; }
  void step(double metric);
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  io::Metadata state_dict() const override;
  void load_state_dict(const io::Metadata& state) override;

 private:
  bool is_better(double metric) const;
  PlateauOptions o_;
  double best_;
  int64_t num_bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
  int64_t last_epoch_ = 0;
};

}  // namespace engine::optim
