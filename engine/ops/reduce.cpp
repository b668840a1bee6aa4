// Public reductions: dim normalisation, output shapes, dispatch and autograd rules.
#include "engine/ops/reduce.h"

#include <algorithm>
#include <limits>

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/reduce_layout.h"

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
  ENGINE_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, "repeated dim in [{}]",
               fmt::join(dims, ", "));
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

namespace {

// Index of the first extreme along `dim` (int64, keepdim shape).
Tensor arg_extreme(const Tensor& x, int64_t dim, bool is_max, const char* op) {
  check_defined(op, x, "x");
  dim = wrap_dim(dim, x.dim(), op);
  ENGINE_CHECK(x.dim() == 0 || x.shape()[dim] > 0, op, "cannot reduce over an empty dim {} of {}", dim,
               shape_str(x.shape()));
  Tensor rows = dim_to_rows(x.detach(), dim);  // [M, R]
  Tensor idx = empty({rows.shape()[0], 1}, TensorOptions(DType::I64, x.device()));
  ENGINE_DISPATCH(x.device(), arg_extreme_rows, rows, idx, is_max);
  Shape keep = x.shape();
  if (!keep.empty()) keep[dim] = 1;
  return rows_to_dim(idx, keep, dim);
}

// amax/amin: the values at the first extreme of each group, gathered so the gradient reaches only that element.
Tensor extreme_values(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim, bool is_max,
                      const char* op) {
  check_defined(op, x, "x");
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), op);
  if (dims.empty()) return x;
  std::vector<int64_t> order;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) order.push_back(i);
  Shape kept_sizes;
  for (int64_t d : order) kept_sizes.push_back(x.shape()[d]);
  order.insert(order.end(), dims.begin(), dims.end());
  int64_t R = 1;
  for (int64_t d : dims) R *= x.shape()[d];
  ENGINE_CHECK(R > 0, op, "cannot reduce over empty dims of {}", shape_str(x.shape()));
  Tensor rows = x.permute(order).reshape({shape_numel(kept_sizes), R});  // [M, R], differentiable
  Tensor idx = arg_extreme(rows, 1, is_max, op);                        // [M, 1]
  Tensor vals = gather(rows, 1, idx);                                   // [M, 1]
  Shape keep = kept_shape(x.shape(), dims);
  return vals.reshape(keepdim ? keep : squeezed_shape(x.shape(), dims));
}

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log, const char* op) {
  check_defined(op, x, "x");
  ENGINE_CHECK(is_floating(x.dtype()), op, "expects a floating tensor, got {}", dtype_name(x.dtype()));
  dim = wrap_dim(dim, x.dim(), op);
  Tensor rows = dim_to_rows(x.detach(), dim);
  Tensor out_rows = empty(rows.shape(), x.options());
  ENGINE_DISPATCH(x.device(), softmax_rows, rows, out_rows, log);
  Tensor out = rows_to_dim(out_rows, x.shape(), dim);
  Tensor saved = out.detach();
  return record(op, {x}, out, [saved, dim, log](const Tensors& g) {
    if (log) return Tensors{sub(g[0], mul(exp(saved), sum(g[0], {dim}, true)))};
    return Tensors{mul(saved, sub(g[0], sum(mul(g[0], saved), {dim}, true)))};
  });
}

// Runs a row kernel along `dim`: rows_kernel(rows_in, rows_out) on [M, R] views.
template <class F>
Tensor along_dim(const Tensor& x, int64_t dim, F&& rows_kernel) {
  Tensor rows = dim_to_rows(x.detach(), dim);
  Tensor out_rows = empty(rows.shape(), x.options());
  rows_kernel(rows, out_rows);
  return rows_to_dim(out_rows, x.shape(), dim);
}

Tensor reverse_cumsum(const Tensor& g, int64_t dim) {
  return along_dim(g, dim, [&](const Tensor& in, const Tensor& out) {
    ENGINE_DISPATCH(g.device(), cumsum_rows, in, out, true);
  });
}

}  // namespace

Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extreme_values(x, dims, keepdim, true, "amax");
}
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extreme_values(x, dims, keepdim, false, "amin");
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor i = arg_extreme(x, dim, true, "argmax");
  return keepdim || x.dim() == 0 ? i : i.squeeze(dim);
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor i = arg_extreme(x, dim, false, "argmin");
  return keepdim || x.dim() == 0 ? i : i.squeeze(dim);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, int64_t correction, bool keepdim) {
  check_defined("var", x, "x");
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "var");
  int64_t n = 1;
  for (int64_t d : dims) n *= x.shape()[d];
  ENGINE_CHECK(n - correction > 0, "var", "{} elements with correction {} leave no degrees of freedom", n, correction);
  Tensor centered = sub(x, mean(x, dims_in, true));  // two-pass: stable for large means
  return mul(sum(square(centered), dims_in, keepdim), 1.0 / static_cast<double>(n - correction));
}

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true, "log_softmax"); }

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_defined("logsumexp", x, "x");
  Tensor m = amax(x.detach(), dims, true);
  m = where(eq(m, -std::numeric_limits<double>::infinity()), zeros({}, m.options()), m);  // all -inf group
  Tensor out = add(log(sum(exp(sub(x, m)), dims, true)), m);
  if (keepdim) return out;
  std::vector<int64_t> nd = normalize_dims(dims, x.dim(), "logsumexp");
  return out.reshape(squeezed_shape(x.shape(), nd));
}

Tensor cumsum(const Tensor& x, int64_t dim) {
  check_defined("cumsum", x, "x");
  dim = wrap_dim(dim, x.dim(), "cumsum");
  Tensor out = along_dim(x, dim, [&](const Tensor& in, const Tensor& o) {
    ENGINE_DISPATCH(x.device(), cumsum_rows, in, o, false);
  });
  return record("cumsum", {x}, out, [dim](const Tensors& g) { return Tensors{reverse_cumsum(g[0], dim)}; });
}

Tensor cumprod(const Tensor& x, int64_t dim) {
  check_defined("cumprod", x, "x");
  dim = wrap_dim(dim, x.dim(), "cumprod");
  Tensor out = along_dim(x, dim, [&](const Tensor& in, const Tensor& o) {
    ENGINE_DISPATCH(x.device(), cumprod_rows, in, o);
  });
  Tensor saved = out.detach();
  return record("cumprod", {x}, out, [x, saved, dim](const Tensors& g) {
    Tensor xr = dim_to_rows(x.detach(), dim), outr = dim_to_rows(saved, dim), gr = dim_to_rows(g[0], dim);
    Tensor gx = empty(xr.shape(), xr.options());
    ENGINE_DISPATCH(xr.device(), cumprod_backward_rows, xr, outr, gr, gx);
    return Tensors{rows_to_dim(gx, x.shape(), dim)};
  });
}

}  // namespace engine
