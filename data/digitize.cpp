// Digitisation of a module crossing into TrackML cells (see digitize.h).
#include "data/digitize.h"

#include <algorithm>
#include <cmath>

namespace data::sim {

int cells_u(const Module& m) { return std::max(1, int(std::lround(2 * m.max_hu / m.pitch_u))); }
int cells_v(const Module& m) { return std::max(1, int(std::lround(2 * m.hv / m.pitch_v))); }
bool is_strip(const Module& m) { return m.pitch_v > 0.5; }

namespace {

struct Cell {
  int32_t c0, c1;
  double q;
};

bool is_pixel_disk(const Module& m) { return !is_strip(m) && std::abs(m.rot[2][2]) > 0.5; }

double sensor_depth(const Module& m, const DigitizeConfig& cfg) {
  return is_pixel_disk(m) ? cfg.pixel_disk_depth * m.thickness : m.thickness;
}

double charge_spread(const Module& m, const DigitizeConfig& cfg) {
  if (!is_strip(m)) return cfg.spread_pixel;
  return m.pitch_v < 5 ? cfg.spread_short_strip : cfg.spread_long_strip;
}

// Lorentz drift per unit drift length, in local (u, v): tan(angle) * (B_hat x w) for the field's component across
// w (the sign that reproduces the real pixel-barrel cluster widths, where the drift adds to the turbine tilt).
std::array<double, 2> lorentz_shift(const Module& m, double bz, double lorentz_tan) {
  if (bz == 0) return {0, 0};
  const double bu = m.rot[2][0], bv = m.rot[2][1];  // local components of z_hat
  return {bv * lorentz_tan, -bu * lorentz_tan};     // (bu, bv, bw) x w_hat = (bv, -bu, 0)
}

void deposit(std::vector<Cell>& cells, int32_t c0, int32_t c1, double q) {
  for (auto it = cells.rbegin(); it != cells.rend(); ++it) {
    if (it->c0 == c0 && it->c1 == c1) {
      it->q += q;
      return;
    }
  }
  cells.push_back({c0, c1, q});
}

// Charge deposited along the path through the sensor depth, drifted and spread, binned on the pitch grid; in units of
// path length (mm) times the crossing's charge fluctuation.
std::vector<Cell> collect_charge(const Module& m, double u, double v, const Vec3& dir, double bz,
                                 const DigitizeConfig& cfg, Rng& rng) {
  const double dw = std::abs(dir[2]) < 0.02 ? (dir[2] < 0 ? -0.02 : 0.02) : dir[2];
  const double t = sensor_depth(m, cfg), path = t / std::abs(dw);
  const auto lor = lorentz_shift(m, bz, cfg.lorentz_tan);
  const double span_u = std::abs(dir[0] / dw) * t + std::abs(lor[0]) * t;
  const double span_v = std::abs(dir[1] / dw) * t + std::abs(lor[1]) * t;
  const double span_pitches = std::max(span_u / m.pitch_u, span_v / m.pitch_v);
  const int steps = std::clamp(int(std::ceil(cfg.slices_per_pitch * (span_pitches + 1))), 4, 8192);
  const double sigma = charge_spread(m, cfg), fluct = std::exp(cfg.charge_fluctuation * rng.normal());
  const int nu = cells_u(m), nv = cells_v(m);
  std::vector<Cell> cells;
  for (int i = 0; i < steps; ++i) {
    const double w = t * ((i + 0.5) / steps - 0.5);  // depth of this charge slice
    const double drift = t / 2 - w;                    // distance to the readout side
    const double pu = u + dir[0] / dw * w + lor[0] * drift + sigma * rng.normal();
    const double pv = v + dir[1] / dw * w + lor[1] * drift + sigma * rng.normal();
    const auto c0 = int32_t(std::floor((pu + m.max_hu) / m.pitch_u));
    const auto c1 = int32_t(std::floor((pv + m.hv) / m.pitch_v));
    if (c0 < 0 || c0 >= nu || c1 < 0 || c1 >= nv) continue;
    deposit(cells, c0, c1, path / steps * fluct);
  }
  return cells;
}

}  // namespace

Cluster digitize(const Module& m, double u, double v, const Vec3& dir, double bz, const DigitizeConfig& cfg,
                 Rng& rng) {
  std::vector<Cell> cells = collect_charge(m, u, v, dir, bz, cfg, rng);
  if (cells.empty()) {  // all charge fell off the edge: the hit cell alone
    cells.push_back({std::clamp(int32_t(std::floor((u + m.max_hu) / m.pitch_u)), 0, cells_u(m) - 1),
                     std::clamp(int32_t(std::floor((v + m.hv) / m.pitch_v)), 0, cells_v(m) - 1),
                     m.thickness});
  }
  const double qmax = std::max_element(cells.begin(), cells.end(), [](auto& a, auto& b) { return a.q < b.q; })->q;
  const bool strip = is_strip(m);
  const double q_min = strip ? cfg.strip_threshold * qmax : std::min(cfg.min_cell_charge / cfg.charge_per_mm, qmax);
  std::erase_if(cells, [&](const Cell& c) { return c.q < q_min; });
  std::sort(cells.begin(), cells.end(), [](const Cell& a, const Cell& b) {
    return a.c0 != b.c0 ? a.c0 < b.c0 : a.c1 < b.c1;
  });
  Cluster cl;
  double wsum = 0, su = 0, sv = 0;
  for (const Cell& c : cells) {
    const double value = strip ? 1.0 : c.q * cfg.charge_per_mm;
    cl.ch0.push_back(c.c0);
    cl.ch1.push_back(c.c1);
    cl.value.push_back(float(value));
    su += value * ((c.c0 + 0.5) * m.pitch_u - m.max_hu);
    sv += value * ((c.c1 + 0.5) * m.pitch_v - m.hv);
    wsum += value;
  }
  cl.u = su / wsum;
  cl.v = sv / wsum;
  return cl;
}

}  // namespace data::sim
