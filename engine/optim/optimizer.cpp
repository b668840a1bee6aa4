// Optimizer bookkeeping (steps, lazily created state, state save/restore), the SGD/Adam/AdamW updates through the
// fused kernels, and global-norm gradient clipping.
#include "engine/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace engine::optim {

std::string format_number(double v) { return fmt::format("{}", v); }

double parse_number(const io::Metadata& m, const std::string& key, const char* op) {
  auto it = m.find(key);
  ENGINE_CHECK(it != m.end(), op, "metadata has no '{}'", key);
  try {
    return std::stod(it->second);
  } catch (const std::exception&) {
    ENGINE_FAIL(op, "metadata '{}' = '{}' is not a number", key, it->second);
  }
}

// ---------------------------------------------------------------- base
Optimizer::Optimizer(NamedTensors params, double lr) : params_(std::move(params)), state_(params_.size()), lr_(lr), initial_lr_(lr) {
  ENGINE_CHECK(!params_.empty(), "Optimizer", "got an empty parameter list");
  ENGINE_CHECK(lr >= 0, "Optimizer", "learning rate must be >= 0, got {}", lr);
  std::set<std::string> names;
  for (const auto& [name, p] : params_) {
    check_defined("Optimizer", p, name.c_str());
    ENGINE_CHECK(names.insert(name).second, "Optimizer", "parameter name '{}' appears twice", name);
    ENGINE_CHECK(is_floating(p.dtype()) && p.is_leaf(), "Optimizer",
                 "parameter '{}' must be a floating leaf tensor (got {}{})", name, dtype_name(p.dtype()),
                 p.is_leaf() ? "" : ", non-leaf");
  }
}

void Optimizer::set_lr(double lr) {
  ENGINE_CHECK(lr >= 0, "Optimizer", "learning rate must be >= 0, got {}", lr);
  lr_ = lr;
}

Tensor& Optimizer::buffer(ParamState& state, const std::string& name, const Tensor& like) {
  auto it = state.buffers.find(name);
  if (it == state.buffers.end()) it = state.buffers.emplace(name, zeros(like.shape(), like.options())).first;
  return it->second;
}

void Optimizer::step() {
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    ENGINE_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), kind(),
                 "gradient of '{}' is {} {} on {} but the parameter is {} {} on {}", name, shape_str(g.shape()),
                 dtype_name(g.dtype()), g.device().str(), shape_str(p.shape()), dtype_name(p.dtype()),
                 p.device().str());
    state_[i].step += 1;
    update(p, g, state_[i]);
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  for (size_t i = 0; i < params_.size(); ++i) {
    const ParamState& s = state_[i];
    if (s.step == 0) continue;
    const std::string& name = params_[i].first;
    sd.tensors.emplace_back(name + ".step", scalar_tensor(static_cast<double>(s.step), DType::I64));
    for (const auto& [buf, t] : s.buffers) sd.tensors.emplace_back(name + "." + buf, t.detach());
  }
  sd.metadata = hyper_parameters();
  sd.metadata["kind"] = kind();
  sd.metadata["lr"] = format_number(lr_);
  return sd;
}

void Optimizer::load_state_dict(const StateDict& sd) {
  const char* op = "Optimizer::load_state_dict";
  auto kind_it = sd.metadata.find("kind");
  ENGINE_CHECK(kind_it != sd.metadata.end() && kind_it->second == kind(), op, "state is from optimizer '{}', not '{}'",
               kind_it == sd.metadata.end() ? "<unknown>" : kind_it->second, kind());
  const double lr = parse_number(sd.metadata, "lr", op);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < params_.size(); ++i) index.emplace(params_[i].first, i);
  const std::vector<std::string> bufs = buffer_names();
  std::vector<ParamState> fresh(params_.size());
  std::vector<std::string> problems;
  for (const auto& [key, t] : sd.tensors) {
    const size_t dot = key.rfind('.');
    const std::string pname = dot == std::string::npos ? key : key.substr(0, dot);
    const std::string what = dot == std::string::npos ? "" : key.substr(dot + 1);
    auto it = index.find(pname);
    const bool known_buf = std::find(bufs.begin(), bufs.end(), what) != bufs.end();
    if (it == index.end() || (what != "step" && !known_buf)) {
      problems.push_back(fmt::format("unexpected entry {}", key));
      continue;
    }
    const Tensor& p = params_[it->second].second;
    if (what == "step") {
      fresh[it->second].step = static_cast<int64_t>(t.item());
    } else if (t.shape() != p.shape() || t.dtype() != p.dtype()) {
      problems.push_back(fmt::format("{} is {} {} but the parameter is {} {}", key, shape_str(t.shape()),
                                     dtype_name(t.dtype()), shape_str(p.shape()), dtype_name(p.dtype())));
    } else {
      Tensor b = empty(p.shape(), p.options());
      b.copy_(t);
      fresh[it->second].buffers[what] = b;
    }
  }
  for (size_t i = 0; i < params_.size(); ++i)
    if (fresh[i].step == 0 && !fresh[i].buffers.empty())
      problems.push_back(fmt::format("state of {} has buffers but no step count", params_[i].first));
  ENGINE_CHECK(problems.empty(), op, "{}", fmt::join(problems, "; "));
  state_ = std::move(fresh);
  set_lr(lr);
}

// ---------------------------------------------------------------- SGD
SGD::SGD(NamedTensors params, double lr, SGDOptions o) : Optimizer(std::move(params), lr), o_(o) {
  ENGINE_CHECK(o.momentum >= 0 && o.weight_decay >= 0, "SGD", "momentum {} and weight_decay {} must be >= 0",
               o.momentum, o.weight_decay);
  ENGINE_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), "SGD",
               "nesterov needs momentum > 0 and dampening 0 (got momentum {}, dampening {})", o.momentum,
               o.dampening);
}

void SGD::update(const Tensor& p, const Tensor& g, ParamState& s) {
  SgdArgs a{lr(), o_.momentum, o_.dampening, o_.weight_decay, o_.nesterov, s.step == 1};
  Tensor buf = o_.momentum != 0 ? buffer(s, "momentum_buffer", p) : Tensor();
  ENGINE_DISPATCH(p.device(), sgd_step, p, g, buf, a);
}

io::Metadata SGD::hyper_parameters() const {
  return {{"momentum", format_number(o_.momentum)},
          {"dampening", format_number(o_.dampening)},
          {"weight_decay", format_number(o_.weight_decay)},
          {"nesterov", o_.nesterov ? "true" : "false"}};
}

// ---------------------------------------------------------------- Adam / AdamW
Adam::Adam(NamedTensors params, double lr, AdamOptions o) : Adam(std::move(params), lr, o, false) {}

Adam::Adam(NamedTensors params, double lr, AdamOptions o, bool decoupled)
    : Optimizer(std::move(params), lr), o_(o), decoupled_(decoupled) {
  ENGINE_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, kind(), "betas ({}, {}) must be in [0, 1)",
               o.beta1, o.beta2);
  ENGINE_CHECK(o.eps >= 0 && o.weight_decay >= 0, kind(), "eps {} and weight_decay {} must be >= 0", o.eps,
               o.weight_decay);
}

void Adam::update(const Tensor& p, const Tensor& g, ParamState& s) {
  const double t = static_cast<double>(s.step);
  AdamArgs a{lr(),
             o_.beta1,
             o_.beta2,
             o_.eps,
             o_.weight_decay,
             decoupled_,
             1.0 - std::pow(o_.beta1, t),
             std::sqrt(1.0 - std::pow(o_.beta2, t))};
  Tensor m = buffer(s, "exp_avg", p);
  Tensor v = buffer(s, "exp_avg_sq", p);
  ENGINE_DISPATCH(p.device(), adam_step, p, g, m, v, a);
}

io::Metadata Adam::hyper_parameters() const {
  return {{"beta1", format_number(o_.beta1)},
          {"beta2", format_number(o_.beta2)},
          {"eps", format_number(o_.eps)},
          {"weight_decay", format_number(o_.weight_decay)}};
}

AdamW::AdamW(NamedTensors params, double lr, AdamOptions options) : Adam(std::move(params), lr, options, true) {}

// ---------------------------------------------------------------- clipping
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  ENGINE_CHECK(max_norm >= 0, "clip_grad_norm_", "max_norm must be >= 0, got {}", max_norm);
  NoGradGuard ng;
  Tensor total;  // [] float64 on the first gradient's device
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor sq = sum(square(g.to(DType::F64)));
    total = total.defined() ? add(total, sq.to(total.device())) : sq;
  }
  if (!total.defined()) return 0.0;
  const double norm = std::sqrt(total.item());
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined()) g.copy_(mul(g, coef));
    }
  return norm;
}

}  // namespace engine::optim
