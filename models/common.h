// Pieces every catalog model shares (lampa-models.md section 2): the feature encoder, the residual MLP head,
// padding of the hit dimension, and the dropout-free PyG-style MLP.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"
#include "models/model.h"

namespace models {

using engine::Tensor;

// The config key every catalog model reads for its feature encoder: null (the reference: raw features), an object
// {"mean": [in], "std": [in]} (fixed per-feature standardisation (x - mean) / std before the first layer, not trained),
// or kStandardizeFromData, which apps/train replaces by the statistics of the training split before it builds the
// model (until then, the identity).
inline constexpr const char* kInputStandardization = "input_standardization";
inline constexpr const char* kStandardizeFromData = "from_training_data";

// The config key of the models that can read ModelInput::vertex_z as one more input feature (hmambav2, hmambav1):
// false (the reference) or true.
inline constexpr const char* kVertexZInput = "vertex_z_input";
// ... and which estimate it reads: "cluster_eta" (the reference default, so configs stored before the key existed
// keep it) or "sensor_depth" (data::VertexZMethod; apps/ compute the estimate, models only store its name).
inline constexpr const char* kVertexZEstimate = "vertex_z_estimate";

// The config key of the models that can read ModelInput::seeds, each hit's triplet seed, as kSeedInputs more input
// features (hmambav2, hmambav1): false (the reference) or true.
inline constexpr const char* kSeedInput = "seed_input";
inline constexpr int64_t kSeedInputs = 5;  // data::kSeedFeatures (apps/ check that they agree)

// The config key of the models that can place each hit, for their LSH hashing and attention kernel and their scan
// order, where its triplet seed says its track is (hmambav2, hmambav1): false (the reference) or true. See
// seed_frame_coords.
inline constexpr const char* kSeedCoords = "seed_coords";

// coords [N, 6] (eta, phi, r/1000, phi/pi, z/1000, eta_rz) with, for the hits that have a triplet seed (seeds
// [N, kSeedInputs], data::triplet_seeds), eta and eta_rz replaced by the seed's eta and phi, phi/pi by its phi0: the
// hits of one track then share their place, as they do at the beam line. Throws when seeds is missing or not
// [N, kSeedInputs], or coords not [N, 6].
Tensor seed_frame_coords(const Tensor& coords, const Tensor& seeds);

// What a model's feature encoder reads: x [N, F], then in.vertex_z [N, 1] when with_vertex_z, then in.seeds
// [N, kSeedInputs] when with_seeds (throws when one that is asked for is missing or of another shape).
Tensor encoder_input(const ModelInput& in, bool with_vertex_z, bool with_seeds = false);

// [optional fixed standardisation] -> Linear(in, h) -> ReLU -> Linear(h, h): [N, in] -> [N, h]. `model_config` is the
// model's config, read for kInputStandardization.
class FeatureEncoder : public engine::nn::UnaryModule {
 public:
  FeatureEncoder(const nlohmann::json& model_config, int64_t in_dim, int64_t h_dim);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<engine::nn::Linear> lin1_, lin2_;
  Tensor input_mean_, input_inv_std_;  // [in] non-persistent buffers; undefined without standardisation
};

// The "residual MLP head": out = e + Dropout(p)(MLP(e)), where MLP is PyG's MLP(c -> 256 -> ... -> c) with
// num_layers L, LayerNorm + act after every layer but the last (parameters 513c + 768 + (L-2) * 66,304).
class ResidualMLPHead : public engine::nn::UnaryModule {
 public:
  ResidualMLPHead(int64_t channels, int num_layers, engine::nn::ActivationKind act, double dropout);
  Tensor forward(const Tensor& e) override;  // [N, c] -> [N, c]

 private:
  std::shared_ptr<engine::nn::MLP> mlp_;
  std::shared_ptr<engine::nn::Dropout> dropout_;
};

// Appends rows filled with `value` so that x.size(0) becomes a multiple of `multiple` (no copy when it already is).
Tensor pad_rows(const Tensor& x, int64_t multiple, double value = 0.0);

}  // namespace models
