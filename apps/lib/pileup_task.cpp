// Pile-up task (see pileup_task.h).
#include "apps/lib/pileup_task.h"

#include <fmt/format.h>

#include <filesystem>

#include "apps/lib/datasets.h"
#include "data/graphs.h"
#include "data/pileup_metrics.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "models/pileup_loss.h"

namespace app {

using data::pileup::PileupEvent;

namespace {

std::vector<PileupEvent> load_all(const std::vector<std::string>& files) {
  std::vector<PileupEvent> out;
  for (const std::string& f : files) out.push_back(data::pileup::load_pileup_event(f));
  return out;
}

}  // namespace

std::string resolve_pileup_dataset(const std::string& data, int n_events, uint64_t seed) {
  if (!data.empty()) {
    data::pileup::read_pileup_manifest(data);  // throws with the path when unusable
    return data;
  }
  const std::string dir = fmt::format("{}/pileup-v{}-n{}-seed{}", default_cache_root(),
                                      data::pileup::kPileupGeneratorVersion, n_events, seed);
  if (!std::filesystem::exists(dir + "/manifest.json")) {
    fmt::print(stderr, "simulating {} pile-up events into {}\n", n_events, dir);
    data::pileup::PileupConfig cfg;
    cfg.seed = seed;
    data::pileup::write_pileup_dataset(dir, n_events, cfg);
  }
  return dir;
}

PileupTask::PileupTask(const std::string& dir, models::PileupModel& model, engine::Device device)
    : model_(model), device_(device) {
  const auto ds = data::pileup::read_pileup_manifest(dir);
  train_ = load_all(ds.train);
  valid_ = load_all(ds.valid);
  test_ = load_all(ds.test);
}

const std::vector<PileupEvent>& PileupTask::events(data::Split split) const {
  return split == data::Split::Train ? train_ : split == data::Split::Valid ? valid_ : test_;
}

engine::Tensor pileup_logits(models::PileupModel& model, const PileupEvent& ev, engine::Device device) {
  const int64_t n = static_cast<int64_t>(ev.size());
  std::vector<float> coords(static_cast<size_t>(n) * 4);
  for (int64_t i = 0; i < n; ++i) {
    coords[i * 4 + 0] = coords[i * 4 + 2] = ev.eta[i];
    coords[i * 4 + 1] = coords[i * 4 + 3] = ev.phi[i];
  }
  const engine::Tensor x = engine::from_vector(ev.features(), {n, data::pileup::kFeatures}).to(device);
  // [2, E] the 60-NN (eta, phi) graph, for the models that read it (pct). Rebuilt per call on purpose: the kd-tree
  // search costs ~1-2% of a pct step, while keeping every event's graph would hold ~10 MB per event.
  engine::Tensor edges;
  if (models::reads_edge_index(model.name())) {
    std::vector<float> eta_phi(static_cast<size_t>(n) * 2);
    for (int64_t i = 0; i < n; ++i) eta_phi[i * 2] = ev.eta[i], eta_phi[i * 2 + 1] = ev.phi[i];
    edges = data::knn_graph(eta_phi, 60).to(device);
  }
  return model.forward({x, engine::from_vector(coords, {n, 4}).to(device), edges, engine::Tensor()});
}

std::vector<double> pileup_probabilities(models::PileupModel& model, const PileupEvent& ev, engine::Device device) {
  return engine::sigmoid(pileup_logits(model, ev, device)).to(engine::Device::cpu()).to(engine::DType::F64).to_vector<double>();
}

std::vector<double> PileupTask::probabilities(const PileupEvent& ev) { return pileup_probabilities(model_, ev, device_); }

nlohmann::json compare_with_baselines(const std::vector<const PileupEvent*>& events, const ProbabilityFn& prob,
                                      const std::string& model_name) {
  data::pileup::JetResponseAccumulator jets_model, jets_chs, jets_puppi;
  std::vector<double> s_model, s_puppi, s_chs;
  std::vector<int64_t> labels;
  for (const PileupEvent* ev : events) {
    const std::vector<double> p = prob(*ev), puppi = data::pileup::puppi_weights(*ev);
    for (size_t i = 0; i < ev->size(); ++i)
      if (ev->is_neutral_target(i))
        s_model.push_back(p[i]), s_puppi.push_back(puppi[i]), s_chs.push_back(1.0), labels.push_back(ev->label[i]);
    jets_model.add(*ev, data::pileup::model_weights(*ev, p, puppi));
    jets_chs.add(*ev, data::pileup::chs_weights(*ev));
    jets_puppi.add(*ev, puppi);
  }
  auto row = [&](const std::vector<double>& s, const data::pileup::JetResponseAccumulator& j) {
    const auto r = j.result();
    return nlohmann::json{{"roc_auc", data::pileup::roc_auc(s, labels)},
                          {"average_precision", data::pileup::average_precision(s, labels)},
                          {"accuracy", data::pileup::accuracy_at(s, labels, 0.5)},
                          {"leading_jet_pt_bias", r.bias},
                          {"leading_jet_pt_resolution", r.resolution},
                          {"leading_jet_pt_median", r.median},
                          {"leading_jet_pt_resolution_q68", r.resolution_q68},
                          {"leading_jet_response_per_event", r.per_event},
                          {"jet_multiplicity_diff", r.multiplicity_diff},
                          {"neutral_targets", labels.size()}};
  };
  return {{model_name, row(s_model, jets_model)}, {"CHS", row(s_chs, jets_chs)}, {"PUPPI-style", row(s_puppi, jets_puppi)}};
}

void print_comparison(const std::string& title, const nlohmann::json& rows) {
  fmt::print("{:<14} {:>8} {:>8} {:>10} {:>10} {:>10} {:>10}\n", title, "ROC AUC", "AP", "jet bias", "jet resol.",
             "median", "q68 resol.");
  for (const auto& [name, r] : rows.items())
    fmt::print("{:<14} {:8.4f} {:8.4f} {:10.4f} {:10.4f} {:10.4f} {:10.4f}\n", name, r["roc_auc"].get<double>(),
               r["average_precision"].get<double>(), r["leading_jet_pt_bias"].get<double>(),
               r["leading_jet_pt_resolution"].get<double>(), r["leading_jet_pt_median"].get<double>(),
               r["leading_jet_pt_resolution_q68"].get<double>());
}

StepOutput PileupTask::run(data::Split split, size_t index, bool with_metrics) {
  const PileupEvent& ev = events(split).at(index);
  const int64_t n = static_cast<int64_t>(ev.size());
  std::vector<int64_t> mask(static_cast<size_t>(n));
  for (size_t i = 0; i < ev.size(); ++i) mask[i] = ev.is_neutral_target(i);
  const engine::Tensor z = pileup_logits(model_, ev, device_);  // [N]
  StepOutput out;
  out.loss = models::focal_loss(z, engine::from_vector(ev.label, {n}).to(device_),
                                engine::from_vector(mask, {n}).to(device_));
  out.hits = static_cast<double>(n);
  if (with_metrics) {
    const auto p = engine::sigmoid(z.detach()).to(engine::Device::cpu()).to(engine::DType::F64).to_vector<double>();
    std::vector<double> score;
    std::vector<int64_t> label;
    for (size_t i = 0; i < ev.size(); ++i)
      if (mask[i]) score.push_back(p[i]), label.push_back(ev.label[i]);
    out.metrics = {{"average_precision", data::pileup::average_precision(score, label)},
                   {"roc_auc", data::pileup::roc_auc(score, label)},
                   {"accuracy", data::pileup::accuracy_at(score, label, 0.5)}};
  }
  return out;
}

}  // namespace app
