// Layout helpers for reductions and row kernels (views and copies without autograd).
#include "engine/ops/reduce_layout.h"

#include <algorithm>

#include "engine/autograd.h"

namespace engine {

ReduceLayout reduce_layout(const Tensor& x_in, const std::vector<int64_t>& dims) {
  NoGradGuard ng;
  const int64_t rank = x_in.dim();
  Tensor x = x_in;
  int64_t first = dims.front(), last = dims.back();
  if (last - first + 1 != static_cast<int64_t>(dims.size())) {
    std::vector<int64_t> order;
    for (int64_t i = 0; i < rank; ++i)
      if (!std::binary_search(dims.begin(), dims.end(), i)) order.push_back(i);
    first = static_cast<int64_t>(order.size());
    order.insert(order.end(), dims.begin(), dims.end());
    last = rank - 1;
    x = x.permute(order);
  }
  ReduceLayout l;
  l.x = x.contiguous();
  for (int64_t i = 0; i < rank; ++i) (i < first ? l.A : (i <= last ? l.R : l.B)) *= x.shape()[i];
  return l;
}

Tensor dim_to_rows(const Tensor& x, int64_t dim) {
  NoGradGuard ng;
  Tensor t = x.dim() == 0 ? x.reshape({1}) : x;
  Tensor moved = dim == t.dim() - 1 ? t : t.transpose(dim, -1);
  int64_t M = 1;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (i != dim) M *= t.shape()[i];
  return moved.contiguous().reshape({M, t.shape()[dim]});
}

Tensor rows_to_dim(const Tensor& rows, const Shape& shape, int64_t dim) {
  NoGradGuard ng;
  if (shape.empty()) return rows.reshape({});
  Shape moved = shape;
  std::swap(moved[dim], moved.back());
  Tensor t = rows.reshape(moved);
  return dim == static_cast<int64_t>(shape.size()) - 1 ? t : t.transpose(dim, -1).contiguous();
}

}  // namespace engine
