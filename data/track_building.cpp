// DBSCAN track building and its tuning (see track_building.h).
#include "data/track_building.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <nanoflann.hpp>
#include <stdexcept>
#include <unordered_map>

namespace data {

namespace {

struct Embeddings {
  const float* data;
  int64_t n, dim;
  size_t kdtree_get_point_count() const { return static_cast<size_t>(n); }
  float kdtree_get_pt(size_t i, size_t d) const { return data[i * static_cast<size_t>(dim) + d]; }
  template <class BBox>
  bool kdtree_get_bbox(BBox&) const { return false; }
};
using Tree = nanoflann::KDTreeSingleIndexAdaptor<nanoflann::L2_Simple_Adaptor<float, Embeddings, double>, Embeddings,
                                                 -1, uint32_t>;

// Neighbours within eps of every point (self included), sorted by index.
std::vector<std::vector<uint32_t>> radius_neighbours(const Tree& tree, const Embeddings& pts, double eps) {
  std::vector<std::vector<uint32_t>> nb(static_cast<size_t>(pts.n));
#pragma omp parallel for schedule(dynamic, 256)
  for (int64_t i = 0; i < pts.n; ++i) {
    std::vector<std::pair<uint32_t, double>> found;
    nanoflann::SearchParams params(32, 0.0, false);
    tree.radiusSearch(pts.data + i * pts.dim, eps * eps, found, params);
    auto& out = nb[static_cast<size_t>(i)];
    for (const auto& f : found) out.push_back(f.first);
    std::sort(out.begin(), out.end());
  }
  return nb;
}

std::vector<int64_t> dbscan(const std::vector<std::vector<uint32_t>>& nb, int min_samples) {
  const size_t n = nb.size();
  std::vector<int64_t> label(n, 0);
  int64_t next = 1;
  std::vector<uint32_t> stack;
  for (size_t i = 0; i < n; ++i) {
    if (label[i] != 0 || static_cast<int>(nb[i].size()) < min_samples) continue;
    const int64_t id = next++;
    label[i] = id;
    stack.assign(1, static_cast<uint32_t>(i));
    while (!stack.empty()) {
      const uint32_t p = stack.back();
      stack.pop_back();
      if (static_cast<int>(nb[p].size()) < min_samples) continue;  // border point: does not expand
      for (uint32_t q : nb[p])
        if (label[q] == 0) label[q] = id, stack.push_back(q);
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (label[i] == 0) label[i] = next++;  // noise: one-hit tracks
  return label;
}

}  // namespace

std::vector<int64_t> cluster_embeddings(const float* emb, int64_t n, int64_t dim, const ClusterOptions& o) {
  if (n < 0 || dim <= 0) throw std::invalid_argument("cluster_embeddings: need n >= 0 and dim > 0");
  if (!(o.eps > 0) || o.min_samples < 1) throw std::invalid_argument("cluster_embeddings: need eps > 0, min_samples >= 1");
  if (n == 0) return {};
  const Embeddings pts{emb, n, dim};
  Tree tree(static_cast<int>(dim), pts, nanoflann::KDTreeSingleIndexAdaptorParams(16));
  tree.buildIndex();
  return dbscan(radius_neighbours(tree, pts, o.eps), o.min_samples);
}

double unweighted_trackml_score(const std::vector<int64_t>& pid, const std::vector<int64_t>& track) {
  if (pid.size() != track.size()) throw std::invalid_argument("unweighted_trackml_score: length mismatch");
  std::unordered_map<int64_t, int64_t> particle_hits, track_hits;
  std::map<std::pair<int64_t, int64_t>, int64_t> common;
  int64_t total = 0;
  for (size_t i = 0; i < pid.size(); ++i) {
    track_hits[track[i]]++;
    if (pid[i] != 0) particle_hits[pid[i]]++, total++;
    common[{track[i], pid[i]}]++;
  }
  if (total == 0) return 0;
  // the majority particle of each track (ties: the smaller id, as map order gives)
  std::unordered_map<int64_t, std::pair<int64_t, int64_t>> majority;  // track -> (particle, hits)
  for (const auto& [key, c] : common) {
    auto& m = majority[key.first];
    if (c > m.second) m = {key.second, c};
  }
  int64_t good = 0;
  for (const auto& [t, m] : majority) {
    if (m.first == 0) continue;
    if (2 * m.second > track_hits[t] && 2 * m.second > particle_hits[m.first]) good += m.second;
  }
  return static_cast<double>(good) / static_cast<double>(total);
}

TunedClustering tune_clustering(const std::vector<LabelledEmbedding>& samples) {
  std::vector<Embeddings> pts;  // the trees keep references: reserved, never reallocated
  pts.reserve(samples.size());
  std::vector<std::unique_ptr<Tree>> trees;
  std::vector<const std::vector<int64_t>*> particle_ids;
  std::vector<double> d1;  // distance to the nearest other hit, over a subsample of each sample
  for (const LabelledEmbedding& s : samples) {
    if (s.n < 2) continue;
    pts.push_back({s.emb, s.n, s.dim});
    particle_ids.push_back(&s.particle_id);
    trees.push_back(
        std::make_unique<Tree>(static_cast<int>(s.dim), pts.back(), nanoflann::KDTreeSingleIndexAdaptorParams(16)));
    trees.back()->buildIndex();
    for (int64_t i = 0; i < s.n; i += std::max<int64_t>(1, s.n / 2000)) {
      uint32_t idx[2];
      double d2[2];
      trees.back()->knnSearch(s.emb + i * s.dim, 2, idx, d2);
      d1.push_back(std::sqrt(d2[1]));
    }
  }
  if (d1.empty()) return {0.1, 2, 0};
  std::nth_element(d1.begin(), d1.begin() + d1.size() / 2, d1.end());
  const double scale = std::max(d1[d1.size() / 2], 1e-6);
  TunedClustering best;
  best.score = -1;
  for (int step = -4; step <= 16; ++step) {  // eps from scale / 2 to 16 scale
    const double eps = scale * std::exp2(0.25 * step);
    std::array<double, 3> mean_score{};  // per min_samples 1, 2, 3
    for (size_t k = 0; k < trees.size(); ++k) {
      const auto nb = radius_neighbours(*trees[k], pts[k], eps);
      const std::vector<int64_t>& pid = *particle_ids[k];
      for (int ms = 1; ms <= 3; ++ms)
        mean_score[ms - 1] += unweighted_trackml_score(pid, dbscan(nb, ms)) / static_cast<double>(trees.size());
    }
    for (int ms = 1; ms <= 3; ++ms)
      if (mean_score[ms - 1] > best.score) best = {eps, ms, mean_score[ms - 1]};
    if (*std::max_element(mean_score.begin(), mean_score.end()) < 0.5 * best.score) break;
  }
  return best;
}

}  // namespace data
