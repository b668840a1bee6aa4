// Mamba (v1) mixer as mamba_ssm's modules/mamba_simple.Mamba with its defaults, and the pre-norm residual block
// Lampa's hmamba models stack (lampa-models.md 3.2): in_proj -> (xi, z); xc = silu(causal depthwise conv(xi));
// x_proj(xc) -> (dt_r, B, C); delta = dt_r dt_proj.weight^T; y = selective_scan(xc, delta, -exp(A_log), B, C, D,
// dt_proj.bias, z); out_proj(y). Shapes: u [L, d_model] -> [L, d_model] (batch size 1, sequence first).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"
#include "layers/mamba2.h"

namespace layers {

struct MambaOptions {
  int64_t d_state = 16, d_conv = 4, expand = 2;
  int64_t dt_rank = -1;  // -1: ceil(d_model / 16)
  int64_t n_layer = 1;   // out_proj init is divided by sqrt(n_layer) (hmamba's _init_weights)
  int64_t chunk = 256;   // selective-scan checkpoint interval (memory/recompute trade-off only)
};

class Mamba : public engine::nn::Module {
 public:
  explicit Mamba(int64_t d_model, MambaOptions o = {});
  engine::Tensor forward(const engine::Tensor& u);  // [L, d_model] -> [L, d_model]

  int64_t d_model, d_inner, dt_rank;
  MambaOptions opt;
  std::shared_ptr<engine::nn::Linear> in_proj, x_proj, dt_proj, out_proj;
  std::shared_ptr<ssd_detail::DepthwiseConv1d> conv1d;
  engine::Tensor A_log, D;  // [E, n], [E]
};

// x + Mamba(LayerNorm(x)) (mamba_ssm Block with fused_add_norm off and no drop path); state-dict names mixer.*, norm.*.
class MambaBlock : public engine::nn::Module {
 public:
  MambaBlock(int64_t d_model, MambaOptions o = {});
  engine::Tensor forward(const engine::Tensor& x);  // [L, d_model] -> [L, d_model]

  std::shared_ptr<Mamba> mixer;
  std::shared_ptr<engine::nn::LayerNorm> norm;
};

}  // namespace layers
