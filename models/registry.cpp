// The catalog registry: name -> (shipped defaults, factory), paper size presets, and config merging with checks.
#include "models/registry.h"

#include <fmt/format.h>

#include <stdexcept>

#include "models/catalog.h"
#include "models/common.h"

namespace models {

namespace {

const std::vector<const ModelEntry*>& entries() {
  static const std::vector<const ModelEntry*> all = {
      &dgcnn_entry(),      &gravnet_entry(),     &hept_entry(),        &fullmamba2_entry(),
      &gatedelta_entry(),  &lshgd_entry(),       &fullhybrid2_entry(), &hydra_entry(),
      &fullfullhybrid2_entry(), &gdlocal1_entry(), &hmambav1_entry(), &hmambav2_entry(),
      &flatformer_entry(), &pct_entry(), &mhaformer_entry(), &pemamba2_entry(), &rwkv_entry(), &rwkv7_entry(),
  };
  return all;
}

const ModelEntry& find_entry(const std::string& name) {
  for (const ModelEntry* e : entries())
    if (name == e->name) return *e;
  std::string known;
  for (const ModelEntry* e : entries()) known += (known.empty() ? "" : ", ") + std::string(e->name);
  throw std::invalid_argument(fmt::format("unknown model '{}' (known models: {})", name, known));
}

// The paper's S/M/L sizes (paper-results.md) as overrides of the shipped config, for the models the paper sizes:
// hmambav2 (Mamba-b) 0.33 / 0.59 / 1.00 M, scanning in the LSH-region order the paper describes and with fixed input
// standardisation from the training data (models/common.h; ~2.5x fewer steps to a given accuracy); S, the main job's
// model, with 3000 LSH regions instead of 300 (~2 hits per region in a tracking-6k sector: +0.036 valid
// accuracy@0.9 after 360 steps, mean of 3 seeds, docs/tracking.md "Twelfth session") and each hit's vertex z
// estimate as a 16th input ("vertex_z_input": +0.039 after 360 steps, 3 seeds, "Thirteenth session"; from the
// cluster's length and charge over the barrel sensors' real depth, "vertex_z_estimate": "sensor_depth": +0.021 test
// accuracy@0.9 after 360 steps, 3 seeds, "Fourteenth session") and each hit's triplet seed as 5 more inputs
// ("seed_input", data/seeding.h: valid accuracy@0.9 0.93 after 90 steps where the inputs above give 0.46,
// "Sixteenth session"), and hept 0.33 / 0.61 / 1.06 M trainable parameters
// (paper: 0.32 / 0.61 / 0.99 M and 0.33 / 0.61 / 1.01 M), also standardised.
// Mamba-a's 0.17 M S size cannot be reached by fullhybrid2, whose hard-coded
// 5-layer head alone holds 0.2 M parameters, so it has no tracking presets.
// "pileup-S": the paper's pile-up S models (paper-results.md: Mamba-a width 24 and 8 layers, Mamba-b width 48 and
// 8 layers; HEPT's pile-up config, hept.md 3.7: h 24, 140 regions); the pile-up task picks them for --size S.
const Config& presets() {
  static const Config table = Config::parse(R"({
    "hmambav2": {"S": {"h_dim": 48, "n_layers": 4, "mlp_layers": 4, "scan_order": "lsh_regions",
                       "num_regions": 3000, "vertex_z_input": true, "vertex_z_estimate": "sensor_depth",
                       "seed_input": true, "seed_coords": true, "input_standardization": "from_training_data"},
                 "pileup-S": {"h_dim": 48, "n_layers": 8, "mlp_layers": 4, "num_regions": 140},
                 "M": {"h_dim": 64, "n_layers": 6, "mlp_layers": 5, "scan_order": "lsh_regions",
                       "input_standardization": "from_training_data"},
                 "L": {"scan_order": "lsh_regions", "input_standardization": "from_training_data"}},
    "hept": {"S": {"h_dim": 24, "input_standardization": "from_training_data"},
             "M": {"h_dim": 48, "input_standardization": "from_training_data"},
             "L": {"h_dim": 72, "input_standardization": "from_training_data"},
             "pileup-S": {"h_dim": 24, "num_regions": 140}},
    "fullhybrid2": {"pileup-S": {"h_dim": 24, "n_layers": 8, "num_regions": 140}},
    "fullfullhybrid2": {"pileup-S": {"h_dim": 24, "n_layers": 8, "num_regions": 140}},
    "hydra": {"pileup-S": {"h_dim": 24, "n_layers": 8, "d_inner": 48, "num_regions": 140}}
  })");
  return table;
}

Config size_preset(const std::string& name, const std::string& size) {
  if (size.empty() || size == "ref") return Config::object();
  if (!presets().contains(name))
    throw std::invalid_argument(fmt::format("model '{}' has no size presets (only the shipped config, size \"ref\")", name));
  if (!presets()[name].contains(size))
    throw std::invalid_argument(fmt::format("model '{}': unknown size '{}' (S, M, L or ref)", name, size));
  return presets()[name][size];
}

}  // namespace

Config reference_training(const std::string& name) {
  static const Config table = Config::parse(R"({
    "dgcnn": [1e-3, 2000, 500], "gravnet": [2e-4, 2000, 500], "hept": [1e-3, 1000, 500],
    "flatformer": [1e-3, 1000, 500], "pct": [1e-3, 1000, 500], "mhaformer": [2e-4, 1000, 500],
    "fullmamba2": [1e-4, 2500, 500], "fullhybrid2": [1e-3, 1000, 75], "fullfullhybrid2": [1e-3, 1000, 75],
    "hydra": [1e-4, 2000, 500], "pemamba2": [1e-3, 1000, 500], "hmambav1": [2e-4, 2000, 400],
    "hmambav2": [2e-4, 1000, 400], "gdlocal1": [5e-5, 2000, 500], "lshgd": [5e-5, 1000, 500],
    "gatedelta": [5e-5, 1000, 500], "rwkv": [1e-4, 2000, 500], "rwkv7": [1e-4, 2000, 500]
  })");
  find_entry(name);  // unknown names throw
  const auto& row = table.at(name);
  return Config{{"lr", row[0]}, {"epochs", row[1]}, {"step_size", row[2]}};
}

std::vector<std::string> tracking_model_names() {
  std::vector<std::string> names;
  for (const ModelEntry* e : entries()) names.emplace_back(e->name);
  return names;
}

bool reads_edge_index(const std::string& name) {
  find_entry(name);  // unknown names throw
  return name == "pct" || name == "gdlocal1";
}

bool has_size_preset(const std::string& name, const std::string& size) {
  find_entry(name);  // unknown names throw
  return presets().contains(name) && presets()[name].contains(size);
}

Config default_config(const std::string& name) {
  Config config = find_entry(name).defaults();
  if (!config.contains(kInputStandardization)) config[kInputStandardization] = nullptr;  // every model's encoder reads it
  return config;
}

Config stored_config(const std::string& name, Config stored) {
  if (!stored.is_object()) throw std::invalid_argument("a stored model config must be a JSON object");
  const Config defaults = default_config(name);
  for (const auto& [key, value] : defaults.items())
    if (!stored.contains(key)) stored[key] = value;
  return stored;
}

std::shared_ptr<TrackingModel> build_tracking_model(const std::string& name, const Config& overrides) {
  const ModelEntry& entry = find_entry(name);
  Config config = default_config(name);
  if (!overrides.is_object()) throw std::invalid_argument("model config overrides must be a JSON object");
  const std::string size = config_get<std::string>(overrides, "size", "");
  config.merge_patch(size_preset(name, size));
  for (const auto& [key, value] : overrides.items()) {
    if (key != "size" && !config.contains(key))
      throw std::invalid_argument(fmt::format("model '{}': unknown config key '{}' (known keys: {})", name, key,
                                              [&] {
                                                std::string k;
                                                for (const auto& [ck, cv] : config.items()) k += (k.empty() ? "" : ", ") + ck;
                                                return k;
                                              }()));
  }
  config.merge_patch(overrides);
  std::shared_ptr<TrackingModel> model = entry.make(config);
  model->set_identity(name, config);
  return model;
}

}  // namespace models
