// End-to-end check of the tracking pipeline against the paper: HEPT's published checkpoint (trained on
// tracking-60k) embeds the real TrackML sample event through OUR reader, feature builder and metrics, and must reach
// the accuracy the paper reports for it (paper-results.md: HEPT on Tracking-60k, accuracy@0.9 ~ 92%). A wrong
// feature scale, coordinate, pT cut or metric definition would show up here as a large drop. Skips without the data.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "data/detector.h"
#include "data/features.h"
#include "data/trackml_io.h"
#include "engine/engine.h"
#include "models/hept.h"
#include "models/tracking_metrics.h"

TEST_CASE("published HEPT checkpoint on the real sample event: accuracy@0.9 as in the paper") {
  const char* root = std::getenv("HEP_SHARED_DATA");
  const std::string base = root ? std::string(root) : "";
  const std::string ckpt = base + "/hept/tracking-60k-model.pt", event = base + "/trackml/event000000001";
  if (!root || !std::filesystem::exists(ckpt) || !std::filesystem::exists(event + "-truth.csv.gz")) {
    MESSAGE("SKIPPED: HEP_SHARED_DATA/hept or trackml sample not found");
    return;
  }
  const auto model = models::load_published_hept(ckpt);
  data::FeatureOptions fo;
  fo.n_sectors = 1;
  fo.graphs = false;
  const data::Sample s = data::build_samples(data::read_event(event), data::builtin_detector(), fo).at(0);
  engine::NoGradGuard no_grad;
  const engine::Tensor emb = model->forward({s.x, s.coords, engine::Tensor(), engine::Tensor()});
  const models::TrackingMetrics m = models::tracking_metrics(emb, s.particle_id, s.pt, s.reconstructable);
  MESSAGE("hits " << s.num_hits() << ", accuracy@0.9 " << m.accuracy[2] << ", recall@0.9 " << m.recall[2]);
  CHECK(m.accuracy[2] > 0.85);
}
