// CUDA indexing kernels (kernels/index.cu); signatures mirror engine/backend/cpu/index.h. Determinism without float
// atomics: scatter_add and index_add sort (destination key, source position) pairs with CUB's stable radix sort, then
// one thread per destination element sums its sources in ascending source order - the CPU's order and accumulator
// types, so both backends give bit-identical results.
#pragma once
#include <cstdint>
#include <utility>

#include "engine/tensor.h"

namespace engine::cuda {

// (min, max) of an int32/int64 tensor with at least one element (any strides).
std::pair<int64_t, int64_t> index_range(const Tensor& index);
// out (index's shape) [.., i, ..] = x[.., index[.., i, ..], ..] along dim; index has x's rank and, off dim, sizes
// no larger than x's. Any strides (index_select passes a stride-0 expanded 1-D index).
void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
// out (holding x) [.., index[.., i, ..], ..] += src[.., i, ..] along dim; index and src have the same shape.
void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
// out [A, n, B] contiguous (holding x): out[a, index[k], b] += src[a, k, b]; src [A, K, B] contiguous; index [K].
void index_add(const Tensor& out, const Tensor& index, const Tensor& src);
// x [N, F] contiguous, offsets [S + 1] -> out [S, F] (contiguous): sums of each segment's rows (0 when empty).
void segment_sum(const Tensor& x, const Tensor& offsets, const Tensor& out);
// Like segment_sum with max; argmax [S, F] int64 gets the first maximal row (-1 and out 0 for empty segments).
void segment_max(const Tensor& x, const Tensor& offsets, const Tensor& out, const Tensor& argmax);
// out [N] int64 contiguous: the segment of each row.
void segment_ids(const Tensor& offsets, const Tensor& out);

}  // namespace engine::cuda
