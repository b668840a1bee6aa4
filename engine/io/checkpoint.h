// Training checkpoints: model weights, optional optimizer and LR-scheduler state, and run metadata in one
// safetensors file (tensor names "model.<param>" and "optimizer.<param>.<buffer>"; metadata keys "model_name",
// "config", "epoch", "step", "optimizer.*", "scheduler.*", "extra.*"). Loading checks the model name (when one is
// expected), then every name, shape and dtype, and reports all mismatches in one error naming the file.
#pragma once
#include <string>

#include "engine/io/safetensors.h"
#include "engine/nn/module.h"
#include "engine/optim/lr_scheduler.h"
#include "engine/optim/optimizer.h"

namespace engine::io {

struct CheckpointInfo {
  std::string model_name;        // e.g. "HEPT"; checked on load
  std::string config_json = "{}";  // the model/run configuration, verbatim
  int64_t epoch = 0;
  int64_t step = 0;
  Metadata extra = {};           // free-form string pairs
};

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer,
                     const optim::LRScheduler* scheduler, const CheckpointInfo& info);

// Restores the model (strict) and, when given, the optimizer and scheduler (their state must be in the file).
// With a non-empty expected_model_name, a checkpoint of another model fails with one line naming both models.
CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer = nullptr,
                               optim::LRScheduler* scheduler = nullptr, const std::string& expected_model_name = "");

// The metadata alone (no model needed), e.g. to pick the model to build.
CheckpointInfo read_checkpoint_info(const std::string& path);

}  // namespace engine::io
