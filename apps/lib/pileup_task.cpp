// Pile-up task (see pileup_task.h).
#include "apps/lib/pileup_task.h"

#include <fmt/format.h>

#include <filesystem>

#include "apps/lib/datasets.h"
#include "data/pileup_metrics.h"
#include "engine/engine.h"
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
  const std::string dir = fmt::format("{}/pileup-n{}-seed{}", default_cache_root(), n_events, seed);
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

engine::Tensor PileupTask::logits(const PileupEvent& ev) {
  const int64_t n = static_cast<int64_t>(ev.size());
  std::vector<float> coords(static_cast<size_t>(n) * 4);
  for (int64_t i = 0; i < n; ++i) {
    coords[i * 4 + 0] = coords[i * 4 + 2] = ev.eta[i];
    coords[i * 4 + 1] = coords[i * 4 + 3] = ev.phi[i];
  }
  const engine::Tensor x = engine::from_vector(ev.features(), {n, data::pileup::kFeatures}).to(device_);
  return model_.forward({x, engine::from_vector(coords, {n, 4}).to(device_), engine::Tensor()});
}

std::vector<double> PileupTask::probabilities(const PileupEvent& ev) {
  return engine::sigmoid(logits(ev)).to(engine::Device::cpu()).to(engine::DType::F64).to_vector<double>();
}

StepOutput PileupTask::run(data::Split split, size_t index, bool with_metrics) {
  const PileupEvent& ev = events(split).at(index);
  const int64_t n = static_cast<int64_t>(ev.size());
  std::vector<int64_t> mask(static_cast<size_t>(n));
  for (size_t i = 0; i < ev.size(); ++i) mask[i] = ev.is_neutral_target(i);
  const engine::Tensor z = logits(ev);  // [N]
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
