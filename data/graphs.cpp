// kd-tree neighbour searches (nanoflann) and edge-list assembly (symmetrise + sort + unique via 64-bit keys).
#include "data/graphs.h"

#include <algorithm>
#include <cmath>
#include <nanoflann.hpp>
#include <stdexcept>
#include <string>

#include "engine/engine.h"

namespace data {

namespace {

// nanoflann dataset adaptor over a row-major [N, 2] float array.
struct PointCloud2D {
  const std::vector<float>& pts;
  size_t kdtree_get_point_count() const { return pts.size() / 2; }
  float kdtree_get_pt(size_t i, size_t d) const { return pts[2 * i + d]; }
  template <class BBox> bool kdtree_get_bbox(BBox&) const { return false; }
};

using KdTree = nanoflann::KDTreeSingleIndexAdaptor<nanoflann::L2_Simple_Adaptor<float, PointCloud2D, double>,
                                                   PointCloud2D, 2, uint32_t>;

void check_points(const std::vector<float>& points, const char* op) {
  if (points.size() % 2 != 0) throw std::invalid_argument(std::string(op) + ": points must be [N, 2] row-major");
  if (points.size() / 2 >= (1u << 31)) throw std::invalid_argument(std::string(op) + ": too many points");
}

// The k nearest points of every point (itself included), sorted by (squared distance, index).
std::vector<std::vector<std::pair<double, int32_t>>> nearest(const std::vector<float>& points, int k) {
  const size_t n = points.size() / 2;
  std::vector<std::vector<std::pair<double, int32_t>>> out(n);
  if (n == 0 || k <= 0) return out;
  PointCloud2D cloud{points};
  KdTree tree(2, cloud, nanoflann::KDTreeSingleIndexAdaptorParams(16));
  tree.buildIndex();
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), n);
#pragma omp parallel for schedule(dynamic, 256)
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
    std::vector<uint32_t> idx(kk);
    std::vector<double> d2(kk);
    const float q[2] = {points[2 * i], points[2 * i + 1]};
    const size_t found = tree.knnSearch(q, kk, idx.data(), d2.data());
    auto& row = out[static_cast<size_t>(i)];
    row.resize(found);
    for (size_t j = 0; j < found; ++j) row[j] = {d2[j], static_cast<int32_t>(idx[j])};
    std::sort(row.begin(), row.end());
  }
  return out;
}

engine::Tensor edges_from_keys(std::vector<uint64_t>& keys) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  const int64_t e = static_cast<int64_t>(keys.size());
  std::vector<int64_t> flat(static_cast<size_t>(2 * e));  // [2, E]
  for (int64_t j = 0; j < e; ++j) {
    flat[static_cast<size_t>(j)] = static_cast<int64_t>(keys[static_cast<size_t>(j)] >> 32);
    flat[static_cast<size_t>(e + j)] = static_cast<int64_t>(keys[static_cast<size_t>(j)] & 0xffffffffu);
  }
  return engine::from_vector(flat, {2, e});
}

uint64_t key(uint64_t a, uint64_t b) { return (a << 32) | b; }

}  // namespace

std::vector<std::vector<int32_t>> knn_neighbors(const std::vector<float>& points, int k) {
  check_points(points, "knn_neighbors");
  auto near = nearest(points, k);
  std::vector<std::vector<int32_t>> out(near.size());
  for (size_t i = 0; i < near.size(); ++i) {
    for (const auto& [d2, j] : near[i]) out[i].push_back(j);
  }
  return out;
}

std::vector<std::vector<int32_t>> radius_neighbors(const std::vector<float>& points, double r, int max_neighbors) {
  check_points(points, "radius_neighbors");
  // The max_neighbors + 1 nearest points hold every allowed neighbour plus (normally) the point itself.
  auto near = nearest(points, max_neighbors + 1);
  std::vector<std::vector<int32_t>> out(near.size());
  for (size_t i = 0; i < near.size(); ++i) {
    for (const auto& [d2, j] : near[i]) {
      if (static_cast<size_t>(j) == i || !(d2 < r * r)) continue;
      if (static_cast<int>(out[i].size()) < max_neighbors) out[i].push_back(j);
    }
  }
  return out;
}

engine::Tensor undirected_edges(const std::vector<std::vector<int32_t>>& neighbors, bool keep_self_loops) {
  std::vector<uint64_t> keys;
  size_t total = 0;
  for (const auto& row : neighbors) total += row.size();
  keys.reserve(2 * total);
  for (size_t i = 0; i < neighbors.size(); ++i) {
    for (int32_t j : neighbors[i]) {
      if (!keep_self_loops && static_cast<size_t>(j) == i) continue;
      keys.push_back(key(i, static_cast<uint64_t>(j)));
      keys.push_back(key(static_cast<uint64_t>(j), i));
    }
  }
  return edges_from_keys(keys);
}

engine::Tensor knn_graph(const std::vector<float>& points, int k) {
  return undirected_edges(knn_neighbors(points, k), /*keep_self_loops=*/true);
}

engine::Tensor hept_point_pairs(const std::vector<float>& points, const std::vector<int64_t>& particle_id, double r,
                                int max_neighbors) {
  check_points(points, "hept_point_pairs");
  const size_t n = points.size() / 2;
  if (particle_id.size() != n) throw std::invalid_argument("hept_point_pairs: particle_id length differs from points");
  // Points grouped by particle (p != 0).
  std::vector<int32_t> order;
  for (size_t i = 0; i < n; ++i) {
    if (particle_id[i] != 0) order.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return particle_id[a] < particle_id[b]; });
  bool any_group = false;
  for (size_t a = 1; a < order.size() && !any_group; ++a) any_group = particle_id[order[a]] == particle_id[order[a - 1]];
  if (!any_group) return engine::empty({2, 0}, engine::DType::I64);
  // Symmetric neighbour lists (to_undirected of the radius graph).
  auto directed = radius_neighbors(points, r, max_neighbors);
  std::vector<std::vector<int32_t>> adj(n);
  for (size_t i = 0; i < n; ++i) {
    for (int32_t j : directed[i]) {
      adj[i].push_back(j);
      adj[static_cast<size_t>(j)].push_back(static_cast<int32_t>(i));
    }
  }
  std::vector<uint64_t> keys;
  std::vector<uint32_t> mark(n, UINT32_MAX);  // mark[j] == group id when j is already in N_p
  std::vector<int32_t> np;
  uint32_t group = 0;
  for (size_t b = 0; b < order.size(); ++group) {
    size_t e = b;
    while (e < order.size() && particle_id[order[e]] == particle_id[order[b]]) ++e;
    if (e - b >= 2) {
      np.clear();
      for (size_t a = b; a < e; ++a) {
        for (int32_t j : adj[order[a]]) {
          if (mark[j] != group) mark[j] = group, np.push_back(j);
        }
      }
      for (size_t a = b; a < e; ++a) {
        const uint64_t i = static_cast<uint64_t>(order[a]);
        for (int32_t j : np) keys.push_back(key(i, j)), keys.push_back(key(j, i));
        for (size_t c = a + 1; c < e; ++c) {
          keys.push_back(key(i, order[c])), keys.push_back(key(order[c], i));
        }
      }
    }
    b = e;
  }
  std::erase_if(keys, [](uint64_t k) { return (k >> 32) == (k & 0xffffffffu); });
  return edges_from_keys(keys);
}

engine::Tensor with_random_pairs(const engine::Tensor& pairs, int64_t num_nodes, double fraction,
                                 engine::Generator* gen) {
  if (pairs.dim() != 2 || pairs.size(0) != 2 || pairs.dtype() != engine::DType::I64)
    throw std::invalid_argument("with_random_pairs: pairs must be an int64 [2, E] tensor");
  if (!(fraction >= 0)) throw std::invalid_argument("with_random_pairs: the fraction must be >= 0");
  const int64_t e = pairs.size(1);
  const auto draws = static_cast<int64_t>(std::floor(fraction * static_cast<double>(e) / 2));
  if (draws == 0 || num_nodes < 2) return pairs;
  // ends [2, draws]: row 0 the first, row 1 the second end of each random pair
  const std::vector<int64_t> ends =
      engine::randint(0, num_nodes, {2, draws}, {engine::DType::I64}, gen).to_vector<int64_t>();
  std::vector<uint64_t> keys;  // (min, max) of each pair: half the keys to sort of both orientations
  keys.reserve(static_cast<size_t>(draws));
  for (int64_t d = 0; d < draws; ++d) {
    const auto i = static_cast<uint64_t>(ends[static_cast<size_t>(d)]);
    const auto j = static_cast<uint64_t>(ends[static_cast<size_t>(draws + d)]);
    if (i != j) keys.push_back(key(std::min(i, j), std::max(i, j)));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  // out [2, E + 2K]: the pairs, then (a, b) and (b, a) for each distinct random pair a < b
  const auto extra = static_cast<int64_t>(2 * keys.size());
  engine::Tensor out = engine::empty({2, e + extra}, engine::TensorOptions(engine::DType::I64));
  const engine::Tensor in = pairs.contiguous();
  int64_t* first = out.data<int64_t>();
  int64_t* second = first + e + extra;
  std::copy_n(in.data<int64_t>(), e, first);
  std::copy_n(in.data<int64_t>() + e, e, second);
  for (size_t k = 0; k < keys.size(); ++k) {
    const auto a = static_cast<int64_t>(keys[k] >> 32), b = static_cast<int64_t>(keys[k] & 0xffffffffu);
    const int64_t at = e + 2 * static_cast<int64_t>(k);
    first[at] = a, second[at] = b;
    first[at + 1] = b, second[at + 1] = a;
  }
  return out;
}

}  // namespace data
