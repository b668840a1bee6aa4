// The pile-up task for the shared trainer: simulated pile-up events (data/pileup_sim.h), a PileupModel, the focal
// loss on neutral targets, and accuracy / ROC AUC / average precision on them (main metric: average precision,
// HEPT's "auc").
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
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
  std::vector<data::pileup::PileupEvent> train_, valid_, test_;
  models::PileupModel& model_;
  engine::Device device_;
};

// The model's logits [N] for every particle of an event (coords = (eta, phi, eta, phi)).
engine::Tensor pileup_logits(models::PileupModel& model, const data::pileup::PileupEvent& ev, engine::Device device);
// sigmoid(logits) as doubles on the host.
std::vector<double> pileup_probabilities(models::PileupModel& model, const data::pileup::PileupEvent& ev,
                                         engine::Device device);

// The model against the two classic baselines on `events`: classification of the neutral targets (ROC AUC, average
// precision, accuracy at 0.5) and the leading-jet pT response (bias, resolution, multiplicity difference), for
// {model_name, "CHS", "PUPPI-style"}. prob(ev) gives the model's LV probability per particle.
using ProbabilityFn = std::function<std::vector<double>(const data::pileup::PileupEvent&)>;
nlohmann::json compare_with_baselines(const std::vector<const data::pileup::PileupEvent*>& events,
                                      const ProbabilityFn& prob, const std::string& model_name);
// Prints that comparison as a table on stdout.
void print_comparison(const std::string& title, const nlohmann::json& rows);

// Simulates the default pile-up dataset on first use (like the tracking default) or checks a given folder.
std::string resolve_pileup_dataset(const std::string& data, int n_events, uint64_t seed);

}  // namespace app
