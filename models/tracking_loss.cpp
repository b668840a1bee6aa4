// InfoNCE tracking loss (see tracking_loss.h). On the CPU one fused autograd node: the pairs are grouped by their
// first and second index (counting sorts), every node's pairs are processed by one thread, and the per-pair
// intermediates are [E] distances, similarities and exp(logits) in the embedding's dtype (the exps vectorised), never
// [E, d] differences; sums are in double; deterministic for a fixed thread count.
// On other devices the same math as composed engine ops.
#include "models/tracking_loss.h"

#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "engine/parallel.h"
#include "engine/simd_math.h"

namespace models {

using namespace engine;

namespace {

constexpr double kSigmaScale = 1.125;  // s = exp(-d / (2 sigma^2)), sigma = 0.75

// A hit can be part of a positive pair: reconstructable and pT > pt_min.
std::vector<char> valid_hits(const Tensor& pt, const Tensor& reconstructable, double pt_min) {
  const auto p = pt.to(DType::F64).to_vector<double>();
  const auto rec = reconstructable.to_vector<int64_t>();
  std::vector<char> valid(p.size());
  for (size_t i = 0; i < p.size(); ++i) valid[i] = rec[i] != 0 && p[i] > pt_min;
  return valid;
}

// Pairs grouped by one endpoint: for node n, order[start[n] .. start[n+1]) are the pair numbers with key == n.
// The per-pair arrays here and below are engine tensors, so that the allocator's cache reuses their memory from
// one training step to the next (freshly mapped pages cost ~100x a warm write on these machines).
struct PairGroups {
  std::vector<int64_t> start;  // [N + 1]
  Tensor order_buffer;         // [E] int64
  const int64_t* order() const { return order_buffer.data<int64_t>(); }
};

// Only the pairs k with keep(k) are grouped; within a group, pairs keep their order.
template <class Keep>
PairGroups group_pairs(const int64_t* key, int64_t n_pairs, int64_t n_nodes, Keep&& keep) {
  PairGroups g;
  g.start.assign(static_cast<size_t>(n_nodes) + 1, 0);
  for (int64_t k = 0; k < n_pairs; ++k)
    if (keep(k)) ++g.start[static_cast<size_t>(key[k]) + 1];
  for (int64_t n = 0; n < n_nodes; ++n) g.start[n + 1] += g.start[n];
  g.order_buffer = empty({g.start[n_nodes]}, TensorOptions(DType::I64));
  int64_t* order = g.order_buffer.data<int64_t>();
  std::vector<int64_t> fill(g.start.begin(), g.start.end() - 1);
  for (int64_t k = 0; k < n_pairs; ++k)
    if (keep(k)) order[fill[key[k]]++] = k;
  return g;
}

// Weight of each positive pair anchored at node i, from the positive-pair counts per anchor: 1 / P (the mean over
// positive pairs), or 1 / (P_p * particles) with P_p the positive pairs of the anchor's particle p (the mean over
// particles of each particle's mean). Zero for an anchor without positive pairs (its terms vanish: the backward
// skips it).
std::vector<double> anchor_weights(const std::vector<int64_t>& pid, const std::vector<int64_t>& positives_of,
                                   InfoNCEAverage average) {
  std::vector<double> w(pid.size(), 0.0);
  if (average == InfoNCEAverage::PerPair) {
    int64_t total = 0;
    for (int64_t c : positives_of) total += c;
    for (size_t i = 0; i < pid.size(); ++i)
      if (positives_of[i] > 0) w[i] = 1.0 / double(total);
    return w;
  }
  std::unordered_map<int64_t, int64_t> per_particle;
  for (size_t i = 0; i < pid.size(); ++i)
    if (positives_of[i] > 0) per_particle[pid[i]] += positives_of[i];
  for (size_t i = 0; i < pid.size(); ++i)
    if (positives_of[i] > 0) w[i] = 1.0 / (double(per_particle.at(pid[i])) * double(per_particle.size()));
  return w;
}

// The fused op. inputs: emb [N, d] (F32 or F64, CPU). Pairs and truth are bound at construction.
class InfoNCEOp : public CustomOp {
 public:
  InfoNCEOp(const Tensor& pairs, std::vector<int64_t> particle_id, std::vector<char> valid, double tau,
            InfoNCEAverage average)
      : pairs_(pairs), pid_(std::move(particle_id)), valid_(std::move(valid)), tau_(tau), average_(average) {}
  const char* name() const override { return "infonce_loss"; }

  Tensors forward(const Tensors& in) override {
    emb_ = in[0].contiguous();
    n_ = emb_.size(0), d_ = emb_.size(1), n_pairs_ = pairs_.size(1);
    by_src_ = group_pairs(pairs_.data<int64_t>(), n_pairs_, n_, [](int64_t) { return true; });
    dist_buffer_ = empty({n_pairs_}, emb_.options());
    sim_buffer_ = empty({n_pairs_}, emb_.options());
    exp_logit_buffer_ = empty({n_pairs_}, emb_.options());
    neg_sum_.assign(static_cast<size_t>(n_), 0.0);
    std::vector<double> node_loss(static_cast<size_t>(n_), 0.0);
    std::vector<int64_t> node_pos(static_cast<size_t>(n_), 0);
    const int64_t* dst = pairs_.data<int64_t>() + n_pairs_;
    const int64_t* src_order = by_src_.order();
    dispatch([&](auto* e) {
      using T = std::remove_pointer_t<decltype(e)>;
      T* dist = dist_buffer_.data<T>();
      T* sim = sim_buffer_.data<T>();
      T* exp_logit = exp_logit_buffer_.data<T>();
      const T inv_sigma = T(1.0 / kSigmaScale), inv_tau = T(1.0 / tau_);
      parallel_for(0, n_, 64, [&](int64_t b, int64_t end) {
        std::vector<T> d_local, s_local, el_local;  // [pairs of node i] scratch, so that the exps vectorise
        for (int64_t i = b; i < end; ++i) {
          // An anchor that is not valid has no positive pair, hence weight 0: its pairs' terms are never used (most
          // hits: low pT or noise), and their per-pair values are left unset.
          if (!valid_[i]) continue;
          const int64_t first = by_src_.start[i], m = by_src_.start[i + 1] - first;
          d_local.resize(static_cast<size_t>(m)), s_local.resize(static_cast<size_t>(m)), el_local.resize(static_cast<size_t>(m));
          for (int64_t t = 0; t < m; ++t) {
            const int64_t j = dst[src_order[first + t]];
            T sq = 0;
            for (int64_t f = 0; f < d_; ++f) {
              const T diff = e[i * d_ + f] - e[j * d_ + f];
              sq += diff * diff;
            }
            d_local[t] = std::sqrt(sq + T(1e-24));  // never 0: equal rows get a zero gradient below
          }
          T* dl = d_local.data();
          T* sl = s_local.data();
          T* el = el_local.data();
#pragma omp simd
          for (int64_t t = 0; t < m; ++t) {
            sl[t] = simd_exp(-dl[t] * inv_sigma);
            el[t] = simd_exp((sl[t] - T(1)) * inv_tau);
          }
          double s_neg = 0;  // sum over the negatives (i, .) of exp(logit)
          for (int64_t t = 0; t < m; ++t) {
            const int64_t k = src_order[first + t];
            dist[k] = dl[t], sim[k] = sl[t], exp_logit[k] = el[t];
            if (!positive(i, dst[k])) s_neg += double(el[t]);
          }
          double loss = 0;
          int64_t count = 0;
          for (int64_t t = 0; t < m; ++t) {
            if (!positive(i, dst[src_order[first + t]])) continue;
            const double logit = double((sl[t] - T(1)) * inv_tau);  // log(exp_logit), up to the exp's rounding
            loss += std::log(double(el[t]) + s_neg) - logit, ++count;
          }
          neg_sum_[i] = s_neg, node_loss[i] = loss, node_pos[i] = count;
        }
      });
    });
    anchor_weight_ = anchor_weights(pid_, node_pos, average_);
    double total = 0;
    for (int64_t i = 0; i < n_; ++i) total += anchor_weight_[i] * node_loss[i];
    return {full({}, total, emb_.options())};
  }

  Tensors backward(const Tensors& grads) override {
    Tensor grad = zeros(emb_.shape(), emb_.options());  // [N, d]
    const double g_loss = grads[0].to(DType::F64).item();
    const int64_t* src = pairs_.data<int64_t>();
    const int64_t* dst = src + n_pairs_;
    const int64_t* src_order = by_src_.order();
    // coef[k] = dL/d(distance_k) / distance_k, with d logit / d dist = -(s / tau) / 1.125
    const Tensor coef_buffer = empty({n_pairs_}, TensorOptions(DType::F64));
    double* coef = coef_buffer.data<double>();
    dispatch([&](auto* e) {
      using T = std::remove_pointer_t<decltype(e)>;
      T* ge = grad.data<T>();
      const T* dist = dist_buffer_.data<T>();
      const T* sim = sim_buffer_.data<T>();
      const T* exp_logit = exp_logit_buffer_.data<T>();
      // acc += c (e_row - e_other), in double; each row's sum is written once per pass
      auto add_pair = [&](std::vector<double>& acc, int64_t row, int64_t other, double c) {
        for (int64_t f = 0; f < d_; ++f) acc[f] += c * (double(e[row * d_ + f]) - double(e[other * d_ + f]));
      };
      auto store_row = [&](std::vector<double>& acc, int64_t row) {
        for (int64_t f = 0; f < d_; ++f) ge[row * d_ + f] += T(acc[f]), acc[f] = 0;
      };
      parallel_for(0, n_, 64, [&](int64_t b, int64_t end) {
        std::vector<double> acc(static_cast<size_t>(d_), 0.0);
        for (int64_t i = b; i < end; ++i) {
          const double g = g_loss * anchor_weight_[i];  // 0 for anchors without positive pairs
          if (g == 0.0) continue;                         // all its terms are 0 (and its pairs' values unset)
          double inv_denoms = 0;  // sum over the positives (i, .) of 1 / (exp(logit) + S_i)
          for (int64_t p = by_src_.start[i]; p < by_src_.start[i + 1]; ++p) {
            const int64_t k = src_order[p];
            if (positive(i, dst[k])) inv_denoms += 1.0 / (exp_logit[k] + neg_sum_[i]);
          }
          for (int64_t p = by_src_.start[i]; p < by_src_.start[i + 1]; ++p) {
            const int64_t k = src_order[p], j = dst[k];
            const double el = exp_logit[k];
            const double dlogit = g * (positive(i, j) ? el / (el + neg_sum_[i]) - 1.0 : inv_denoms * el);
            coef[k] = dlogit * (double(sim[k]) / tau_) * (-1.0 / kSigmaScale) / double(dist[k]);
            add_pair(acc, i, j, coef[k]);
          }
          store_row(acc, i);
        }
      });
      // the second endpoint of every pair with a nonzero term, grouped by it (no two threads write one row)
      const PairGroups by_dst =
          group_pairs(dst, n_pairs_, n_, [&](int64_t k) { return g_loss * anchor_weight_[src[k]] != 0.0; });
      const int64_t* dst_order = by_dst.order();
      parallel_for(0, n_, 64, [&](int64_t b, int64_t end) {
        std::vector<double> acc(static_cast<size_t>(d_), 0.0);
        for (int64_t j = b; j < end; ++j) {
          for (int64_t p = by_dst.start[j]; p < by_dst.start[j + 1]; ++p) {
            const int64_t k = dst_order[p];
            add_pair(acc, j, src[k], coef[k]);
          }
          store_row(acc, j);
        }
      });
    });
    return {grad};
  }

 private:
  template <class F>
  void dispatch(F&& f) {
    if (emb_.dtype() == DType::F64) f(emb_.data<double>());
    else f(emb_.data<float>());
  }

  bool positive(int64_t i, int64_t j) const { return pid_[i] == pid_[j] && valid_[i] && valid_[j]; }

  Tensor pairs_, emb_;
  std::vector<int64_t> pid_;
  std::vector<char> valid_;
  double tau_;
  InfoNCEAverage average_;
  int64_t n_ = 0, d_ = 0, n_pairs_ = 0;
  std::vector<double> anchor_weight_;     // [N] weight of each positive pair anchored at the node
  PairGroups by_src_;
  Tensor dist_buffer_, sim_buffer_, exp_logit_buffer_;  // [E] per pair in emb's dtype, saved for the backward
  std::vector<double> neg_sum_;           // [N] S_i = sum over the negatives (i, .) of exp(logit)
};

// The same math as composed engine ops (devices without the fused kernel).
Tensor composed_infonce(const Tensor& emb, const Tensor& pairs, const std::vector<int64_t>& pid,
                        const std::vector<char>& valid, double tau, InfoNCEAverage average) {
  const int64_t n_edges = pairs.size(1);
  const auto e = pairs.to_vector<int64_t>();
  std::vector<int64_t> pos_src, pos_dst, neg_src, neg_dst;
  for (int64_t k = 0; k < n_edges; ++k) {
    const int64_t i = e[k], j = e[n_edges + k];
    const bool positive = pid[i] == pid[j] && valid[i] && valid[j];
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
    return exp(dist * (-1.0 / kSigmaScale)) * (1.0 / tau);
  };
  const double shift = 1.0 / tau;
  const Tensor pos = logits(pos_src, pos_dst) - shift;  // [P]
  Tensor neg_sum = zeros({emb.size(0)}, emb.options());
  if (!neg_src.empty()) neg_sum = index_add(neg_sum, 0, index(neg_src), exp(logits(neg_src, neg_dst) - shift));
  const Tensor denom = exp(pos) + index_select(neg_sum, 0, index(pos_src));
  std::vector<int64_t> positives_of(pid.size(), 0);
  for (int64_t i : pos_src) ++positives_of[i];
  const std::vector<double> w = anchor_weights(pid, positives_of, average);
  std::vector<double> pair_weight(pos_src.size());  // [P]
  for (size_t k = 0; k < pos_src.size(); ++k) pair_weight[k] = w[pos_src[k]];
  const Tensor weight = from_vector(pair_weight, {static_cast<int64_t>(pair_weight.size())}).to(dev).to(emb.dtype());
  return sum((log(denom) - pos) * weight);
}

}  // namespace

Tensor infonce_loss(const Tensor& emb, const Tensor& pairs, const Tensor& particle_id, const Tensor& pt,
                    const Tensor& reconstructable, double tau, double pt_min, InfoNCEAverage average) {
  const int64_t n = emb.size(0);
  if (emb.dim() != 2 || pairs.dim() != 2 || pairs.size(0) != 2 || particle_id.numel() != n || pt.numel() != n ||
      reconstructable.numel() != n)
    throw std::invalid_argument("infonce_loss: emb must be [N, d], pairs [2, E], particle_id/pt/reconstructable [N]");
  if (emb.dtype() != DType::F32 && emb.dtype() != DType::F64)
    throw std::invalid_argument("infonce_loss: emb must be float32 or float64");
  const Tensor host_pairs = pairs.to(Device::cpu()).to(DType::I64).contiguous();  // [2, E]
  {
    const int64_t* p = host_pairs.data<int64_t>();
    const int64_t count = host_pairs.numel();
    for (int64_t k = 0; k < count; ++k)
      if (p[k] < 0 || p[k] >= n) throw std::invalid_argument("infonce_loss: pair index out of range");
  }
  std::vector<char> valid = valid_hits(pt, reconstructable, pt_min);
  std::vector<int64_t> pid = particle_id.to_vector<int64_t>();
  if (!emb.device().is_cpu()) return composed_infonce(emb, host_pairs, pid, valid, tau, average);
  return apply_custom_op(std::make_shared<InfoNCEOp>(host_pairs, std::move(pid), std::move(valid), tau, average),
                         {emb})[0];
}

}  // namespace models
