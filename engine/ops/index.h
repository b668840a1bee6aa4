// Public indexing ops with autograd: gather/scatter, index_select/index_add, segment (CSR) reductions, embedding,
// one_hot. Index tensors are int32 or int64; every index is range-checked at entry (the message names the op, the
// argument, the offending value and the valid range). Results are deterministic on both backends: scatter_add and
// index_add never use float atomics (CPU: per-position / destination-sorted loops; CUDA: CUB radix sort of the
// destinations, then one thread per destination element summing its sources in ascending source order), and
// segment sums accumulate in double (float inputs) in row order, so CPU and CUDA results agree bit for bit.
#pragma once
#include "engine/tensor.h"

namespace engine {

// out[i][j] = x[index[i][j]][j] for dim 0 (torch.gather semantics, index has x's rank).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// out = x with out[index[i][j]][j] += src[i][j] for dim 0 (torch.scatter_add semantics with src of index's shape;
// deterministic order). Backward: grad_x = g, grad_src = gather(g, dim, index); gather's backward is scatter_add.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// Rows (slices along dim) of x picked by a 1-D index. Backward: index_add into zeros.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out = x with out.select(dim, index[i]) += src.select(dim, i) (deterministic order). Backward: index_select.
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// Segment reductions over rows of x: [N, ...] with CSR offsets [S + 1] (offsets[0] = 0, nondecreasing,
// offsets[S] = N) -> [S, ...]. Empty segments give 0 (sum/mean/max alike). max's gradient goes to the first maximum.
Tensor segment_sum(const Tensor& x, const Tensor& offsets);
Tensor segment_mean(const Tensor& x, const Tensor& offsets);
Tensor segment_max(const Tensor& x, const Tensor& offsets);
// weight: [V, D], ids: any shape of int -> [..., D]. Backward: index_add of the gradient rows into a zero [V, D].
Tensor embedding(const Tensor& weight, const Tensor& ids);
// ids: any shape of int -> [..., num_classes] float32 (or dtype).
Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype = DType::F32);

}  // namespace engine
