// HEPT feature tests: features of real hits against values hand-computed here from the raw CSV text (independent
// simple parsing), pixel selection, truth fields, sector split invariants, and the timing of a full build (printed).
#include <doctest/doctest.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data/detector.h"
#include "data/features.h"
#include "data/trackml_io.h"
#include "shared_data.h"

using namespace data;

namespace {

// Lines of a gzip text file, with plain zlib gzgets: the independent reference reader.
std::vector<std::vector<std::string>> raw_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  gzFile f = gzopen(path.c_str(), "rb");
  REQUIRE(f);
  char buf[4096];
  while (gzgets(f, buf, sizeof buf)) {
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cols.push_back(c);
    rows.push_back(cols);
  }
  gzclose(f);
  return rows;
}

}  // namespace

TEST_CASE("HEPT features of real pixel hits match hand-computed values") {
  REQUIRE_SHARED_DATA(dir);
  const Event ev = read_event(dir + "/event000000001");
  const Detector det = read_detectors(dir + "/detectors.csv");
  const PixelHits ph = pixel_hits(ev, det);

  // Independent reference from the raw text.
  const auto hits = raw_rows(dir + "/event000000001-hits.csv.gz");
  const auto cells = raw_rows(dir + "/event000000001-cells.csv.gz");
  const auto dets = raw_rows(dir + "/detectors.csv");
  std::map<std::string, std::vector<double>> module;  // "v,l,m" -> row as doubles
  for (size_t i = 1; i < dets.size(); ++i) {
    std::vector<double> v;
    for (const auto& c : dets[i]) v.push_back(std::stod(c));
    module[dets[i][0] + "," + dets[i][1] + "," + dets[i][2]] = v;
  }
  size_t n_pixel = 0;
  std::map<std::pair<int, int>, int> layers;
  for (size_t i = 1; i < hits.size(); ++i) {
    const int vol = std::stoi(hits[i][4]), lay = std::stoi(hits[i][5]);
    if (vol == 7 || vol == 8 || vol == 9) ++n_pixel, layers[{vol, lay}] = 0;
  }
  CHECK(ph.size() == n_pixel);  // every pixel hit is kept (all truth particles are in particles.csv)
  int next = 0;
  for (auto& [k, v] : layers) v = next++;

  int checked = 0;
  for (size_t k = 0; k < ph.size(); k += 97) {
    // find the raw hit row
    size_t i = 1;
    while (std::stoll(hits[i][0]) != ph.hit_id[k]) ++i;
    const double x = std::stod(hits[i][1]), y = std::stod(hits[i][2]), z = std::stod(hits[i][3]);
    const int vol = std::stoi(hits[i][4]), lay = std::stoi(hits[i][5]);
    const auto& m = module[hits[i][4] + "," + hits[i][5] + "," + hits[i][6]];
    int min0 = 1 << 30, max0 = -1, min1 = 1 << 30, max1 = -1, count = 0;
    double charge = 0;
    for (size_t c = 1; c < cells.size(); ++c) {
      if (cells[c][0] != hits[i][0]) continue;
      const int c0 = std::stoi(cells[c][1]), c1 = std::stoi(cells[c][2]);
      min0 = std::min(min0, c0), max0 = std::max(max0, c0), min1 = std::min(min1, c1), max1 = std::max(max1, c1);
      charge += std::stod(cells[c][3]);
      ++count;
    }
    REQUIRE(count > 0);
    const double lu = (max0 - min0 + 1) * m[19], lv = (max1 - min1 + 1) * m[20], lw = 2 * m[15];
    // rot columns 6..14: xu xv xw yu yv yw zu zv zw
    const double gx = m[6] * lu + m[7] * lv + m[8] * lw, gy = m[9] * lu + m[10] * lv + m[11] * lw,
                 gz = m[12] * lu + m[13] * lv + m[14] * lw;
    const double r = std::hypot(x, y), theta = std::atan2(r, z);
    const double expect[15] = {r / 1000,
                               std::atan2(y, x) / M_PI,
                               z / 1000,
                               -std::log(std::tan(theta / 2)),
                               x / (r * r) * 1000,
                               y / (r * r) * 1000,
                               charge / count,
                               -std::log(std::tan(std::acos(lw / std::sqrt(lu * lu + lv * lv + lw * lw)) / 2)),
                               std::atan2(lv, lu),
                               lu,
                               lv,
                               lw,
                               -std::log(std::tan(std::acos(gz / std::sqrt(gx * gx + gy * gy + gz * gz)) / 2)),
                               std::atan2(gy, gx),
                               layers[{vol, lay}] / 10.0};
    for (int f = 0; f < 15; ++f) {
      INFO("hit_id " << ph.hit_id[k] << " feature " << f);
      CHECK(ph.x[k * 15 + f] == doctest::Approx(expect[f]).epsilon(1e-5));
    }
    CHECK(ph.coords[k * 6 + 0] == doctest::Approx(expect[3]).epsilon(1e-5));
    CHECK(ph.coords[k * 6 + 1] == doctest::Approx(std::atan2(y, x)).epsilon(1e-5));
    for (int c = 0; c < 4; ++c) CHECK(ph.coords[k * 6 + 2 + c] == ph.x[k * 15 + c]);
    ++checked;
  }
  CHECK(checked >= 10);
}

TEST_CASE("pixel selection order, truth fields and reconstructable flag") {
  REQUIRE_SHARED_DATA(dir);
  const Event ev = read_event(dir + "/event000000001");
  const PixelHits ph = pixel_hits(ev, read_detectors(dir + "/detectors.csv"));
  REQUIRE(ph.size() > 100);
  std::map<int64_t, size_t> truth_row, particle_row;
  for (size_t i = 0; i < ev.truth.size(); ++i) truth_row[ev.truth.hit_id[i]] = i;
  for (size_t p = 0; p < ev.particles.size(); ++p) particle_row[ev.particles.particle_id[p]] = p;
  std::map<int64_t, std::set<int64_t>> layers_of;
  for (size_t k = 0; k < ph.size(); ++k) {
    if (k > 0) {
      CHECK(ph.layer[k] >= ph.layer[k - 1]);  // grouped by (volume, layer)
      if (ph.layer[k] == ph.layer[k - 1]) CHECK(ph.hit_id[k] > ph.hit_id[k - 1]);  // file order inside a group
    }
    const int64_t pid = ev.truth.particle_id[truth_row.at(ph.hit_id[k])];
    CHECK(ph.particle_id[k] == pid);
    if (pid == 0) {
      CHECK(ph.pt[k] == 0.0f);
    } else {
      const size_t p = particle_row.at(pid);
      CHECK(ph.pt[k] == doctest::Approx(std::hypot(ev.particles.px[p], ev.particles.py[p])).epsilon(1e-6));
      layers_of[pid].insert(ph.layer[k]);
    }
  }
  for (size_t k = 0; k < ph.size(); ++k) {
    const int64_t pid = ph.particle_id[k];
    CHECK(ph.reconstructable[k] == (pid != 0 && layers_of[pid].size() >= 3 ? 1 : 0));
  }
  CHECK(ph.layer.back() == 17);  // all 18 pixel layers present
}

TEST_CASE("tracking-6k sector split: wedges cover the event, particles go to at most one sector") {
  REQUIRE_SHARED_DATA(dir);
  const Event ev = read_event(dir + "/event000000001");
  const PixelHits ph = pixel_hits(ev, read_detectors(dir + "/detectors.csv"));
  FeatureOptions opt;
  opt.n_sectors = 10;
  opt.graphs = false;
  const auto samples = make_samples(ph, opt);
  REQUIRE(samples.size() == 10);
  std::map<int64_t, int> times_seen;
  std::map<int64_t, std::set<int64_t>> sectors_of_particle;
  int64_t total = 0;
  for (const auto& s : samples) {
    CHECK(s.x.shape() == engine::Shape{s.num_hits(), 15});
    CHECK(s.coords.shape() == engine::Shape{s.num_hits(), 6});
    total += s.num_hits();
    const auto ids = s.hit_id.to_vector<int64_t>();
    const auto pids = s.particle_id.to_vector<int64_t>();
    const auto psec = s.particle_sector.to_vector<int64_t>();
    const auto phi = s.pos.to_vector<float>();
    for (size_t i = 0; i < ids.size(); ++i) {
      ++times_seen[ids[i]];
      // the extended wedge (ds = 1.3) is within ~0.4 rad of the sector centre -2 pi s / 10
      const double d = std::remainder(phi[2 * i + 1] + 2 * M_PI * s.sector / 10.0, 2 * M_PI);
      CHECK(std::abs(d) < std::atan(1.3 * std::atan(M_PI / 10)) + 1e-4);
      CHECK((psec[i] == -1 || psec[i] == s.sector));
      if (psec[i] >= 0) sectors_of_particle[pids[i]].insert(psec[i]);
      if (pids[i] == 0) CHECK(psec[i] == -1);
    }
  }
  CHECK(times_seen.size() == ph.size());  // every hit is in at least one extended sector
  CHECK(total > static_cast<int64_t>(ph.size()));  // wedges overlap
  for (const auto& [pid, secs] : sectors_of_particle) CHECK(secs.size() <= 2);  // >= 50% in a core: at most 2 ties

  opt.n_sectors = 1;
  const auto whole = make_samples(ph, opt);
  REQUIRE(whole.size() == 1);
  CHECK(whole[0].num_hits() == static_cast<int64_t>(ph.size()));

  // radius_pairs = false keeps the kNN graph and drops only HEPT's radius pairs
  opt.n_sectors = 10;
  opt.graphs = true;
  const auto with_pairs = make_samples(ph, opt);
  opt.radius_pairs = false;
  const auto knn_only = make_samples(ph, opt);
  CHECK(with_pairs[3].point_pairs.size(1) > 0);
  CHECK(knn_only[3].point_pairs.size(1) == 0);
  CHECK(knn_only[3].knn_edges.to_vector<int64_t>() == with_pairs[3].knn_edges.to_vector<int64_t>());
}

TEST_CASE("full-event feature build timing (printed)") {
  REQUIRE_SHARED_DATA(dir);
  const Detector det = read_detectors(dir + "/detectors.csv");
  const auto t0 = std::chrono::steady_clock::now();
  const Event ev = read_event(dir + "/event000001001");
  const auto samples = build_samples(ev, det, FeatureOptions{});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(samples.size() == 1);
  MESSAGE("event000001001 (no cells, no truth): " << samples[0].num_hits() << " pixel hits, "
                                                  << samples[0].knn_edges.size(1) << " kNN edges, "
                                                  << samples[0].point_pairs.size(1) << " pairs in " << ms << " ms");
  CHECK(samples[0].num_hits() > 30000);
  CHECK(samples[0].point_pairs.size(1) == 0);  // no truth: no particles, no pairs
}

TEST_CASE("vertex z estimate (cluster_eta): back along the cluster's direction, signed by the hit's eta, clamped") {
  // Hits (r, z in metres) of tracks from vertices at z0, their clusters pointing along the track: geta = the track's
  // pseudorapidity, stored unsigned as the cluster extent gives it.
  struct Hit {
    double r, z, z0;
  };
  const std::vector<Hit> hits = {{0.032, 0.080, 0.050}, {0.072, -0.150, -0.020}, {0.116, 0.010, -0.100},
                                 {0.171, 0.600, 0.0}};
  std::vector<float> x(hits.size() * kHeptFeatures, 0.0f);  // [N, 15]
  for (size_t i = 0; i < hits.size(); ++i) {
    const Hit& h = hits[i];
    float* f = &x[i * kHeptFeatures];
    f[0] = static_cast<float>(h.r), f[2] = static_cast<float>(h.z), f[3] = static_cast<float>(std::asinh(h.z / h.r));
    f[12] = static_cast<float>(std::fabs(std::asinh((h.z - h.z0) / h.r)));
  }
  const int64_t n = static_cast<int64_t>(hits.size());
  auto estimates = [&] {
    return vertex_z_estimates(engine::from_vector(x, {n, kHeptFeatures}), VertexZMethod::ClusterEta).to_vector<float>();
  };
  const std::vector<float> z0 = estimates();
  REQUIRE(z0.size() == hits.size());
  for (size_t i = 0; i < 3; ++i) CHECK(z0[i] == doctest::Approx(hits[i].z0).epsilon(1e-4));
  CHECK(z0[3] == doctest::Approx(0.0).scale(1.0).epsilon(1e-5));
  // a cluster pointing the other way from the hit's eta (z = 1 cm, vertex at +5 cm) cannot be told apart: the estimate
  // takes the hit's sign; a hit without cells (geta 0) gives z itself; both within the clamp
  x[12] = static_cast<float>(std::fabs(std::asinh((0.010 - 0.050) / 0.032)));
  x[2] = 0.010f, x[3] = static_cast<float>(std::asinh(0.010 / 0.032));
  x[kHeptFeatures + 12] = 0.0f;
  const std::vector<float> flipped = estimates();
  CHECK(flipped[0] == doctest::Approx(0.010 - 0.032 * std::sinh(std::fabs(std::asinh(-0.04 / 0.032)))).epsilon(1e-4));
  CHECK(flipped[1] == doctest::Approx(-0.150).epsilon(1e-5));
  // an end-cap hit at large |eta| whose cluster says little: clamped to +-kVertexZRange
  x[2 * kHeptFeatures + 12] = 4.0f;
  CHECK(estimates()[2] == doctest::Approx(-kVertexZRange));
  CHECK_THROWS_WITH(vertex_z_estimates(engine::zeros({3, 6}), VertexZMethod::ClusterEta), doctest::Contains("[N, 15]"));
}

TEST_CASE("vertex z estimate (sensor_depth): the barrel cluster's length and charge over the sensor's real depth") {
  // Barrel pixel hits (r, z in metres) of straight tracks from vertices at z0 crossing a sensor 0.15 mm deep (module_t;
  // lz = 2 module_t) with their pixel clusters as the digitiser makes them: one cell across (u), along z (v) 1 + the
  // projection depth sinh(eta) in pitches of 0.05625 mm, the charge 1.0 per mm of path depth cosh(eta) over the cells.
  // sinh(eta) = k 0.375 puts the projection on whole pitches, where length and charge agree. The tracks run towards
  // -z and their hits lie at z < 0 (the estimate takes the sign of the hit's eta).
  constexpr double kDepth = 0.15, kPitchU = 0.05, kPitchV = 0.05625;
  struct Hit {
    double r, z0;
    int pitches;  // k
  };
  const std::vector<Hit> hits = {{0.032, -0.010, 2}, {0.072, -0.030, 5}, {0.116, -0.004, 0}, {0.171, -0.080, 1}};
  std::vector<float> x(hits.size() * kHeptFeatures, 0.0f);  // [N, 15]
  for (size_t i = 0; i < hits.size(); ++i) {
    const Hit& h = hits[i];
    const double sinh_eta = -0.375 * h.pitches;  // tracks towards -z
    const double z = h.z0 + h.r * sinh_eta, n_v = 1 + h.pitches;
    float* f = &x[i * kHeptFeatures];
    f[0] = static_cast<float>(h.r), f[2] = static_cast<float>(z), f[3] = static_cast<float>(std::asinh(z / h.r));
    f[6] = static_cast<float>(kDepth * std::sqrt(1 + sinh_eta * sinh_eta) / n_v);  // mean cell charge
    f[9] = static_cast<float>(kPitchU), f[10] = static_cast<float>(n_v * kPitchV);
    f[11] = static_cast<float>(2 * kDepth);
    // HEPT's geta: the extent (lu, lv, lw = 2 module_t) in global coordinates (w radial, v along z)
    f[12] = static_cast<float>(std::asinh(f[10] / std::hypot(f[9], f[11])));
  }
  const int64_t n = static_cast<int64_t>(hits.size());
  const engine::Tensor features = engine::from_vector(x, {n, kHeptFeatures});
  const std::vector<float> z0 = vertex_z_estimates(features, VertexZMethod::SensorDepth).to_vector<float>();
  const std::vector<float> cluster_eta = vertex_z_estimates(features, VertexZMethod::ClusterEta).to_vector<float>();
  for (size_t i = 0; i < hits.size(); ++i) {
    CAPTURE(i);
    CHECK(z0[i] == doctest::Approx(hits[i].z0).scale(1.0).epsilon(1e-5));
  }
  // geta reads the clusters over twice the barrel's depth: the steep tracks' vertices come out centimetres off
  CHECK(std::fabs(cluster_eta[1] - hits[1].z0) > 0.03);
  // length and charge disagreeing: the estimate lies strictly between theirs (a weighted mean)
  auto estimate_with_charge = [&](size_t i, double sinh_eta) {
    std::vector<float> one(x.begin() + static_cast<std::ptrdiff_t>(i * kHeptFeatures),
                           x.begin() + static_cast<std::ptrdiff_t>((i + 1) * kHeptFeatures));
    one[6] = static_cast<float>(kDepth * std::sqrt(1 + sinh_eta * sinh_eta) / (1 + hits[i].pitches));
    const engine::Tensor one_x = engine::from_vector(one, {1, kHeptFeatures});
    return vertex_z_estimates(one_x, VertexZMethod::SensorDepth).to_vector<float>()[0];
  };
  for (const auto& [i, charge_sinh] : std::vector<std::pair<size_t, double>>{{3, 0.75}, {1, 2.2}, {2, 0.6}}) {
    CAPTURE(i);
    // the tracks run towards -z, so z0 = z + r |sinh|: the length's estimate is the true z0, the charge's is
    // r (charge_sinh - the length's) above it
    const double z0_est = estimate_with_charge(i, charge_sinh);
    CHECK(z0_est > hits[i].z0 + 1e-4);
    CHECK(z0_est < hits[i].z0 + hits[i].r * (charge_sinh - 0.375 * hits[i].pitches) - 1e-4);
  }
  // end-cap hits (|z| > 0.55 m) keep geta, the disks being 2 module_t deep
  std::vector<float> disk(x.begin(), x.begin() + kHeptFeatures);
  disk[2] = 0.65f, disk[3] = static_cast<float>(std::asinh(0.65 / 0.032)), disk[12] = 3.0f;
  const engine::Tensor disk_x = engine::from_vector(disk, {1, kHeptFeatures});
  CHECK(vertex_z_estimates(disk_x, VertexZMethod::SensorDepth).to_vector<float>()[0] ==
        vertex_z_estimates(disk_x, VertexZMethod::ClusterEta).to_vector<float>()[0]);
  // the names model configs store
  CHECK(vertex_z_method("sensor_depth") == VertexZMethod::SensorDepth);
  CHECK(vertex_z_method("cluster_eta") == VertexZMethod::ClusterEta);
  CHECK_THROWS_WITH(vertex_z_method("geta"), doctest::Contains("unknown vertex z estimate 'geta'"));
}
