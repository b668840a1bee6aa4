// ssd_scan: argument checks, the autograd node (saves the contiguous inputs plus chunk-start checkpoints of the
// state) and the dispatch to the CPU / CUDA kernels of layers/ssd_kernels.h.
#include "layers/ssd.h"

#include <memory>

#include "engine/engine.h"
#include "engine/profile.h"
#include "layers/common.h"
#include "layers/dispatch.h"
#include "layers/ssd_kernels.h"

namespace layers {

using engine::Tensor;
using engine::Tensors;

namespace {

class SSDScanOp : public engine::CustomOp {
 public:
  SSDScanOp(int64_t chunk, bool reverse, bool keep) : chunk_(chunk), reverse_(reverse), keep_(keep) {}
  const char* name() const override { return "ssd_scan"; }

  Tensors forward(const Tensors& in) override {
    x_ = in[0].contiguous();
    dt_ = in[1].contiguous();
    A_ = in[2].contiguous();
    B_ = in[3].contiguous();
    C_ = in[4].contiguous();
    if (in[5].defined()) D_ = in[5].contiguous();
    const int64_t L = x_.size(0), H = x_.size(1), P = x_.size(2), n = B_.size(1);
    Tensor y = engine::empty({L, H, P}, x_.options());
    if (keep_) ckpt_ = engine::empty({H, (L + chunk_ - 1) / chunk_, P, n}, x_.options());
    // per (t, h, p, s): a S + (dt x) B (3), y += S C (2); per (t, h, p): dt x (1), D skip (2)
    engine::profile::add_flops(L * H * P * (5 * n + 1 + (D_.defined() ? 2 : 0)));
    LAYER_DISPATCH(x_.device(), ssd_forward, x_, dt_, A_, B_, C_, D_, chunk_, reverse_, y, ckpt_);
    if (!keep_) x_ = dt_ = A_ = B_ = C_ = D_ = Tensor();
    return {y};
  }

  Tensors backward(const Tensors& grads) override {
    ENGINE_CHECK(ckpt_.defined(), "ssd_scan", "backward called on a scan run without gradient tracking");
    Tensor gy = grads[0].contiguous();
    Tensor gx = engine::empty(x_.shape(), x_.options());
    Tensor gdt = engine::empty(dt_.shape(), dt_.options());
    Tensor gA = engine::empty(A_.shape(), A_.options());
    Tensor gB = engine::empty(B_.shape(), B_.options());
    Tensor gC = engine::empty(C_.shape(), C_.options());
    Tensor gD = D_.defined() ? engine::empty(D_.shape(), D_.options()) : Tensor();
    LAYER_DISPATCH(x_.device(), ssd_backward, x_, dt_, A_, B_, C_, D_, ckpt_, gy, chunk_, reverse_, gx, gdt, gA,
                   gB, gC, gD);
    return {gx, gdt, gA, gB, gC, gD};
  }

 private:
  int64_t chunk_;
  bool reverse_, keep_;
  Tensor x_, dt_, A_, B_, C_, D_, ckpt_;
};

}  // namespace

Tensor ssd_scan(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                const Tensor& D, int64_t chunk, bool reverse) {
  const char* where = "ssd_scan";
  check_shape(where, "x", x, {-1, -1, -1});
  const int64_t L = x.size(0), H = x.size(1);
  check_shape(where, "dt", dt, {L, H});
  check_shape(where, "A", A, {H});
  check_shape(where, "B", B, {L, -1});
  check_shape(where, "C", C, {L, B.size(1)});
  check_same_placement(where, x, dt);
  check_same_placement(where, x, A);
  check_same_placement(where, x, B);
  check_same_placement(where, x, C);
  if (D.defined()) {
    check_shape(where, "D", D, {H});
    check_same_placement(where, x, D);
  }
  ENGINE_CHECK(chunk > 0, where, "chunk must be positive, got {}", chunk);
  const bool keep = engine::needs_grad({x, dt, A, B, C, D});
  auto op = std::make_shared<SSDScanOp>(chunk, reverse, keep);
  return engine::apply_custom_op(op, {x, dt, A, B, C, D})[0];
}

}  // namespace layers
