// Exact k-nearest-neighbour and radius-neighbour searches over point sets (issue 6; used by EdgeConv/GravNet and
// available to any model that needs a neighbourhood graph). No gradients: indices are constants.
//
// Distances are squared Euclidean distances accumulated in double precision from coordinate differences
// (sum over d of (p_d - q_d)^2 in increasing d), never as |p|^2 + |q|^2 - 2 p.q, so equal points are at distance
// exactly 0 and results do not depend on the method, the thread count or the device. Neighbours of a point are
// ordered by (squared distance, index): ties are broken by the smaller index, so the result is unique.
//
// Methods (all exact and returning identical results):
//   * KdTree: a kd-tree (median split on the widest dimension, leaves of <= 16 points) searched with a
//     (distance, index)-ordered top-k list and box pruning. O(N log N) for low intrinsic dimension (hits in eta-phi
//     or 3-D, and also learned 32-D embeddings of such hits); degrades towards brute force on high-dimensional
//     uniform noise. CPU only; multi-threaded over queries.
//   * BruteForce: tiled brute force (query tiles x point tiles, differences in a point-transposed tile buffer,
//     running top-k per query row kept as a sorted list; memory O(N k + tile), never N x N). CPU (multi-threaded
//     over query tiles) and CUDA (one thread per query over shared-memory point tiles).
//   * Auto: CPU tensors use the kd-tree; for D > 6 and N >= 4096 the tree first answers 64 probe queries and the
//     search switches to the brute force when they compared against more than 15% of the points on average
//     (uniform high-dimensional data: the tree cannot prune there and would be ~3x slower than brute force).
//     CUDA tensors always use the CUDA brute force.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers {

enum class KnnMethod { Auto, KdTree, BruteForce };

// points [N, D] float32/float64 (CPU or CUDA) -> int64 [N, k'] with k' = min(k, N') where N' = N (include_self) or
// N - 1 (self excluded): k larger than the available neighbours is CLAMPED (documented choice), so every row is
// complete. Row i lists the k' nearest points of point i sorted by (distance, index). With include_self the point
// itself is always among them at distance 0 (first, unless an exact duplicate with a smaller index exists).
// N = 0 gives shape [0, 0]; k must be >= 0. Output on the device of `points`.
engine::Tensor knn(const engine::Tensor& points, int64_t k, bool include_self = true,
                   KnnMethod method = KnnMethod::Auto);

// Radius neighbours with a cap: for each point i, the points j with |p_j - p_i| <= r (self included), keeping only
// the max_neighbors nearest ones (by distance, then index) when there are more. Returns int64 [E, 2] pairs (i, j),
// sorted by i, then by (distance, index) within one i. max_neighbors >= 1, r >= 0. CUDA inputs are searched on the
// CPU (the result is copied back to the device).
engine::Tensor radius_neighbors(const engine::Tensor& points, double r, int64_t max_neighbors);

}  // namespace layers
