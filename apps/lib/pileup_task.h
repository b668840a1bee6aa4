// The pile-up task for the shared trainer: simulated pile-up events (data/pileup_sim.h), a PileupModel, the focal
// loss on neutral targets, and accuracy / ROC AUC / average precision on them (main metric: average precision,
// HEPT's "auc").
#pragma once
#include <string>
#include <vector>

#include "apps/lib/trainer.h"
#include "data/pileup_sim.h"
#include "engine/device.h"
#include "models/pileup_model.h"

namespace app {

class PileupTask : public Task {
 public:
  PileupTask(const std::string& dataset_dir, models::PileupModel& model, engine::Device device);
  std::string name() const override { return "pileup"; }
  std::string main_metric() const override { return "average_precision"; }
  size_t size(data::Split split) const override { return events(split).size(); }
  StepOutput run(data::Split split, size_t index, bool with_metrics) override;
  const std::vector<data::pileup::PileupEvent>& events(data::Split split) const;
  // LV probability of every particle of an event (eval mode is the caller's business).
  std::vector<double> probabilities(const data::pileup::PileupEvent& ev);

 private:
  engine::Tensor logits(const data::pileup::PileupEvent& ev);
  std::vector<data::pileup::PileupEvent> train_, valid_, test_;
  models::PileupModel& model_;
  engine::Device device_;
};

// Simulates the default pile-up dataset on first use (like the tracking default) or checks a given folder.
std::string resolve_pileup_dataset(const std::string& data, int n_events, uint64_t seed);

}  // namespace app
