// LR schedules: closed-form step-count schedules and ReduceLROnPlateau, with PyTorch's update rules.
#include "engine/optim/lr_scheduler.h"

#include <cmath>
#include <limits>
#include <numbers>

namespace engine::optim {

namespace {

int64_t parse_count(const io::Metadata& m, const std::string& key, const char* op) {
  return static_cast<int64_t>(parse_number(m, key, op));
}

}  // namespace

void LRScheduler::check_kind(const io::Metadata& state) const {
  auto it = state.find("kind");
  ENGINE_CHECK(it != state.end() && it->second == kind(), "LRScheduler::load_state_dict",
               "state is from scheduler '{}', not '{}'", it == state.end() ? "<unknown>" : it->second, kind());
}

// ---------------------------------------------------------------- step-count schedules
void StepwiseScheduler::step() {
  ++last_step_;
  opt_.set_lr(lr_at(last_step_));
}

io::Metadata StepwiseScheduler::state_dict() const {
  return {{"kind", kind()}, {"last_step", std::to_string(last_step_)}};
}

void StepwiseScheduler::load_state_dict(const io::Metadata& state) {
  check_kind(state);
  last_step_ = parse_count(state, "last_step", "LRScheduler::load_state_dict");
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : StepwiseScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  ENGINE_CHECK(step_size > 0, "StepLR", "step_size must be positive, got {}", step_size);
  start();
}

double StepLR::lr_at(int64_t step) const {
  return base_lr() * std::pow(gamma_, static_cast<double>(step / step_size_));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min)
    : StepwiseScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
  ENGINE_CHECK(t_max > 0, "CosineAnnealingLR", "t_max must be positive, got {}", t_max);
  start();
}

double CosineAnnealingLR::lr_at(int64_t step) const {
  const double c = std::cos(std::numbers::pi * static_cast<double>(step) / static_cast<double>(t_max_));
  return eta_min_ + (base_lr() - eta_min_) * (1.0 + c) / 2.0;
}

LinearWarmup::LinearWarmup(Optimizer& optimizer, int64_t warmup_steps, double start_factor,
                           std::unique_ptr<StepwiseScheduler> after)
    : StepwiseScheduler(optimizer), warmup_(warmup_steps), start_factor_(start_factor), after_(std::move(after)) {
  ENGINE_CHECK(warmup_steps > 0, "LinearWarmup", "warmup_steps must be positive, got {}", warmup_steps);
  ENGINE_CHECK(start_factor >= 0 && start_factor <= 1, "LinearWarmup", "start_factor must be in [0, 1], got {}",
               start_factor);
  start();
}

std::string LinearWarmup::kind() const { return after_ ? "LinearWarmup+" + after_->kind() : "LinearWarmup"; }

double LinearWarmup::lr_at(int64_t step) const {
  if (step >= warmup_) return after_ ? after_->lr_at(step - warmup_) : base_lr();
  const double f = start_factor_ + (1.0 - start_factor_) * static_cast<double>(step) / static_cast<double>(warmup_);
  return base_lr() * f;
}

// ---------------------------------------------------------------- ReduceLROnPlateau
ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, PlateauOptions o) : LRScheduler(optimizer), o_(o) {
  ENGINE_CHECK(o.factor < 1.0 && o.factor >= 0, "ReduceLROnPlateau", "factor must be in [0, 1), got {}", o.factor);
  ENGINE_CHECK(o.patience >= 0 && o.cooldown >= 0, "ReduceLROnPlateau", "patience {} and cooldown {} must be >= 0",
               o.patience, o.cooldown);
  const double inf = std::numeric_limits<double>::infinity();
  best_ = o.mode == PlateauOptions::Mode::Min ? inf : -inf;
}

bool ReduceLROnPlateau::is_better(double a) const {
  const bool min = o_.mode == PlateauOptions::Mode::Min;
  if (o_.relative_threshold) return min ? a < best_ * (1.0 - o_.threshold) : a > best_ * (1.0 + o_.threshold);
  return min ? a < best_ - o_.threshold : a > best_ + o_.threshold;
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;
  }
  if (num_bad_epochs_ > o_.patience) {
    const double old_lr = opt_.lr();
    const double new_lr = std::max(old_lr * o_.factor, o_.min_lr);
    if (old_lr - new_lr > o_.eps) opt_.set_lr(new_lr);
    cooldown_counter_ = o_.cooldown;
    num_bad_epochs_ = 0;
  }
}

io::Metadata ReduceLROnPlateau::state_dict() const {
  return {{"kind", kind()},
          {"best", format_number(best_)},
          {"num_bad_epochs", std::to_string(num_bad_epochs_)},
          {"cooldown_counter", std::to_string(cooldown_counter_)},
          {"last_epoch", std::to_string(last_epoch_)}};
}

void ReduceLROnPlateau::load_state_dict(const io::Metadata& state) {
  const char* op = "ReduceLROnPlateau::load_state_dict";
  check_kind(state);
  best_ = parse_number(state, "best", op);
  num_bad_epochs_ = parse_count(state, "num_bad_epochs", op);
  cooldown_counter_ = parse_count(state, "cooldown_counter", op);
  last_epoch_ = parse_count(state, "last_epoch", op);
}

}  // namespace engine::optim
