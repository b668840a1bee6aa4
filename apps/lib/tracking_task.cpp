// Tracking task (see tracking_task.h).
#include "apps/lib/tracking_task.h"

#include <stdexcept>

#include "data/graphs.h"
#include "models/tracking_loss.h"
#include "models/tracking_metrics.h"

namespace app {

models::ModelInput model_input(const data::Sample& s, engine::Device device) {
  return {s.x.to(device), s.coords.to(device), s.knn_edges.to(device)};
}

TrackingTask::TrackingTask(const std::string& cache_dir, models::TrackingModel& model, engine::Device device,
                           TrackingTaskOptions options)
    : dataset_(cache_dir), model_(model), device_(device), options_(std::move(options)) {
  if (options_.loss_pairs != "knn" && options_.loss_pairs != "radius")
    throw std::invalid_argument("loss pairs must be 'knn' or 'radius', not '" + options_.loss_pairs + "'");
}

StepOutput TrackingTask::run(data::Split split, size_t index, bool with_metrics) {
  const data::Sample s = dataset_.load(split, index);
  const engine::Tensor emb = model_.forward(model_input(s, device_));  // [N, d]
  engine::Tensor pairs = options_.loss_pairs == "knn" ? s.knn_edges : s.point_pairs;  // [2, E]
  if (split == data::Split::Train && options_.random_pairs > 0)
    pairs = data::with_random_pairs(pairs, s.num_hits(), options_.random_pairs);
  StepOutput out;
  out.loss = models::infonce_loss(emb, pairs.to(device_), s.particle_id.to(device_), s.pt.to(device_),
                                  s.reconstructable.to(device_), options_.tau, /*pt_min=*/0.9,
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
