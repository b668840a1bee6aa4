// Naive references for the SSD family tests: an obviously correct step-by-step scan built from engine ops (with
// autograd), and step-by-step re-implementations of Mamba2 (lampa-models.md 3.3) and Lampa's Hydra (3.4 steps 1-7,
// with explicit time flips, a shifted-slice conv and a hand-written gated RMSNorm).
#pragma once
#include <vector>

#include "engine/engine.h"
#include "layers/hydra.h"
#include "layers/mamba2.h"

namespace ssd_ref {

using engine::Tensor;

// S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T, y_t = S_t C_t + D x_t, one time step at a time (reverse: from the end).
inline Tensor naive_ssd(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                        const Tensor& D, bool reverse = false) {
  using namespace engine;
  const int64_t L = x.size(0), H = x.size(1), P = x.size(2), n = B.size(1);
  Tensor S = zeros({H, P, n}, x.options());
  std::vector<Tensor> ys(static_cast<size_t>(L));
  for (int64_t k = 0; k < L; ++k) {
    const int64_t t = reverse ? L - 1 - k : k;
    Tensor xt = x.select(0, t), dtt = dt.select(0, t), Bt = B.select(0, t), Ct = C.select(0, t);
    Tensor a = exp(dtt * A).reshape({H, 1, 1});
    S = S * a + (xt * dtt.unsqueeze(-1)).unsqueeze(-1) * Bt.reshape({1, 1, n});
    Tensor y = matmul(S, Ct.reshape({n, 1})).squeeze(-1);
    if (D.defined()) y = y + D.unsqueeze(-1) * xt;
    ys[static_cast<size_t>(t)] = y;
  }
  if (L == 0) return zeros({0, H, P}, x.options());
  return stack(ys, 0);
}

// y_t[c] = b[c] + sum_i w[c, 0, i] x_{t-K+1+i}[c], x_{<0} = 0; x [L, C], w [C, 1, K].
inline Tensor naive_causal_conv(const Tensor& x, const Tensor& w, const Tensor& b) {
  using namespace engine;
  const int64_t L = x.size(0), C = x.size(1), K = w.size(2);
  Tensor xp = pad(x, {0, 0, K - 1, 0});
  Tensor y = b.reshape({1, C}).expand({L, C});
  for (int64_t i = 0; i < K; ++i) y = y + xp.narrow(0, i, L) * w.select(2, i).reshape({1, C});
  return y;
}

inline Tensor naive_gated_rmsnorm(const Tensor& y, const Tensor& z, const Tensor& w) {
  using namespace engine;
  Tensor g = y * (z * sigmoid(z));
  return g * rsqrt(mean(g * g, {-1}, true) + 1e-5) * w;
}

inline Tensor naive_mamba2(const layers::Mamba2& m, const Tensor& u) {
  using namespace engine;
  const int64_t L = u.size(0), E = m.d_inner, n = m.opt.d_state, nh = m.nheads;
  Tensor zxbcdt = matmul(u, m.in_proj->weight.t());
  Tensor z = zxbcdt.narrow(1, 0, E);
  Tensor xBC = naive_causal_conv(zxbcdt.narrow(1, E, E + 2 * n), m.conv1d->weight, m.conv1d->bias);
  xBC = xBC * sigmoid(xBC);
  Tensor dt = softplus(zxbcdt.narrow(1, 2 * E + 2 * n, nh) + m.dt_bias);
  Tensor x = xBC.narrow(1, 0, E).reshape({L, nh, m.opt.headdim});
  Tensor y = naive_ssd(x, dt, neg(exp(m.A_log)), xBC.narrow(1, E, n), xBC.narrow(1, E + n, n), m.D);
  return matmul(naive_gated_rmsnorm(y.reshape({L, E}), z, m.norm->weight), m.out_proj->weight.t());
}

// Lampa's Hydra, spec 3.4 steps 1-7 literally: flipped copies for the backward direction, roll-by-one shifts.
inline Tensor naive_hydra(const layers::Hydra& m, const Tensor& u) {
  using namespace engine;
  const int64_t L = u.size(0), E = m.opt.d_inner, n = m.opt.d_state, nh = m.nheads, P = m.opt.headdim;
  // 1.
  Tensor zxbcdt = matmul(u, m.in_proj->weight.t());
  Tensor z = zxbcdt.narrow(1, 0, E);
  Tensor xBC = zxbcdt.narrow(1, E, E + 4 * n);
  Tensor dtr = zxbcdt.narrow(1, 2 * E + 4 * n, 2 * nh);
  // 2.
  Tensor dt_f = softplus(dtr.narrow(1, 0, nh) + m.dt_bias);
  Tensor dt_b = softplus(flip(dtr.narrow(1, nh, nh), {0}) + m.dt_bias);
  // 3.
  xBC = naive_causal_conv(xBC, m.conv1d->weight, m.conv1d->bias);
  xBC = xBC * sigmoid(xBC);
  // 4.
  Tensor x = xBC.narrow(1, 0, E);
  Tensor BC = xBC.narrow(1, E, 4 * n);
  Tensor x_b = flip(x, {0});
  Tensor B_b = flip(BC.narrow(1, 2 * n, n), {0}), C_b = flip(BC.narrow(1, 3 * n, n), {0});
  // 5.
  Tensor A = neg(exp(m.A_log));
  Tensor yf = naive_ssd(x.reshape({L, nh, P}), dt_f, A, BC.narrow(1, 0, n), BC.narrow(1, n, n), m.D).reshape({L, E});
  Tensor yb = naive_ssd(x_b.reshape({L, nh, P}), dt_b, A, B_b, C_b, m.D).reshape({L, E});
  // 6. roll by one along time, zero the first row, un-flip the backward direction.
  auto shift = [&](const Tensor& y) {
    std::vector<Tensor> rows;
    rows.push_back(zeros({1, E}, u.options()));
    for (int64_t t = 0; t + 1 < L; ++t) rows.push_back(y.narrow(0, t, 1));
    return concat(rows, 0);
  };
  Tensor y = shift(yf) + flip(shift(yb), {0});
  Tensor gate = matmul(x, m.fc_D->weight.t()) + m.D;  // [L, nh]
  Tensor skip = x.reshape({L, nh, P}) * gate.reshape({L, nh, 1});
  y = y + skip.reshape({L, E});
  // 7.
  return matmul(naive_gated_rmsnorm(y, z, m.norm->weight), m.out_proj->weight.t());
}

}  // namespace ssd_ref
