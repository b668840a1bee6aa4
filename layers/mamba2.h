// Mamba2 mixer (mamba_ssm Mamba2 as Lampa's full_mamba2.py builds it; lampa-models.md 3.3 and 9): in_proj, causal
// depthwise conv1d + SiLU on (x, B, C), dt = softplus(dtr + dt_bias), A = -exp(A_log), the fused SSD scan
// (layers/ssd.h) with the D skip, gated RMSNorm RMSN(y * silu(z)) * w (eps 1e-5, group = whole d_inner), out_proj.
// Shapes: u [L, d_model] -> [L, d_model] (batch size 1, sequence first).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace layers {

struct Mamba2Options {
  int64_t d_state = 16, d_conv = 4, expand = 2, headdim = 16, chunk = 64;
};

namespace ssd_detail {

// nn.Conv1d(C, C, K, groups=C, bias=True) parameters in PyTorch layout: weight [C, 1, K], bias [C], with PyTorch's
// default init (U(+-1/sqrt(K)) for both). forward: causal depthwise conv over time, [L, C] -> [L, C].
class DepthwiseConv1d : public engine::nn::Module {
 public:
  DepthwiseConv1d(int64_t channels, int64_t kernel);
  engine::Tensor forward(const engine::Tensor& x) const;
  engine::Tensor weight, bias;
};

// Mamba's dt_bias init: dt = exp(U(log 1e-3, log 0.1)) clamped to >= 1e-4, stored as softplus^-1(dt). [nh]
engine::Tensor init_dt_bias(int64_t nheads);
// A_log = log U(1, 16). [nh]
engine::Tensor init_A_log(int64_t nheads);
// RMSN(y * silu(z)) * w over the last dim, eps 1e-5 (gate before the norm).
engine::Tensor gated_rms_norm(const engine::Tensor& y, const engine::Tensor& z, const engine::Tensor& w);

}  // namespace ssd_detail

class Mamba2 : public engine::nn::Module {
 public:
  explicit Mamba2(int64_t d_model, Mamba2Options o = {});
  // u [L, d_model]; pe [L, d_model] (FlatMamba's positional encoding) is added to u before in_proj when defined.
  // No padding to a multiple of `chunk` is done: it is exact for this causal layer (padded rows never influence
  // real rows), so the output equals the reference's first L rows.
  engine::Tensor forward(const engine::Tensor& u, const engine::Tensor& pe = {});

  int64_t d_model, d_inner, nheads;
  Mamba2Options opt;
  std::shared_ptr<engine::nn::Linear> in_proj, out_proj;
  std::shared_ptr<ssd_detail::DepthwiseConv1d> conv1d;
  std::shared_ptr<engine::nn::RMSNorm> norm;  // only its weight is used (gated form)
  engine::Tensor dt_bias, A_log, D;
};

}  // namespace layers
