// The tracking task for the shared trainer: samples from a processed cache, a catalog model's embeddings, the
// InfoNCE loss over candidate pairs and HEPT's accuracy / precision / recall at k (models/tracking_*.h).
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "apps/lib/trainer.h"
#include "data/cache.h"
#include "data/features.h"
#include "engine/device.h"
#include "models/model.h"

namespace app {

struct TrackingTaskOptions {
  // "radius": HEPT's radius-graph pairs, loss averaged per particle; "knn": Lampa's k = 60 kNN edges, averaged per
  // positive pair
  std::string loss_pairs = "radius";
  double tau = 0.05;
  // HEPT's training-only augmentation: about this fraction of E random pairs appended to the loss pairs of every
  // training step (data::with_random_pairs); 0 turns it off
  double random_pairs = 0.2;
  // Training steps' anchors: reconstructable hits above this pT (GeV). HEPT's 0.9 by default; lower values also train
  // the softer particles, whose hits are most of the wrong neighbours (docs/tracking.md). The validation and test
  // losses keep HEPT's 0.9, so they compare across runs.
  double loss_pt_min = 0.9;
};

// The inputs a model reads beside the features, the coordinates and the kNN graph (models/common.h), as its config
// asks for them.
struct ExtraInputs {
  std::optional<data::VertexZMethod> vertex_z;  // "vertex_z_input": the estimate its "vertex_z_estimate" names
  bool seeds = false;                            // "seed_input" or "seed_coords": data::triplet_seeds
};

class TrackingTask : public Task {
 public:
  TrackingTask(const std::string& cache_dir, models::TrackingModel& model, engine::Device device,
               TrackingTaskOptions options = {});
  std::string name() const override { return "tracking"; }
  std::string main_metric() const override { return "accuracy@0.9"; }
  size_t size(data::Split split) const override { return dataset_.size(split); }
  StepOutput run(data::Split split, size_t index, bool with_metrics) override;
  const data::Dataset& dataset() const { return dataset_; }

 private:
  data::Dataset dataset_;
  models::TrackingModel& model_;
  engine::Device device_;
  ExtraInputs extra_inputs_;  // what the model reads beside the features
  TrackingTaskOptions options_;
  std::map<std::pair<data::Split, size_t>, engine::Tensor> seeds_;  // [N, 5] per sample, computed on first use
};

// Per-feature mean and standard deviation of the encoder's input (models::encoder_input: the features x, and the
// vertex z estimate and the triplet seeds when the model config asks for them) over all hits of the first `max_samples` training
// samples (all of them when fewer), as the models' "input_standardization" config value {"mean": [..], "std": [..]};
// a feature that is constant there gets std 1. Throws when the training split is empty.
nlohmann::json input_statistics(const data::Dataset& dataset, size_t max_samples,
                                const nlohmann::json& model_config = nlohmann::json::object());

// Throws std::invalid_argument for an unknown vertex z estimate name, read or not ("cluster_eta" when absent).
ExtraInputs extra_inputs(const nlohmann::json& model_config);

// The model input of a sample, on `device`, with the extra inputs of `extras` (undefined otherwise); `seeds`, when
// given, are the sample's data::triplet_seeds already computed (a training run reuses them every epoch).
models::ModelInput model_input(const data::Sample& sample, engine::Device device, const ExtraInputs& extras,
                               const engine::Tensor& seeds = engine::Tensor());

}  // namespace app
