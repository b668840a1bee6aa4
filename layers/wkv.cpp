// wkv5: argument checks, the autograd node (saves the contiguous inputs and the chunk-start states) and the dispatch
// to the kernels of layers/wkv_kernels.h.
#include "layers/wkv.h"

#include <memory>

#include "engine/engine.h"
#include "engine/profile.h"
#include "layers/common.h"
#include "layers/dispatch.h"
#include "layers/wkv_kernels.h"

namespace layers {

using engine::Tensor;
using engine::Tensors;

namespace {

class WKV5Op : public engine::CustomOp {
 public:
  WKV5Op(int64_t chunk, bool keep) : chunk_(chunk), keep_(keep) {}
  const char* name() const override { return "wkv5"; }

  Tensors forward(const Tensors& in) override {
    r_ = in[0].contiguous(), k_ = in[1].contiguous(), v_ = in[2].contiguous(), w_ = in[3].contiguous();
    u_ = in[4].contiguous();
    const int64_t L = r_.size(0), H = r_.size(1), N = r_.size(2);
    Tensor y = engine::empty({L, H, N}, r_.options());
    if (keep_) ckpt_ = engine::empty({(L + chunk_ - 1) / chunk_, H, N, N}, r_.options());
    // per (t, h, j, i): y += r S + (r u k) v (4), S = w S + k v (3); per (t, h, j): r u k (2)
    engine::profile::add_flops(L * H * N * (7 * N + 2));
    LAYER_DISPATCH(r_.device(), wkv5_forward, r_, k_, v_, w_, u_, chunk_, y, ckpt_);
    if (!keep_) r_ = k_ = v_ = w_ = u_ = Tensor();
    return {y};
  }

  Tensors backward(const Tensors& grads) override {
    ENGINE_CHECK(ckpt_.defined(), "wkv5", "backward called on a scan run without gradient tracking");
    const Tensor g = grads[0].contiguous();
    auto like = [](const Tensor& t) { return engine::empty(t.shape(), t.options()); };
    Tensor gr = like(r_), gk = like(k_), gv = like(v_), gw = like(w_), gu = like(u_);
    LAYER_DISPATCH(r_.device(), wkv5_backward, r_, k_, v_, w_, u_, ckpt_, g, chunk_, gr, gk, gv, gw, gu);
    return {gr, gk, gv, gw, gu};
  }

 private:
  int64_t chunk_;
  bool keep_;
  Tensor r_, k_, v_, w_, u_, ckpt_;
};

class WKV7Op : public engine::CustomOp {
 public:
  WKV7Op(int64_t chunk, bool keep) : chunk_(chunk), keep_(keep) {}
  const char* name() const override { return "wkv7"; }

  Tensors forward(const Tensors& in) override {
    for (size_t i = 0; i < 6; ++i) x_[i] = in[i].contiguous();
    const Tensor& r = x_[0];
    const int64_t L = r.size(0), H = r.size(1), N = r.size(2);
    Tensor y = engine::empty({L, H, N}, r.options());
    if (keep_) ckpt_ = engine::empty({(L + chunk_ - 1) / chunk_, H, N, N}, r.options());
    // per (t, h, i, j): S a (2), S d + (S a) b + v k (5), y += S r (2); the decays exp(-exp(w)) are not counted
    engine::profile::add_flops(9 * L * H * N * N);
    LAYER_DISPATCH(r.device(), wkv7_forward, x_[0], x_[1], x_[2], x_[3], x_[4], x_[5], chunk_, y, ckpt_);
    if (!keep_)
      for (Tensor& t : x_) t = Tensor();
    return {y};
  }

  Tensors backward(const Tensors& grads) override {
    ENGINE_CHECK(ckpt_.defined(), "wkv7", "backward called on a scan run without gradient tracking");
    const Tensor g = grads[0].contiguous();
    Tensors gx;
    for (const Tensor& t : x_) gx.push_back(engine::empty(t.shape(), t.options()));
    LAYER_DISPATCH(x_[0].device(), wkv7_backward, x_[0], x_[1], x_[2], x_[3], x_[4], x_[5], ckpt_, g, chunk_, gx[0],
                   gx[1], gx[2], gx[3], gx[4], gx[5]);
    return gx;
  }

 private:
  int64_t chunk_;
  bool keep_;
  Tensor x_[6], ckpt_;
};

void check_sizes(const char* where, int64_t N, int64_t chunk) {
  ENGINE_CHECK(chunk > 0, where, "chunk must be positive, got {}", chunk);
  ENGINE_CHECK(N <= 32 && chunk <= 256, where, "head size {} > 32 or chunk {} > 256 is not supported", N, chunk);
}

}  // namespace

Tensor wkv5(const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, int64_t chunk) {
  const char* where = "wkv5";
  check_shape(where, "r", r, {-1, -1, -1});
  const int64_t L = r.size(0), H = r.size(1), N = r.size(2);
  check_shape(where, "k", k, {L, H, N});
  check_shape(where, "v", v, {L, H, N});
  check_shape(where, "w", w, {H, N});
  check_shape(where, "u", u, {H, N});
  for (const Tensor* t : {&k, &v, &w, &u}) check_same_placement(where, r, *t);
  check_sizes(where, N, chunk);
  const bool keep = engine::needs_grad({r, k, v, w, u});
  return engine::apply_custom_op(std::make_shared<WKV5Op>(chunk, keep), {r, k, v, w, u})[0];
}

Tensor wkv7(const Tensor& r, const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
            int64_t chunk) {
  const char* where = "wkv7";
  check_shape(where, "r", r, {-1, -1, -1});
  const int64_t L = r.size(0), H = r.size(1), N = r.size(2);
  const char* names[] = {"w", "k", "v", "a", "b"};
  const Tensor* rest[] = {&w, &k, &v, &a, &b};
  for (int i = 0; i < 5; ++i) {
    check_shape(where, names[i], *rest[i], {L, H, N});
    check_same_placement(where, r, *rest[i]);
  }
  check_sizes(where, N, chunk);
  const bool keep = engine::needs_grad({r, w, k, v, a, b});
  return engine::apply_custom_op(std::make_shared<WKV7Op>(chunk, keep), {r, w, k, v, a, b})[0];
}

}  // namespace layers
