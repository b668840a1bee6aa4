// Naive references for the gated-delta tests: the recurrence one step at a time from engine ops (autograd gives the
// gradients), the Gated DeltaProduct attention written per token with its Householder sub-steps spelled out (no
// interleave), explicit-loop LocalAggregation, and the blocks composed by hand (lampa-models.md 3.8).
#pragma once
#include <cmath>
#include <vector>

#include "engine/engine.h"
#include "layers/gated_delta.h"
#include "layers/local_aggregation.h"

namespace gd_ref {

using engine::Tensor;

inline Tensor l2n(const Tensor& x) {  // over the last dim, fla style: x / sqrt(|x|^2 + 1e-6)
  using namespace engine;
  return x * rsqrt(sum(x * x, {-1}, true) + 1e-6);
}

// One sub-step for all heads: S [H, K, V]; q, k [H, K] raw; v [H, V]; g, beta [H]. Returns o [H, V]; updates S.
inline Tensor step(Tensor& S, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                   const Tensor& beta) {
  using namespace engine;
  const int64_t H = S.size(0), K = S.size(1);
  Tensor kn = l2n(k), qs = l2n(q) * (1.0 / std::sqrt(static_cast<double>(K)));
  S = S * exp(g).reshape({H, 1, 1});                                      // S <- e^g S
  Tensor pred = matmul(kn.unsqueeze(1), S);                               // [H, 1, V] = (S^T kn)^T
  Tensor u = beta.reshape({H, 1, 1}) * (v.unsqueeze(1) - pred);          // [H, 1, V]
  S = S + matmul(kn.unsqueeze(2), u);                                     // S <- S + kn u^T
  return matmul(qs.unsqueeze(1), S).squeeze(1);                           // o = S^T qs
}

// The rule over T steps: q, k [T, H, K], v [T, H, V], g, beta [T, H] -> [T, H, V].
inline Tensor naive_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta) {
  using namespace engine;
  const int64_t T = q.size(0), H = q.size(1), K = q.size(2), V = v.size(2);
  if (T == 0) return zeros({0, H, V}, q.options());
  Tensor S = zeros({H, K, V}, q.options());
  std::vector<Tensor> os;
  for (int64_t t = 0; t < T; ++t)
    os.push_back(step(S, q.select(0, t), k.select(0, t), v.select(0, t), g.select(0, t), beta.select(0, t)));
  return stack(os, 0);
}

// y_t[c] = sum_i w[c, 0, i] x_{t-K+1+i}[c], then SiLU; x [L, C], w [C, 1, K].
inline Tensor naive_short_conv(const Tensor& x, const Tensor& w) {
  using namespace engine;
  const int64_t L = x.size(0), C = x.size(1), K = w.size(2);
  Tensor xp = pad(x, {0, 0, K - 1, 0});
  Tensor y = zeros({L, C}, x.options());
  for (int64_t i = 0; i < K; ++i) y = y + xp.narrow(0, i, L) * w.select(2, i).reshape({1, C});
  return y * sigmoid(y);
}

inline Tensor lin(const Tensor& x, const engine::nn::Linear& l) {
  using namespace engine;
  Tensor y = matmul(x, l.weight.t());
  return l.bias.defined() ? y + l.bias : y;
}

inline Tensor rmsn(const Tensor& x, const Tensor& w, double eps) {
  using namespace engine;
  return x * rsqrt(mean(x * x, {-1}, true) + eps) * w;
}

// GatedDeltaProduct (3.8 steps 1-8), one token at a time with its num_householder sub-steps.
inline Tensor naive_gdp(const layers::GatedDeltaProduct& m, const Tensor& x) {
  using namespace engine;
  const int64_t L = x.size(0), H = m.opt.num_heads, Kd = m.opt.head_dim, Vd = Kd * m.opt.expand_v;
  const int64_t nh = m.opt.num_householder;
  std::vector<Tensor> ks, vs, bs;
  for (int64_t i = 0; i < nh; ++i) {
    ks.push_back(naive_short_conv(lin(x, *m.k_projs->get<nn::Linear>(i)), m.k_conv1ds->get<layers::ShortConvolution>(i)->weight));
    vs.push_back(naive_short_conv(lin(x, *m.v_projs->get<nn::Linear>(i)), m.v_conv1ds->get<layers::ShortConvolution>(i)->weight));
    bs.push_back(sigmoid(lin(x, *m.b_projs->get<nn::Linear>(i))));
  }
  Tensor q = naive_short_conv(lin(x, *m.q_proj), m.q_conv1d->weight);
  Tensor g = neg(exp(m.A_log)) * softplus(lin(x, *m.a_proj) + m.dt_bias);
  Tensor S = zeros({H, Kd, Vd}, x.options());
  Tensor zq = zeros({H, Kd}, x.options()), zg = zeros({H}, x.options());
  std::vector<Tensor> os;
  for (int64_t t = 0; t < L; ++t) {
    Tensor o;
    for (int64_t i = 0; i < nh; ++i) {
      Tensor qi = i == nh - 1 ? q.select(0, t).reshape({H, Kd}) : zq;
      Tensor gi = i == 0 ? g.select(0, t) : zg;
      o = step(S, qi, ks[i].select(0, t).reshape({H, Kd}), vs[i].select(0, t).reshape({H, Vd}), gi,
               bs[i].select(0, t));
    }
    os.push_back(o);
  }
  Tensor o = stack(os, 0);  // [L, H, Vd]
  Tensor gate = lin(x, *m.g_proj).reshape({L, H, Vd});
  o = rmsn(o, m.o_norm->weight, m.opt.norm_eps) * (gate * sigmoid(gate));
  return lin(o.reshape({L, H * Vd}), *m.o_proj);
}

// out_i = gelu(W_self x_i + b + mean_{(j -> i)} W_msg x_j), with an explicit loop over the edges.
inline Tensor naive_local_agg(const layers::LocalAggregation& m, const Tensor& x, const Tensor& edge_index) {
  using namespace engine;
  const int64_t N = x.size(0);
  auto src = edge_index.select(0, 0).to_vector<int64_t>(), dst = edge_index.select(0, 1).to_vector<int64_t>();
  Tensor msg = lin(x, *m.lin_msg);
  std::vector<std::vector<int64_t>> in(static_cast<size_t>(N));
  for (size_t e = 0; e < src.size(); ++e) in[static_cast<size_t>(dst[e])].push_back(src[e]);
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < N; ++i) {
    Tensor acc = zeros({msg.size(1)}, x.options());
    for (int64_t j : in[static_cast<size_t>(i)]) acc = acc + msg.select(0, j);
    if (!in[static_cast<size_t>(i)].empty()) acc = acc / static_cast<double>(in[static_cast<size_t>(i)].size());
    rows.push_back(acc);
  }
  Tensor z = lin(x, *m.lin_self) + stack(rows, 0);
  return gelu(z);  // the engine's exact (erf) gelu, itself tested by the engine suite
}

}  // namespace gd_ref
