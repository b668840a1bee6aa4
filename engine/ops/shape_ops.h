// Public ops that rearrange data with autograd: concat/stack/split/chunk, constant padding, flip, roll.
// concat needs equal ranks (size 0 along `dim` is fine); split/chunk of an empty dim give one empty view.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace engine {

Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);  // views
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim);                      // last may be smaller
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);                    // torch.chunk sizes
// Constant padding; pads = {before_last, after_last, before_second_last, after_second_last, ...} (torch F.pad order).
// Negative pads crop.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0.0);
Tensor flip(const Tensor& x, const std::vector<int64_t>& dims);
Tensor roll(const Tensor& x, int64_t shift, int64_t dim);

}  // namespace engine
