// app::TrackingTask's loss anchors: the training steps use TrackingTaskOptions::loss_pt_min, the validation and test
// losses HEPT's 0.9 whatever it is; both equal the InfoNCE loss computed directly on the sample's embeddings.
#include <doctest/doctest.h>

#include <filesystem>

#include "apps/lib/tracking_task.h"
#include "data/cache.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "models/tracking_loss.h"
#include "small_cache.h"

namespace fs = std::filesystem;
using namespace engine;

namespace {

// The InfoNCE loss of sample `index` of `split` with anchors above pt_min, as the task computes it (radius pairs,
// per-particle mean, no random pairs).
double direct_loss(models::TrackingModel& model, const data::Dataset& dataset, data::Split split, size_t index,
                   double pt_min) {
  NoGradGuard no_grad;
  const data::Sample s = dataset.load(split, index);
  const Tensor emb = model.forward(app::model_input(s, Device::cpu(), app::extra_inputs(model.config())));  // [N, d]
  return models::infonce_loss(emb, s.point_pairs, s.particle_id, s.pt, s.reconstructable, 0.05, pt_min,
                              models::InfoNCEAverage::PerParticle)
      .item();
}

}  // namespace

TEST_CASE("tracking task: the training loss's anchors follow loss_pt_min, the evaluation losses keep 0.9") {
  const std::string root = (fs::temp_directory_path() / "hep-test-tracking-task").string();
  const std::string cache = small_simulated_cache(root, /*radius_pairs=*/true);
  const data::Dataset dataset(cache);
  REQUIRE(dataset.size(data::Split::Train) >= 1);
  REQUIRE(dataset.size(data::Split::Valid) >= 1);

  auto model = models::build_tracking_model("hmambav2", {{"size", "S"}, {"drop_out", 0.0}});
  auto loss_of = [&](double loss_pt_min, data::Split split) {
    app::TrackingTaskOptions options;
    options.random_pairs = 0;  // the pairs of the sample alone, as direct_loss takes them
    options.loss_pt_min = loss_pt_min;
    app::TrackingTask task(cache, *model, Device::cpu(), options);
    NoGradGuard no_grad;
    return task.run(split, 0, /*with_metrics=*/false).loss.item();
  };
  const double train_hept = loss_of(0.9, data::Split::Train), train_all = loss_of(0.0, data::Split::Train);
  CHECK(train_hept == doctest::Approx(direct_loss(*model, dataset, data::Split::Train, 0, 0.9)).epsilon(1e-12));
  CHECK(train_all == doctest::Approx(direct_loss(*model, dataset, data::Split::Train, 0, 0.0)).epsilon(1e-12));
  CHECK(train_all != doctest::Approx(train_hept).epsilon(1e-6));  // the soft particles are anchors too
  const double valid_hept = direct_loss(*model, dataset, data::Split::Valid, 0, 0.9);
  CHECK(loss_of(0.0, data::Split::Valid) == doctest::Approx(valid_hept).epsilon(1e-12));
  CHECK(loss_of(0.9, data::Split::Valid) == doctest::Approx(valid_hept).epsilon(1e-12));
  fs::remove_all(root);
}
