// The per-particle pile-up classifier (hept.md 3.9, pile-up variant): the last input column (pid_class) goes
// through Embedding(7, 10) and replaces that column, a catalog backbone embeds every particle, and out_proj
// (Linear(out_dim, 1)) gives the logit of "from the leading vertex"; the probability is its sigmoid.
// Inputs: x [N, F] with pid_class last (data/pileup_sim.h: F = 9), coords [N, 4] = (eta, phi, eta, phi).
#pragma once
#include <memory>
#include <string>

#include "engine/nn/layers.h"
#include "models/model.h"

namespace models {

class PileupModel : public engine::nn::Module {
 public:
  // Builds the backbone `name` with config `overrides` plus x_dim (or in_dim) = in_features - 1 + 10 and coords_dim = 4.
  // A "size" of S picks the paper's pile-up S config where the registry has one ("pileup-S"), else the tracking S.
  PileupModel(const std::string& name, int64_t in_features, const Config& overrides);
  Tensor forward(const ModelInput& in);  // logits [N]
  const std::string& name() const { return name_; }
  // The backbone's full effective config (defaults, size preset and overrides merged; x_dim / coords_dim included),
  // saved with checkpoints so that a later change of the shipped defaults or presets cannot change what is loaded.
  const Config& config() const { return backbone_->config(); }

 private:
  std::string name_;
  std::shared_ptr<engine::nn::Embedding> class_embedding_;
  std::shared_ptr<TrackingModel> backbone_;
  std::shared_ptr<engine::nn::Linear> out_proj_;
};

}  // namespace models
