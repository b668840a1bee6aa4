// Hydra mixer: engine ops around two fused SSD scans (forward, and reverse = true for the backward direction).
#include "layers/hydra.h"

#include "engine/engine.h"
#include "layers/common.h"
#include "layers/ssd.h"

namespace layers {

using namespace engine;

Hydra::Hydra(int64_t d_model_, HydraOptions o) : d_model(d_model_), opt(o) {
  ENGINE_CHECK(opt.d_inner % opt.headdim == 0, "Hydra", "d_inner {} is not a multiple of headdim {}", opt.d_inner,
               opt.headdim);
  nheads = opt.d_inner / opt.headdim;
  const int64_t E = opt.d_inner, n = opt.d_state;
  in_proj = register_module("in_proj", std::make_shared<nn::Linear>(d_model, 2 * E + 4 * n + 2 * nheads, false));
  conv1d = register_module("conv1d", std::make_shared<ssd_detail::DepthwiseConv1d>(E + 4 * n, opt.d_conv));
  norm = register_module("norm", std::make_shared<nn::RMSNorm>(E, 1e-5));
  out_proj = register_module("out_proj", std::make_shared<nn::Linear>(E, d_model, false));
  fc_D = register_module("fc_D", std::make_shared<nn::Linear>(E, nheads, false));
  dt_bias = register_parameter("dt_bias", ssd_detail::init_dt_bias(nheads));
  A_log = register_parameter("A_log", ssd_detail::init_A_log(nheads));
  D = register_parameter("D", ones({nheads}));
}

Tensor Hydra::forward(const Tensor& u) {
  check_shape("Hydra", "u", u, {-1, d_model});
  const int64_t L = u.size(0), E = opt.d_inner, n = opt.d_state, P = opt.headdim;
  Tensor zxbcdt = in_proj->forward(u);  // [L, 2E + 4n + 2nh]
  Tensor z = zxbcdt.narrow(1, 0, E);
  Tensor xBC = silu(conv1d->forward(zxbcdt.narrow(1, E, E + 4 * n)));  // [L, E + 4n]
  Tensor dtr = zxbcdt.narrow(1, 2 * E + 4 * n, 2 * nheads);
  Tensor dt_f = softplus(dtr.narrow(1, 0, nheads) + dt_bias);
  Tensor dt_b = softplus(dtr.narrow(1, nheads, nheads) + dt_bias);
  Tensor x_flat = xBC.narrow(1, 0, E);
  Tensor x = x_flat.reshape({L, nheads, P});
  Tensor A = neg(exp(A_log));
  Tensor y_f = ssd_scan(x, dt_f, A, xBC.narrow(1, E, n), xBC.narrow(1, E + n, n), D, opt.chunk, false);
  Tensor y_b = ssd_scan(x, dt_b, A, xBC.narrow(1, E + 2 * n, n), xBC.narrow(1, E + 3 * n, n), D, opt.chunk, true);
  y_f = y_f.reshape({L, E});
  y_b = y_b.reshape({L, E});
  Tensor y;
  if (L > 1) {
    // Row t gets y_f[t-1] (zero at t = 0) and y_b[t+1] (zero at t = L-1).
    Tensor sf = pad(y_f.narrow(0, 0, L - 1), {0, 0, 1, 0});
    Tensor sb = pad(y_b.narrow(0, 1, L - 1), {0, 0, 0, 1});
    y = sf + sb;
  } else {
    y = zeros({L, E}, u.options());
  }
  Tensor gate = (fc_D->forward(x_flat) + D).unsqueeze(-1);  // [L, nh, 1]
  y = y + (x * gate).reshape({L, E});
  return out_proj->forward(ssd_detail::gated_rms_norm(y, z, norm->weight));
}

}  // namespace layers
