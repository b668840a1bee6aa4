// Tracking task (see tracking_task.h).
#include "apps/lib/tracking_task.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "data/features.h"
#include "data/graphs.h"
#include "data/seeding.h"
#include "models/common.h"
#include "models/tracking_loss.h"
#include "models/tracking_metrics.h"

namespace app {

static_assert(models::kSeedInputs == data::kSeedFeatures, "the models' seed input is data::triplet_seeds' output");

ExtraInputs extra_inputs(const nlohmann::json& model_config) {
  const data::VertexZMethod method =
      data::vertex_z_method(model_config.value(models::kVertexZEstimate, std::string("cluster_eta")));
  ExtraInputs extras;
  if (model_config.value(models::kVertexZInput, false)) extras.vertex_z = method;
  extras.seeds = model_config.value(models::kSeedInput, false) || model_config.value(models::kSeedCoords, false);
  return extras;
}

models::ModelInput model_input(const data::Sample& s, engine::Device device, const ExtraInputs& extras,
                               const engine::Tensor& seeds) {
  models::ModelInput in{s.x.to(device), s.coords.to(device), s.knn_edges.to(device), engine::Tensor(), engine::Tensor()};
  if (extras.vertex_z) in.vertex_z = data::vertex_z_estimates(s.x, *extras.vertex_z).to(device);
  if (extras.seeds) in.seeds = (seeds.defined() ? seeds : data::triplet_seeds(s.x)).to(device);
  return in;
}

nlohmann::json input_statistics(const data::Dataset& dataset, size_t max_samples, const nlohmann::json& model_config) {
  const size_t n_samples = std::min(max_samples, dataset.size(data::Split::Train));
  if (n_samples == 0) throw std::invalid_argument("input standardisation: the training split is empty");
  const ExtraInputs extras = extra_inputs(model_config);
  const bool seed_features = model_config.value(models::kSeedInput, false);  // (a model may read them only as coords)
  std::vector<double> sum, sum_sq;
  double count = 0;
  for (size_t i = 0; i < n_samples; ++i) {
    const models::ModelInput in = model_input(dataset.load(data::Split::Train, i), engine::Device::cpu(), extras);
    const engine::Tensor x =
        models::encoder_input(in, extras.vertex_z.has_value(), seed_features).to(engine::DType::F64).contiguous();  // [N, F]
    const int64_t n = x.size(0), f = x.size(1);
    sum.resize(static_cast<size_t>(f), 0.0), sum_sq.resize(static_cast<size_t>(f), 0.0);
    const double* v = x.data<double>();
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < f; ++c) sum[c] += v[r * f + c], sum_sq[c] += v[r * f + c] * v[r * f + c];
    count += static_cast<double>(n);
  }
  if (count == 0) throw std::invalid_argument("input standardisation: the training samples have no hits");
  std::vector<double> mean(sum.size()), stddev(sum.size());
  for (size_t c = 0; c < sum.size(); ++c) {
    mean[c] = sum[c] / count;
    const double var = std::max(0.0, sum_sq[c] / count - mean[c] * mean[c]);
    stddev[c] = var > 1e-12 * std::max(1.0, mean[c] * mean[c]) ? std::sqrt(var) : 1.0;
  }
  return {{"mean", mean}, {"std", stddev}};
}

TrackingTask::TrackingTask(const std::string& cache_dir, models::TrackingModel& model, engine::Device device,
                           TrackingTaskOptions options)
    : dataset_(cache_dir), model_(model), device_(device), extra_inputs_(extra_inputs(model.config())),
      options_(std::move(options)) {
  if (options_.loss_pairs != "knn" && options_.loss_pairs != "radius")
    throw std::invalid_argument("loss pairs must be 'knn' or 'radius', not '" + options_.loss_pairs + "'");
}

namespace {
constexpr double kEvaluationPtMin = 0.9;  // HEPT's anchor threshold, for the validation and test losses
}  // namespace

StepOutput TrackingTask::run(data::Split split, size_t index, bool with_metrics) {
  const data::Sample s = dataset_.load(split, index);
  engine::Tensor seeds;  // [N, 5], only for a model with the seed input
  if (extra_inputs_.seeds) {
    engine::Tensor& cached = seeds_[{split, index}];
    if (!cached.defined()) cached = data::triplet_seeds(s.x);
    seeds = cached;
  }
  const engine::Tensor emb = model_.forward(model_input(s, device_, extra_inputs_, seeds));  // [N, d]
  engine::Tensor pairs = options_.loss_pairs == "knn" ? s.knn_edges : s.point_pairs;  // [2, E]
  if (split == data::Split::Train && options_.random_pairs > 0)
    pairs = data::with_random_pairs(pairs, s.num_hits(), options_.random_pairs);
  StepOutput out;
  out.loss = models::infonce_loss(emb, pairs.to(device_), s.particle_id.to(device_), s.pt.to(device_),
                                  s.reconstructable.to(device_), options_.tau,
                                  split == data::Split::Train ? options_.loss_pt_min : kEvaluationPtMin,
                                  options_.loss_pairs == "radius" ? models::InfoNCEAverage::PerParticle
                                                                  : models::InfoNCEAverage::PerPair);
  out.hits = static_cast<double>(s.num_hits());
  if (with_metrics) {
    const models::TrackingMetrics m =
        models::tracking_metrics(emb.detach(), s.particle_id, s.pt, s.reconstructable);
    out.metrics = m.as_map();
  }
  return out;
}

}  // namespace app
