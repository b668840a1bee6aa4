// Public sorting ops: the sorted dim is moved last and the tensor flattened to [rows, n] for the kernels; results are
// mapped back to contiguous tensors of the input's layout. Values' gradient is scattered back through the indices.
#include "engine/ops/sort.h"

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"

namespace engine {

namespace {

// x seen as [rows, n] with dim d last, and the way back.
struct RowLayout {
  int64_t d = 0;
  Shape moved;  // x's shape with dims d and last swapped
  int64_t rows = 1;

  RowLayout(const Tensor& x, int64_t dim) : d(dim), moved(x.shape()) {
    std::swap(moved[d], moved.back());
    for (size_t i = 0; i + 1 < moved.size(); ++i) rows *= moved[i];
  }
  // t: x's shape except at d -> [rows, t.size(d)] (copies when t's layout requires it)
  Tensor to_rows(const Tensor& t) const { return t.transpose(d, -1).reshape({rows, t.size(d)}); }
  // t: [rows, m] -> x's shape with m at d, contiguous
  Tensor from_rows(const Tensor& t) const {
    Shape s = moved;
    s.back() = t.size(1);
    return t.view(s).transpose(d, -1).contiguous();
  }
};

void check_sortable(const char* op, const Tensor& x) {
  check_defined(op, x, "x");
  ENGINE_CHECK(x.dim() >= 1, op, "x must have at least one dim, got a rank-0 tensor");
}

// The first k entries of every row of x along d, in sorted order: values (differentiable) and int64 indices.
std::pair<Tensor, Tensor> sorted_prefix(const char* op, const Tensor& x, int64_t d, int64_t k, bool descending) {
  RowLayout layout(x, d);
  const int64_t n = x.size(d);
  Tensor values_rows = empty({layout.rows, k}, x.options());               // [rows, k]
  Tensor indices_rows = empty({layout.rows, k}, {DType::I64, x.device()});  // [rows, k]
  Tensor values, indices;
  {
    NoGradGuard ng;
    ENGINE_DISPATCH(x.device(), sort, layout.to_rows(x.detach()), descending, values_rows, indices_rows);
    values = layout.from_rows(values_rows);
    indices = layout.from_rows(indices_rows);
  }
  values = record(op, {x}, values, [layout, indices_rows, n](const Tensors& g) {
    Tensor grad_in = zeros({layout.rows, n}, g[0].options());  // [rows, n]
    ENGINE_DISPATCH(g[0].device(), sort_backward, layout.to_rows(g[0]), indices_rows, grad_in);
    return Tensors{layout.from_rows(grad_in)};
  });
  return {values, indices};
}

}  // namespace

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  check_sortable("sort", x);
  const int64_t d = wrap_dim(dim, x.dim(), "sort");
  return sorted_prefix("sort", x, d, x.size(d), descending);
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  check_sortable("argsort", x);
  return sort(x.detach(), dim, descending).second;
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  check_sortable("topk", x);
  const int64_t d = wrap_dim(dim, x.dim(), "topk");
  ENGINE_CHECK(k >= 0 && k <= x.size(d), "topk", "k = {} is out of range [0, {}] for dim {} of x {}", k, x.size(d), d,
               shape_str(x.shape()));
  return sorted_prefix("topk", x, d, k, largest);
}

}  // namespace engine
