// Lampa's Hydra quasi-separable bidirectional mixer (hydra_mamba.py HydraMamba; lampa-models.md 3.4):
//   [z | xBC | dtr] = in_proj(u); xBC = silu(causal_conv1d(xBC)) (causal, forward time only);
//   x = xBC[:, :E], forward (B_f, C_f) = BC[0:n], BC[n:2n], backward (B_b, C_b) = BC[2n:3n], BC[3n:4n];
//   dt_f = softplus(dtr[:, :nh] + dt_bias), dt_b = softplus(dtr[:, nh:] + dt_bias) (shared dt_bias and A);
//   yhat_f = SSD(x, dt_f, B_f, C_f) + D x (causal), yhat_b = the same scan run from the end (anti-causal);
//   y_t = yhat_f[t-1] + yhat_b[t+1] + x_t * (fc_D(x_t) + D)_head   (missing neighbours at the ends count as 0);
//   out = out_proj(RMSN(y * silu(z)) * w)   (gate BEFORE the norm, eps 1e-5).
// Differences from goombalab's reference Hydra, kept on purpose to match Lampa: causal K=4 conv (not centred K=7),
// the D skip added inside each direction before the shift, A_log = log U(1, 16) (not A = 1), gate before the norm.
// The backward direction runs the fused scan with reverse = true, so no flipped copies are made.
// Shapes: u [L, d_model] -> [L, d_model].
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "layers/mamba2.h"

namespace layers {

struct HydraOptions {
  int64_t d_inner = 96, headdim = 12, d_state = 16, d_conv = 4, chunk = 64;
};

class Hydra : public engine::nn::Module {
 public:
  explicit Hydra(int64_t d_model = 48, HydraOptions o = {});
  engine::Tensor forward(const engine::Tensor& u);

  int64_t d_model, nheads;
  HydraOptions opt;
  std::shared_ptr<engine::nn::Linear> in_proj, out_proj, fc_D;
  std::shared_ptr<ssd_detail::DepthwiseConv1d> conv1d;
  std::shared_ptr<engine::nn::RMSNorm> norm;  // only its weight is used (gated form)
  engine::Tensor dt_bias, A_log, D;
};

}  // namespace layers
