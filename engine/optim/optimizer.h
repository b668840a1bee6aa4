// Optimizers with PyTorch semantics over a list of named parameters: SGD (momentum, dampening, nesterov,
// weight_decay), Adam (L2 weight decay) and AdamW (decoupled weight decay), each step one fused pass per parameter
// (engine/backend/{cpu,cuda}/optim.h). Parameters without a gradient are skipped and keep their step count, as in
// PyTorch. clip_grad_norm_ rescales gradients to a global L2 norm. State save/restore: named tensors
// ("<param>.<buffer>", "<param>.step") plus string metadata (kind and hyper-parameters).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "engine/tensor.h"

namespace engine::optim {

using NamedTensors = io::NamedTensors;

// Metadata values: doubles written in shortest round-trip form; reading throws naming `op` and the key.
std::string format_number(double v);
double parse_number(const io::Metadata& metadata, const std::string& key, const char* op);

struct StateDict {
  NamedTensors tensors;
  io::Metadata metadata;
};

class Optimizer {
 public:
  Optimizer(NamedTensors params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string kind() const = 0;  // "SGD", "Adam", "AdamW"
  void step();                           // updates every parameter that has a gradient (no autograd recorded)
  void zero_grad();                      // drops the gradients
  double lr() const { return lr_; }
  void set_lr(double lr);
  double initial_lr() const { return initial_lr_; }  // the constructor's lr: the base of LR schedules
  const NamedTensors& params() const { return params_; }
  int64_t step_count(size_t param_index) const { return state_.at(param_index).step; }

  // State: the per-parameter buffers and step counts, metadata {"kind", "lr", hyper-parameters}.
  StateDict state_dict() const;
  // Restores buffers, step counts and the learning rate. Throws, listing every problem, when the kind differs, a
  // name matches no parameter or buffer, or a shape/dtype differs from the parameter's.
  void load_state_dict(const StateDict& state);

 protected:
  struct ParamState {
    int64_t step = 0;
    std::map<std::string, Tensor> buffers;  // lazily created on the parameter's first step
  };
  // One update of parameter i (state already holds its incremented step count).
  virtual void update(const Tensor& param, const Tensor& grad, ParamState& state) = 0;
  virtual std::vector<std::string> buffer_names() const = 0;
  virtual io::Metadata hyper_parameters() const = 0;
  // The state buffer `name` of a parameter, created as zeros like it when absent.
  static Tensor& buffer(ParamState& state, const std::string& name, const Tensor& like);

 private:
  NamedTensors params_;
  std::vector<ParamState> state_;
  double lr_;
  double initial_lr_;
};

struct SGDOptions {
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, double lr, SGDOptions options = {});
  std::string kind() const override { return "SGD"; }

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }
  io::Metadata hyper_parameters() const override;

 private:
  SGDOptions o_;
};

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled (PyTorch default 1e-2 for AdamW)
};

class Adam : public Optimizer {
 public:
  Adam(NamedTensors params, double lr = 1e-3, AdamOptions options = {});
  std::string kind() const override { return decoupled_ ? "AdamW" : "Adam"; }

 protected:
  Adam(NamedTensors params, double lr, AdamOptions options, bool decoupled);
  void update(const Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq"}; }
  io::Metadata hyper_parameters() const override;

 private:
  AdamOptions o_;
  bool decoupled_;
};

class AdamW : public Adam {
 public:
  AdamW(NamedTensors params, double lr = 1e-3, AdamOptions options = {.weight_decay = 1e-2});
};

// Scales every defined gradient by max_norm / (total + 1e-6) when the global L2 norm `total` exceeds max_norm
// (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace engine::optim
