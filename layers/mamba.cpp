// Mamba (v1) mixer and block: projections and conv through engine ops, the recurrence through the fused
// selective_scan node (layers/selective_scan.h). Initialisation as mamba_ssm + hmamba's _init_weights (3.2).
#include "layers/mamba.h"

#include <cmath>

#include "engine/engine.h"
#include "engine/nn/init.h"
#include "layers/common.h"
#include "layers/selective_scan.h"

namespace layers {

using namespace engine;

namespace {

// A_log[e, s] = log(s + 1) (S4D-real). [E, n]
Tensor s4d_real_A_log(int64_t E, int64_t n) {
  std::vector<float> v(static_cast<size_t>(E * n));
  for (int64_t e = 0; e < E; ++e)
    for (int64_t s = 0; s < n; ++s) v[static_cast<size_t>(e * n + s)] = std::log(static_cast<float>(s + 1));
  return from_vector(v, {E, n});
}

}  // namespace

Mamba::Mamba(int64_t d_model_, MambaOptions o) : d_model(d_model_), opt(o) {
  ENGINE_CHECK(d_model > 0 && opt.d_state > 0 && opt.d_conv > 0 && opt.expand > 0, "Mamba",
               "d_model, d_state, d_conv and expand must be positive");
  d_inner = opt.expand * d_model;
  dt_rank = opt.dt_rank > 0 ? opt.dt_rank : (d_model + 15) / 16;
  const int64_t E = d_inner, n = opt.d_state;
  in_proj = register_module("in_proj", std::make_shared<nn::Linear>(d_model, 2 * E, false));
  conv1d = register_module("conv1d", std::make_shared<ssd_detail::DepthwiseConv1d>(E, opt.d_conv));
  x_proj = register_module("x_proj", std::make_shared<nn::Linear>(E, dt_rank + 2 * n, false));
  dt_proj = register_module("dt_proj", std::make_shared<nn::Linear>(dt_rank, E, true));
  const double dt_std = 1.0 / std::sqrt(static_cast<double>(dt_rank));
  nn::init::uniform_(dt_proj->weight, -dt_std, dt_std);
  {
    NoGradGuard no_grad;
    dt_proj->bias.copy_(ssd_detail::init_dt_bias(E));
  }
  A_log = register_parameter("A_log", s4d_real_A_log(E, n));
  D = register_parameter("D", ones({E}));
  out_proj = register_module("out_proj", std::make_shared<nn::Linear>(E, d_model, false));
  nn::init::kaiming_uniform_(out_proj->weight, std::sqrt(5.0));
  NoGradGuard no_grad;
  out_proj->weight.copy_(out_proj->weight / std::sqrt(static_cast<double>(opt.n_layer)));
}

Tensor Mamba::forward(const Tensor& u) {
  check_shape("Mamba", "u", u, {-1, d_model});
  const int64_t E = d_inner, n = opt.d_state;
  Tensor xz = in_proj->forward(u);                                  // [L, 2E]
  Tensor xc = silu(conv1d->forward(xz.narrow(1, 0, E)));           // [L, E]
  Tensor dbc = x_proj->forward(xc);                                 // [L, R + 2n]
  Tensor delta = matmul(dbc.narrow(1, 0, dt_rank), dt_proj->weight.t());  // [L, E]; bias added in the scan
  Tensor B = dbc.narrow(1, dt_rank, n), C = dbc.narrow(1, dt_rank + n, n);
  Tensor y = selective_scan(xc, delta, neg(exp(A_log)), B, C, D, dt_proj->bias, xz.narrow(1, E, E), opt.chunk);
  return out_proj->forward(y);
}

MambaBlock::MambaBlock(int64_t d_model, MambaOptions o) {
  mixer = register_module("mixer", std::make_shared<Mamba>(d_model, o));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(d_model));
}

Tensor MambaBlock::forward(const Tensor& x) { return x + mixer->forward(norm->forward(x)); }

}  // namespace layers
