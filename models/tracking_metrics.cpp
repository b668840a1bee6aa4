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

namespace {

// One query hit's neighbours: k_i (its particle's other hits), how many of the first min(k_i, k) and of all k
// nearest hits in the embedding share its particle.
struct QueryMatches {
  int64_t hit = 0, ki = 0, first = 0, matches_first = 0, matches = 0;
};

// Every reconstructable hit with a particle and k_i > 0, in hit order.
std::vector<QueryMatches> query_matches(const engine::Tensor& emb, const std::vector<int64_t>& pid,
                                        const std::vector<int64_t>& rec, int64_t max_k) {
  const int64_t n = emb.size(0);
  std::unordered_map<int64_t, int64_t> hits_of;
  for (int64_t id : pid) hits_of[id]++;
  const int64_t k = std::min<int64_t>(max_k, std::max<int64_t>(n - 1, 0));
  if (k == 0) return {};
  const std::vector<int64_t> nbr =
      layers::knn(emb.detach(), k, /*include_self=*/false).to(engine::Device::cpu()).to_vector<int64_t>();  // [n * k]
  std::vector<QueryMatches> out;
  for (int64_t i = 0; i < n; ++i) {
    if (pid[i] == 0 || rec[i] == 0) continue;
    QueryMatches q;
    q.hit = i;
    q.ki = hits_of[pid[i]] - 1;
    if (q.ki == 0) continue;
    q.first = std::min(q.ki, k);
    for (int64_t j = 0; j < k; ++j) {
      const bool same = pid[nbr[i * k + j]] == pid[i];
      q.matches += same;
      if (j < q.first) q.matches_first += same;
    }
    out.push_back(q);
  }
  return out;
}

}  // namespace

TrackingMetrics tracking_metrics(const engine::Tensor& emb, const engine::Tensor& particle_id, const engine::Tensor& pt,
                                 const engine::Tensor& reconstructable, MetricOptions o) {
  const auto pid = particle_id.to_vector<int64_t>();
  const auto p = pt.to(engine::DType::F64).to_vector<double>();
  TrackingMetrics m;
  double acc[3] = {}, prec[3] = {}, rec_sum[3] = {};
  for (const QueryMatches& q : query_matches(emb, pid, reconstructable.to_vector<int64_t>(), o.k)) {
    if (o.drop_unmatched_queries && q.matches == 0) continue;
    const double accuracy_i = static_cast<double>(q.matches_first) / static_cast<double>(q.first);
    for (int t = 0; t < 3; ++t) {
      if (!(p[q.hit] > TrackingMetrics::kThresholds[t])) continue;
      acc[t] += accuracy_i;
      prec[t] += static_cast<double>(q.matches) / static_cast<double>(o.k);
      rec_sum[t] += static_cast<double>(q.matches) / static_cast<double>(q.ki);
      m.queries[t]++;
      if (t == 2) m.accuracy_09_by_query.push_back({q.hit, accuracy_i});
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
