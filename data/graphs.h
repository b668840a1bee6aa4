// Neighbour graphs on 2-D point sets (HEPT's (eta, phi) positions), built with a kd-tree (nanoflann), O(N log N):
// the kNN graph (Lampa / HEPT's knn_edge_index_k60), the capped radius graph, and HEPT's loss point pairs.
// Edge lists are int64 tensors [2, E], symmetric where stated, sorted by (row, col), without duplicates.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace data {

// Per query point (row of `points`, [N, 2] row-major): its k nearest points including itself, nearest first
// (ties broken by index). Euclidean, no wrap-around.
std::vector<std::vector<int32_t>> knn_neighbors(const std::vector<float>& points, int k);

// Per query point: the points at distance < r, excluding itself, at most max_neighbors of them: the nearest ones,
// ties broken by index (torch_cluster keeps an implementation-dependent subset; see docs/data.md).
std::vector<std::vector<int32_t>> radius_neighbors(const std::vector<float>& points, double r, int max_neighbors);

// Symmetrised, deduplicated, (row, col)-sorted edge list of directed neighbour lists: int64 [2, E].
engine::Tensor undirected_edges(const std::vector<std::vector<int32_t>>& neighbors, bool keep_self_loops);

// PyG to_undirected(knn_graph(pos, k, loop=True)): int64 [2, E] (self loops included).
engine::Tensor knn_graph(const std::vector<float>& points, int k = 60);

// HEPT gen_point_pairs (hept.md 1.7): radius graph (r, max_neighbors, no self loops) made undirected; then for every
// particle p != 0 with >= 2 points: all (i, j), i in C_p, j in the union of the neighbours of C_p, plus all pairs
// inside C_p; symmetrised, deduplicated, self pairs dropped. int64 [2, E].
engine::Tensor hept_point_pairs(const std::vector<float>& points, const std::vector<int64_t>& particle_id,
                                double r = 1.0, int max_neighbors = 256);

// HEPT's training-only augmentation of the loss pairs (hept.md 5.1): floor(fraction * E / 2) uniform random pairs
// (i, j) over [0, num_nodes)^2, symmetrised and deduplicated among themselves, appended to `pairs` ([2, E] int64) as
// (a, b), (b, a) for each distinct pair a < b in increasing (a, b) order (so the pairs of any one node come in
// increasing order of the other end): about fraction * E more pairs, nearly all negatives between distant hits.
// Unlike the reference, self pairs (i, i) are not drawn (one in num_nodes of the draws there; their distance is 0).
// gen: engine's default generator if null.
engine::Tensor with_random_pairs(const engine::Tensor& pairs, int64_t num_nodes, double fraction,
                                 engine::Generator* gen = nullptr);

}  // namespace data
