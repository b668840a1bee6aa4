// Digitisation of one module crossing into TrackML cells: the charge of the straight path through the sensor
// thickness (Lorentz drift where the field is across the sensor, a Gaussian charge spread per sensor technology)
// is binned onto the pitch grid (ch0 = u index, ch1 = v index, origin at (-max_hu, -hv)); the reconstructed hit
// position is the (charge-weighted) centroid of the fired cells on the module mid-plane.
#pragma once
#include <cstdint>
#include <vector>

#include "data/detector.h"
#include "data/physics.h"

namespace data::sim {

struct DigitizeConfig {
  double lorentz_tan = 0.1;      // tan of the Lorentz angle (barrel, field across the sensor)
  double spread_pixel = 0.003;   // Gaussian charge spread (mm) per technology (tuned to the real cluster sizes)
  double spread_short_strip = 0.015;
  double spread_long_strip = 0.06;
  double charge_per_mm = 1.5;    // pixel cell value per mm of path (strips read out binary, value 1)
  double threshold = 0.1;        // a cell fires above this fraction of the mean charge per cell
};

struct Cluster {
  std::vector<int32_t> ch0, ch1;
  std::vector<float> value;
  double u = 0, v = 0;  // measured local position (mm)
  size_t size() const { return ch0.size(); }
};

// Cells fired by a particle crossing module m at local (u, v, 0) with local unit direction dir (u, v, w).
// bz is the solenoid field (T); a non-empty cluster is always returned (the hit cell at least).
Cluster digitize(const Module& m, double u, double v, const Vec3& dir, double bz, const DigitizeConfig& cfg,
                 Rng& rng);

// Number of cells along u and v of a module (from its largest half-width, half-length and pitches).
int cells_u(const Module& m);
int cells_v(const Module& m);
bool is_strip(const Module& m);

}  // namespace data::sim
