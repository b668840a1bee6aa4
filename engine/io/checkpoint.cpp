// Checkpoint save/load: prefixes model and optimizer tensors, flattens run metadata into safetensors metadata, and
// wraps every load error with the file name.
#include "engine/io/checkpoint.h"

namespace engine::io {

namespace {

constexpr const char* kModel = "model.";
constexpr const char* kOptim = "optimizer.";
constexpr const char* kSched = "scheduler.";
constexpr const char* kExtra = "extra.";
constexpr const char* kFormat = "hepengine-checkpoint-v1";

void put_prefixed(Metadata& out, const std::string& prefix, const Metadata& in) {
  for (const auto& [k, v] : in) out[prefix + k] = v;
}

Metadata take_prefixed(const Metadata& in, const std::string& prefix) {
  Metadata out;
  for (const auto& [k, v] : in)
    if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
  return out;
}

NamedTensors take_prefixed(const NamedTensors& in, const std::string& prefix) {
  NamedTensors out;
  for (const auto& [k, t] : in)
    if (k.rfind(prefix, 0) == 0) out.emplace_back(k.substr(prefix.size()), t);
  return out;
}

std::string get(const Metadata& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  ENGINE_CHECK(it != m.end(), "load_checkpoint", "{}: not a checkpoint (metadata has no '{}')", path, key);
  return it->second;
}

CheckpointInfo parse_info(const Metadata& m, const std::string& path) {
  ENGINE_CHECK(get(m, "format", path) == kFormat, "load_checkpoint", "{}: unknown checkpoint format '{}'", path,
               get(m, "format", path));
  CheckpointInfo info;
  info.model_name = get(m, "model_name", path);
  info.config_json = get(m, "config", path);
  info.epoch = static_cast<int64_t>(optim::parse_number(m, "epoch", "load_checkpoint"));
  info.step = static_cast<int64_t>(optim::parse_number(m, "step", "load_checkpoint"));
  info.extra = take_prefixed(m, kExtra);
  return info;
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer,
                     const optim::LRScheduler* scheduler, const CheckpointInfo& info) {
  NamedTensors tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back(kModel + name, t);
  Metadata meta = {{"format", kFormat},
                   {"model_name", info.model_name},
                   {"config", info.config_json},
                   {"epoch", std::to_string(info.epoch)},
                   {"step", std::to_string(info.step)}};
  put_prefixed(meta, kExtra, info.extra);
  if (optimizer) {
    optim::StateDict sd = optimizer->state_dict();
    for (const auto& [name, t] : sd.tensors) tensors.emplace_back(kOptim + name, t);
    put_prefixed(meta, kOptim, sd.metadata);
  }
  if (scheduler) put_prefixed(meta, kSched, scheduler->state_dict());
  save_safetensors(path, tensors, meta);
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  return parse_info(load_safetensors(path).metadata, path);
}

CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer,
                               optim::LRScheduler* scheduler, const std::string& expected_model_name) {
  SafetensorsContents file = load_safetensors(path);
  CheckpointInfo info = parse_info(file.metadata, path);
  ENGINE_CHECK(expected_model_name.empty() || info.model_name == expected_model_name, "load_checkpoint",
               "{} holds a checkpoint of model '{}' but the model being loaded is '{}'", path, info.model_name,
               expected_model_name);
  const Metadata optim_meta = take_prefixed(file.metadata, kOptim);
  const Metadata sched_meta = take_prefixed(file.metadata, kSched);
  ENGINE_CHECK(!optimizer || !optim_meta.empty(), "load_checkpoint", "{} has no optimizer state", path);
  ENGINE_CHECK(!scheduler || !sched_meta.empty(), "load_checkpoint", "{} has no scheduler state", path);
  try {
    model.load_state_dict(take_prefixed(file.tensors, kModel), true);
    if (optimizer) optimizer->load_state_dict({take_prefixed(file.tensors, kOptim), optim_meta});
    if (scheduler) scheduler->load_state_dict(sched_meta);
  } catch (const EngineError& e) {
    throw EngineError(fmt::format("load_checkpoint: {} (model '{}'): {}", path, info.model_name, e.what()));
  }
  return info;
}

}  // namespace engine::io
