// Pile-up metrics, baselines and jets (see pileup_metrics.h).
#include "data/pileup_metrics.h"

#ifdef HEPDATA_WITH_FASTJET
#include <fastjet/ClusterSequence.hh>
#endif

#include <algorithm>
#include <cmath>
#include <numbers>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace data::pileup {

namespace {

using std::numbers::pi;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<size_t> by_decreasing_score(const std::vector<double>& score) {
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  return order;
}

double delta_r(double eta1, double phi1, double eta2, double phi2) {
  double dphi = std::abs(phi1 - phi2);
  if (dphi > pi) dphi = 2 * pi - dphi;
  return std::hypot(eta1 - eta2, dphi);
}

}  // namespace

double roc_auc(const std::vector<double>& score, const std::vector<int64_t>& label) {
  // Mann-Whitney U with average ranks for ties.
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double rank_sum = 0, n_pos = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && score[order[j]] == score[order[i]]) ++j;
    const double avg_rank = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j));
    for (size_t k = i; k < j; ++k)
      if (label[order[k]]) rank_sum += avg_rank, n_pos += 1;
    i = j;
  }
  const double n_neg = static_cast<double>(score.size()) - n_pos;
  if (n_pos == 0 || n_neg == 0) return kNaN;
  return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg);
}

double average_precision(const std::vector<double>& score, const std::vector<int64_t>& label) {
  const std::vector<size_t> order = by_decreasing_score(score);
  const double n_pos = static_cast<double>(std::count(label.begin(), label.end(), int64_t{1}));
  if (n_pos == 0) return kNaN;
  double tp = 0, fp = 0, ap = 0, last_recall = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    (label[order[i]] ? tp : fp) += 1;
    if (i + 1 < order.size() && score[order[i + 1]] == score[order[i]]) continue;  // one point per distinct threshold
    const double recall = tp / n_pos, precision = tp / (tp + fp);
    ap += (recall - last_recall) * precision;
    last_recall = recall;
  }
  return ap;
}

double accuracy_at(const std::vector<double>& score, const std::vector<int64_t>& label, double threshold) {
  if (score.empty()) return kNaN;
  size_t right = 0;
  for (size_t i = 0; i < score.size(); ++i) right += (score[i] > threshold) == (label[i] != 0);
  return static_cast<double>(right) / static_cast<double>(score.size());
}

std::vector<double> chs_weights(const PileupEvent& ev) {
  std::vector<double> w(ev.size(), 1.0);
  for (size_t i = 0; i < ev.size(); ++i)
    if (ev.charged_assoc[i] != 0) w[i] = ev.charged_assoc[i] > 0 ? 1.0 : 0.0;
  return w;
}

std::vector<double> puppi_weights(const PileupEvent& ev, double r0) {
  // alpha over a coarse (eta, phi) grid of LV charged particles would be faster; events are ~10k particles and LV
  // charged ones a few hundred, so the direct sum is cheap.
  std::vector<size_t> lv_charged;
  for (size_t j = 0; j < ev.size(); ++j)
    if (ev.charged_assoc[j] > 0) lv_charged.push_back(j);
  std::vector<double> alpha(ev.size(), -std::numeric_limits<double>::infinity());
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev.charged_assoc[i] == 0 && ev.charge[i] != 0) continue;  // charged outside the tracker: not needed
    double s = 0;
    for (size_t j : lv_charged) {
      if (j == i) continue;
      const double dr = delta_r(ev.eta[i], ev.phi[i], ev.eta[j], ev.phi[j]);
      if (dr > 0.02 && dr < r0) s += (ev.pt[j] / dr) * (ev.pt[j] / dr);
    }
    if (s > 0) alpha[i] = std::log(s);
  }
  std::vector<double> pu_alpha;
  for (size_t i = 0; i < ev.size(); ++i)
    if (ev.charged_assoc[i] < 0 && std::isfinite(alpha[i])) pu_alpha.push_back(alpha[i]);
  std::vector<double> w = chs_weights(ev);
  if (pu_alpha.size() < 2) return w;
  std::sort(pu_alpha.begin(), pu_alpha.end());
  const double median = pu_alpha[pu_alpha.size() / 2];
  double rms = 0;  // RMS about the median, from below-median values mirrored (PUPPI's one-sided estimate)
  size_t n = 0;
  for (double a : pu_alpha)
    if (a <= median) rms += (a - median) * (a - median), ++n;
  rms = std::sqrt(rms / std::max<size_t>(n, 1));
  if (rms <= 0) return w;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev.charge[i] != 0) continue;
    const double d = alpha[i] - median;
    const double chi2 = std::isfinite(alpha[i]) && d > 0 ? d * d / (rms * rms) : 0.0;
    w[i] = std::erf(std::sqrt(chi2 / 2));  // CDF of chi^2 with one degree of freedom
  }
  return w;
}

std::vector<Jet> cluster_jets(const PileupEvent& ev, const std::vector<double>& weights, double r, double pt_min) {
#ifndef HEPDATA_WITH_FASTJET
  (void)ev, (void)weights, (void)r, (void)pt_min;
  throw std::runtime_error("jet clustering: this build has no FastJet (install libfastjet-dev and reconfigure)");
#else
  std::vector<fastjet::PseudoJet> inputs;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (weights[i] <= 0) continue;
    const double w = weights[i];
    const double pz = ev.pt[i] * std::sinh(ev.eta[i]);
    inputs.emplace_back(w * ev.px[i], w * ev.py[i], w * pz, w * ev.e[i]);
  }
  static const bool quiet = [] {  // FastJet prints a banner on first use; a library should not write to stdout
    fastjet::ClusterSequence::set_fastjet_banner_stream(nullptr);
    return true;
  }();
  (void)quiet;
  const fastjet::JetDefinition def(fastjet::antikt_algorithm, r);
  const fastjet::ClusterSequence cs(inputs, def);
  std::vector<Jet> jets;
  for (const fastjet::PseudoJet& j : fastjet::sorted_by_pt(cs.inclusive_jets(pt_min)))
    jets.push_back({j.pt(), j.eta(), j.phi_std()});
  return jets;
#endif
}

std::vector<double> model_weights(const PileupEvent& ev, const std::vector<double>& neutral_probability,
                                  const std::vector<double>& soft_neutral_weights) {
  if (neutral_probability.size() != ev.size() || soft_neutral_weights.size() != ev.size())
    throw std::invalid_argument("model_weights: one weight per particle expected");
  std::vector<double> w = chs_weights(ev);
  for (size_t i = 0; i < ev.size(); ++i)
    if (ev.is_neutral_target(i)) w[i] = neutral_probability[i];
    else if (ev.charge[i] == 0) w[i] = soft_neutral_weights[i];
  return w;
}

void JetResponseAccumulator::add(const PileupEvent& ev, const std::vector<double>& weights) {
  std::vector<double> truth_w(ev.size());
  for (size_t i = 0; i < ev.size(); ++i) truth_w[i] = ev.label[i] ? 1.0 : 0.0;
  const std::vector<Jet> truth = cluster_jets(ev, truth_w), reco = cluster_jets(ev, weights);
  if (truth.empty()) return;
  // the reco jet matched to the leading truth jet (closest within dR < 0.4), else 0 (lost)
  double matched = 0, best = 0.4;
  for (const Jet& j : reco) {
    const double dr = delta_r(j.eta, j.phi, truth[0].eta, truth[0].phi);
    if (dr < best) best = dr, matched = j.pt;
  }
  rel_.push_back((matched - truth[0].pt) / truth[0].pt);
  mult_.push_back(static_cast<double>(reco.size()) - static_cast<double>(truth.size()));
}

JetResponse JetResponseAccumulator::result() const {
  JetResponse r;
  r.events = static_cast<int64_t>(rel_.size());
  if (rel_.empty()) return r;
  const double n = static_cast<double>(rel_.size());
  r.bias = std::accumulate(rel_.begin(), rel_.end(), 0.0) / n;
  double var = 0;
  for (double x : rel_) var += (x - r.bias) * (x - r.bias);
  r.resolution = std::sqrt(var / n);
  std::vector<double> sorted = rel_;
  std::sort(sorted.begin(), sorted.end());
  auto quantile = [&](double q) {  // linear interpolation, as numpy's default
    const double pos = q * (n - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, sorted.size() - 1);
    return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
  };
  r.median = quantile(0.5);
  r.resolution_q68 = 0.5 * (quantile(0.84) - quantile(0.16));
  r.per_event = rel_;
  r.multiplicity_diff = std::accumulate(mult_.begin(), mult_.end(), 0.0) / n;
  return r;
}

}  // namespace data::pileup
