// Module: the base of every layer and model. Holds named parameters (trainable leaves), buffers (non-trainable
// state saved with the model) and child modules, and derives PyTorch-style dotted names from them
// ("layers.0.attn.w_q.weight"). state_dict()/load_state_dict() move weights in and out by name with exact checks;
// to(Device)/to(DType) convert every tensor in place, so handles held by layers and optimizers stay valid.
// Containers: ModuleList (indexable children "0", "1", ...) and Sequential (chains UnaryModules).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace engine::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What a non-strict load_state_dict skipped.
struct LoadResult {
  std::vector<std::string> missing_keys;     // in the module, absent from the state dict
  std::vector<std::string> unexpected_keys;  // in the state dict, absent from the module
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- traversal (registration order, children after own tensors, names dotted) ----
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;  // persistent and non-persistent
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  int64_t num_parameters() const;  // total elements of all parameters

  // ---- weights in and out ----
  NamedTensors state_dict() const;  // parameters then persistent buffers, per module, detached (shared storage)
  // Copies every tensor of `state` into the module's tensor of the same name (any device/dtype-compatible source;
  // dtypes must match exactly). Shape or dtype mismatches always throw; with strict, missing and unexpected keys
  // throw as well. The single exception lists every problem found.
  LoadResult load_state_dict(const NamedTensors& state, bool strict = true);

  // ---- modes and placement ----
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(Device device);
  void to(DType dtype);  // converts floating parameters and buffers only
  void zero_grad();

 protected:
  // Registers a tensor as a trainable parameter (made a leaf requiring grad) and returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  // Registers non-trainable state. Update buffers in place (copy_) so the registered handle stays current.
  Tensor register_buffer(const std::string& name, Tensor t, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

 private:
  struct Entry {
    std::string name;
    Tensor tensor;
    bool persistent = true;
  };
  void check_new_name(const std::string& name) const;
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void collect(const std::string& prefix, bool params, bool recurse, bool persistent_only, NamedTensors& out) const;
  template <class F> void for_each_tensor(F&& f);

  std::vector<Entry> params_;
  std::vector<Entry> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module mapping one tensor to one tensor; what Sequential chains.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

// Children named "0", "1", ... of any module type.
class ModuleList : public Module {
 public:
  void push_back(std::shared_ptr<Module> m);
  size_t size() const { return items_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const;
  // The i-th child as type M; throws when it is another type.
  template <class M>
  std::shared_ptr<M> get(size_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    if (!m) throw EngineError("ModuleList: element " + std::to_string(i) + " has another type");
    return m;
  }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

// Children named "0", "1", ... applied in order.
class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule>> layers);
  void push_back(std::shared_ptr<UnaryModule> m);
  size_t size() const { return items_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<UnaryModule>> items_;
};

}  // namespace engine::nn
