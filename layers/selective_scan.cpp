// selective_scan: argument checks, the autograd node (saves the contiguous inputs, the ungated output and the
// chunk-start states) and the dispatch to the kernels of layers/selective_scan_kernels.h.
#include "layers/selective_scan.h"

#include <memory>

#include "engine/engine.h"
#include "engine/profile.h"
#include "layers/common.h"
#include "layers/dispatch.h"
#include "layers/selective_scan_kernels.h"

namespace layers {

using engine::Tensor;
using engine::Tensors;

namespace {

class SelectiveScanOp : public engine::CustomOp {
 public:
  SelectiveScanOp(int64_t chunk, bool keep) : chunk_(chunk), keep_(keep) {}
  const char* name() const override { return "selective_scan"; }

  Tensors forward(const Tensors& in) override {
    x_ = in[0].contiguous(), delta_ = in[1].contiguous(), A_ = in[2].contiguous(), B_ = in[3].contiguous();
    C_ = in[4].contiguous(), D_ = in[5].contiguous(), bias_ = in[6].contiguous();
    if (in[7].defined()) z_ = in[7].contiguous();
    const int64_t L = x_.size(0), E = x_.size(1), n = A_.size(1);
    Tensor out = engine::empty({L, E}, x_.options());
    y_pre_ = z_.defined() ? engine::empty({L, E}, x_.options()) : out;
    if (keep_) ckpt_ = engine::empty({(L + chunk_ - 1) / chunk_, E, n}, x_.options());
    // per (t, e, s): dt A, decay * h, (dt x) B, +, y += C h (6); per (t, e): delta + bias, dt x, D skip (4), gate (2)
    engine::profile::add_flops(L * E * (6 * n + 4 + (z_.defined() ? 2 : 0)));
    LAYER_DISPATCH(x_.device(), selective_scan_forward, x_, delta_, A_, B_, C_, D_, bias_, z_, chunk_, out, y_pre_,
                   ckpt_);
    if (!keep_) x_ = delta_ = A_ = B_ = C_ = D_ = bias_ = z_ = y_pre_ = Tensor();
    else if (!z_.defined()) y_pre_ = out.detach();
    return {out};
  }

  Tensors backward(const Tensors& grads) override {
    ENGINE_CHECK(ckpt_.defined(), "selective_scan", "backward called on a scan run without gradient tracking");
    const Tensor g = grads[0].contiguous();
    auto like = [](const Tensor& t) { return engine::empty(t.shape(), t.options()); };
    Tensor gx = like(x_), gdelta = like(delta_), gA = like(A_), gB = like(B_), gC = like(C_), gD = like(D_);
    Tensor gbias = like(bias_), gz = z_.defined() ? like(z_) : Tensor();
    LAYER_DISPATCH(x_.device(), selective_scan_backward, x_, delta_, A_, B_, C_, D_, bias_, z_, y_pre_, ckpt_, g,
                   chunk_, gx, gdelta, gA, gB, gC, gD, gbias, gz);
    return {gx, gdelta, gA, gB, gC, gD, gbias, gz};
  }

 private:
  int64_t chunk_;
  bool keep_;
  Tensor x_, delta_, A_, B_, C_, D_, bias_, z_, y_pre_, ckpt_;
};

}  // namespace

Tensor selective_scan(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                      const Tensor& D, const Tensor& delta_bias, const Tensor& z, int64_t chunk) {
  const char* where = "selective_scan";
  check_shape(where, "x", x, {-1, -1});
  const int64_t L = x.size(0), E = x.size(1);
  check_shape(where, "delta", delta, {L, E});
  check_shape(where, "A", A, {E, -1});
  const int64_t n = A.size(1);
  check_shape(where, "B", B, {L, n});
  check_shape(where, "C", C, {L, n});
  check_shape(where, "D", D, {E});
  check_shape(where, "delta_bias", delta_bias, {E});
  for (const Tensor* t : {&delta, &A, &B, &C, &D, &delta_bias}) check_same_placement(where, x, *t);
  if (z.defined()) {
    check_shape(where, "z", z, {L, E});
    check_same_placement(where, x, z);
  }
  ENGINE_CHECK(chunk > 0, where, "chunk must be positive, got {}", chunk);
  const bool keep = engine::needs_grad({x, delta, A, B, C, D, delta_bias, z});
  return engine::apply_custom_op(std::make_shared<SelectiveScanOp>(chunk, keep), {x, delta, A, B, C, D, delta_bias, z})[0];
}

}  // namespace layers
