// Fused LayerNorm and RMSNorm as single autograd nodes: one forward kernel saving per-row mean/rstd, one backward
// kernel producing the input, weight and bias gradients together (deterministic column sums).
#include "engine/ops/norm.h"

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"

namespace engine {

namespace {

// True when D is the product of some number of trailing dims of `shape` (the rows then never straddle a dim).
bool trailing_block(const Shape& shape, int64_t D) {
  int64_t p = 1;
  for (auto it = shape.rbegin(); it != shape.rend() && p < D; ++it) p *= *it;
  return p == D;
}

Tensor fused_norm(const char* op, const Tensor& x, int64_t D, const Tensor& weight, const Tensor& bias, double eps,
                  bool center) {
  check_defined(op, x, "x");
  ENGINE_CHECK(is_floating(x.dtype()), op, "expects a floating tensor, got {}", dtype_name(x.dtype()));
  ENGINE_CHECK(D > 0 && x.dim() >= 1 && trailing_block(x.shape(), D), op,
               "x of shape {} cannot be normalised over its last {} elements", shape_str(x.shape()), D);
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    ENGINE_CHECK(p->numel() == D, op, "parameter of shape {} does not match the normalised size {} of x {}",
                 shape_str(p->shape()), D, shape_str(x.shape()));
    check_same_device(op, x, *p);
    check_same_dtype(op, x, *p);
  }
  const int64_t M = x.numel() / D;
  Tensor rows = x.detach().reshape({M, D}).contiguous();  // [M, D]
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = empty({M, D}, x.options());                                   // [M, D]
  Tensor mean = empty({M}, x.options()), rstd = empty({M}, x.options());  // [M]
  ENGINE_DISPATCH(x.device(), norm_forward_rows, rows, w, b, eps, center, y, mean, rstd);
  Tensor out = y.view(x.shape());
  return record(op, {x, weight, bias}, out, [rows, w, mean, rstd, center, x, weight, bias](const Tensors& g) {
    Tensor gy = g[0].reshape(rows.shape()).contiguous();  // [M, D]
    auto wanted = [](const Tensor& t, const Shape& s) {
      return t.defined() && t.requires_grad() ? empty(s, t.options()) : Tensor();
    };
    Tensor gx = wanted(x, rows.shape());                                                  // [M, D]
    Tensor gw = wanted(weight, {rows.shape()[1]}), gb = wanted(bias, {rows.shape()[1]});  // [D]
    ENGINE_DISPATCH(rows.device(), norm_backward_rows, rows, w, mean, rstd, gy, center, gx, gw, gb);
    auto shaped = [](const Tensor& grad, const Tensor& like) {
      return grad.defined() ? grad.view(like.shape()) : grad;
    };
    return Tensors{shaped(gx, x), shaped(gw, weight), shaped(gb, bias)};
  });
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_defined("layer_norm", x, "x");
  check_defined("layer_norm", weight, "weight");
  ENGINE_CHECK(x.dim() >= weight.dim() &&
                   Shape(x.shape().end() - weight.dim(), x.shape().end()) == weight.shape(),
               "layer_norm", "weight {} does not match the trailing dims of x {}", shape_str(weight.shape()),
               shape_str(x.shape()));
  ENGINE_CHECK(!bias.defined() || bias.shape() == weight.shape(), "layer_norm", "bias {} does not match weight {}",
               shape_str(bias.shape()), shape_str(weight.shape()));
  return fused_norm("layer_norm", x, weight.numel(), weight, bias, eps, true);
}

Tensor layer_norm(const Tensor& x, int64_t normalized, double eps) {
  return fused_norm("layer_norm", x, normalized, Tensor(), Tensor(), eps, true);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  check_defined("rms_norm", x, "x");
  ENGINE_CHECK(x.dim() >= 1, "rms_norm", "x must have at least one dim, got {}", shape_str(x.shape()));
  ENGINE_CHECK(!weight.defined() || (weight.dim() == 1 && weight.size(0) == x.size(-1)), "rms_norm",
               "weight {} does not match the last dim of x {}", shape_str(weight.shape()), shape_str(x.shape()));
  return fused_norm("rms_norm", x, x.size(-1), weight, Tensor(), eps, false);
}

}  // namespace engine
