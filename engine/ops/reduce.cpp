// Public reductions: dim normalisation, output shapes, dispatch and autograd rules.
#include "engine/ops/reduce.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"
#include "engine/ops/elementwise.h"

namespace engine {

namespace {

// Sorted unique non-negative dims; empty input means all dims.
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t rank, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t i = 0; i < rank; ++i) out.push_back(i);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, rank, op));
  std::sort(out.begin(), out.end());
  ENGINE_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, "repeated dim in [{}]", fmt::join(dims, ", "));
  if (rank == 0) out.clear();
  return out;
}

Shape kept_shape(const Shape& s, const std::vector<int64_t>& dims) {
  Shape k = s;
  for (int64_t d : dims) k[d] = 1;
  return k;
}

Shape squeezed_shape(const Shape& s, const std::vector<int64_t>& dims) {
  Shape out;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) out.push_back(s[i]);
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  check_defined("sum", x, "x");
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "sum");
  Shape keep = kept_shape(x.shape(), dims);
  Tensor out = empty(keep, x.options());
  ENGINE_DISPATCH(x.device(), sum, x, dims, out);
  Tensor result = keepdim ? out : out.detach().view(squeezed_shape(x.shape(), dims));
  Shape in_shape = x.shape();
  return record("sum", {x}, result, [in_shape, keep](const Tensors& g) {
    return Tensors{g[0].reshape(keep).expand(in_shape)};
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "mean");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[d];
  ENGINE_CHECK(count > 0, "mean", "mean over an empty set of elements (shape {})", shape_str(x.shape()));
  return mul(sum(x, dims_in, keepdim), 1.0 / static_cast<double>(count));
}

}  // namespace engine
