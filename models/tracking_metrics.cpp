// Tracking metrics at k (see tracking_metrics.h).
#include "models/tracking_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "layers/knn.h"

namespace models {

std::map<std::string, double> TrackingMetrics::as_map() const {
  std::map<std::string, double> m;
  for (int t = 0; t < 3; ++t) {
    const std::string thr = fmt::format("{}", kThresholds[t]);
    m["accuracy@" + thr] = accuracy[t];
    m["precision@" + thr] = precision[t];
    m["recall@" + thr] = recall[t];
  }
  return m;
}

TrackingMetrics tracking_metrics(const engine::Tensor& emb, const engine::Tensor& particle_id, const engine::Tensor& pt,
                                 const engine::Tensor& reconstructable, MetricOptions o) {
  const int64_t n = emb.size(0);
  const auto pid = particle_id.to_vector<int64_t>();
  const auto p = pt.to(engine::DType::F64).to_vector<double>();
  const auto rec = reconstructable.to_vector<int64_t>();
  std::unordered_map<int64_t, int64_t> hits_of;
  for (int64_t id : pid) hits_of[id]++;
  const int64_t k = std::min<int64_t>(o.k, std::max<int64_t>(n - 1, 0));
  std::vector<int64_t> nbr;
  if (n > 1) nbr = layers::knn(emb.detach(), k, /*include_self=*/false).to(engine::Device::cpu()).to_vector<int64_t>();
  TrackingMetrics m;
  double acc[3] = {}, prec[3] = {}, rec_sum[3] = {};
  for (int64_t i = 0; i < n; ++i) {
    if (pid[i] == 0 || rec[i] == 0) continue;
    const int64_t ki = hits_of[pid[i]] - 1;
    if (ki == 0 || k == 0) continue;
    int64_t matches = 0, matches_first = 0;
    const int64_t first = std::min(ki, k);
    for (int64_t j = 0; j < k; ++j) {
      const bool same = pid[nbr[i * k + j]] == pid[i];
      matches += same;
      if (j < first) matches_first += same;
    }
    if (o.drop_unmatched_queries && matches == 0) continue;
    const double accuracy_i = static_cast<double>(matches_first) / static_cast<double>(first);
    for (int t = 0; t < 3; ++t) {
      if (!(p[i] > TrackingMetrics::kThresholds[t])) continue;
      acc[t] += accuracy_i;
      prec[t] += static_cast<double>(matches) / static_cast<double>(o.k);
      rec_sum[t] += static_cast<double>(matches) / static_cast<double>(ki);
      m.queries[t]++;
      if (t == 2) m.accuracy_09_by_query.push_back({i, accuracy_i});
    }
  }
  for (int t = 0; t < 3; ++t) {
    const double q = static_cast<double>(m.queries[t]);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    m.accuracy[t] = q > 0 ? acc[t] / q : nan;
    m.precision[t] = q > 0 ? prec[t] / q : nan;
    m.recall[t] = q > 0 ? rec_sum[t] / q : nan;
  }
  return m;
}

}  // namespace models
