// Public indexing ops: argument and index-range checks, dispatch to the backend kernels, autograd rules.
// Each public op validates and then calls an internal *_impl that computes and records; backward closures call the
// *_impl functions directly (their indices were already validated), so gradients stay differentiable.
#include "engine/ops/index.h"

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"
#include "engine/ops/elementwise.h"

namespace engine {

namespace {

void check_index_dtype(const char* op, const Tensor& index, const char* arg) {
  check_defined(op, index, arg);
  ENGINE_CHECK(index.dtype() == DType::I32 || index.dtype() == DType::I64, op,
               "{} must be an int32 or int64 tensor, got {}", arg, dtype_name(index.dtype()));
}

// Every value of `index` lies in [0, size); the message names the first bound that is violated.
void check_index_range(const char* op, const Tensor& index, const char* arg, int64_t size, const std::string& what) {
  if (index.numel() == 0) return;
  auto [lo, hi] = ENGINE_DISPATCH(index.device(), index_range, index);
  ENGINE_CHECK(lo >= 0, op, "{} value {} is out of range [0, {}) ({})", arg, lo, size, what);
  ENGINE_CHECK(hi < size, op, "{} value {} is out of range [0, {}) ({})", arg, hi, size, what);
}

void check_data(const char* op, const Tensor& x, const char* arg) {
  check_defined(op, x, arg);
  ENGINE_CHECK(x.dtype() != DType::Bool && x.dtype() != DType::U8, op, "{} must be numeric, got {}", arg,
               dtype_name(x.dtype()));
}

// A fresh contiguous copy of x (no history), for ops that accumulate into x's values.
Tensor copy_of(const Tensor& x) {
  Tensor out = empty(x.shape(), x.options());
  NoGradGuard ng;
  out.copy_(x.detach());
  return out;
}

int64_t prod(const Shape& s, int64_t begin, int64_t end) {
  int64_t p = 1;
  for (int64_t i = begin; i < end; ++i) p *= s[i];
  return p;
}

// The 1-D index viewed at `shape` (index_select's output shape) with stride 0 everywhere but along dim.
Tensor expand_index(const Tensor& index, const Shape& shape, int64_t dim) {
  Strides st(shape.size(), 0);
  st[dim] = index.strides()[0];
  return make_view(index, shape, st, index.offset());
}

Tensor scatter_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

Tensor gather_impl(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = empty(index.shape(), x.options());
  ENGINE_DISPATCH(x.device(), gather, x.detach(), dim, index, out);
  Shape xs = x.shape();
  return record("gather", {x}, out, [xs, dim, index](const Tensors& g) {
    return Tensors{scatter_add_impl(zeros(xs, g[0].options()), dim, index, g[0])};
  });
}

Tensor scatter_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = copy_of(x);
  ENGINE_DISPATCH(x.device(), scatter_add, out, dim, index, src.detach());
  return record("scatter_add", {x, src}, out, [dim, index](const Tensors& g) {
    return Tensors{g[0], gather_impl(g[0], dim, index)};
  });
}

Tensor index_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

Tensor index_select_impl(const Tensor& x, int64_t dim, const Tensor& index) {
  Shape shape = x.shape();
  shape[dim] = index.size(0);
  Tensor out = empty(shape, x.options());
  ENGINE_DISPATCH(x.device(), gather, x.detach(), dim, expand_index(index, shape, dim), out);
  Shape xs = x.shape();
  return record("index_select", {x}, out, [xs, dim, index](const Tensors& g) {
    return Tensors{index_add_impl(zeros(xs, g[0].options()), dim, index, g[0])};
  });
}

Tensor index_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  const Shape& s = x.shape();
  const int64_t A = prod(s, 0, dim), B = prod(s, dim + 1, x.dim());
  Tensor out = copy_of(x);
  Tensor src_c = src.detach().contiguous();
  ENGINE_DISPATCH(x.device(), index_add, out.view({A, s[dim], B}), index, src_c.view({A, index.size(0), B}));
  return record("index_add", {x, src}, out, [dim, index](const Tensors& g) {
    return Tensors{g[0], index_select_impl(g[0], dim, index)};
  });
}

// Validates CSR offsets for x's N rows and returns S (the number of segments).
int64_t check_offsets(const char* op, const Tensor& x, const Tensor& offsets) {
  check_defined(op, x, "x");
  ENGINE_CHECK(is_floating(x.dtype()), op, "x must be float32 or float64, got {}", dtype_name(x.dtype()));
  ENGINE_CHECK(x.dim() >= 1, op, "x must have a row dim, got shape {}", shape_str(x.shape()));
  check_index_dtype(op, offsets, "offsets");
  check_same_device(op, x, offsets);
  ENGINE_CHECK(offsets.dim() == 1 && offsets.size(0) >= 1, op, "offsets must be 1-D [S + 1], got shape {}",
               shape_str(offsets.shape()));
  const int64_t N = x.size(0);
  std::vector<int64_t> off = offsets.to_vector<int64_t>();
  ENGINE_CHECK(off[0] == 0, op, "offsets[0] must be 0, got {}", off[0]);
  for (size_t i = 1; i < off.size(); ++i)
    ENGINE_CHECK(off[i] >= off[i - 1], op, "offsets must be nondecreasing: offsets[{}] = {} < offsets[{}] = {}", i,
                 off[i], i - 1, off[i - 1]);
  ENGINE_CHECK(off.back() == N, op, "offsets must end at the number of rows N = {} of x {}, got offsets[{}] = {}", N,
               shape_str(x.shape()), off.size() - 1, off.back());
  return static_cast<int64_t>(off.size()) - 1;
}

// x's rows flattened: [N, F], contiguous, no history.
Tensor rows_of(const Tensor& x) { return x.detach().contiguous().view({x.size(0), prod(x.shape(), 1, x.dim())}); }

Shape segment_shape(const Tensor& x, int64_t S) {
  Shape s = x.shape();
  s[0] = S;
  return s;
}

// [N] int64: the segment of each row.
Tensor segment_ids_of(const Tensor& offsets, int64_t N) {
  Tensor ids = empty({N}, TensorOptions(DType::I64, offsets.device()));
  ENGINE_DISPATCH(offsets.device(), segment_ids, offsets, ids);
  return ids;
}

// g: [S, ...] -> [N, ...]: each segment's gradient repeated over its rows.
Tensor repeat_segments(const Tensor& g, const Tensor& offsets, const Shape& x_shape) {
  return index_select_impl(g, 0, segment_ids_of(offsets, x_shape[0]));
}

// gather/scatter_add index: the rank of x, no larger than x off `dim`, values in range along `dim`.
void check_gather_index(const char* op, const Tensor& x, int64_t dim, const Tensor& index) {
  ENGINE_CHECK(index.dim() == x.dim(), op, "index {} must have the rank of x {}", shape_str(index.shape()),
               shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d)
    ENGINE_CHECK(d == dim || index.size(d) <= x.size(d), op, "index {} is larger than x {} in dim {}",
                 shape_str(index.shape()), shape_str(x.shape()), d);
  check_index_range(op, index, "index", x.size(dim), fmt::format("dim {} of x {}", dim, shape_str(x.shape())));
}

}  // namespace

Tensor gather(const Tensor& x, int64_t dim_in, const Tensor& index) {
  const char* op = "gather";
  check_defined(op, x, "x");
  check_index_dtype(op, index, "index");
  check_same_device(op, x, index);
  const int64_t dim = wrap_dim(dim_in, x.dim(), op);
  check_gather_index(op, x, dim, index);
  return gather_impl(x, dim, index);
}

Tensor scatter_add(const Tensor& x, int64_t dim_in, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add";
  check_data(op, x, "x");
  check_defined(op, src, "src");
  check_index_dtype(op, index, "index");
  check_same_device(op, x, index);
  check_same_device(op, x, src);
  check_same_dtype(op, x, src);
  const int64_t dim = wrap_dim(dim_in, x.dim(), op);
  ENGINE_CHECK(index.shape() == src.shape(), op, "index {} and src {} must have the same shape",
               shape_str(index.shape()), shape_str(src.shape()));
  check_gather_index(op, x, dim, index);
  return scatter_add_impl(x, dim, index, src);
}

Tensor index_select(const Tensor& x, int64_t dim_in, const Tensor& index) {
  const char* op = "index_select";
  check_defined(op, x, "x");
  check_index_dtype(op, index, "index");
  check_same_device(op, x, index);
  const int64_t dim = wrap_dim(dim_in, x.dim(), op);
  ENGINE_CHECK(index.dim() == 1, op, "index must be 1-D, got shape {}", shape_str(index.shape()));
  check_index_range(op, index, "index", x.size(dim), fmt::format("dim {} of x {}", dim, shape_str(x.shape())));
  return index_select_impl(x, dim, index);
}

Tensor index_add(const Tensor& x, int64_t dim_in, const Tensor& index, const Tensor& src) {
  const char* op = "index_add";
  check_data(op, x, "x");
  check_defined(op, src, "src");
  check_index_dtype(op, index, "index");
  check_same_device(op, x, index);
  check_same_device(op, x, src);
  check_same_dtype(op, x, src);
  const int64_t dim = wrap_dim(dim_in, x.dim(), op);
  ENGINE_CHECK(index.dim() == 1, op, "index must be 1-D, got shape {}", shape_str(index.shape()));
  Shape expect = x.shape();
  expect[dim] = index.size(0);
  ENGINE_CHECK(src.shape() == expect, op, "src {} must be {} (x {} with dim {} of index's length {})",
               shape_str(src.shape()), shape_str(expect), shape_str(x.shape()), dim, index.size(0));
  check_index_range(op, index, "index", x.size(dim), fmt::format("dim {} of x {}", dim, shape_str(x.shape())));
  return index_add_impl(x, dim, index, src);
}

Tensor segment_sum(const Tensor& x, const Tensor& offsets) {
  const int64_t S = check_offsets("segment_sum", x, offsets);
  Tensor xr = rows_of(x);
  Tensor out = empty({S, xr.size(1)}, x.options());
  ENGINE_DISPATCH(x.device(), segment_sum, xr, offsets, out);
  Shape xs = x.shape();
  return record("segment_sum", {x}, out.view(segment_shape(x, S)), [offsets, xs](const Tensors& g) {
    return Tensors{repeat_segments(g[0], offsets, xs)};
  });
}

Tensor segment_mean(const Tensor& x, const Tensor& offsets) {
  const int64_t S = check_offsets("segment_mean", x, offsets);
  Tensor counts = sub(offsets.slice(0, 1, S + 1), offsets.slice(0, 0, S)).to(x.dtype());  // [S]
  Shape count_shape(x.dim(), 1);
  count_shape[0] = S;
  return div(segment_sum(x, offsets), clamp_min(counts, 1.0).view(count_shape));
}

Tensor segment_max(const Tensor& x, const Tensor& offsets) {
  const int64_t S = check_offsets("segment_max", x, offsets);
  Tensor xr = rows_of(x);
  Tensor out = empty({S, xr.size(1)}, x.options());
  Tensor argmax = empty({S, xr.size(1)}, TensorOptions(DType::I64, x.device()));  // first maximal row, -1 if empty
  ENGINE_DISPATCH(x.device(), segment_max, xr, offsets, out, argmax);
  Shape xs = x.shape();
  const int64_t F = xr.size(1);
  return record("segment_max", {x}, out.view(segment_shape(x, S)), [offsets, xs, F, argmax](const Tensors& g) {
    const int64_t N = xs[0];
    Tensor ids = segment_ids_of(offsets, N);
    Tensor rows = arange(0, N, TensorOptions(DType::I64, argmax.device())).view({N, 1});
    Tensor first_max = eq(index_select_impl(argmax, 0, ids), rows);  // [N, F]
    Tensor gr = index_select_impl(g[0].reshape({g[0].size(0), F}), 0, ids);
    return Tensors{where(first_max, gr, zeros({}, gr.options())).view(xs)};
  });
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  const char* op = "embedding";
  check_defined(op, weight, "weight");
  check_index_dtype(op, ids, "ids");
  check_same_device(op, weight, ids);
  ENGINE_CHECK(weight.dim() == 2, op, "weight must be [V, D], got {}", shape_str(weight.shape()));
  check_index_range(op, ids, "ids", weight.size(0), fmt::format("rows of weight {}", shape_str(weight.shape())));
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.size(1));
  return index_select_impl(weight, 0, ids.reshape({ids.numel()})).view(out_shape);
}

Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype) {
  const char* op = "one_hot";
  check_index_dtype(op, ids, "ids");
  ENGINE_CHECK(num_classes > 0, op, "num_classes must be positive, got {}", num_classes);
  check_index_range(op, ids, "ids", num_classes, fmt::format("num_classes = {}", num_classes));
  Tensor classes = arange(0, num_classes, TensorOptions(ids.dtype(), ids.device()));
  return eq(ids.detach().unsqueeze(-1), classes).to(dtype);
}

}  // namespace engine
