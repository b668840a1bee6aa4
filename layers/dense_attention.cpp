// dense_attention: argument checks, the autograd node (saves the contiguous inputs, the output and the per-row
// logsumexp) and the dispatch to the kernels of layers/dense_attention_kernels.h; the MultiHeadAttention module.
#include "layers/dense_attention.h"

#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "engine/profile.h"
#include "layers/common.h"
#include "layers/dense_attention_kernels.h"
#include "layers/dispatch.h"

namespace layers {

using namespace engine;

namespace {

// Per visible (query, key) pair and head: q . k (2 D), scale and softmax sum (2), o += p v (2 Dv).
int64_t flops(const AttnGeometry& g) {
  int64_t pairs = 0;
  for (int64_t i = 0; i < g.N; ++i) {
    int64_t lo = 0, hi = 0;
    attn_key_range(g, i, &lo, &hi);
    pairs += std::max<int64_t>(hi - lo, 0);
  }
  return pairs * g.H * (2 * g.D + 2 * g.Dv + 2);
}

class DenseAttentionOp : public CustomOp {
 public:
  DenseAttentionOp(AttnGeometry g, bool keep) : g_(g), keep_(keep) {}
  const char* name() const override { return "dense_attention"; }

  Tensors forward(const Tensors& in) override {
    q_ = in[0].contiguous();
    k_ = in[1].contiguous();
    v_ = in[2].contiguous();
    o_ = empty({g_.N, g_.H, g_.Dv}, q_.options());  // [N, H, Dv]
    lse_ = empty({g_.N, g_.H}, q_.options());       // [N, H]
    if (profile::counting_flops()) profile::add_flops(flops(g_));
    LAYER_DISPATCH(q_.device(), dense_attention_forward, q_, k_, v_, g_, o_, lse_);
    Tensor out = o_;
    if (!keep_) q_ = k_ = v_ = o_ = lse_ = Tensor();
    return {out};
  }

  Tensors backward(const Tensors& grads) override {
    ENGINE_CHECK(lse_.defined(), "dense_attention", "backward called on a run without gradient tracking");
    Tensor go = grads[0].contiguous();
    Tensor dq = empty(q_.shape(), q_.options()), dk = empty(k_.shape(), k_.options());
    Tensor dv = empty(v_.shape(), v_.options());
    LAYER_DISPATCH(q_.device(), dense_attention_backward, q_, k_, v_, o_, lse_, go, g_, dq, dk, dv);
    return {dq, dk, dv};
  }

 private:
  AttnGeometry g_;
  bool keep_;
  Tensor q_, k_, v_, o_, lse_;
};

}  // namespace

Tensor dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, const DenseAttentionOptions& opt) {
  const char* where = "dense_attention";
  check_shape(where, "q", q, {-1, -1, -1});
  const int64_t N = q.size(0), H = q.size(1), D = q.size(2);
  check_shape(where, "k", k, {N, H, D});
  check_shape(where, "v", v, {N, H, -1});
  check_same_placement(where, q, k);
  check_same_placement(where, q, v);
  ENGINE_CHECK(D > 0, where, "the head width D must be positive");
  ENGINE_CHECK(opt.group >= 0, where, "group must be >= 0, got {}", opt.group);
  ENGINE_CHECK(opt.n_valid >= -1 && opt.n_valid <= N, where, "n_valid must be in [-1, N = {}], got {}", N,
               opt.n_valid);
  ENGINE_CHECK(opt.scale >= 0.0, where, "scale must be >= 0 (0 means 1/sqrt(D)), got {}", opt.scale);
  AttnGeometry g;
  g.N = N;
  g.H = H;
  g.D = D;
  g.Dv = v.size(2);
  g.group = opt.group;
  g.n_valid = opt.n_valid < 0 ? N : opt.n_valid;
  g.causal = opt.causal;
  g.scale = opt.scale > 0.0 ? opt.scale : 1.0 / std::sqrt(static_cast<double>(D));
  auto op = std::make_shared<DenseAttentionOp>(g, needs_grad({q, k, v}));
  return apply_custom_op(op, {q, k, v})[0];
}

MultiHeadAttention::MultiHeadAttention(int64_t dim_, int64_t heads_, int64_t head_dim_)
    : dim(dim_), heads(heads_), head_dim(head_dim_) {
  ENGINE_CHECK(dim > 0 && heads > 0 && head_dim > 0, "MultiHeadAttention", "dim, heads and head_dim must be > 0");
  w_q = register_module("w_q", std::make_shared<nn::Linear>(dim, heads * head_dim, false));
  w_k = register_module("w_k", std::make_shared<nn::Linear>(dim, heads * head_dim, false));
  w_v = register_module("w_v", std::make_shared<nn::Linear>(dim, heads * head_dim, false));
  out_linear = register_module("out_linear", std::make_shared<nn::Linear>(heads * head_dim, dim));
}

Tensor MultiHeadAttention::forward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                   const DenseAttentionOptions& opt) const {
  check_shape("MultiHeadAttention", "q_in", q_in, {-1, dim});
  const int64_t N = q_in.size(0);
  check_shape("MultiHeadAttention", "k_in", k_in, {N, dim});
  check_shape("MultiHeadAttention", "v_in", v_in, {N, dim});
  Tensor q = w_q->forward(q_in).reshape({N, heads, head_dim});  // [N, H, hd]
  Tensor k = w_k->forward(k_in).reshape({N, heads, head_dim});
  Tensor v = w_v->forward(v_in).reshape({N, heads, head_dim});
  Tensor o = dense_attention(q, k, v, opt);  // [N, H, hd]
  return out_linear->forward(o.reshape({N, heads * head_dim}));
}

}  // namespace layers
