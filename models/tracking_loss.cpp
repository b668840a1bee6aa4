// InfoNCE tracking loss (see tracking_loss.h).
#include "models/tracking_loss.h"

#include <stdexcept>
#include <vector>

#include "engine/engine.h"

namespace models {

using namespace engine;

Tensor infonce_loss(const Tensor& emb, const Tensor& pairs, const Tensor& particle_id, const Tensor& pt,
                    const Tensor& reconstructable, double tau, double pt_min) {
  const int64_t n = emb.size(0);
  if (emb.dim() != 2 || pairs.dim() != 2 || pairs.size(0) != 2 || particle_id.numel() != n || pt.numel() != n ||
      reconstructable.numel() != n)
    throw std::invalid_argument("infonce_loss: emb must be [N, d], pairs [2, E], particle_id/pt/reconstructable [N]");
  // Edge classes on the host (no gradient flows through them).
  const auto pid = particle_id.to_vector<int64_t>();
  const auto p = pt.to(DType::F64).to_vector<double>();
  const auto rec = reconstructable.to_vector<int64_t>();
  const auto e = pairs.to_vector<int64_t>();
  const int64_t n_edges = pairs.size(1);
  std::vector<int64_t> pos_src, pos_dst, neg_src, neg_dst;
  auto valid = [&](int64_t i) { return rec[i] != 0 && p[i] > pt_min; };
  for (int64_t k = 0; k < n_edges; ++k) {
    const int64_t i = e[k], j = e[n_edges + k];
    if (i < 0 || i >= n || j < 0 || j >= n) throw std::invalid_argument("infonce_loss: pair index out of range");
    const bool positive = pid[i] == pid[j] && valid(i) && valid(j);
    (positive ? pos_src : neg_src).push_back(i);
    (positive ? pos_dst : neg_dst).push_back(j);
  }
  if (pos_src.empty()) return sum(emb) * 0.0;  // no positive pair: zero loss, still connected to the graph
  const Device dev = emb.device();
  auto index = [&](const std::vector<int64_t>& v) { return from_vector(v, {static_cast<int64_t>(v.size())}).to(dev); };
  // similarity / tau of a list of pairs: [M]
  auto logits = [&](const std::vector<int64_t>& src, const std::vector<int64_t>& dst) {
    const Tensor diff = index_select(emb, 0, index(src)) - index_select(emb, 0, index(dst));  // [M, d]
    const Tensor dist = sqrt(sum(square(diff), {1}) + 1e-24);                                 // [M]
    return exp(dist * (-1.0 / 1.125)) * (1.0 / tau);
  };
  // logits are in (0, 1/tau]: subtracting 1/tau (their upper bound) keeps every exp <= 1, as the reference's global
  // max subtraction does, without a data-dependent shift.
  const double shift = 1.0 / tau;
  const Tensor pos = logits(pos_src, pos_dst) - shift;  // [P]
  Tensor neg_sum = zeros({n}, emb.options());
  if (!neg_src.empty()) neg_sum = index_add(neg_sum, 0, index(neg_src), exp(logits(neg_src, neg_dst) - shift));
  const Tensor denom = exp(pos) + index_select(neg_sum, 0, index(pos_src));
  return mean(log(denom) - pos);
}

}  // namespace models
