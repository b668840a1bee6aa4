// HEPT feature pipeline: pixel selection, per-hit features, cell-cluster shapes, truth fields, sectors, graphs.
#include "data/features.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include "data/digitize.h"
#include "data/graphs.h"

namespace data {

namespace {

bool is_pixel_layer(int32_t volume, int32_t layer) {
  const bool endcap = (volume == 7 || volume == 9) && layer >= 2 && layer <= 14;
  const bool barrel = volume == 8 && layer >= 2 && layer <= 8;
  return (endcap || barrel) && layer % 2 == 0;
}

double eta_of(double r, double z) { return -std::log(std::tan(std::atan2(r, z) / 2.0)); }

// -ln tan(theta/2) with theta the polar angle of (a, b, c) measured from c (ExaTrkX cartesian_to_spherical).
double eta_of_vector(double a, double b, double c) {
  return -std::log(std::tan(0.5 * std::acos(c / std::sqrt(a * a + b * b + c * c))));
}

// Cluster summary of one hit's cells.
struct CellCluster {
  int64_t count = 0;
  double charge = 0;
  int32_t min0 = std::numeric_limits<int32_t>::max(), max0 = std::numeric_limits<int32_t>::min();
  int32_t min1 = std::numeric_limits<int32_t>::max(), max1 = std::numeric_limits<int32_t>::min();
};

std::unordered_map<int64_t, CellCluster> clusters_by_hit(const Cells& cells) {
  std::unordered_map<int64_t, CellCluster> out;
  out.reserve(cells.size());
  for (size_t i = 0; i < cells.size(); ++i) {
    CellCluster& c = out[cells.hit_id[i]];
    ++c.count;
    c.charge += cells.value[i];
    c.min0 = std::min(c.min0, cells.ch0[i]), c.max0 = std::max(c.max0, cells.ch0[i]);
    c.min1 = std::min(c.min1, cells.ch1[i]), c.max1 = std::max(c.max1, cells.ch1[i]);
  }
  return out;
}

// Features 6..13 (charge_frac, leta, lphi, lx, ly, lz, geta, gphi); zeros when the hit has no cells.
void cell_features(const CellCluster* c, const Module& m, float* out) {
  if (!c) {
    std::fill(out, out + 8, 0.0f);
    return;
  }
  const double lu = (c->max0 - c->min0 + 1) * m.pitch_u;
  const double lv = (c->max1 - c->min1 + 1) * m.pitch_v;
  const double lw = 2.0 * m.thickness;
  double g[3];
  for (int r = 0; r < 3; ++r) g[r] = m.rot[r][0] * lu + m.rot[r][1] * lv + m.rot[r][2] * lw;
  const double vals[8] = {c->charge / static_cast<double>(c->count),
                          eta_of_vector(lu, lv, lw),
                          std::atan2(lv, lu),
                          lu,
                          lv,
                          lw,
                          eta_of_vector(g[0], g[1], g[2]),
                          std::atan2(g[1], g[0])};
  for (int k = 0; k < 8; ++k) out[k] = static_cast<float>(vals[k]);
}

// Rows of the hits table kept by HEPT, in its order, with their renumbered layer.
std::vector<std::pair<size_t, int64_t>> select_pixel_rows(const Event& ev) {
  const Hits& h = ev.hits;
  std::map<std::pair<int32_t, int32_t>, int64_t> layer_index;
  for (size_t i = 0; i < h.size(); ++i) {
    if (is_pixel_layer(h.volume_id[i], h.layer_id[i])) layer_index[{h.volume_id[i], h.layer_id[i]}] = 0;
  }
  int64_t next = 0;
  for (auto& [key, idx] : layer_index) idx = next++;
  std::vector<std::pair<size_t, int64_t>> rows;  // (hits row, layer)
  for (size_t i = 0; i < h.size(); ++i) {
    auto it = layer_index.find({h.volume_id[i], h.layer_id[i]});
    if (it != layer_index.end()) rows.emplace_back(i, it->second);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  // Truth inner join: a hit of a particle missing from particles.csv is dropped (noise is kept).
  if (!ev.truth.hit_id.empty()) {
    std::unordered_map<int64_t, size_t> known(ev.particles.size() * 2);
    for (size_t p = 0; p < ev.particles.size(); ++p) known.emplace(ev.particles.particle_id[p], p);
    std::erase_if(rows, [&](const auto& row) {
      const int64_t pid = ev.truth.particle_id[row.first];
      return pid != 0 && !known.count(pid);
    });
  }
  return rows;
}

// Per-particle hit counts and distinct-layer counts over the pixel event, written per hit.
void particle_counts(PixelHits& out) {
  std::unordered_map<int64_t, std::pair<int64_t, uint32_t>> per;  // pid -> (hits, layer bit mask)
  for (size_t i = 0; i < out.size(); ++i) {
    auto& e = per[out.particle_id[i]];
    ++e.first;
    e.second |= 1u << out.layer[i];
  }
  const size_t n = out.size();
  out.n_hits.resize(n), out.n_layers_hit.resize(n), out.reconstructable.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& e = per[out.particle_id[i]];
    out.n_hits[i] = e.first;
    out.n_layers_hit[i] = std::popcount(e.second);
    out.reconstructable[i] = (out.particle_id[i] > 0 && out.n_layers_hit[i] >= 3) ? 1 : 0;
  }
}

void fill_truth(const Event& ev, size_t row, PixelHits& out,
                const std::unordered_map<int64_t, size_t>& particle_row) {
  const int64_t pid = ev.truth.hit_id.empty() ? 0 : ev.truth.particle_id[row];
  out.particle_id.push_back(pid);
  if (pid == 0) {
    out.pt.push_back(0.0f);
    out.eta_pt.push_back(std::numeric_limits<float>::quiet_NaN());
    return;
  }
  const size_t p = particle_row.at(pid);
  const double px = ev.particles.px[p], py = ev.particles.py[p];
  const double pt = std::sqrt(px * px + py * py);
  out.pt.push_back(static_cast<float>(pt));
  out.eta_pt.push_back(static_cast<float>(eta_of(pt, ev.particles.pz[p])));
}

}  // namespace

PixelHits pixel_hits(const Event& ev, const Detector& detector) {
  const Hits& h = ev.hits;
  if (!ev.truth.hit_id.empty() && ev.truth.size() != h.size()) {
    throw std::invalid_argument("pixel_hits: truth rows must line up with hits rows (use read_event)");
  }
  const auto rows = select_pixel_rows(ev);
  const auto clusters = clusters_by_hit(ev.cells);
  std::unordered_map<int64_t, size_t> particle_row(ev.particles.size() * 2);
  for (size_t p = 0; p < ev.particles.size(); ++p) particle_row.emplace(ev.particles.particle_id[p], p);

  PixelHits out;
  out.event_id = ev.event_id;
  const size_t n = rows.size();
  out.x.resize(n * kHeptFeatures);
  out.coords.resize(n * kHeptCoords);
  for (size_t k = 0; k < n; ++k) {
    const auto [i, layer] = rows[k];
    const Module* m = detector.find(h.volume_id[i], h.layer_id[i], h.module_id[i]);
    if (!m) {
      throw std::invalid_argument(fmt::format("pixel_hits: hit_id {} is on module ({}, {}, {}), absent from the detector",
                                              h.hit_id[i], h.volume_id[i], h.layer_id[i], h.module_id[i]));
    }
    const double x = h.x[i], y = h.y[i], z = h.z[i];
    const double r2 = x * x + y * y, r = std::sqrt(r2), phi = std::atan2(y, x), eta = eta_of(r, z);
    float* f = &out.x[k * kHeptFeatures];
    const double geo[6] = {r / 1000.0, phi / M_PI, z / 1000.0, eta, x / r2 * 1000.0, y / r2 * 1000.0};
    for (int c = 0; c < 6; ++c) f[c] = static_cast<float>(geo[c]);
    auto it = clusters.find(h.hit_id[i]);
    cell_features(it == clusters.end() ? nullptr : &it->second, *m, f + 6);
    f[14] = static_cast<float>(static_cast<double>(layer) / 10.0);
    float* c = &out.coords[k * kHeptCoords];
    c[0] = f[3], c[1] = static_cast<float>(phi), c[2] = f[0], c[3] = f[1], c[4] = f[2], c[5] = f[3];
    out.hit_id.push_back(h.hit_id[i]);
    out.layer.push_back(layer);
    out.u.push_back(static_cast<float>(x / r2));
    out.v.push_back(static_cast<float>(y / r2));
    fill_truth(ev, i, out, particle_row);
  }
  particle_counts(out);
  return out;
}

namespace {

template <class T> engine::Tensor gather_rows(const std::vector<T>& src, const std::vector<size_t>& rows, int64_t width) {
  std::vector<T> dst;
  dst.reserve(rows.size() * static_cast<size_t>(width));
  for (size_t r : rows) dst.insert(dst.end(), src.begin() + r * width, src.begin() + (r + 1) * width);
  const int64_t n = static_cast<int64_t>(rows.size());
  return width == 1 ? engine::from_vector(dst, {n}) : engine::from_vector(dst, {n, width});
}

// Rows of sector s's extended wedge and each row's particle-sector column (hept.md 1.6).
std::vector<size_t> sector_rows(const PixelHits& h, int s, const FeatureOptions& o, std::vector<int64_t>& psector) {
  const size_t n = h.size();
  psector.assign(n, o.n_sectors == 1 ? 0 : -1);
  if (o.n_sectors == 1) {
    std::vector<size_t> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = i;
    return all;
  }
  const double theta = M_PI / o.n_sectors, slope = std::atan(theta);
  const double cs = std::cos(2 * s * theta), sn = std::sin(2 * s * theta);
  std::vector<double> ur(n), vr(n);
  std::unordered_map<int64_t, int64_t> in_core;
  for (size_t i = 0; i < n; ++i) {
    ur[i] = h.u[i] * cs - h.v[i] * sn;
    vr[i] = h.u[i] * sn + h.v[i] * cs;
    if (vr[i] > -slope * ur[i] && vr[i] < slope * ur[i] && ur[i] > 0 && h.particle_id[i] != 0) ++in_core[h.particle_id[i]];
  }
  std::vector<size_t> rows;
  for (size_t i = 0; i < n; ++i) {
    const double bound = o.sector_ds * slope * ur[i];
    if (!(vr[i] > -bound - o.sector_di && vr[i] < bound + o.sector_di && ur[i] > 0)) continue;
    rows.push_back(i);
    auto it = in_core.find(h.particle_id[i]);
    if (it != in_core.end() && static_cast<double>(it->second) / static_cast<double>(h.n_hits[i]) >= 0.5) psector[i] = s;
  }
  return rows;
}

}  // namespace

std::vector<Sample> make_samples(const PixelHits& h, const FeatureOptions& o) {
  if (o.n_sectors < 1) throw std::invalid_argument("make_samples: n_sectors must be >= 1");
  std::vector<Sample> out;
  for (int s = 0; s < o.n_sectors; ++s) {
    std::vector<int64_t> psector;
    const auto rows = sector_rows(h, s, o, psector);
    Sample smp;
    smp.event_id = h.event_id;
    smp.sector = s;
    smp.x = gather_rows(h.x, rows, kHeptFeatures);
    smp.coords = gather_rows(h.coords, rows, kHeptCoords);
    smp.pos = smp.coords.narrow(1, 0, 2).contiguous();
    smp.particle_id = gather_rows(h.particle_id, rows, 1);
    smp.pt = gather_rows(h.pt, rows, 1);
    smp.reconstructable = gather_rows(h.reconstructable, rows, 1);
    smp.layer = gather_rows(h.layer, rows, 1);
    smp.hit_id = gather_rows(h.hit_id, rows, 1);
    smp.particle_sector = gather_rows(psector, rows, 1);
    if (o.graphs) {
      const auto pos = smp.pos.to_vector<float>();
      smp.point_pairs = o.radius_pairs ? hept_point_pairs(pos, smp.particle_id.to_vector<int64_t>(), o.pair_radius,
                                                          o.pair_max_neighbors)
                                       : engine::empty({2, 0}, engine::DType::I64);
      smp.knn_edges = knn_graph(pos, o.knn_k);
    } else {
      smp.point_pairs = engine::empty({2, 0}, engine::DType::I64);
      smp.knn_edges = engine::empty({2, 0}, engine::DType::I64);
    }
    out.push_back(std::move(smp));
  }
  return out;
}

namespace {

// TrackML's pixel cells, and their charge as the digitiser was calibrated on the real sample event's cells
// (docs/simulation-validation.md, "Pixel cluster calibration"): summed cell value per mm of path, and its relative
// spread per crossing.
constexpr double kPixelPitchU = 0.05, kPixelPitchV = 0.05625;  // mm
constexpr double kChargePerMm = sim::DigitizeConfig{}.charge_per_mm;
constexpr double kChargeSpread = sim::DigitizeConfig{}.charge_fluctuation;
// |z| below which a pixel hit is in the barrel (its modules end at 0.49 m, the first disk is at 0.60 m).
constexpr double kPixelBarrelHalfLength = 0.55;  // metres

// sinh(eta_c) of a pixel-barrel hit from its features (sensor_depth method); unsigned.
double barrel_sinh_eta(const float* h) {
  const double depth = h[11] / 2;  // lz = 2 module_t (mm); the barrel sensors are 1 module_t deep
  const double n_u = std::round(h[9] / kPixelPitchU), n_v = std::round(h[10] / kPixelPitchV);  // cluster extents
  // The length along z beyond the first cell is the crossing's projection: depth sinh(eta) (its mean over entry points).
  const double from_length = (n_v - 1) * kPixelPitchV / depth;
  const double length_var = kPixelPitchV * kPixelPitchV / (6 * depth * depth);
  // The charge: mean cell value x cells (a straight crossing's cluster has ~n_u + n_v - 1 of them) = path in mm.
  const double cosh_eta = h[6] * (n_u + n_v - 1) / (kChargePerMm * depth);
  const double from_charge = std::sqrt(std::max(0.0, cosh_eta * cosh_eta - 1));
  // d sinh = spread cosh^2 / sinh: poor near eta 0, where cosh is flat (sinh floored at 0.3 there).
  const double charge_sd = kChargeSpread * (1 + from_charge * from_charge) / std::max(from_charge, 0.3);
  const double w_length = 1 / length_var, w_charge = 1 / (charge_sd * charge_sd);
  return (w_length * from_length + w_charge * from_charge) / (w_length + w_charge);
}

}  // namespace

VertexZMethod vertex_z_method(const std::string& name) {
  if (name == "cluster_eta") return VertexZMethod::ClusterEta;
  if (name == "sensor_depth") return VertexZMethod::SensorDepth;
  throw std::invalid_argument(
      fmt::format("unknown vertex z estimate '{}' (expected \"cluster_eta\" or \"sensor_depth\")", name));
}

engine::Tensor vertex_z_estimates(const engine::Tensor& x, VertexZMethod method) {
  if (x.dim() != 2 || x.size(1) != kHeptFeatures)
    throw std::invalid_argument(fmt::format("vertex_z_estimates: x must be [N, {}] HEPT features", kHeptFeatures));
  const std::vector<float> f = x.to(engine::DType::F32).contiguous().to_vector<float>();  // [N, 15] on the host
  const int64_t n = x.size(0);
  std::vector<float> z0(static_cast<size_t>(n));  // [N]
  for (int64_t i = 0; i < n; ++i) {
    const float* h = &f[static_cast<size_t>(i * kHeptFeatures)];
    const double r = h[0], z = h[2], eta_rz = h[3], geta = h[12];  // metres, metres, -, -
    const bool barrel_cluster =
        method == VertexZMethod::SensorDepth && std::fabs(z) < kPixelBarrelHalfLength && h[11] > 0;  // with cells
    const double sinh_eta = barrel_cluster ? barrel_sinh_eta(h) : std::sinh(std::fabs(geta));
    const double z_vertex = z - r * std::copysign(sinh_eta, eta_rz);
    z0[static_cast<size_t>(i)] = static_cast<float>(std::clamp(z_vertex, -kVertexZRange, kVertexZRange));
  }
  return engine::from_vector(z0, {n, 1}).to(x.device());
}

}  // namespace data
