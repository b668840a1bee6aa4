// Detector geometry: module transforms, (volume, layer, module) lookup, the detectors.csv reader and the built-in
// TrackML-like geometry generated from the facts in specs/trackml-geometry.md (volumes, layers, radii, z rings,
// turbine tilts, stave radius alternation, endcap rings and sub-plane offsets, module sizes and pitches).
#include "data/detector.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "data/csv.h"

namespace data {

std::array<double, 3> Module::to_global(const std::array<double, 3>& uvw) const {
  std::array<double, 3> xyz;
  for (int r = 0; r < 3; ++r) xyz[r] = center[r] + rot[r][0] * uvw[0] + rot[r][1] * uvw[1] + rot[r][2] * uvw[2];
  return xyz;
}

std::array<double, 3> Module::to_local(const std::array<double, 3>& xyz) const {
  const double d[3] = {xyz[0] - center[0], xyz[1] - center[1], xyz[2] - center[2]};
  std::array<double, 3> uvw;
  for (int c = 0; c < 3; ++c) uvw[c] = rot[0][c] * d[0] + rot[1][c] * d[1] + rot[2][c] * d[2];
  return uvw;
}

bool Module::contains_local(double u, double v) const {
  if (std::abs(v) > hv) return false;
  const double half_width = min_hu + (max_hu - min_hu) * (v + hv) / (2 * hv);
  return std::abs(u) <= half_width;
}

void Detector::add(const Module& m) {
  const auto [it, inserted] = index_.emplace(key(m.volume_id, m.layer_id, m.module_id), modules_.size());
  if (!inserted) {
    throw std::invalid_argument(
        fmt::format("Detector::add: duplicate module (volume {}, layer {}, module {})", m.volume_id, m.layer_id,
                    m.module_id));
  }
  modules_.push_back(m);
}

const Module* Detector::find(int32_t volume_id, int32_t layer_id, int32_t module_id) const {
  const auto it = index_.find(key(volume_id, layer_id, module_id));
  return it == index_.end() ? nullptr : &modules_[it->second];
}

// ---------------------------------------------------------------------------------------------------------------
// detectors.csv

namespace {

// A number field; accepts "7", "7.0" and exponents. Throws ParseError naming file, line and column.
double field_double(const CsvTable::Row& row, size_t col) {
  const std::string_view s = row.field(col);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) {
    row.fail(col, fmt::format("bad number '{}'", s));
  }
  return v;
}

// An integer id field written as "7" or "7.0" (pandas rewrites).
int32_t field_id(const CsvTable::Row& row, size_t col) {
  const double v = field_double(row, col);
  if (v != std::floor(v) || v < 0 || v > 2147483647.0) row.fail(col, fmt::format("bad id '{}'", row.field(col)));
  return static_cast<int32_t>(v);
}

}  // namespace

Detector read_detectors(const std::string& path) {
  const CsvTable table(path);
  const size_t c_vol = table.column("volume_id"), c_lay = table.column("layer_id"), c_mod = table.column("module_id");
  const size_t c_c[3] = {table.column("cx"), table.column("cy"), table.column("cz")};
  size_t c_rot[3][3];
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) c_rot[r][c] = table.column(fmt::format("rot_{}{}", "xyz"[r], "uvw"[c]));
  }
  const size_t c_t = table.column("module_t"), c_minhu = table.column("module_minhu"),
               c_maxhu = table.column("module_maxhu"), c_hv = table.column("module_hv"),
               c_pu = table.column("pitch_u"), c_pv = table.column("pitch_v");
  Detector det;
  table.for_each_row([&](const CsvTable::Row& row) {
    Module m;
    m.volume_id = field_id(row, c_vol);
    m.layer_id = field_id(row, c_lay);
    m.module_id = field_id(row, c_mod);
    for (int r = 0; r < 3; ++r) {
      m.center[r] = field_double(row, c_c[r]);
      for (int c = 0; c < 3; ++c) m.rot[r][c] = field_double(row, c_rot[r][c]);
    }
    m.thickness = field_double(row, c_t);
    m.min_hu = field_double(row, c_minhu);
    m.max_hu = field_double(row, c_maxhu);
    m.hv = field_double(row, c_hv);
    m.pitch_u = field_double(row, c_pu);
    m.pitch_v = field_double(row, c_pv);
    if (m.thickness <= 0) row.fail(c_t, "module thickness must be > 0");
    if (m.hv <= 0 || m.min_hu <= 0 || m.max_hu <= 0) row.fail(c_hv, "module half-sizes must be > 0");
    if (m.pitch_u <= 0) row.fail(c_pu, "pitch must be > 0");
    if (m.pitch_v <= 0) row.fail(c_pv, "pitch must be > 0");
    if (det.find(m.volume_id, m.layer_id, m.module_id)) row.fail(c_mod, "duplicate (volume, layer, module)");
    det.add(m);
  });
  if (det.size() == 0) throw ParseError(path + ": no modules");
  return det;
}

// ---------------------------------------------------------------------------------------------------------------
// Built-in geometry

namespace {

using std::numbers::pi;

struct Tech {  // one sensor technology
  double thickness, pitch_u, pitch_v;
};
constexpr Tech kPixel{0.15, 0.05, 0.05625};
constexpr Tech kShortStrip{0.25, 0.08, 1.2};
constexpr Tech kLongStripBarrel{0.35, 0.12, 10.8};
constexpr Tech kLongStripEndcap{0.35, 0.12, 10.4};

struct BarrelSpec {
  int volume;
  Tech tech;
  double hu, hv;            // module half-sizes
  double tilt;              // turbine tilt of the normal about z (rad)
  double dr;                // radius alternation between z rings (+dr on even rings, -dr on odd)
  int n_rings;              // z rings, centred on z = 0
  double ring_step;         // z distance between ring centres
  std::vector<std::pair<double, int>> layers;  // (mean radius, phi staves) for layers 2, 4, ...
};

struct RingSpec {
  double r;                     // radius of the module centres
  int n;                        // modules in phi
  double min_hu, max_hu, hv;    // trapezoid
  std::vector<double> dz;       // |z| offsets from the nominal disk position, cycled over the phi index
};

struct EndcapSpec {
  int volume_minus, volume_plus;
  Tech tech;
  std::vector<double> abs_z;    // nominal |z| by layer index from the IP outwards
  std::vector<RingSpec> rings;
};

Module barrel_module(const BarrelSpec& b, int layer_id, double r, double phi, double z, int module_id) {
  Module m;
  m.volume_id = b.volume;
  m.layer_id = layer_id;
  m.module_id = module_id;
  m.center = {r * std::cos(phi), r * std::sin(phi), z};
  const double pw = phi + b.tilt;  // direction of the normal w
  // u = (-sin pw, cos pw, 0), v = z, w = (cos pw, sin pw, 0); rot columns are u, v, w.
  m.rot = {{{-std::sin(pw), 0.0, std::cos(pw)}, {std::cos(pw), 0.0, std::sin(pw)}, {0.0, 1.0, 0.0}}};
  m.thickness = b.tech.thickness;
  m.min_hu = m.max_hu = b.hu;
  m.hv = b.hv;
  m.pitch_u = b.tech.pitch_u;
  m.pitch_v = b.tech.pitch_v;
  return m;
}

void add_barrel(Detector& det, const BarrelSpec& b) {
  for (size_t li = 0; li < b.layers.size(); ++li) {
    const auto [r0, staves] = b.layers[li];
    const int layer_id = 2 * int(li + 1);
    for (int ring = 0; ring < b.n_rings; ++ring) {
      const double z = (ring - (b.n_rings - 1) / 2.0) * b.ring_step;
      const double r = r0 + (ring % 2 == 0 ? b.dr : -b.dr);
      for (int s = 0; s < staves; ++s) {
        const double phi = -pi + (s + 0.5) * 2 * pi / staves;
        det.add(barrel_module(b, layer_id, r, phi, z, ring * staves + s + 1));
      }
    }
  }
}

// Endcap module: u along phi, v radial, w = -z on the -z side and +z on the +z side.
Module endcap_module(int volume, int layer_id, const Tech& tech, const RingSpec& ring, double phi, double z, int side) {
  Module m;
  m.volume_id = volume;
  m.layer_id = layer_id;
  m.center = {ring.r * std::cos(phi), ring.r * std::sin(phi), z};
  const double c = std::cos(phi), s = std::sin(phi);
  // side -1: u = (-s, c), v = (c, s), w = -z.  side +1: u = (s, -c), v = (c, s), w = +z.
  const double su = side < 0 ? 1.0 : -1.0;
  m.rot = {{{-s * su, c, 0.0}, {c * su, s, 0.0}, {0.0, 0.0, double(side)}}};
  m.thickness = tech.thickness;
  m.min_hu = ring.min_hu;
  m.max_hu = ring.max_hu;
  m.hv = ring.hv;
  m.pitch_u = tech.pitch_u;
  m.pitch_v = tech.pitch_v;
  return m;
}

void add_endcap_disk(Detector& det, const EndcapSpec& e, int volume, int layer_id, double abs_z, int side) {
  std::vector<std::pair<double, Module>> mods;  // (phi, module) for the phi-ordered module ids
  for (const RingSpec& ring : e.rings) {
    for (int k = 0; k < ring.n; ++k) {
      const double phi = -pi + (k + 0.5) * 2 * pi / ring.n;
      const double z = side * (abs_z + ring.dz[k % ring.dz.size()]);
      mods.emplace_back(phi, endcap_module(volume, layer_id, e.tech, ring, phi, z, side));
    }
  }
  std::stable_sort(mods.begin(), mods.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < mods.size(); ++i) {
    mods[i].second.module_id = int(i + 1);
    det.add(mods[i].second);
  }
}

void add_endcaps(Detector& det, const EndcapSpec& e) {
  const int n = int(e.abs_z.size());
  for (int i = 0; i < n; ++i) {
    // Layer ids grow with z on both sides: on -z, layer 2 is the farthest disk.
    add_endcap_disk(det, e, e.volume_minus, 2 * (n - i), e.abs_z[i], -1);
    add_endcap_disk(det, e, e.volume_plus, 2 * (i + 1), e.abs_z[i], +1);
  }
}

Detector make_builtin() {
  Detector det;
  const double pix_tilt = 0.14, strip_tilt = -0.15;  // turbine tilts: +8.0 (pixel) and -8.6 degrees (strips)
  const EndcapSpec pixel_ec{7, 9, kPixel, {600, 700, 820, 960, 1100, 1300, 1500},
                            {{66, 40, 8.4, 8.4, 36, {2.5, -2.0, 2.0, -2.5}}, {140, 68, 8.4, 8.4, 36, {2.0, -2.0}}}};
  const BarrelSpec pixel_b{8, kPixel, 8.4, 36, pix_tilt, 0.25, 14, 70, {{32, 16}, {72, 32}, {116, 52}, {172, 78}}};
  const std::vector<double> strip_z{1220, 1500, 1800, 2150, 2550, 2950};
  const EndcapSpec ss_ec{12, 14, kShortStrip, strip_z,
                         {{318, 54, 16.4, 24.2, 78, {-1.5, -4.5}},
                          {470, 56, 24.2, 32.2, 78, {4.5, 1.5}},
                          {622, 60, 32.2, 40.0, 78, {-1.5, -4.5}}}};
  const BarrelSpec ss_b{13, kShortStrip, 24, 54, strip_tilt, 1.5, 21, 103, {{260, 40}, {360, 56}, {500, 78}, {660, 102}}};
  const EndcapSpec ls_ec{16, 18, kLongStripEndcap, strip_z,
                         {{828, 48, 54, 64.2, 78, {-2.5, -5.5}}, {942, 50, 66, 72, 78, {5.5, 2.5}}}};
  const BarrelSpec ls_b{17, kLongStripBarrel, 24, 54, strip_tilt, 1.5, 21, 103, {{820, 120}, {1020, 152}}};
  add_endcaps(det, pixel_ec);
  add_barrel(det, pixel_b);
  add_endcaps(det, ss_ec);
  add_barrel(det, ss_b);
  add_endcaps(det, ls_ec);
  add_barrel(det, ls_b);
  return det;
}

}  // namespace

const Detector& builtin_detector() {
  static const Detector det = make_builtin();
  return det;
}

}  // namespace data
