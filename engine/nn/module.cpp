// Module registry, dotted-name traversal, state-dict loading with complete mismatch reports, in-place conversions,
// and the ModuleList / Sequential containers.
#include "engine/nn/module.h"

#include <map>
#include <set>

#include "engine/autograd.h"

namespace engine::nn {

namespace {

std::string join_keys(const std::vector<std::string>& keys) { return fmt::format("{}", fmt::join(keys, ", ")); }

std::string plural(size_t n, const char* word) { return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s"); }

// Points `t`'s impl at a converted copy of its data (same handle, new storage, contiguous layout).
void replace_data(const Tensor& t, const Tensor& converted) {
  Tensor c = converted.contiguous();
  TensorImpl* impl = t.impl();
  impl->storage = c.impl()->storage;
  impl->strides = c.strides();
  impl->offset = c.offset();
  impl->dtype = c.dtype();
}

}  // namespace

// ---------------------------------------------------------------- registration
void Module::check_new_name(const std::string& name) const {
  ENGINE_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module",
               "invalid name '{}' (must be non-empty and contain no '.')", name);
  auto taken = [&](const auto& list) {
    for (const auto& e : list)
      if (e.first == name) return true;
    return false;
  };
  bool dup = taken(children_);
  for (const auto& e : params_) dup = dup || e.name == name;
  for (const auto& e : buffers_) dup = dup || e.name == name;
  ENGINE_CHECK(!dup, "Module", "name '{}' is already registered", name);
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_defined("register_parameter", t, name.c_str());
  check_new_name(name);
  ENGINE_CHECK(t.is_leaf(), "register_parameter", "'{}' must be a leaf tensor (detach it first)", name);
  t.requires_grad_(requires_grad);
  params_.push_back({name, t, true});
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  check_defined("register_buffer", t, name.c_str());
  check_new_name(name);
  buffers_.push_back({name, t.detach(), persistent});
  return buffers_.back().tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  ENGINE_CHECK(m != nullptr, "register_module", "module '{}' is null", name);
  check_new_name(name);
  children_.emplace_back(name, std::move(m));
}

// ---------------------------------------------------------------- traversal
void Module::collect(const std::string& prefix, bool params, bool recurse, bool persistent_only,
                     NamedTensors& out) const {
  for (const Entry& e : params ? params_ : buffers_)
    if (!persistent_only || e.persistent) out.emplace_back(prefix + e.name, e.tensor);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, true, persistent_only, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", true, recurse, false, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", false, recurse, false, out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

NamedTensors Module::state_dict() const {
  NamedTensors params, buffers;
  collect("", true, true, false, params);
  collect("", false, true, true, buffers);
  NamedTensors out;
  for (auto& [name, t] : params) out.emplace_back(name, t.detach());
  for (auto& [name, t] : buffers) out.emplace_back(name, t.detach());
  return out;
}

LoadResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::map<std::string, Tensor> mine;
  for (auto& [name, t] : state_dict()) mine.emplace(name, t);
  LoadResult result;
  std::vector<std::string> problems;
  std::set<std::string> seen;
  for (const auto& [name, src] : state) {
    if (!seen.insert(name).second) problems.push_back(fmt::format("duplicate key {}", name));
    auto it = mine.find(name);
    if (it == mine.end()) {
      result.unexpected_keys.push_back(name);
      continue;
    }
    const Tensor& dst = it->second;
    if (src.shape() != dst.shape())
      problems.push_back(fmt::format("shape mismatch for {}: given {}, module has {}", name, shape_str(src.shape()),
                                     shape_str(dst.shape())));
    if (src.dtype() != dst.dtype())
      problems.push_back(fmt::format("dtype mismatch for {}: given {}, module has {}", name, dtype_name(src.dtype()),
                                     dtype_name(dst.dtype())));
  }
  for (const auto& [name, t] : state_dict())
    if (!seen.count(name)) result.missing_keys.push_back(name);
  if (strict) {
    std::vector<std::string> keys;
    if (!result.missing_keys.empty())
      keys.push_back(fmt::format("{} missing: {}", plural(result.missing_keys.size(), "key"),
                                 join_keys(result.missing_keys)));
    if (!result.unexpected_keys.empty())
      keys.push_back(fmt::format("{} unexpected: {}", plural(result.unexpected_keys.size(), "key"),
                                 join_keys(result.unexpected_keys)));
    problems.insert(problems.begin(), keys.begin(), keys.end());
  }
  ENGINE_CHECK(problems.empty(), "load_state_dict", "{}", fmt::join(problems, "; "));
  NoGradGuard ng;
  for (const auto& [name, src] : state) {
    auto it = mine.find(name);
    if (it != mine.end()) it->second.copy_(src);
  }
  return result;
}

// ---------------------------------------------------------------- modes and placement
void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

template <class F>
void Module::for_each_tensor(F&& f) {
  for (Entry& e : params_) f(e.tensor);
  for (Entry& e : buffers_) f(e.tensor);
  for (auto& [name, child] : children_) child->for_each_tensor(f);
}

void Module::to(Device device) {
  NoGradGuard ng;
  for_each_tensor([&](Tensor& t) {
    if (t.device() == device) return;
    Tensor g = t.grad();
    replace_data(t, t.detach().to(device));
    if (g.defined()) t.set_grad(g.to(device));
  });
}

void Module::to(DType dtype) {
  ENGINE_CHECK(is_floating(dtype), "Module::to", "target dtype must be floating, got {}", dtype_name(dtype));
  NoGradGuard ng;
  for_each_tensor([&](Tensor& t) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) return;
    Tensor g = t.grad();
    replace_data(t, t.detach().to(dtype));
    if (g.defined()) t.set_grad(g.to(dtype));
  });
}

void Module::zero_grad() {
  for (Tensor& t : parameters()) t.zero_grad();
}

// ---------------------------------------------------------------- containers
void ModuleList::push_back(std::shared_ptr<Module> m) {
  register_module(std::to_string(items_.size()), m);
  items_.push_back(std::move(m));
}

const std::shared_ptr<Module>& ModuleList::operator[](size_t i) const {
  ENGINE_CHECK(i < items_.size(), "ModuleList", "index {} out of range for {} elements", i, items_.size());
  return items_[i];
}

Sequential::Sequential(std::vector<std::shared_ptr<UnaryModule>> layers) {
  for (auto& m : layers) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<UnaryModule> m) {
  register_module(std::to_string(items_.size()), m);
  items_.push_back(std::move(m));
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  ENGINE_CHECK(i < items_.size(), "Sequential", "index {} out of range for {} elements", i, items_.size());
  return items_[i];
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : items_) y = m->forward(y);
  return y;
}

}  // namespace engine::nn
