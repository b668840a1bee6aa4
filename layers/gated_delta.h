// The gated delta rule as one fused autograd node, and the Gated DeltaProduct layers Lampa's gatedelta, lshgd and
// gdlocal1 models are built from (lampa-models.md 3.8, 6.2; reference: modeling_gated_deltaproduct.py).
//
// Precision: the reference casts q, k, v, g and beta to fp16 before its chunked kernel (3.8 step 4); here everything
// is computed in the input dtype (float32 in the models, float64 in gradient checks). Results therefore match the
// reference's math, not its fp16 rounding.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"
#include "layers/local_aggregation.h"

namespace layers {

// Gated delta rule, per head (state S [K, V], S_0 = 0), over T steps:
//   S_t = (I - beta_t kn_t kn_t^T) e^{g_t} S_{t-1} + beta_t kn_t v_t^T,   o_t = S_t^T (qn_t / sqrt(K))
// with qn = q / sqrt(|q|^2 + eps), kn = k / sqrt(|k|^2 + eps), eps = 1e-6: the L2 normalisation of q and k and the
// 1/sqrt(K) scale happen INSIDE the op (as fla's use_qk_l2norm_in_kernel=True), so pass raw q and k.
// q, k [T, H, K], v [T, H, V], g [T, H] (log decay, <= 0 in the models but any value works), beta [T, H]
// -> o [T, H, V]. Gradients for q, k, v, g and beta. Any T >= 0. `chunk` only sets the checkpoint spacing: the
// backward recomputes the states of one chunk from its checkpoint (no division by e^g), so training memory is
// O(T*H*(K+V)) + O(T/chunk * H*K*V). Float32 or float64, CPU or CUDA (one thread block per head).
engine::Tensor gated_delta_rule(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                                const engine::Tensor& g, const engine::Tensor& beta, int64_t chunk = 64);

// fla's ShortConvolution: a causal depthwise nn.Conv1d(C, C, K, groups=C) without bias followed by SiLU.
// weight [C, 1, K] (PyTorch layout). forward: [L, C] -> [L, C].
class ShortConvolution : public engine::nn::UnaryModule {
 public:
  ShortConvolution(int64_t channels, int64_t kernel);
  engine::Tensor forward(const engine::Tensor& x) override;
  engine::Tensor weight;
};

// fla's FusedRMSNormSwishGate(dim, eps): y = RMSN(x) * w * silu(gate) over the last dim (norm BEFORE the gate).
class FusedRMSNormSwishGate : public engine::nn::Module {
 public:
  explicit FusedRMSNormSwishGate(int64_t dim, double eps);
  engine::Tensor forward(const engine::Tensor& x, const engine::Tensor& gate) const;
  engine::Tensor weight;
  double eps;
};

// fla's GatedMLP with SwiGLU: down(silu(gate x) * up x), no biases, intermediate width
// 256 * ceil(int(8d/3) / 256) (256 for d = 48 and d = 96). Parameters 3 * d * width. [L, d] -> [L, d].
class GatedMLP : public engine::nn::UnaryModule {
 public:
  explicit GatedMLP(int64_t d);
  engine::Tensor forward(const engine::Tensor& x) override;
  int64_t intermediate;
  std::shared_ptr<engine::nn::Linear> gate_proj, up_proj, down_proj;
};

struct GatedDeltaProductOptions {
  int64_t num_heads = 6, head_dim = 16, expand_v = 2, num_householder = 2, conv_size = 4, chunk = 64;
  double norm_eps = 1e-6;
};

// Gated DeltaProduct attention (3.8): per token t, num_householder sub-steps; sub-step i uses k_i, v_i, beta_i, the
// decay g only on the first sub-step and the query only on the last one, and the output of the last sub-step is
// kept. Then per-head FusedRMSNormSwishGate with g_proj(x) and o_proj. Parameters (defaults): 1074 d + 2732.
// x [L, d] -> [L, d] (causal over L).
//
// Initialisation is the one GatedDelta._init_weights leaves (3.8 "Init"): every Linear and ShortConvolution
// N(0, 0.02), o_proj kaiming_uniform(a = sqrt 5) / sqrt 2, A_log = log U(0, 16), dt_bias = softplus^-1 of
// log-uniform [1e-3, 0.1], o_norm weight 1.
class GatedDeltaProduct : public engine::nn::Module {
 public:
  explicit GatedDeltaProduct(int64_t d, GatedDeltaProductOptions o = {});
  engine::Tensor forward(const engine::Tensor& x);

  int64_t d, key_dim, value_dim;
  GatedDeltaProductOptions opt;
  std::shared_ptr<engine::nn::Linear> q_proj, a_proj, g_proj, o_proj;
  std::shared_ptr<engine::nn::ModuleList> k_projs, v_projs, b_projs, k_conv1ds, v_conv1ds;
  std::shared_ptr<ShortConvolution> q_conv1d;
  std::shared_ptr<FusedRMSNormSwishGate> o_norm;
  engine::Tensor A_log, dt_bias;
};

// GatedDeltaProductBlock (pre-norm, eps 1e-6):  a = Attn(RMSN x);  r = a + x;  out = r + GatedMLP(RMSN r).
// With local = true (GatedDeltaProductBlock_local1): x' = x + RMSN(LocalAggregation(x, edge_index)), the attention
// reads RMSN(x'), and the residual is still the ORIGINAL x. Parameters: 1074 d + 2732 + 768 d + 2 d (+ 2 d^2 + 2 d
// for local). The MLP is down_proj-initialised with kaiming_uniform(a = sqrt 5) / sqrt 2, its other Linears N(0, 0.02).
class GatedDeltaProductBlock : public engine::nn::Module {
 public:
  GatedDeltaProductBlock(int64_t d, bool local, GatedDeltaProductOptions o = {});
  // x [L, d]; edge_index [2, E] int64 (only read when local; must then be defined).
  engine::Tensor forward(const engine::Tensor& x, const engine::Tensor& edge_index = {});

  bool local;
  std::shared_ptr<engine::nn::RMSNorm> attn_norm, mlp_norm, local_agg_norm;
  std::shared_ptr<GatedDeltaProduct> attn;
  std::shared_ptr<GatedMLP> mlp;
  std::shared_ptr<LocalAggregation> local_agg;
};

namespace gdelta_detail {
// In-place N(0, 0.02) weight (and zero bias) of a Linear, as GatedDelta._init_weights does.
void init_normal_linear(engine::nn::Linear& lin);
// kaiming_uniform(a = sqrt 5) / sqrt 2 (the "rescale" of o_proj and down_proj).
void init_rescaled(engine::Tensor& w);
}  // namespace gdelta_detail

}  // namespace layers
