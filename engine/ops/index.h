// Public indexing ops with autograd: gather/scatter, index_select/index_add, segment (CSR) reductions, embedding,
// one_hot. Index tensors are int32 or int64; every index is range-checked at entry (the message names the op, the
// argument, the offending value and the valid range).
#pragma once
#include "engine/tensor.h"

namespace engine {

// out[i][j] = x[index[i][j]][j] for dim 0 (torch.gather semantics, index has x's rank).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// out = x with out[index[i][j]][j] += src[i][j] for dim 0 (torch.scatter_add semantics; deterministic order).
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// Rows (slices along dim) of x picked by a 1-D index.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out = x with out.select(dim, index[i]) += src.select(dim, i) (deterministic order).
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// Segment reductions over rows of x: [N, ...] with CSR offsets [S + 1] (offsets[0] = 0, nondecreasing,
// offsets[S] = N) -> [S, ...]. Empty segments give 0 (sum/mean/max alike). max's gradient goes to the first maximum.
Tensor segment_sum(const Tensor& x, const Tensor& offsets);
Tensor segment_mean(const Tensor& x, const Tensor& offsets);
Tensor segment_max(const Tensor& x, const Tensor& offsets);
// weight: [V, D], ids: any shape of int -> [..., D]
Tensor embedding(const Tensor& weight, const Tensor& ids);
// ids: any shape of int -> [..., num_classes] float32 (or dtype).
Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype = DType::F32);

}  // namespace engine
