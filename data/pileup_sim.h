// Pile-up events for the per-particle leading-vertex classification task (HEPT's Pileup-10k, hept.md section 2),
// simulated because the CMS-like Delphes files are not available: a hard-scatter process (a few jets fragmenting
// around their axes plus the underlying event) overlaid with mu soft pile-up collisions spread along the beam line.
// Each particle is one particle-flow candidate with HEPT's features; charged particles inside the tracker carry
// their vertex association (what charged-hadron subtraction knows); the neutrals' labels are what models predict.
// On disk: one safetensors file per event plus manifest.json (format in docs/pileup.md). See docs/pileup.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace data::pileup {

// pid_class of HEPT: charged 0, photon 1, K0L 2, K0S 3, neutron 4, Lambda 5, Xi0 6.
enum ParticleClass : int64_t { kCharged = 0, kPhoton, kK0L, kK0S, kNeutron, kLambda, kXi0, kNumClasses };

constexpr int kFeatures = 9;  // eta, phi, px, py, pT, E, rapidity, charged vertex association, pid_class (last)

struct PileupConfig {
  uint64_t seed = 1;
  double mu_min = 140, mu_max = 200;    // the event's mean pile-up is drawn uniformly in [mu_min, mu_max]
  double pu_particles_mean = 48;        // particles per pile-up collision (negative binomial, k = 2)
  double min_pt = 0.3;                  // particle-flow threshold (GeV)
  double eta_max = 4.0;                 // calorimeter acceptance
  double tracker_eta = 2.5;             // charged particles inside it are vertex-associated
  double sigma_z = 45;                  // luminous region along z (mm)
  double vertex_resolution_z = 0.5;     // charged tracks within 3 sigma of the leading vertex count as LV (mm)
  int jets_min = 2, jets_max = 6;       // hard-scatter jets
  double jet_pt_min = 30, jet_pt_max = 400;  // GeV, falling spectrum ~ pT^-3 in between
  double jet_eta_max = 2.5;
  double ue_particles_mean = 60;        // underlying event of the hard scatter
  // Soft particles (pile-up and underlying event): P(> pT) ~ pT^-soft_pt_tail above 2.57 GeV, the high-pT fall of
  // minimum-bias spectra at the LHC (Tsallis n ~ 6.5: dN/dpT ~ pT^(1 - n)). Until generator 2 this was the tracking
  // simulator's 1.6, which gave soft collisions particles of hundreds of GeV.
  double soft_pt_tail = 4.5;
};

// Version of the event generator, written to the manifest; bumped whenever the same config gives other events.
inline constexpr int kPileupGeneratorVersion = 2;

// One event: per-particle arrays in a random order (as the reference permutes particles).
struct PileupEvent {
  int64_t event_id = 0;
  double mu = 0;
  std::vector<float> eta, phi, px, py, pt, e, rapidity;
  std::vector<int64_t> pid_class, charge, vertex;  // vertex 0 = the leading (hard-scatter) vertex
  std::vector<int64_t> label;                      // 1 = leading vertex (vertex == 0)
  std::vector<int64_t> charged_assoc;              // charged in the tracker: +1 LV-associated, -1 pile-up; else 0
  size_t size() const { return eta.size(); }
  bool is_neutral_target(size_t i) const { return charge[i] == 0 && pt[i] > 0.9f; }  // HEPT's is_neu mask
  std::vector<float> features() const;  // [N, kFeatures] row-major
};

class PileupSimulator {
 public:
  explicit PileupSimulator(PileupConfig config) : config_(config) {}
  PileupEvent simulate(int64_t event_id) const;  // deterministic in (seed, event_id)
  const PileupConfig& config() const { return config_; }

 private:
  PileupConfig config_;
};

// Writes events 1..n to <dir>/pileup_event<id>.safetensors and <dir>/manifest.json (80/10/10 split by event id,
// written last and atomically). Files that exist are kept (an interrupted run resumes).
void write_pileup_dataset(const std::string& dir, int n_events, const PileupConfig& config);
void save_pileup_event(const std::string& path, const PileupEvent& event);
PileupEvent load_pileup_event(const std::string& path);

struct PileupDataset {
  std::string dir;
  std::vector<std::string> train, valid, test;  // file paths
};
PileupDataset read_pileup_manifest(const std::string& dir);

}  // namespace data::pileup
