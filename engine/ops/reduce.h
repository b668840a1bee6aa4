// Public reductions with autograd: sum/mean/max/min/var over dims, softmax family, cumulative sums and products.
// `dims` may be negative; an empty dims list reduces over every dim.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace engine {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Max/min over dims; the gradient flows to the first extreme element of each reduced group (deterministic).
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Index (int64) of the first maximum / minimum along one dim. No gradient.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// Variance with `correction` (1 = unbiased, as torch.var's default; 0 = population).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor cumsum(const Tensor& x, int64_t dim);
Tensor cumprod(const Tensor& x, int64_t dim);  // gradient exact also where x has zeros

}  // namespace engine
