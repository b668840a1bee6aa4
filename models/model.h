// The interface every catalog model implements, and the JSON config type models are built from.
// A model maps one event-sector (batch size 1, as in the reference code) to per-hit embeddings; padding to block
// or chunk multiples is internal and the output always has exactly N rows.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace models {

using Config = nlohmann::json;
using engine::Tensor;

// One event-sector as the models see it. Hits are in the order they are stored (no model relies on a given order
// unless its spec says so).
struct ModelInput {
  Tensor x;           // [N, x_dim] float features (tracking: 15, see data/features.h)
  Tensor coords;      // [N, 6] float: eta, phi, r/1000, phi/pi, z/1000, eta_rz
  Tensor edge_index;  // [2, E] int64 kNN (eta, phi) graph, k = 60, undirected, self-loops; only gdlocal1 reads it
  Tensor vertex_z;    // [N, 1] float: each hit's estimate of its collision vertex z (data::vertex_z_estimates); read
                      // only by models configured with "vertex_z_input" (kVertexZInput)
  Tensor seeds{};     // [N, kSeedInputs] float: each hit's triplet seed (data::triplet_seeds: phi0 / pi, curvature,
                      // eta, z0, found); read only by models configured with "seed_input" (kSeedInput)
};

class TrackingModel : public engine::nn::Module {
 public:
  // [N, out_dim()] embeddings for the N hits of `in`.
  virtual Tensor forward(const ModelInput& in) = 0;
  virtual int64_t out_dim() const = 0;
  // Registry name ("hmambav2") and the full effective config the model was built from (saved with checkpoints).
  const std::string& name() const { return name_; }
  const Config& config() const { return config_; }
  void set_identity(std::string name, Config config) {
    name_ = std::move(name);
    config_ = std::move(config);
  }

 private:
  std::string name_;
  Config config_;
};

// Reads config[key] as T, or `fallback` when absent; throws "<model>: config key '<key>' ..." on a wrong type.
template <class T>
T config_get(const Config& config, const std::string& key, const T& fallback) {
  if (!config.contains(key)) return fallback;
  try {
    return config.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw std::invalid_argument("config key '" + key + "' has the wrong type: " + config.at(key).dump());
  }
}

}  // namespace models
