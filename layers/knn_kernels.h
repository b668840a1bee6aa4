// Kernels of the exact kNN search (see layers/knn.h for the contract). Every kernel fills a preallocated int64
// out [N, k] (k already clamped to the available neighbours, k >= 1, N >= 1) from contiguous points [N, D]
// (float or double), with rows sorted by (squared distance, index); distances are accumulated in double from
// coordinate differences in increasing d, so every method and device returns the same indices.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers::cpu {

// kd-tree (median split on the widest dimension of the tight bounding box, leaves <= 16 points). With
// max_visit_fraction > 0 and N >= 4096, 64 probe queries run first; when they compare against more than that
// fraction of the points on average (high intrinsic dimension: the tree cannot prune), it returns false without
// finishing (the caller then runs the brute force). Returns true when `out` is complete.
bool knn_kdtree(const engine::Tensor& points, int64_t k, bool include_self, const engine::Tensor& out,
                double max_visit_fraction = 0.0);
// Tiled brute force over a point-transposed double copy; queries split over threads.
void knn_bruteforce(const engine::Tensor& points, int64_t k, bool include_self, const engine::Tensor& out);

}  // namespace layers::cpu

#ifdef ENGINE_WITH_CUDA
namespace layers::cuda {

// One thread per query row, point tiles staged in shared memory, running top-k list in `out` (with the distances
// in a scratch buffer), insertion only when a candidate beats the current k-th distance.
void knn_bruteforce(const engine::Tensor& points, int64_t k, bool include_self, const engine::Tensor& out);

}  // namespace layers::cuda
#endif
