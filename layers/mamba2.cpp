// Mamba2 mixer: projections, conv, gating and norm through engine ops; the scan through the fused ssd_scan node.
#include "layers/mamba2.h"

#include <cmath>

#include "engine/engine.h"
#include "engine/nn/init.h"
#include "layers/common.h"
#include "layers/ssd.h"

namespace layers {

using namespace engine;

namespace ssd_detail {

DepthwiseConv1d::DepthwiseConv1d(int64_t channels, int64_t kernel) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(kernel));  // fan_in = (C / groups) * K = K
  Tensor w = empty({channels, 1, kernel});
  nn::init::uniform_(w, -bound, bound);
  Tensor b = empty({channels});
  nn::init::uniform_(b, -bound, bound);
  weight = register_parameter("weight", w);
  bias = register_parameter("bias", b);
}

Tensor DepthwiseConv1d::forward(const Tensor& x) const {
  const int64_t C = weight.size(0), K = weight.size(2);
  Tensor y = causal_conv1d(x.t().unsqueeze(0), weight.reshape({C, K}), bias);  // [1, C, L]
  return y.squeeze(0).t();
}

Tensor init_dt_bias(int64_t nheads) {
  const double lo = std::log(1e-3), hi = std::log(0.1);
  Tensor u = empty({nheads});
  nn::init::uniform_(u, 0.0, 1.0);
  std::vector<float> v = u.to_vector<float>();
  for (float& e : v) {
    double dt = std::max(std::exp(e * (hi - lo) + lo), 1e-4);
    e = static_cast<float>(dt + std::log(-std::expm1(-dt)));  // softplus^-1(dt)
  }
  return from_vector(v, {nheads});
}

Tensor init_A_log(int64_t nheads) {
  Tensor a = empty({nheads});
  nn::init::uniform_(a, 1.0, 16.0);
  return log(a).detach();
}

Tensor gated_rms_norm(const Tensor& y, const Tensor& z, const Tensor& w) { return rms_norm(y * silu(z), w, 1e-5); }

}  // namespace ssd_detail

Mamba2::Mamba2(int64_t d_model_, Mamba2Options o) : d_model(d_model_), opt(o) {
  d_inner = opt.expand * d_model;
  ENGINE_CHECK(d_inner % opt.headdim == 0, "Mamba2", "d_inner {} is not a multiple of headdim {}", d_inner,
               opt.headdim);
  nheads = d_inner / opt.headdim;
  const int64_t d_in_proj = 2 * d_inner + 2 * opt.d_state + nheads;
  in_proj = register_module("in_proj", std::make_shared<nn::Linear>(d_model, d_in_proj, false));
  conv1d = register_module("conv1d", std::make_shared<ssd_detail::DepthwiseConv1d>(d_inner + 2 * opt.d_state,
                                                                                    opt.d_conv));
  dt_bias = register_parameter("dt_bias", ssd_detail::init_dt_bias(nheads));
  A_log = register_parameter("A_log", ssd_detail::init_A_log(nheads));
  D = register_parameter("D", ones({nheads}));
  norm = register_module("norm", std::make_shared<nn::RMSNorm>(d_inner, 1e-5));
  out_proj = register_module("out_proj", std::make_shared<nn::Linear>(d_inner, d_model, false));
}

Tensor Mamba2::forward(const Tensor& u, const Tensor& pe) {
  check_shape("Mamba2", "u", u, {-1, d_model});
  Tensor in = u;
  if (pe.defined()) {
    check_shape("Mamba2", "pe", pe, {u.size(0), d_model});
    in = u + pe;
  }
  const int64_t L = u.size(0), E = d_inner, n = opt.d_state;
  Tensor zxbcdt = in_proj->forward(in);  // [L, 2E + 2n + nh]
  Tensor z = zxbcdt.narrow(1, 0, E);
  Tensor xBC = silu(conv1d->forward(zxbcdt.narrow(1, E, E + 2 * n)));  // [L, E + 2n]
  Tensor dt = softplus(zxbcdt.narrow(1, 2 * E + 2 * n, nheads) + dt_bias);
  Tensor x = xBC.narrow(1, 0, E).reshape({L, nheads, opt.headdim});
  Tensor B = xBC.narrow(1, E, n), C = xBC.narrow(1, E + n, n);
  Tensor A = neg(exp(A_log));
  Tensor y = ssd_scan(x, dt, A, B, C, D, opt.chunk).reshape({L, E});
  return out_proj->forward(ssd_detail::gated_rms_norm(y, z, norm->weight));
}

}  // namespace layers
