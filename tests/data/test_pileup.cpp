// Pile-up simulator (counts, label fractions, spectra per class, determinism, file round trip), classification
// metrics against hand-computed sklearn values, anti-kT jets against a naive O(n^3) implementation, and the CHS and
// PUPPI baselines.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <vector>

#include "data/pileup_metrics.h"
#include "data/pileup_sim.h"

using namespace data::pileup;

TEST_CASE("pile-up simulator: counts, labels, classes and spectra") {
  PileupConfig cfg;
  cfg.seed = 11;
  const PileupSimulator sim(cfg);
  const PileupEvent ev = sim.simulate(1);
  MESSAGE("event 1: " << ev.size() << " particles, mu " << ev.mu);
  CHECK(ev.size() >= 7000);
  CHECK(ev.size() <= 11000);
  CHECK(ev.mu >= 140);
  CHECK(ev.mu <= 200);
  std::map<int64_t, int> per_class;
  double lv = 0, neu = 0, lv_neu = 0;
  std::vector<double> pt_lv_neu, pt_pu_neu;  // pT of the neutral targets
  for (size_t i = 0; i < ev.size(); ++i) {
    per_class[ev.pid_class[i]]++;
    CHECK(ev.label[i] == (ev.vertex[i] == 0 ? 1 : 0));
    CHECK((ev.charge[i] != 0) == (ev.pid_class[i] == kCharged));
    CHECK(ev.pt[i] >= cfg.min_pt);
    lv += ev.label[i];
    if (ev.is_neutral_target(i)) {
      neu += 1;
      lv_neu += ev.label[i];
      (ev.label[i] ? pt_lv_neu : pt_pu_neu).push_back(ev.pt[i]);
    }
  }
  const double n = static_cast<double>(ev.size());
  CHECK(per_class[kCharged] / n == doctest::Approx(0.62).epsilon(0.05));
  CHECK(per_class[kPhoton] / n == doctest::Approx(0.26).epsilon(0.1));
  for (int64_t c = kK0L; c < kNumClasses; ++c) CHECK(per_class[c] > 0);
  CHECK(lv / n > 0.01);  // the hard scatter is a few percent of the particles
  CHECK(lv / n < 0.10);
  CHECK(neu > 300);
  CHECK(lv_neu / neu > 0.02);  // the LV share among hard neutrals is larger than among all particles
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  const double med_lv = median(pt_lv_neu), med_pu = median(pt_pu_neu);
  MESSAGE("median pT of neutral targets: LV " << med_lv << ", pile-up " << med_pu);
  CHECK(med_lv > 1.5 * med_pu);  // jets make LV neutrals harder (medians: the mean follows a few hard particles)
  // vertex association of charged particles inside the tracker: mostly right
  double right = 0, assoc = 0;
  for (size_t i = 0; i < ev.size(); ++i)
    if (ev.charged_assoc[i] != 0) assoc += 1, right += (ev.charged_assoc[i] > 0) == (ev.label[i] == 1);
  CHECK(right / assoc > 0.9);
}

TEST_CASE("pile-up simulator: deterministic per (seed, event), files round-trip, manifest split") {
  PileupConfig cfg;
  cfg.seed = 5;
  cfg.mu_min = cfg.mu_max = 20;  // small events keep the test fast
  const PileupSimulator sim(cfg);
  const PileupEvent a = sim.simulate(3), b = sim.simulate(3), c = sim.simulate(4);
  CHECK(a.pt == b.pt);
  CHECK(a.pt != c.pt);
  const std::string dir = (std::filesystem::temp_directory_path() / "pileup_test_ds").string();
  std::filesystem::remove_all(dir);
  write_pileup_dataset(dir, 10, cfg);
  const PileupDataset ds = read_pileup_manifest(dir);
  CHECK(ds.train.size() == 8);
  CHECK(ds.valid.size() == 1);
  CHECK(ds.test.size() == 1);
  const PileupEvent back = load_pileup_event(ds.train[2]);
  CHECK(back.event_id == 3);
  CHECK(back.pt == a.pt);
  CHECK(back.label == a.label);
  CHECK(back.charged_assoc == a.charged_assoc);
  CHECK(back.pid_class == a.pid_class);
  CHECK_THROWS_WITH(read_pileup_manifest(dir + "/nope"), doctest::Contains("cannot open"));
  write_pileup_dataset(dir, 10, cfg);  // same generator and config: the existing files are kept
  PileupConfig other = cfg;
  other.soft_pt_tail = 1.6;
  CHECK_THROWS_WITH(write_pileup_dataset(dir, 10, other), doctest::Contains("another generator version or config"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("pile-up simulator: soft collisions fall like LHC minimum bias at high pT, never hundreds of GeV") {
  // Generator 1 used the tracking simulator's tail P(> pT) ~ pT^-1.6 for soft particles: about one pile-up particle
  // above 100 GeV every 4 events (a 763 GeV pile-up photon in one held-out event). With the Tsallis-like tail 4.5,
  // P(> 20 GeV) per particle is 0.01 (20 / 2.57)^-4.5 ~ 1e-6.
  PileupConfig cfg;
  cfg.seed = 3;
  const PileupSimulator sim(cfg);
  double n_soft = 0, above_5 = 0, above_20 = 0, hardest = 0;
  for (int id = 1; id <= 20; ++id) {
    const PileupEvent ev = sim.simulate(id);
    for (size_t i = 0; i < ev.size(); ++i) {
      if (ev.vertex[i] == 0) continue;  // pile-up only
      n_soft += 1;
      above_5 += ev.pt[i] > 5;
      above_20 += ev.pt[i] > 20;
      hardest = std::max(hardest, static_cast<double>(ev.pt[i]));
    }
  }
  MESSAGE(n_soft << " pile-up particles, " << above_5 << " above 5 GeV, hardest " << hardest << " GeV");
  CHECK(n_soft > 100000);
  // Expected above 5 GeV: 0.01 (5 / 2.57)^-4.5 ~ 5e-4 of the soft draws (a bit more among those above min_pt).
  CHECK(above_5 / n_soft > 2e-4);
  CHECK(above_5 / n_soft < 1.5e-3);
  CHECK(above_20 <= 3);
  CHECK(hardest < 100);  // generator 1: ~4 pile-up particles above 100 GeV in these 20 events
}

TEST_CASE("classification metrics match sklearn on hand-checked cases") {
  const std::vector<int64_t> y{0, 0, 1, 1};
  const std::vector<double> s{0.1, 0.4, 0.35, 0.8};
  CHECK(roc_auc(s, y) == doctest::Approx(0.75));
  CHECK(average_precision(s, y) == doctest::Approx(0.8333333333));
  CHECK(accuracy_at(s, y, 0.5) == doctest::Approx(0.75));
  // ties: sklearn gives roc_auc([0,1,1,0], [0.5,0.5,0.9,0.1]) = 0.875, average_precision = 0.8333
  CHECK(roc_auc({0.5, 0.5, 0.9, 0.1}, {0, 1, 1, 0}) == doctest::Approx(0.875));
  CHECK(average_precision({0.5, 0.5, 0.9, 0.1}, {0, 1, 1, 0}) == doctest::Approx(0.8333333333));
  CHECK(std::isnan(roc_auc({0.1, 0.2}, {1, 1})));
}

namespace {

struct P4 {
  double px, py, pz, e;
  double pt() const { return std::hypot(px, py); }
  double rap() const { return 0.5 * std::log((e + pz) / (e - pz)); }
  double phi() const { return std::atan2(py, px); }
};

// Textbook anti-kT (E-scheme) by repeated global minimum search: O(n^3), for small hand-made events only.
std::vector<P4> naive_antikt(std::vector<P4> p, double r) {
  std::vector<P4> jets;
  const double pi = 3.14159265358979323846;
  while (!p.empty()) {
    double best = 1e300;
    int bi = -1, bj = -1;
    for (size_t i = 0; i < p.size(); ++i) {
      const double dib = std::pow(p[i].pt(), -2);
      if (dib < best) best = dib, bi = static_cast<int>(i), bj = -1;
      for (size_t j = i + 1; j < p.size(); ++j) {
        double dphi = std::abs(p[i].phi() - p[j].phi());
        if (dphi > pi) dphi = 2 * pi - dphi;
        const double dr2 = std::pow(p[i].rap() - p[j].rap(), 2) + dphi * dphi;
        const double dij = std::min(std::pow(p[i].pt(), -2), std::pow(p[j].pt(), -2)) * dr2 / (r * r);
        if (dij < best) best = dij, bi = static_cast<int>(i), bj = static_cast<int>(j);
      }
    }
    if (bj < 0) {
      jets.push_back(p[bi]);
    } else {
      p[bi] = {p[bi].px + p[bj].px, p[bi].py + p[bj].py, p[bi].pz + p[bj].pz, p[bi].e + p[bj].e};
      p.erase(p.begin() + bj);
      continue;
    }
    p.erase(p.begin() + bi);
  }
  return jets;
}

}  // namespace

TEST_CASE("anti-kT jets (FastJet) agree with a naive implementation on a hand-made event") {
  PileupEvent ev;
  auto add = [&](double pt, double eta, double phi, double m) {
    const double px = pt * std::cos(phi), py = pt * std::sin(phi), pz = pt * std::sinh(eta);
    ev.pt.push_back(static_cast<float>(pt)), ev.eta.push_back(static_cast<float>(eta));
    ev.phi.push_back(static_cast<float>(phi)), ev.px.push_back(static_cast<float>(px));
    ev.py.push_back(static_cast<float>(py));
    ev.e.push_back(static_cast<float>(std::sqrt(px * px + py * py + pz * pz + m * m)));
    ev.rapidity.push_back(0), ev.pid_class.push_back(0), ev.charge.push_back(1), ev.vertex.push_back(0);
    ev.label.push_back(1), ev.charged_assoc.push_back(1);
  };
  // two jets, a soft particle between them, a far-away soft particle
  for (int i = 0; i < 6; ++i) add(20.0 + 7 * i, 0.5 + 0.05 * i, 1.0 - 0.04 * i, 0.14);
  for (int i = 0; i < 5; ++i) add(15.0 + 3 * i, -1.0 + 0.06 * i, -2.0 + 0.05 * i, 0.0);
  add(1.5, -0.2, -0.5, 0.14);
  add(2.0, 2.2, 2.9, 0.0);
  const std::vector<double> w(ev.size(), 1.0);
  const std::vector<Jet> jets = cluster_jets(ev, w, 0.4, 0.0);
  std::vector<P4> p;
  for (size_t i = 0; i < ev.size(); ++i) {
    const double pz = ev.pt[i] * std::sinh(ev.eta[i]);
    p.push_back({ev.px[i], ev.py[i], pz, ev.e[i]});
  }
  std::vector<P4> ref = naive_antikt(p, 0.4);
  std::sort(ref.begin(), ref.end(), [](const P4& a, const P4& b) { return a.pt() > b.pt(); });
  REQUIRE(jets.size() == ref.size());
  for (size_t j = 0; j < jets.size(); ++j) {
    CHECK(jets[j].pt == doctest::Approx(ref[j].pt()).epsilon(1e-5));
    CHECK(jets[j].eta == doctest::Approx(std::asinh(ref[j].pz / ref[j].pt())).epsilon(1e-4));
  }
  CHECK(jets.size() == 4);
  CHECK(jets[0].pt > 150);
}

TEST_CASE("CHS and PUPPI-style baselines on a simulated event") {
  PileupConfig cfg;
  cfg.seed = 21;
  const PileupEvent ev = PileupSimulator(cfg).simulate(2);
  const auto chs = chs_weights(ev), puppi = puppi_weights(ev);
  double pu_charged_kept = 0, lv_w = 0, pu_w = 0, n_lv = 0, n_pu = 0;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev.charged_assoc[i] < 0) pu_charged_kept += chs[i];
    if (ev.is_neutral_target(i)) {
      CHECK(chs[i] == 1.0);
      CHECK(puppi[i] >= 0.0);
      CHECK(puppi[i] <= 1.0);
      (ev.label[i] ? lv_w : pu_w) += puppi[i];
      (ev.label[i] ? n_lv : n_pu) += 1;
    }
  }
  CHECK(pu_charged_kept == 0);
  MESSAGE("PUPPI mean weight: LV neutrals " << lv_w / n_lv << ", pile-up neutrals " << pu_w / n_pu);
  CHECK(lv_w / n_lv > 2 * pu_w / n_pu);
  // jets: CHS keeps all pile-up neutrals, so its leading-jet response is biased upwards more than PUPPI's
  JetResponseAccumulator chs_acc, puppi_acc;
  for (int64_t id = 1; id <= 4; ++id) {
    const PileupEvent e = PileupSimulator(cfg).simulate(id);
    chs_acc.add(e, chs_weights(e));
    puppi_acc.add(e, puppi_weights(e));
  }
  MESSAGE("leading-jet bias CHS " << chs_acc.result().bias << ", PUPPI " << puppi_acc.result().bias);
  CHECK(chs_acc.result().events == 4);
  CHECK(chs_acc.result().bias > puppi_acc.result().bias);
  // the robust summaries agree with the per-event responses: median of 4 = mean of the middle two; the q68 width is
  // half the 16%-84% range with numpy's linear interpolation (positions 0.48 and 2.52 of 0..3)
  std::vector<double> r = chs_acc.result().per_event;
  REQUIRE(r.size() == 4);
  std::sort(r.begin(), r.end());
  CHECK(chs_acc.result().median == doctest::Approx(0.5 * (r[1] + r[2])));
  const double q16 = r[0] + 0.48 * (r[1] - r[0]), q84 = r[2] + 0.52 * (r[3] - r[2]);
  CHECK(chs_acc.result().resolution_q68 == doctest::Approx(0.5 * (q84 - q16)));
}

TEST_CASE("model weights: the model on the neutral targets, the given weights on soft neutrals, CHS on charged") {
  PileupConfig cfg;
  cfg.seed = 23;
  const PileupEvent ev = PileupSimulator(cfg).simulate(1);
  const std::vector<double> prob(ev.size(), 0.25), soft(ev.size(), 0.5);
  const auto w = model_weights(ev, prob, soft), chs = chs_weights(ev);
  int64_t targets = 0, softs = 0;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev.is_neutral_target(i)) {
      CHECK(w[i] == 0.25);
      ++targets;
    } else if (ev.charge[i] == 0) {
      CHECK(w[i] == 0.5);
      ++softs;
    } else {
      CHECK(w[i] == chs[i]);
    }
  }
  CHECK(targets > 0);
  CHECK(softs > 0);
  CHECK_THROWS_WITH(model_weights(ev, std::vector<double>(3, 0.0), soft), doctest::Contains("one weight per particle"));
}
