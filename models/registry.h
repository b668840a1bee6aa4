// Builds any catalog model by name from a JSON config: the shipped defaults of that model (configs/<name>.json
// semantics, embedded here) overlaid with the caller's overrides. Unknown names and unknown config keys throw
// with the list of what is accepted.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"

namespace models {

// Names of every buildable tracking model, in catalog order.
std::vector<std::string> tracking_model_names();
// The shipped default config of a model (throws for an unknown name).
Config default_config(const std::string& name);
// The reference's training hyper-parameters for a model (lampa-models.md 7.4): {"lr", "epochs", "step_size"}.
Config reference_training(const std::string& name);
// Whether model `name` reads ModelInput::edge_index (the 60-NN (eta, phi) graph): pct and gdlocal1.
bool reads_edge_index(const std::string& name);
// Whether `name` has the size preset `size` ("S", "M", "L", or the pile-up task's "pileup-S").
bool has_size_preset(const std::string& name, const std::string& size);
// A config saved with a trained model (checkpoint, run.json), completed so that it rebuilds the model as it was
// trained: every key added to the catalog since then takes its reference default (what the model did before the key
// existed), so that a size preset's newer settings (e.g. hmambav2 S's "vertex_z_input") never reach an older model.
Config stored_config(const std::string& name, Config stored);

// default_config(name) merged with `overrides` (JSON merge-patch), then the model built from it.
std::shared_ptr<TrackingModel> build_tracking_model(const std::string& name, const Config& overrides = Config::object());

}  // namespace models
