// Pile-up event simulator and its on-disk format (see pileup_sim.h and docs/pileup.md).
#include "data/pileup_sim.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>

#include "data/physics.h"
#include "engine/engine.h"

namespace data::pileup {

namespace {

using sim::Rng;
using std::numbers::pi;

// Species mix of particle-flow candidates (charged ~62%, photons ~26%, neutral hadrons ~12%).
struct ClassInfo {
  ParticleClass cls;
  double fraction, mass;
};
constexpr ClassInfo kClasses[] = {{kCharged, 0.62, 0.13957}, {kPhoton, 0.26, 0.0},     {kK0L, 0.04, 0.49761},
                                  {kK0S, 0.03, 0.49761},     {kNeutron, 0.03, 0.93957}, {kLambda, 0.015, 1.11568},
                                  {kXi0, 0.005, 1.31486}};

const ClassInfo& sample_class(Rng& rng) {
  double u = rng.uniform();
  for (const ClassInfo& c : kClasses) {
    if (u < c.fraction) return c;
    u -= c.fraction;
  }
  return kClasses[0];
}

double wrap_phi(double phi) {
  while (phi > pi) phi -= 2 * pi;
  while (phi <= -pi) phi += 2 * pi;
  return phi;
}

// Appends one particle from `vertex` (z position vz) to the event.
class EventBuilder {
 public:
  EventBuilder(const PileupConfig& c, Rng& rng, double z_lv) : c_(c), rng_(rng), z_lv_(z_lv) {}

  void add(PileupEvent& ev, double pt, double eta, double phi, int64_t vertex, double vz) {
    if (pt < c_.min_pt || std::abs(eta) > c_.eta_max) return;
    const ClassInfo& info = sample_class(rng_);
    const int64_t charge = info.cls == kCharged ? (rng_.uniform() < 0.5 ? 1 : -1) : 0;
    const double px = pt * std::cos(phi), py = pt * std::sin(phi), pz = pt * std::sinh(eta);
    const double e = std::sqrt(px * px + py * py + pz * pz + info.mass * info.mass);
    ev.eta.push_back(static_cast<float>(eta));
    ev.phi.push_back(static_cast<float>(phi));
    ev.px.push_back(static_cast<float>(px));
    ev.py.push_back(static_cast<float>(py));
    ev.pt.push_back(static_cast<float>(pt));
    ev.e.push_back(static_cast<float>(e));
    ev.rapidity.push_back(static_cast<float>(0.5 * std::log((e + pz) / std::max(e - pz, 1e-12))));
    ev.pid_class.push_back(info.cls);
    ev.charge.push_back(charge);
    ev.vertex.push_back(vertex);
    ev.label.push_back(vertex == 0 ? 1 : 0);
    int64_t assoc = 0;
    if (charge != 0 && std::abs(eta) < c_.tracker_eta) {  // track z0 measured with a pT-dependent resolution
      const double sigma = c_.vertex_resolution_z * (1.0 + 1.0 / pt);
      const double z0 = vz + sigma * rng_.normal();
      assoc = std::abs(z0 - z_lv_) < 3.0 * sigma ? 1 : -1;
    }
    ev.charged_assoc.push_back(assoc);
  }

  // A soft particle (minimum-bias spectra of the TrackML simulator, above the particle-flow threshold).
  void add_soft(PileupEvent& ev, int64_t vertex, double vz) {
    auto draw = [&] { return sim::sample_minbias_pt(rng_, c_.soft_pt_tail); };
    double pt = draw();
    for (int tries = 0; pt < c_.min_pt && tries < 100; ++tries) pt = draw();
    add(ev, pt, sim::sample_minbias_eta(rng_, c_.eta_max), rng_.uniform(-pi, pi), vertex, vz);
  }

  // A jet: pT ~ pT^-3, constituents share it by Dirichlet(0.5) fractions, harder ones closer to the axis.
  void add_jet(PileupEvent& ev, double vz) {
    const double a = std::pow(c_.jet_pt_min, -2.0), b = std::pow(c_.jet_pt_max, -2.0);
    const double jet_pt = std::pow(a - rng_.uniform() * (a - b), -0.5);
    const double jet_eta = rng_.uniform(-c_.jet_eta_max, c_.jet_eta_max), jet_phi = rng_.uniform(-pi, pi);
    const int n = 2 + rng_.poisson(2.5 * std::sqrt(jet_pt));
    std::vector<double> share(static_cast<size_t>(n));
    for (double& s : share) s = rng_.gamma(0.5);
    const double total = std::accumulate(share.begin(), share.end(), 0.0);
    for (double s : share) {
      const double pt = jet_pt * s / total;
      const double spread = 0.03 + 0.15 * std::exp(-pt / 5.0);
      const double dr = std::abs(spread * rng_.normal()), theta = rng_.uniform(0, 2 * pi);
      add(ev, pt, jet_eta + dr * std::cos(theta), wrap_phi(jet_phi + dr * std::sin(theta)), 0, vz);
    }
  }

 private:
  const PileupConfig& c_;
  Rng& rng_;
  double z_lv_;
};

template <class T>
std::vector<T> permuted(const std::vector<T>& v, const std::vector<size_t>& order) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < order.size(); ++i) out[i] = v[order[i]];
  return out;
}

}  // namespace

std::vector<float> PileupEvent::features() const {
  std::vector<float> f(size() * kFeatures);
  for (size_t i = 0; i < size(); ++i) {
    float* r = &f[i * kFeatures];
    r[0] = eta[i], r[1] = phi[i], r[2] = px[i], r[3] = py[i], r[4] = pt[i], r[5] = e[i], r[6] = rapidity[i];
    r[7] = static_cast<float>(charged_assoc[i]);
    r[8] = static_cast<float>(pid_class[i]);
  }
  return f;
}

PileupEvent PileupSimulator::simulate(int64_t event_id) const {
  const PileupConfig& c = config_;
  Rng rng(sim::event_seed(c.seed, event_id));
  PileupEvent ev;
  ev.event_id = event_id;
  ev.mu = rng.uniform(c.mu_min, c.mu_max);
  const double z_lv = c.sigma_z * rng.normal();
  EventBuilder b(c, rng, z_lv);
  const int n_jets = c.jets_min + static_cast<int>(rng.uniform() * (c.jets_max - c.jets_min + 1));
  for (int j = 0; j < n_jets; ++j) b.add_jet(ev, z_lv);
  const int n_ue = rng.poisson(c.ue_particles_mean);
  for (int i = 0; i < n_ue; ++i) b.add_soft(ev, 0, z_lv);
  const int n_pu = rng.poisson(ev.mu);
  for (int v = 1; v <= n_pu; ++v) {
    const double vz = c.sigma_z * rng.normal();
    const int n = rng.negative_binomial(c.pu_particles_mean, 2.0);
    for (int i = 0; i < n; ++i) b.add_soft(ev, v, vz);
  }
  // random particle order, as the reference permutes each event
  std::vector<size_t> order(ev.size());
  std::iota(order.begin(), order.end(), size_t{0});
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[static_cast<size_t>(rng.uniform() * i)]);
  for (auto* v : {&ev.eta, &ev.phi, &ev.px, &ev.py, &ev.pt, &ev.e, &ev.rapidity}) *v = permuted(*v, order);
  for (auto* v : {&ev.pid_class, &ev.charge, &ev.vertex, &ev.label, &ev.charged_assoc}) *v = permuted(*v, order);
  return ev;
}

// ---------------------------------------------------------------- on disk

void save_pileup_event(const std::string& path, const PileupEvent& ev) {
  const int64_t n = static_cast<int64_t>(ev.size());
  engine::io::save_safetensors(path,
                               {{"features", engine::from_vector(ev.features(), {n, kFeatures})},
                                {"label", engine::from_vector(ev.label, {n})},
                                {"charge", engine::from_vector(ev.charge, {n})},
                                {"vertex", engine::from_vector(ev.vertex, {n})}},
                               {{"format", "hep-pileup-event-v1"},
                                {"event_id", std::to_string(ev.event_id)},
                                {"mu", fmt::format("{}", ev.mu)}});
}

PileupEvent load_pileup_event(const std::string& path) {
  const auto contents = engine::io::load_safetensors(path);
  auto get = [&](const std::string& name) -> const engine::Tensor& {
    for (const auto& [k, t] : contents.tensors)
      if (k == name) return t;
    throw std::runtime_error(fmt::format("{}: no tensor '{}' (not a pile-up event file)", path, name));
  };
  const engine::Tensor& f = get("features");
  if (f.dim() != 2 || f.size(1) != kFeatures)
    throw std::runtime_error(fmt::format("{}: features must be [N, {}]", path, kFeatures));
  PileupEvent ev;
  ev.event_id = std::stoll(contents.metadata.at("event_id"));
  ev.mu = std::stod(contents.metadata.at("mu"));
  const auto v = f.to_vector<float>();
  const size_t n = static_cast<size_t>(f.size(0));
  for (size_t i = 0; i < n; ++i) {
    const float* r = &v[i * kFeatures];
    ev.eta.push_back(r[0]), ev.phi.push_back(r[1]), ev.px.push_back(r[2]), ev.py.push_back(r[3]);
    ev.pt.push_back(r[4]), ev.e.push_back(r[5]), ev.rapidity.push_back(r[6]);
    ev.charged_assoc.push_back(static_cast<int64_t>(r[7]));
    ev.pid_class.push_back(static_cast<int64_t>(r[8]));
  }
  ev.label = get("label").to_vector<int64_t>();
  ev.charge = get("charge").to_vector<int64_t>();
  ev.vertex = get("vertex").to_vector<int64_t>();
  if (ev.label.size() != n || ev.charge.size() != n || ev.vertex.size() != n)
    throw std::runtime_error(fmt::format("{}: column lengths differ", path));
  return ev;
}

void write_pileup_dataset(const std::string& dir, int n_events, const PileupConfig& c) {
  namespace fs = std::filesystem;
  if (n_events < 3) throw std::invalid_argument("a pile-up dataset needs at least 3 events (train/valid/test)");
  const nlohmann::json config = {{"generator", kPileupGeneratorVersion},
                                 {"seed", c.seed},
                                 {"mu_min", c.mu_min},
                                 {"mu_max", c.mu_max},
                                 {"min_pt", c.min_pt},
                                 {"pu_particles_mean", c.pu_particles_mean},
                                 {"eta_max", c.eta_max},
                                 {"soft_pt_tail", c.soft_pt_tail}};
  // Existing event files are kept (an interrupted run resumes), so they must come from the same generator and config.
  const fs::path old_manifest = fs::path(dir) / "manifest.json";
  if (fs::exists(old_manifest)) {
    std::ifstream f(old_manifest);
    const nlohmann::json old = nlohmann::json::parse(f, nullptr, false);
    const bool readable = !old.is_discarded() && old.contains("config");
    if (!readable || old["config"] != config)
      throw std::invalid_argument(fmt::format(
          "{}: this folder holds pile-up events simulated with another generator version or config ({}); write to "
          "a new folder",
          dir, readable ? old["config"].dump() : std::string("unreadable manifest")));
  }
  fs::create_directories(dir);
  const PileupSimulator sim(c);
  nlohmann::json files = nlohmann::json::array();
  for (int id = 1; id <= n_events; ++id) {
    const std::string name = fmt::format("pileup_event{:06d}.safetensors", id);
    if (!fs::exists(fs::path(dir) / name)) save_pileup_event((fs::path(dir) / name).string(), sim.simulate(id));
    files.push_back(name);
  }
  const int n_valid = std::max(1, n_events / 10), n_test = std::max(1, n_events / 10);
  const int n_train = n_events - n_valid - n_test;
  auto range = [&](int b, int e) { return nlohmann::json(std::vector<nlohmann::json>(files.begin() + b, files.begin() + e)); };
  const nlohmann::json manifest = {
      {"format", "hep-pileup-v1"},
      {"n_events", n_events},
      {"config", config},
      {"features", {"eta", "phi", "px", "py", "pt", "E", "rapidity", "charged_assoc", "pid_class"}},
      {"split", {{"train", range(0, n_train)}, {"valid", range(n_train, n_train + n_valid)},
                 {"test", range(n_train + n_valid, n_events)}}}};
  const std::string tmp = (fs::path(dir) / "manifest.json.tmp").string();
  {
    std::ofstream f(tmp);
    f << manifest.dump(2) << "\n";
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  fs::rename(tmp, fs::path(dir) / "manifest.json");
}

PileupDataset read_pileup_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open (not a pile-up dataset folder)", path));
  const auto j = nlohmann::json::parse(f, nullptr, false);
  if (j.is_discarded() || j.value("format", "") != "hep-pileup-v1")
    throw std::runtime_error(fmt::format("{}: not a hep-pileup-v1 manifest", path));
  PileupDataset d;
  d.dir = dir;
  for (const auto& [split, out] : {std::pair{"train", &d.train}, std::pair{"valid", &d.valid}, std::pair{"test", &d.test}})
    for (const auto& name : j.at("split").at(split)) out->push_back(dir + "/" + name.get<std::string>());
  return d;
}

}  // namespace data::pileup
