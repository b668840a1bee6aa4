// gated_delta_rule: argument checks, the autograd node (saves the contiguous inputs plus chunk-start checkpoints of
// the state) and the dispatch to the CPU / CUDA kernels of layers/gated_delta_kernels.h. Then the Gated DeltaProduct
// attention, its ShortConvolution / FusedRMSNormSwishGate / GatedMLP pieces and the blocks, through engine ops.
#include "layers/gated_delta.h"

#include <cmath>
#include <vector>

#include "engine/engine.h"
#include "engine/profile.h"
#include "engine/nn/init.h"
#include "layers/common.h"
#include "layers/dispatch.h"
#include "layers/gated_delta_kernels.h"

namespace layers {

using namespace engine;

namespace {

constexpr double kL2Eps = 1e-6;  // fla's l2norm inside the kernel: x / sqrt(|x|^2 + 1e-6)

class GatedDeltaRuleOp : public CustomOp {
 public:
  GatedDeltaRuleOp(int64_t chunk, bool keep) : chunk_(chunk), keep_(keep) {}
  const char* name() const override { return "gated_delta_rule"; }

  Tensors forward(const Tensors& in) override {
    q_ = in[0].contiguous();
    k_ = in[1].contiguous();
    v_ = in[2].contiguous();
    g_ = in[3].contiguous();
    beta_ = in[4].contiguous();
    const int64_t T = q_.size(0), H = q_.size(1), K = q_.size(2), V = v_.size(2);
    scale_ = 1.0 / std::sqrt(static_cast<double>(K));
    Tensor o = empty({T, H, V}, q_.options());
    if (keep_) ckpt_ = empty({H, (T + chunk_ - 1) / chunk_, K, V}, q_.options());
    // per (t, h, i, j): S^T kn (2), a S + kn u (3), o += S qs (2); per (t, h): u = beta (v - a acc) (3 V),
    // |k|^2, |q|^2 and the scaling of k and q (6 K)
    profile::add_flops(T * H * (7 * K * V + 3 * V + 6 * K));
    LAYER_DISPATCH(q_.device(), gated_delta_forward, q_, k_, v_, g_, beta_, chunk_, scale_, kL2Eps, o, ckpt_);
    if (!keep_) q_ = k_ = v_ = g_ = beta_ = Tensor();
    return {o};
  }

  Tensors backward(const Tensors& grads) override {
    ENGINE_CHECK(ckpt_.defined(), "gated_delta_rule", "backward called on a run without gradient tracking");
    Tensor go = grads[0].contiguous();
    Tensor dq = empty(q_.shape(), q_.options()), dk = empty(k_.shape(), k_.options());
    Tensor dv = empty(v_.shape(), v_.options());
    Tensor dg = empty(g_.shape(), g_.options()), db = empty(beta_.shape(), beta_.options());
    LAYER_DISPATCH(q_.device(), gated_delta_backward, q_, k_, v_, g_, beta_, ckpt_, go, chunk_, scale_, kL2Eps, dq,
                   dk, dv, dg, db);
    return {dq, dk, dv, dg, db};
  }

 private:
  int64_t chunk_;
  bool keep_;
  double scale_ = 1.0;
  Tensor q_, k_, v_, g_, beta_, ckpt_;
};

// Interleaves n sequences of shape [L, ...] into [n L, ...]: row t*n + i comes from xs[i][t].
Tensor interleave(const std::vector<Tensor>& xs) {
  if (xs.size() == 1) return xs[0];
  Shape s = xs[0].shape();
  s[0] *= static_cast<int64_t>(xs.size());
  return stack(xs, 1).reshape(s);
}

}  // namespace

Tensor gated_delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta,
                        int64_t chunk) {
  const char* where = "gated_delta_rule";
  check_shape(where, "q", q, {-1, -1, -1});
  const int64_t T = q.size(0), H = q.size(1), K = q.size(2);
  check_shape(where, "k", k, {T, H, K});
  check_shape(where, "v", v, {T, H, -1});
  check_shape(where, "g", g, {T, H});
  check_shape(where, "beta", beta, {T, H});
  for (const Tensor* t : {&k, &v, &g, &beta}) check_same_placement(where, q, *t);
  ENGINE_CHECK(chunk > 0, where, "chunk must be positive, got {}", chunk);
  ENGINE_CHECK(K > 0, where, "the key width K must be positive");
  const bool keep = needs_grad({q, k, v, g, beta});
  auto op = std::make_shared<GatedDeltaRuleOp>(chunk, keep);
  return apply_custom_op(op, {q, k, v, g, beta})[0];
}

// ---------------------------------------------------------------- init helpers

namespace gdelta_detail {

void init_normal_linear(nn::Linear& lin) {
  nn::init::normal_(lin.weight, 0.0, 0.02);
  if (lin.bias.defined()) nn::init::zeros_(lin.bias);
}

void init_rescaled(Tensor& w) {
  nn::init::kaiming_uniform_(w, std::sqrt(5.0));
  NoGradGuard ng;
  w.copy_(w / std::sqrt(2.0));
}

}  // namespace gdelta_detail

using gdelta_detail::init_normal_linear;

// ---------------------------------------------------------------- pieces

ShortConvolution::ShortConvolution(int64_t channels, int64_t kernel) {
  Tensor w = empty({channels, 1, kernel});
  nn::init::normal_(w, 0.0, 0.02);
  weight = register_parameter("weight", w);
}

Tensor ShortConvolution::forward(const Tensor& x) {
  const int64_t C = weight.size(0), K = weight.size(2);
  check_shape("ShortConvolution", "x", x, {-1, C});
  Tensor y = causal_conv1d(x.t().unsqueeze(0), weight.reshape({C, K}));  // [1, C, L]
  return silu(y.squeeze(0).t());
}

FusedRMSNormSwishGate::FusedRMSNormSwishGate(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", ones({dim}));
}

Tensor FusedRMSNormSwishGate::forward(const Tensor& x, const Tensor& gate) const {
  return rms_norm(x, weight, eps) * silu(gate);
}

GatedMLP::GatedMLP(int64_t d) {
  const int64_t raw = static_cast<int64_t>(static_cast<double>(d) * 4.0 * 2.0 / 3.0);  // hidden_ratio 4
  intermediate = 256 * ((raw + 255) / 256);
  gate_proj = register_module("gate_proj", std::make_shared<nn::Linear>(d, intermediate, false));
  up_proj = register_module("up_proj", std::make_shared<nn::Linear>(d, intermediate, false));
  down_proj = register_module("down_proj", std::make_shared<nn::Linear>(intermediate, d, false));
  init_normal_linear(*gate_proj);
  init_normal_linear(*up_proj);
  gdelta_detail::init_rescaled(down_proj->weight);
}

Tensor GatedMLP::forward(const Tensor& x) {
  return down_proj->forward(silu(gate_proj->forward(x)) * up_proj->forward(x));
}

// ---------------------------------------------------------------- attention

GatedDeltaProduct::GatedDeltaProduct(int64_t d_, GatedDeltaProductOptions o) : d(d_), opt(o) {
  ENGINE_CHECK(opt.num_householder >= 1, "GatedDeltaProduct", "num_householder must be >= 1");
  key_dim = opt.num_heads * opt.head_dim;
  value_dim = key_dim * opt.expand_v;
  const int64_t H = opt.num_heads, nh = opt.num_householder;
  q_proj = register_module("q_proj", std::make_shared<nn::Linear>(d, key_dim, false));
  k_projs = register_module("k_projs", std::make_shared<nn::ModuleList>());
  v_projs = register_module("v_projs", std::make_shared<nn::ModuleList>());
  b_projs = register_module("b_projs", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < nh; ++i) {
    k_projs->push_back(std::make_shared<nn::Linear>(d, key_dim, false));
    v_projs->push_back(std::make_shared<nn::Linear>(d, value_dim, false));
    b_projs->push_back(std::make_shared<nn::Linear>(d, H, false));
  }
  q_conv1d = register_module("q_conv1d", std::make_shared<ShortConvolution>(key_dim, opt.conv_size));
  k_conv1ds = register_module("k_conv1ds", std::make_shared<nn::ModuleList>());
  v_conv1ds = register_module("v_conv1ds", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < nh; ++i) {
    k_conv1ds->push_back(std::make_shared<ShortConvolution>(key_dim, opt.conv_size));
    v_conv1ds->push_back(std::make_shared<ShortConvolution>(value_dim, opt.conv_size));
  }
  a_proj = register_module("a_proj", std::make_shared<nn::Linear>(d, H, false));
  {
    Tensor A = empty({H});
    nn::init::uniform_(A, 0.0, 16.0);  // log U(0, 16): the reference's range starts at 0, not 1
    A_log = register_parameter("A_log", log(A).detach());
  }
  {
    const double lo = std::log(1e-3), hi = std::log(0.1);
    Tensor u = empty({H});
    nn::init::uniform_(u, 0.0, 1.0);
    std::vector<float> vals = u.to_vector<float>();
    for (float& e : vals) {
      const double dt = std::max(std::exp(e * (hi - lo) + lo), 1e-4);
      e = static_cast<float>(dt + std::log(-std::expm1(-dt)));  // softplus^-1(dt)
    }
    dt_bias = register_parameter("dt_bias", from_vector(vals, {H}));
  }
  g_proj = register_module("g_proj", std::make_shared<nn::Linear>(d, value_dim, false));
  o_norm = register_module("o_norm", std::make_shared<FusedRMSNormSwishGate>(opt.head_dim * opt.expand_v,
                                                                              opt.norm_eps));
  o_proj = register_module("o_proj", std::make_shared<nn::Linear>(value_dim, d, false));
  // GatedDelta._init_weights: N(0, 0.02) everywhere (convolutions done in their constructor), o_proj rescaled.
  init_normal_linear(*q_proj);
  init_normal_linear(*a_proj);
  init_normal_linear(*g_proj);
  for (int64_t i = 0; i < nh; ++i) {
    init_normal_linear(*k_projs->get<nn::Linear>(i));
    init_normal_linear(*v_projs->get<nn::Linear>(i));
    init_normal_linear(*b_projs->get<nn::Linear>(i));
  }
  gdelta_detail::init_rescaled(o_proj->weight);
}

Tensor GatedDeltaProduct::forward(const Tensor& x) {
  check_shape("GatedDeltaProduct", "x", x, {-1, d});
  const int64_t L = x.size(0), H = opt.num_heads, Kd = opt.head_dim, Vd = opt.head_dim * opt.expand_v;
  const size_t nh = static_cast<size_t>(opt.num_householder);
  std::vector<Tensor> ks, vs, betas, qs, gs;
  for (size_t i = 0; i < nh; ++i) {
    ks.push_back(k_conv1ds->get<ShortConvolution>(i)->forward(k_projs->get<nn::Linear>(i)->forward(x)));
    vs.push_back(v_conv1ds->get<ShortConvolution>(i)->forward(v_projs->get<nn::Linear>(i)->forward(x)));
    betas.push_back(sigmoid(b_projs->get<nn::Linear>(i)->forward(x)));
  }
  Tensor q = q_conv1d->forward(q_proj->forward(x));  // [L, key_dim]
  Tensor g = neg(exp(A_log)) * softplus(a_proj->forward(x) + dt_bias);  // [L, H], <= 0
  // Sub-steps: the query only on the last one, the decay only on the first one.
  for (size_t i = 0; i + 1 < nh; ++i) qs.push_back(zeros_like(q));
  qs.push_back(q);
  gs.push_back(g);
  for (size_t i = 1; i < nh; ++i) gs.push_back(zeros_like(g));
  const int64_t T = L * static_cast<int64_t>(nh);
  Tensor o = gated_delta_rule(interleave(qs).reshape({T, H, Kd}), interleave(ks).reshape({T, H, Kd}),
                              interleave(vs).reshape({T, H, Vd}), interleave(gs), interleave(betas), opt.chunk);
  o = o.reshape({L, static_cast<int64_t>(nh), H, Vd}).select(1, static_cast<int64_t>(nh) - 1);  // [L, H, Vd]
  Tensor gate = g_proj->forward(x).reshape({L, H, Vd});
  o = o_norm->forward(o, gate).reshape({L, value_dim});
  return o_proj->forward(o);
}

// ---------------------------------------------------------------- blocks

GatedDeltaProductBlock::GatedDeltaProductBlock(int64_t d, bool local_, GatedDeltaProductOptions o) : local(local_) {
  attn_norm = register_module("attn_norm", std::make_shared<nn::RMSNorm>(d, 1e-6));
  attn = register_module("attn", std::make_shared<GatedDeltaProduct>(d, o));
  mlp_norm = register_module("mlp_norm", std::make_shared<nn::RMSNorm>(d, 1e-6));
  if (local) local_agg_norm = register_module("local_agg_norm", std::make_shared<nn::RMSNorm>(d, 1e-6));
  mlp = register_module("mlp", std::make_shared<GatedMLP>(d));
  if (local) local_agg = register_module("local_agg", std::make_shared<LocalAggregation>(d, d));
}

Tensor GatedDeltaProductBlock::forward(const Tensor& x, const Tensor& edge_index) {
  Tensor h = x;
  if (local) {
    ENGINE_CHECK(edge_index.defined(), "GatedDeltaProductBlock", "the local1 block needs edge_index");
    h = x + local_agg_norm->forward(local_agg->forward(x, edge_index));
  }
  Tensor r = attn->forward(attn_norm->forward(h)) + x;  // residual: the ORIGINAL x in both variants
  return r + mlp->forward(mlp_norm->forward(r));
}

}  // namespace layers
