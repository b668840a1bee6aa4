// What physicists judge pile-up removal by: classification metrics on the neutral targets (accuracy, ROC AUC,
// average precision as sklearn defines them), anti-kT jets with FastJet on truth and reconstructed particle sets, the
// leading-jet pT resolution and bias, and two classic baselines a physicist would use instead of a model:
// charged-hadron subtraction (CHS) and a PUPPI-style local-shape weight.
#pragma once
#include <cstdint>
#include <vector>

#include "data/pileup_sim.h"

namespace data::pileup {

// sklearn.metrics.roc_auc_score (ties get half credit) and average_precision_score (step-wise PR integral over
// distinct thresholds). NaN when only one class is present.
double roc_auc(const std::vector<double>& score, const std::vector<int64_t>& label);
double average_precision(const std::vector<double>& score, const std::vector<int64_t>& label);
double accuracy_at(const std::vector<double>& score, const std::vector<int64_t>& label, double threshold = 0.5);

// Per-particle weights of the baselines, for every particle of the event (charged ones included).
// CHS: charged -> 1 if associated with the leading vertex else 0 (charged outside the tracker: 1); neutrals -> 1.
std::vector<double> chs_weights(const PileupEvent& ev);
// PUPPI (Bertolini et al. 2014): alpha_i = log sum over LV-associated charged j with 0.02 < dR_ij < R0 of
// (pT_j / dR_ij)^2; its median and RMS over pile-up-associated charged particles define a chi^2 with one degree of
// freedom whose CDF is the weight of each neutral. Charged particles take their CHS weight.
std::vector<double> puppi_weights(const PileupEvent& ev, double r0 = 0.3);

struct Jet {
  double pt, eta, phi;
};
// Anti-kT jets (FastJet, E-scheme) of the particles with weight > 0, each four-momentum scaled by its weight; jets
// above pt_min, by decreasing pT.
std::vector<Jet> cluster_jets(const PileupEvent& ev, const std::vector<double>& weights, double r = 0.4,
                              double pt_min = 20.0);

// Weights of the reconstruction a model makes: charged as CHS, the neutral targets (pT > 0.9 GeV, what the model is
// trained on) weighted by the model's LV probability, and the soft neutrals below that threshold, which the model never
// sees as targets, by `soft_neutral_weights` (the PUPPI-style weights in the comparisons, so that the model's row and
// the PUPPI row differ only on the targets).
std::vector<double> model_weights(const PileupEvent& ev, const std::vector<double>& neutral_probability,
                                  const std::vector<double>& soft_neutral_weights);

// Leading-jet response over events: truth = anti-kT on the leading-vertex particles, reco = anti-kT with `weights`;
// per event r = (reco - truth) / truth; bias = mean of r, resolution = its RMS about the mean (sensitive to single
// outlier events), and the robust pair median / q68 resolution = half the 16%-84% quantile range (linear
// interpolation between order statistics); also the mean jet multiplicity difference, and r per event.
struct JetResponse {
  double bias = 0, resolution = 0, median = 0, resolution_q68 = 0, multiplicity_diff = 0;
  int64_t events = 0;
  std::vector<double> per_event;  // r, in the order the events were added
};
class JetResponseAccumulator {
 public:
  void add(const PileupEvent& ev, const std::vector<double>& weights);
  JetResponse result() const;

 private:
  std::vector<double> rel_, mult_;
};

}  // namespace data::pileup
