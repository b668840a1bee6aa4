// Tests of the TrackML event simulator: helix geometry, ids and weights, reproducibility, hits on their module
// planes, occupancy per volume at mu = 200, helix consistency of particle hits, the file round trip, and particle
// sub-sampling.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>

#include "data/physics.h"
#include "data/simulator.h"
#include "data/subsample.h"
#include "data/trackml_io.h"
#include "shared_data.h"

using data::sim::SimConfig;
using data::sim::Simulator;

namespace {

data::Event small_event(SimConfig cfg, int64_t id = 7) {
  cfg.mu = cfg.mu == 200 ? 8 : cfg.mu;
  return Simulator(data::builtin_detector(), cfg).simulate(id);
}

}  // namespace

TEST_CASE("simulator: helix crossings lie on the cylinder and the plane") {
  data::sim::Track t;
  t.pos = {0.1, -0.2, 3};
  t.p = 0.8;
  const double n = std::sqrt(0.36 + 0.25 + 0.04);
  t.dir = {0.6 / n, 0.5 / n, 0.2 / n};
  t.charge = -1;
  t.mass = 0.14;
  const data::sim::Helix h(t, 2.0);
  const auto s = h.cylinder_crossings(300, 1e-6);
  REQUIRE(s.size() == 2);
  for (double x : s) {
    const auto p = h.position(x);
    CHECK(std::hypot(p[0], p[1]) == doctest::Approx(300).epsilon(1e-9));
  }
  CHECK(h.cylinder_crossings(5000, 1e-6).empty());  // R = 1334 mm: never reaches r = 5000
  const auto sp = h.plane_crossing({100, 100, 0}, {0.6, 0.8, 0}, 150.0);
  REQUIRE(sp.has_value());
  const auto p = h.position(*sp);
  CHECK(0.6 * (p[0] - 100) + 0.8 * (p[1] - 100) == doctest::Approx(0).scale(1));
  // Positive charge in +Bz turns clockwise.
  t.charge = 1;
  CHECK(data::sim::Helix(t, 2.0).omega() < 0);
}

TEST_CASE("simulator: particle ids and weight profiles") {
  const int64_t id = data::sim::encode_particle_id(3, 17, 1, 5, 1);
  CHECK(id == ((int64_t(3) << 52) | (int64_t(17) << 36) | (int64_t(1) << 24) | (5 << 12) | 1));
  CHECK(data::sim::particle_generation(id) == 1);
  CHECK_THROWS_AS(data::sim::encode_particle_id(0, 1 << 16, 0, 0, 0), std::invalid_argument);
  for (int n = 4; n <= 30; ++n) {
    double sum = 0;
    for (int k = 0; k < n; ++k) sum += data::sim::weight_order(k, n);
    CHECK(sum == doctest::Approx(1.0));
  }
  CHECK(data::sim::weight_order(0, 3) == 0);
  CHECK(data::sim::weight_order(0, 4) > data::sim::weight_order(1, 4));
  CHECK(data::sim::weight_pt(0.04) == 0);
  CHECK(data::sim::weight_pt(0.3) == doctest::Approx(0.2));
  CHECK(data::sim::weight_pt(1.75) == doctest::Approx(0.6));
  CHECK(data::sim::weight_pt(10) == 1);
}

TEST_CASE("simulator: same seed gives an identical event, another seed a different one") {
  SimConfig cfg;
  cfg.mu = 5;
  const data::Event a = small_event(cfg), b = small_event(cfg);
  cfg.seed = 2;
  const data::Event c = small_event(cfg);
  REQUIRE(a.hits.size() > 100);
  CHECK(a.hits.x == b.hits.x);
  CHECK(a.truth.particle_id == b.truth.particle_id);
  CHECK(a.cells.value == b.cells.value);
  CHECK(a.particles.px == b.particles.px);
  CHECK(a.hits.x != c.hits.x);
}

TEST_CASE("simulator: hits lie on their module planes, inside the bounds, in the TrackML order") {
  SimConfig cfg;
  cfg.mu = 10;
  const data::Event ev = small_event(cfg);
  const data::Detector& det = data::builtin_detector();
  REQUIRE(ev.hits.size() > 0);
  CHECK(ev.truth.size() == ev.hits.size());
  int bad = 0;
  for (size_t i = 0; i < ev.hits.size(); ++i) {
    CHECK(ev.hits.hit_id[i] == int64_t(i + 1));
    const data::Module* m = det.find(ev.hits.volume_id[i], ev.hits.layer_id[i], ev.hits.module_id[i]);
    REQUIRE(m != nullptr);
    const auto meas = m->to_local({ev.hits.x[i], ev.hits.y[i], ev.hits.z[i]});
    const auto tru = m->to_local({ev.truth.tx[i], ev.truth.ty[i], ev.truth.tz[i]});
    // A cell centre can lie outside a trapezoid's slanted edge by a pitch in u plus the edge's slope over half a
    // pitch in v (long strips are 10.4 mm).
    const double slack = m->pitch_u + (m->max_hu - m->min_hu) / (2 * m->hv) * m->pitch_v / 2;
    const double mu = std::copysign(std::max(std::abs(meas[0]) - slack, 0.0), meas[0]);
    const bool ok = std::abs(meas[2]) < 2e-3 && std::abs(tru[2]) < 2e-3 && m->contains_local(mu, meas[1] * 0.999) &&
                    m->contains_local(tru[0] * 0.999, tru[1] * 0.999);
    if (!ok && ++bad < 5) {
      MESSAGE("hit " << i + 1 << " module " << m->volume_id << "/" << m->layer_id << "/" << m->module_id << " measured ("
                     << meas[0] << ", " << meas[1] << ", " << meas[2] << ") true (" << tru[0] << ", " << tru[1] << ", "
                     << tru[2] << ")");
    }
    if (i > 0) {
      const auto key = [&](size_t k) { return std::tuple(ev.hits.volume_id[k], ev.hits.layer_id[k], ev.hits.module_id[k]); };
      CHECK(key(i - 1) <= key(i));
    }
  }
  CHECK(bad == 0);
  // Measured minus true position: pixel residuals stay within a few pitches.
  for (size_t i = 0; i < ev.hits.size(); ++i) {
    if (ev.truth.particle_id[i] == 0 || ev.hits.volume_id[i] != 8) continue;
    CHECK(std::abs(ev.hits.z[i] - ev.truth.tz[i]) < 0.5);
  }
}

TEST_CASE("simulator: truth weights, particles table and noise") {
  SimConfig cfg;
  cfg.mu = 10;
  const data::Event ev = small_event(cfg);
  const double sum = std::accumulate(ev.truth.weight.begin(), ev.truth.weight.end(), 0.0);
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-4));
  std::unordered_map<int64_t, int> hits_of;
  size_t noise = 0;
  for (size_t i = 0; i < ev.truth.size(); ++i) {
    const int64_t pid = ev.truth.particle_id[i];
    if (pid == 0) {
      ++noise;
      CHECK(ev.truth.weight[i] == 0);
      continue;
    }
    ++hits_of[pid];
    if (data::sim::particle_generation(pid) != 0) CHECK(ev.truth.weight[i] == 0);
  }
  const double noise_frac = double(noise) / double(ev.hits.size());
  CHECK(noise_frac == doctest::Approx(cfg.noise_fraction).epsilon(0.05));
  for (size_t i = 0; i < ev.particles.size(); ++i) {
    const int64_t pid = ev.particles.particle_id[i];
    CHECK(pid > 0);
    CHECK(ev.particles.nhits[i] == (hits_of.count(pid) ? hits_of[pid] : 0));
    CHECK(std::abs(ev.particles.q[i]) == 1);
    CHECK(std::hypot(ev.particles.px[i], ev.particles.py[i]) >= cfg.min_pt * 0.999);
  }
  CHECK(ev.particles.particle_type.size() == ev.particles.size());
}

TEST_CASE("simulator: hits of a particle lie on its helix") {
  SimConfig cfg;
  cfg.mu = 6;
  cfg.energy_loss = false;
  SUBCASE("without material the hits are exactly on the circle") { cfg.material_scale = 0; }
  SUBCASE("with multiple scattering, within its tolerance for pT > 2 GeV") { cfg.material_scale = 1; }
  const data::Event ev = small_event(cfg, 11);
  std::unordered_map<int64_t, size_t> row;
  for (size_t i = 0; i < ev.particles.size(); ++i) row[ev.particles.particle_id[i]] = i;
  int checked = 0;
  double worst = 0;
  for (size_t i = 0; i < ev.truth.size(); ++i) {
    const int64_t pid = ev.truth.particle_id[i];
    if (pid == 0) continue;
    const size_t r = row.at(pid);
    const double px = ev.particles.px[r], py = ev.particles.py[r], pt = std::hypot(px, py);
    if (pt < 2) continue;
    const double radius = pt / (data::sim::kCLight * cfg.bz);  // mm
    const double q = ev.particles.q[r];
    // Centre of the transverse circle: vertex + R * (direction rotated toward the centre of curvature).
    const double xc = ev.particles.vx[r] + q * radius * py / pt, yc = ev.particles.vy[r] - q * radius * px / pt;
    worst = std::max(worst, std::abs(std::hypot(ev.truth.tx[i] - xc, ev.truth.ty[i] - yc) - radius));
    ++checked;
  }
  REQUIRE(checked > 20);
  CHECK(worst < (cfg.material_scale == 0 ? 0.01 : 3.0));
}

TEST_CASE("simulator: mu = 200 occupancy per volume is TrackML-like, and fast") {
  SimConfig cfg;  // defaults: mu = 200, all volumes
  const data::Event ev = Simulator(data::builtin_detector(), cfg).simulate(1000);
  std::map<int, int> per_volume;
  for (int v : ev.hits.volume_id) ++per_volume[v];
  MESSAGE("hits: " << ev.hits.size() << ", particles: " << ev.particles.size());
  CHECK(ev.hits.size() > 60000);
  CHECK(ev.hits.size() < 150000);
  // Real event 1001: pixel barrel 21.9k, SS barrel 19.9k, LS barrel 8.7k, pixel disks ~12.9k + 12.2k per side,
  // SS disks ~6.4k per side, LS disks ~2.3k per side. Allow a factor ~1.6 either way.
  const std::map<int, std::pair<int, int>> range = {{7, {7000, 20000}}, {8, {13000, 35000}}, {9, {7000, 20000}},
                                                     {12, {4000, 10000}}, {13, {12000, 32000}}, {14, {4000, 10000}},
                                                     {16, {1400, 3700}}, {17, {5400, 14000}}, {18, {1400, 3700}}};
  for (const auto& [v, r] : range) {
    INFO("volume " << v << ": " << per_volume[v] << " hits");
    CHECK(per_volume[v] >= r.first);
    CHECK(per_volume[v] <= r.second);
  }
}

TEST_CASE("simulator: pixel-only events and bad configs") {
  SimConfig cfg;
  cfg.mu = 10;
  cfg.pixel_only = true;
  const data::Event ev = small_event(cfg);
  REQUIRE(ev.hits.size() > 0);
  for (int v : ev.hits.volume_id) CHECK((v == 7 || v == 8 || v == 9));
  cfg.noise_fraction = 1.0;
  CHECK_THROWS_AS(Simulator(data::builtin_detector(), cfg), std::invalid_argument);
  cfg.noise_fraction = 0.1;
  cfg.mu = -1;
  CHECK_THROWS_AS(Simulator(data::builtin_detector(), cfg), std::invalid_argument);
  cfg.mu = 10;
  cfg.sigma_z = -1;
  CHECK_THROWS_AS(Simulator(data::builtin_detector(), cfg), std::invalid_argument);
}

// sigma of the collision vertices' z, from the interquartile range of the distinct vz of prompt particles
static double vertex_z_sigma(const data::Event& ev) {
  std::set<float> vz;
  for (size_t i = 0; i < ev.particles.size(); ++i)
    if (std::hypot(ev.particles.vx[i], ev.particles.vy[i]) < 1) vz.insert(ev.particles.vz[i]);
  const std::vector<float> z(vz.begin(), vz.end());
  return (z[z.size() * 3 / 4] - z[z.size() / 4]) / 1.349;
}

TEST_CASE("simulator: luminous region as in the throughput-phase events by default, or as in the Kaggle ones") {
  SimConfig cfg;
  cfg.mu = 150;
  cfg.pixel_only = true;
  CHECK(cfg.sigma_z == data::sim::kThroughputSigmaZ);
  CHECK(vertex_z_sigma(small_event(cfg)) == doctest::Approx(55).epsilon(0.25));
  cfg.sigma_z = data::sim::kKaggleSigmaZ;
  CHECK(vertex_z_sigma(small_event(cfg)) == doctest::Approx(5.5).epsilon(0.25));
}

TEST_CASE("simulator: written events read back with the TrackML reader") {
  SimConfig cfg;
  cfg.mu = 4;
  const data::Event ev = small_event(cfg, 1234);
  const std::string dir = testdata::scratch_dir("simulate");
  data::write_event(data::event_prefix(dir, ev.event_id), ev, true);
  const data::Event back = data::read_event(data::event_prefix(dir, 1234));
  CHECK(back.event_id == 1234);
  CHECK(back.hits.x == ev.hits.x);
  CHECK(back.hits.module_id == ev.hits.module_id);
  CHECK(back.truth.particle_id == ev.truth.particle_id);
  CHECK(back.truth.weight == ev.truth.weight);
  CHECK(back.particles.particle_id == ev.particles.particle_id);
  CHECK(back.particles.particle_type == ev.particles.particle_type);
  CHECK(back.cells.ch0 == ev.cells.ch0);
}

TEST_CASE("simulator: the real detectors.csv drives the simulation too") {
  REQUIRE_SHARED_DATA(dir);
  const data::Detector det = data::read_detectors(dir + "/detectors.csv");
  SimConfig cfg;
  cfg.mu = 5;
  const data::Event ev = Simulator(det, cfg).simulate(3);
  REQUIRE(ev.hits.size() > 100);
  for (size_t i = 0; i < ev.hits.size(); i += 7) {
    const data::Module* m = det.find(ev.hits.volume_id[i], ev.hits.layer_id[i], ev.hits.module_id[i]);
    REQUIRE(m != nullptr);
    CHECK(std::abs(m->to_local({ev.truth.tx[i], ev.truth.ty[i], ev.truth.tz[i]})[2]) < 2e-3);
  }
}

TEST_CASE("subsample_particles: whole particles, the same fraction of noise, consistent tables") {
  SimConfig cfg;
  cfg.mu = 20;
  const data::Event ev = Simulator(data::builtin_detector(), cfg).simulate(3);
  const data::Event all = data::subsample_particles(ev, 1.0);
  CHECK(all.hits.hit_id == ev.hits.hit_id);
  CHECK(all.cells.size() == ev.cells.size());
  CHECK(all.particles.size() == ev.particles.size());
  const data::Event none = data::subsample_particles(ev, 0.0);
  CHECK(none.hits.size() == 0);
  CHECK(none.cells.size() == 0);

  const data::Event part = data::subsample_particles(ev, 0.3, 5);
  CHECK(part.hits.hit_id == data::subsample_particles(ev, 0.3, 5).hits.hit_id);  // deterministic
  CHECK(part.hits.hit_id != data::subsample_particles(ev, 0.3, 6).hits.hit_id);  // the seed matters
  REQUIRE(part.truth.size() == part.hits.size());
  for (size_t i = 0; i < part.hits.size(); ++i) CHECK(part.truth.hit_id[i] == part.hits.hit_id[i]);
  std::map<int64_t, int> hits_of, kept_hits_of;  // particle -> hits in the full / sub-sampled event
  for (int64_t pid : ev.truth.particle_id) ++hits_of[pid];
  int noise = 0;
  for (int64_t pid : part.truth.particle_id) pid ? ++kept_hits_of[pid] : ++noise;
  for (const auto& [pid, n] : kept_hits_of) CHECK(n == hits_of[pid]);  // a kept particle keeps every hit
  const double kept = double(kept_hits_of.size()) / double(hits_of.size() - 1);
  CHECK(kept > 0.22);
  CHECK(kept < 0.38);
  CHECK(double(noise) / hits_of[0] > 0.22);
  CHECK(double(noise) / hits_of[0] < 0.38);
  std::set<int64_t> kept_ids(part.hits.hit_id.begin(), part.hits.hit_id.end());
  for (int64_t id : part.cells.hit_id) CHECK(kept_ids.count(id) == 1);
  for (int64_t pid : part.particles.particle_id) CHECK((kept_hits_of.count(pid) || hits_of.count(pid) == 0));
  for (const auto& [pid, n] : kept_hits_of)
    CHECK(std::count(part.particles.particle_id.begin(), part.particles.particle_id.end(), pid) == 1);

  CHECK_THROWS_AS(data::subsample_particles(ev, 1.5), std::invalid_argument);
  data::Event no_truth = ev;
  no_truth.truth = {};
  CHECK_THROWS_AS(data::subsample_particles(no_truth, 0.5), std::invalid_argument);
}
