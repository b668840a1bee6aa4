// Triplet seed tests: exact helices from displaced vertices (parameters recovered, crossing tracks told apart, the
// phi wrap at pi, a hit without partners), empty and malformed input, and on the real sample event the seeds of
// pT > 0.9 GeV hits against their particles' true direction and vertex.
#include <doctest/doctest.h>

#include <cmath>
#include <unordered_map>

#include "data/features.h"
#include "data/seeding.h"
#include "data/trackml_io.h"
#include "shared_data.h"

using namespace data;

namespace {

constexpr double kBarrelRadii[4] = {0.032, 0.072, 0.116, 0.172};  // metres
constexpr int kFirstBarrelLayer = 7;                               // HEPT's renumbering: end-cap disks 0-6 first

struct Helix {
  double phi0, curvature, cot_theta, z0;  // rad, 1/m (phi(r) = phi0 - asin(curvature r / 2)), -, m
};

// One hit row of HEPT features (no cells) at transverse radius r on barrel layer `layer`.
void append_hit(std::vector<float>& x, const Helix& h, double r, int layer) {
  const double phi = std::remainder(h.phi0 - std::asin(h.curvature * r / 2), 2 * M_PI), z = h.z0 + r * h.cot_theta;
  std::vector<float> f(kHeptFeatures, 0.0f);
  f[0] = static_cast<float>(r), f[1] = static_cast<float>(phi / M_PI), f[2] = static_cast<float>(z);
  f[3] = static_cast<float>(std::asinh(z / r));
  f[14] = static_cast<float>(layer / 10.0);
  x.insert(x.end(), f.begin(), f.end());
}

std::vector<float> seeds_of(const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size()) / kHeptFeatures;
  const engine::Tensor s = triplet_seeds(engine::from_vector(x, {n, kHeptFeatures}));
  REQUIRE(s.size(0) == n);
  REQUIRE(s.size(1) == kSeedFeatures);
  return s.to_vector<float>();
}

void check_seed(const float* s, const Helix& h) {
  CHECK(s[kSeedFound] == 1.0f);
  // the seeds take asin(x) ~ x: phi0 off by up to ~2e-3 for the softest tracks
  CHECK(std::fabs(std::remainder(s[kSeedPhi0] * M_PI - h.phi0, 2 * M_PI)) < 3e-3);
  CHECK(s[kSeedCurvature] == doctest::Approx(h.curvature).scale(1.0).epsilon(0.02));
  CHECK(s[kSeedEta] == doctest::Approx(std::asinh(h.cot_theta)).scale(1.0).epsilon(1e-4));
  CHECK(s[kSeedZ0] == doctest::Approx(h.z0).scale(1.0).epsilon(1e-5));
}

}  // namespace

TEST_CASE("triplet seeds recover the helices of tracks from displaced vertices") {
  const std::vector<Helix> tracks = {
      {0.50, 0.30, 0.40, 0.050},     // pT ~ 2 GeV, vertex +5 cm
      {0.52, -1.00, -0.80, -0.060},  // crosses the first in phi, another eta and vertex
      {0.51, 0.05, 0.41, -0.010},    // the first's eta from another vertex: only z0 and the curvature tell them apart
      {M_PI - 0.002, 0.80, 1.50, 0.0},  // bends across phi = pi
  };
  std::vector<float> x;  // [N, 15]: four hits per track, one per barrel layer
  for (const Helix& h : tracks)
    for (int l = 0; l < 4; ++l) append_hit(x, h, kBarrelRadii[l], kFirstBarrelLayer + l);
  append_hit(x, {-2.0, 0.0, 0.2, 0.0}, kBarrelRadii[2], kFirstBarrelLayer + 2);  // alone, far in phi
  const std::vector<float> s = seeds_of(x);
  for (size_t t = 0; t < tracks.size(); ++t)
    for (size_t l = 0; l < 4; ++l) {
      CAPTURE(t);
      CAPTURE(l);
      check_seed(&s[(t * 4 + l) * kSeedFeatures], tracks[t]);
    }
  // no partners: found 0, its own phi, no curvature, eta and z0 from the vertex estimate (none without cells: z0 0)
  const float* lone = &s[16 * kSeedFeatures];
  CHECK(lone[kSeedFound] == 0.0f);
  CHECK(lone[kSeedPhi0] == doctest::Approx(x[16 * kHeptFeatures + 1]));
  CHECK(lone[kSeedCurvature] == 0.0f);
  CHECK(lone[kSeedZ0] == 0.0f);
  CHECK(lone[kSeedEta] == doctest::Approx(x[16 * kHeptFeatures + 3]).epsilon(1e-5));
}

TEST_CASE("triplet seeds need partners on two other layers within the curvature and vertex limits") {
  std::vector<float> x;
  const Helix soft{1.0, 2.0, 0.0, 0.0};  // pT ~ 0.3 GeV: beyond max_curvature 1.3
  for (int l = 0; l < 4; ++l) append_hit(x, soft, kBarrelRadii[l], kFirstBarrelLayer + l);
  const Helix displaced{-1.0, 0.1, 0.2, 0.4};  // vertex 40 cm away: beyond max_vertex_z 0.25 m
  for (int l = 0; l < 4; ++l) append_hit(x, displaced, kBarrelRadii[l], kFirstBarrelLayer + l);
  const Helix two_hits{2.0, 0.1, 0.2, 0.0};  // a doublet only: no triplet
  for (int l = 0; l < 2; ++l) append_hit(x, two_hits, kBarrelRadii[l], kFirstBarrelLayer + l);
  const std::vector<float> s = seeds_of(x);
  for (size_t i = 0; i < 10; ++i) CHECK(s[i * kSeedFeatures + kSeedFound] == 0.0f);
  SeedOptions wider;
  wider.max_curvature = 2.5, wider.max_vertex_z = 0.5;
  const int64_t n = static_cast<int64_t>(x.size()) / kHeptFeatures;
  const std::vector<float> w = triplet_seeds(engine::from_vector(x, {n, kHeptFeatures}), wider).to_vector<float>();
  for (size_t i = 0; i < 8; ++i) check_seed(&w[i * kSeedFeatures], i < 4 ? soft : displaced);
}

TEST_CASE("triplet seeds of an empty event and of malformed input") {
  const engine::Tensor empty = triplet_seeds(engine::zeros({0, kHeptFeatures}));
  CHECK(empty.size(0) == 0);
  CHECK(empty.size(1) == kSeedFeatures);
  CHECK_THROWS_WITH(triplet_seeds(engine::zeros({3, 6})), doctest::Contains("[N, 15]"));
  std::vector<float> x(2 * kHeptFeatures, 0.1f);  // [2, 15]
  x[kHeptFeatures + 14] = -0.3f;                   // the second row's layer column
  CHECK_THROWS_WITH(triplet_seeds(engine::from_vector(x, {2, kHeptFeatures})), doctest::Contains("row 1: column 14"));
}

TEST_CASE("triplet seeds of the real sample event point back along their particles") {
  REQUIRE_SHARED_DATA(dir);
  const Event ev = read_event(dir + "/event000000001");
  const PixelHits hits = pixel_hits(ev, read_detectors(dir + "/detectors.csv"));
  const int64_t n = static_cast<int64_t>(hits.size());
  const std::vector<float> s = triplet_seeds(engine::from_vector(hits.x, {n, kHeptFeatures})).to_vector<float>();
  std::unordered_map<int64_t, size_t> particle_row;
  for (size_t p = 0; p < ev.particles.size(); ++p) particle_row[ev.particles.particle_id[p]] = p;
  int queries = 0, agree = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (hits.particle_id[i] == 0 || hits.pt[i] <= 0.9f || !hits.reconstructable[i]) continue;
    const size_t p = particle_row.at(hits.particle_id[i]);
    const double px = ev.particles.px[p], py = ev.particles.py[p], pz = ev.particles.pz[p];
    const float* seed = &s[static_cast<size_t>(i) * kSeedFeatures];
    ++queries;
    const double eta = std::asinh(pz / std::hypot(px, py));
    // z0 only where it is measured well: in the end-caps the disks' short radial lever arm reaches back ~1 m
    agree += std::fabs(std::remainder(seed[kSeedPhi0] * M_PI - std::atan2(py, px), 2 * M_PI)) < 0.01 &&
             std::fabs(seed[kSeedEta] - eta) < 0.02 &&
             (std::fabs(eta) > 1.5 || std::fabs(seed[kSeedZ0] - ev.particles.vz[p] / 1000) < 0.005);
  }
  MESSAGE(agree, " of ", queries, " hits of pT > 0.9 GeV particles seeded on their particle's helix");
  REQUIRE(queries > 300);
  CHECK(agree > 0.9 * queries);
}
