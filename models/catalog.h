// The catalog's factories: each model file (models/<name>.cpp) defines its entry; models/registry.cpp lists them.
#pragma once
#include <memory>

#include "models/model.h"

namespace models {

struct ModelEntry {
  const char* name;
  Config (*defaults)();                                     // the shipped config (effective reference values)
  std::shared_ptr<TrackingModel> (*make)(const Config& c);  // c = defaults merged with the user's overrides
};

// One per model; defined in models/<file>.cpp.
const ModelEntry& dgcnn_entry();
const ModelEntry& gravnet_entry();
const ModelEntry& rwkv_entry();
const ModelEntry& rwkv7_entry();
const ModelEntry& hept_entry();
const ModelEntry& flatformer_entry();
const ModelEntry& pct_entry();
const ModelEntry& mhaformer_entry();
const ModelEntry& fullmamba2_entry();
const ModelEntry& gatedelta_entry();
const ModelEntry& hmambav1_entry();
const ModelEntry& hmambav2_entry();
const ModelEntry& lshgd_entry();
const ModelEntry& fullhybrid2_entry();
const ModelEntry& hydra_entry();
const ModelEntry& fullfullhybrid2_entry();
const ModelEntry& pemamba2_entry();
const ModelEntry& gdlocal1_entry();

}  // namespace models
