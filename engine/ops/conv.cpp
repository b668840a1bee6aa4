// Public depthwise causal 1-D convolution: argument checks and one fused autograd node (CustomOp) whose forward and
// backward are single kernel calls.
#include "engine/ops/conv.h"

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"
#include "engine/profile.h"

namespace engine {

namespace {

void check_conv_args(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const char* op = "causal_conv1d";
  check_defined(op, x, "x");
  check_defined(op, weight, "weight");
  ENGINE_CHECK(is_floating(x.dtype()), op, "x must be float32 or float64, got {}", dtype_name(x.dtype()));
  ENGINE_CHECK(x.dim() == 3, op, "x must be [B, C, L], got {}", shape_str(x.shape()));
  ENGINE_CHECK(weight.dim() == 2 && weight.size(0) == x.size(1) && weight.size(1) >= 1, op,
               "weight must be [C, K] with C = {} and K >= 1, got {} (x is {})", x.size(1), shape_str(weight.shape()),
               shape_str(x.shape()));
  check_same_dtype(op, x, weight);
  check_same_device(op, x, weight);
  if (!bias.defined()) return;
  ENGINE_CHECK(bias.dim() == 1 && bias.size(0) == x.size(1), op, "bias must be [C] with C = {}, got {}", x.size(1),
               shape_str(bias.shape()));
  check_same_dtype(op, x, bias);
  check_same_device(op, x, bias);
}

// inputs {x [B, C, L], weight [C, K], bias [C] or undefined} -> {out [B, C, L]}
class CausalConv1d : public CustomOp {
 public:
  const char* name() const override { return "causal_conv1d"; }

  Tensors forward(const Tensors& in) override {
    x_ = in[0].detach();
    weight_ = in[1].detach().contiguous();
    x_needs_grad_ = in[0].requires_grad();
    weight_needs_grad_ = in[1].requires_grad();
    bias_needs_grad_ = in[2].defined() && in[2].requires_grad();
    Tensor bias = in[2].defined() ? in[2].detach().contiguous() : Tensor();
    Tensor out = empty(x_.shape(), x_.options());
    profile::add_flops(2 * x_.numel() * weight_.size(1));  // one multiply-add per output element and tap
    ENGINE_DISPATCH(x_.device(), causal_conv1d_forward, x_, weight_, bias, out);
    return {out};
  }

  Tensors backward(const Tensors& g) override {
    Tensor dx = x_needs_grad_ ? empty(x_.shape(), x_.options()) : Tensor();
    Tensor dweight = weight_needs_grad_ ? empty(weight_.shape(), weight_.options()) : Tensor();
    Tensor dbias = bias_needs_grad_ ? empty({x_.size(1)}, x_.options()) : Tensor();
    ENGINE_DISPATCH(x_.device(), causal_conv1d_backward, x_, weight_, g[0], dx, dweight, dbias);
    return {dx, dweight, dbias};
  }

 private:
  Tensor x_, weight_;  // saved context (no history)
  bool x_needs_grad_ = false, weight_needs_grad_ = false, bias_needs_grad_ = false;
};

}  // namespace

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_conv_args(x, weight, bias);
  return apply_custom_op(std::make_shared<CausalConv1d>(), {x, weight, bias})[0];
}

}  // namespace engine
