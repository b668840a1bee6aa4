// Public rearranging ops, composed of views and strided copies (so every backend that has `copy` runs them):
// concat/stack copy into narrow views of the output, split/chunk are narrow views, pad fills and copies the kept
// window, flip copies from a negative-stride view, roll is a concat of two narrow views.
#include "engine/ops/shape_ops.h"

#include <algorithm>

#include "engine/autograd.h"

namespace engine {

namespace {

// True when a and b have the same rank and agree in every dim except d.
bool same_except(const Shape& a, const Shape& b, int64_t d) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (static_cast<int64_t>(i) != d && a[i] != b[i]) return false;
  return true;
}

void check_concat_inputs(const std::vector<Tensor>& xs, int64_t d, const char* op) {
  const Tensor& first = xs[0];
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    ENGINE_CHECK(t.defined(), op, "tensor {} is undefined", i);
    ENGINE_CHECK(t.device() == first.device(), op, "tensor {} is on {} but tensor 0 is on {}", i, t.device().str(),
                 first.device().str());
    ENGINE_CHECK(t.dtype() == first.dtype(), op, "tensor {} is {} but tensor 0 is {}", i, dtype_name(t.dtype()),
                 dtype_name(first.dtype()));
    ENGINE_CHECK(same_except(t.shape(), first.shape(), d), op,
                 "tensor {} has shape {} but tensor 0 has shape {} (sizes must match except in dim {})", i,
                 shape_str(t.shape()), shape_str(first.shape()), d);
  }
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  ENGINE_CHECK(!xs.empty(), "concat", "needs at least one tensor");
  ENGINE_CHECK(xs[0].defined(), "concat", "tensor 0 is undefined");
  ENGINE_CHECK(xs[0].dim() > 0, "concat", "cannot concatenate rank-0 tensors (use stack)");
  const int64_t d = wrap_dim(dim, xs[0].dim(), "concat");
  check_concat_inputs(xs, d, "concat");
  std::vector<int64_t> sizes;  // each input's extent along d
  Shape out_shape = xs[0].shape();
  out_shape[d] = 0;
  for (const Tensor& t : xs) {
    sizes.push_back(t.shape()[d]);
    out_shape[d] += t.shape()[d];
  }
  Tensor out = empty(out_shape, xs[0].options());
  {
    NoGradGuard ng;
    int64_t start = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      out.narrow(d, start, sizes[i]).copy_(xs[i]);
      start += sizes[i];
    }
  }
  return record("concat", xs, out, [sizes, d](const Tensors& g) {
    Tensors grads;
    int64_t start = 0;
    for (int64_t n : sizes) {
      grads.push_back(g[0].narrow(d, start, n));
      start += n;
    }
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  ENGINE_CHECK(!xs.empty(), "stack", "needs at least one tensor");
  ENGINE_CHECK(xs[0].defined(), "stack", "tensor 0 is undefined");
  const int64_t d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  for (size_t i = 0; i < xs.size(); ++i) {
    ENGINE_CHECK(xs[i].defined(), "stack", "tensor {} is undefined", i);
    ENGINE_CHECK(xs[i].shape() == xs[0].shape(), "stack", "tensor {} has shape {} but tensor 0 has shape {}", i,
                 shape_str(xs[i].shape()), shape_str(xs[0].shape()));
  }
  std::vector<Tensor> expanded;
  for (const Tensor& t : xs) expanded.push_back(t.unsqueeze(d));
  return concat(expanded, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  check_defined("split", x, "x");
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t n : sizes) {
    ENGINE_CHECK(n >= 0, "split", "negative size in [{}]", fmt::join(sizes, ", "));
    total += n;
  }
  ENGINE_CHECK(total == x.size(d), "split", "sizes [{}] sum to {} but dim {} of x {} has size {}",
               fmt::join(sizes, ", "), total, d, shape_str(x.shape()), x.size(d));
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t n : sizes) {
    parts.push_back(x.narrow(d, start, n));
    start += n;
  }
  return parts;
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim) {
  check_defined("split", x, "x");
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  ENGINE_CHECK(size > 0, "split", "split size must be positive, got {}", size);
  const int64_t n = x.size(d);
  if (n == 0) return {x.narrow(d, 0, 0)};
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < n; start += size) sizes.push_back(std::min(size, n - start));
  return split(x, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  check_defined("chunk", x, "x");
  ENGINE_CHECK(chunks > 0, "chunk", "number of chunks must be positive, got {}", chunks);
  const int64_t n = x.size(wrap_dim(dim, x.dim(), "chunk"));
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), dim);
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  check_defined("pad", x, "x");
  const int64_t rank = x.dim();
  const int64_t npairs = static_cast<int64_t>(pads.size()) / 2;
  ENGINE_CHECK(pads.size() % 2 == 0 && npairs <= rank, "pad", "pads [{}] must hold an even number of at most {} values for x {}",
               fmt::join(pads, ", "), 2 * rank, shape_str(x.shape()));
  Shape out_shape = x.shape();
  for (int64_t i = 0; i < npairs; ++i) {
    const int64_t d = rank - 1 - i;
    out_shape[d] += pads[2 * i] + pads[2 * i + 1];
    ENGINE_CHECK(out_shape[d] >= 0, "pad", "pads [{}] shrink dim {} of x {} below zero", fmt::join(pads, ", "), d,
                 shape_str(x.shape()));
  }
  Tensor out = full(out_shape, value, x.options());
  {
    // Copy the window of x that survives (negative pads crop) into its place in the output.
    NoGradGuard ng;
    Tensor src = x, dst = out;
    bool empty_window = false;
    for (int64_t i = 0; i < npairs; ++i) {
      const int64_t d = rank - 1 - i, before = pads[2 * i], after = pads[2 * i + 1];
      const int64_t kept = x.size(d) - std::max<int64_t>(0, -before) - std::max<int64_t>(0, -after);
      if (kept <= 0) {
        empty_window = true;
        break;
      }
      src = src.narrow(d, std::max<int64_t>(0, -before), kept);
      dst = dst.narrow(d, std::max<int64_t>(0, before), kept);
    }
    if (!empty_window) dst.copy_(src);
  }
  std::vector<int64_t> inverse(pads.size());
  std::transform(pads.begin(), pads.end(), inverse.begin(), [](int64_t p) { return -p; });
  return record("pad", {x}, out, [inverse](const Tensors& g) { return Tensors{pad(g[0], inverse, 0.0)}; });
}

Tensor flip(const Tensor& x, const std::vector<int64_t>& dims) {
  check_defined("flip", x, "x");
  Strides strides = x.strides();
  int64_t offset = x.offset();
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(x.dim(), 1)), false);
  for (int64_t dim : dims) {
    const int64_t d = wrap_dim(dim, x.dim(), "flip");
    ENGINE_CHECK(!seen[d], "flip", "dim {} repeated in [{}]", d, fmt::join(dims, ", "));
    seen[d] = true;
    if (x.dim() == 0 || x.size(d) == 0) continue;
    offset += (x.size(d) - 1) * strides[d];
    strides[d] = -strides[d];
  }
  Tensor out = empty(x.shape(), x.options());
  {
    NoGradGuard ng;
    out.copy_(make_view(x, x.shape(), strides, offset));  // x read backwards along the flipped dims
  }
  return record("flip", {x}, out, [dims](const Tensors& g) { return Tensors{flip(g[0], dims)}; });
}

Tensor roll(const Tensor& x, int64_t shift, int64_t dim) {
  check_defined("roll", x, "x");
  ENGINE_CHECK(x.dim() > 0, "roll", "cannot roll a rank-0 tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "roll");
  const int64_t n = x.size(d);
  const int64_t s = n == 0 ? 0 : ((shift % n) + n) % n;  // out[i] = x[(i - s) mod n]
  if (s == 0) return x.clone();
  return concat({x.narrow(d, n - s, s), x.narrow(d, 0, n - s)}, d);
}

}  // namespace engine
