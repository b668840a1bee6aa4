// HEPT's tracking metrics (hept.md 6.1, lampa-models.md 7.3), per sample: for each pT threshold in {0, 0.5, 0.9},
// queries are hits with a particle, reconstructable, pT > threshold; k_i = hits of the query's particle in the
// sample minus one (queries with k_i = 0 are skipped); the 19 nearest other hits in embedding space (exact L2,
// ties by index) give accuracy_i = matches among the first min(k_i, 19) / min(k_i, 19), precision_i = matches / 19,
// recall_i = matches / k_i. The sample's value is the mean over queries. (The reference asserts k_i <= 19; a longer
// particle here is scored over its 19 nearest.) Lampa's variant drops queries with no match at all (an option).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace models {

struct MetricOptions {
  bool drop_unmatched_queries = false;  // Lampa's "efficiency" filter (lampa-models.md 7.3 step 5)
  int64_t k = 19;
};

// accuracy_i of one query hit: where in the detector a model succeeds (apps/infer pools them in bands of |eta|).
struct QueryAccuracy {
  int64_t hit = 0;  // row of the sample
  double accuracy = 0;
};

struct TrackingMetrics {
  static constexpr double kThresholds[3] = {0.0, 0.5, 0.9};
  double accuracy[3] = {}, precision[3] = {}, recall[3] = {};  // NaN when a threshold has no query
  int64_t queries[3] = {};
  std::vector<QueryAccuracy> accuracy_09_by_query;  // the queries above 0.9 GeV (the model-selection metric's), in hit order
  // {"accuracy@0.9": ..., "precision@0.9": ..., "recall@0.9": ..., "accuracy@0": ..., ...}
  std::map<std::string, double> as_map() const;
};

// emb [N, d] (any device/float dtype); particle_id [N] int64; pt [N] float; reconstructable [N] int64.
TrackingMetrics tracking_metrics(const engine::Tensor& emb, const engine::Tensor& particle_id, const engine::Tensor& pt,
                                 const engine::Tensor& reconstructable, MetricOptions options = {});

}  // namespace models
