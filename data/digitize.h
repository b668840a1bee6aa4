// Digitisation of one module crossing into TrackML cells: the charge of the straight path through the sensor
// depth (Lorentz drift where the field is across the sensor, a Gaussian charge spread per sensor technology)
// is binned onto the pitch grid (ch0 = u index, ch1 = v index, origin at (-max_hu, -hv)); the reconstructed hit
// position is the (charge-weighted) centroid of the fired cells on the module mid-plane.
#pragma once
#include <cstdint>
#include <vector>

#include "data/detector.h"
#include "data/physics.h"

namespace data::sim {

// Calibrated on the real sample event's pixel cells (docs/simulation-validation.md, "Pixel cluster calibration"): the
// charge is 1.0 per mm of path with a ~6% spread, cells fire down to ~1e-4, and the pixel disks' clusters are as
// long along v and as charged as a sensor 2 module_t deep, the barrel's as one module_t deep.
struct DigitizeConfig {
  double lorentz_tan = 0.1;          // tan of the Lorentz angle (barrel, field across the sensor)
  double spread_pixel = 0.001;       // Gaussian charge spread (mm) per technology (tuned to the real cluster sizes)
  double spread_short_strip = 0.015;
  double spread_long_strip = 0.06;
  double pixel_disk_depth = 2.0;     // depth of a pixel-disk sensor in units of module_t (1 for all others)
  double charge_per_mm = 1.0;        // pixel cell value per mm of path (strips read out binary, value 1)
  double charge_fluctuation = 0.06;  // log-normal width of a crossing's total charge
  int slices_per_pitch = 32;         // charge slices along the path per pitch of its longest projection
  double min_cell_charge = 1e-4;     // a pixel cell fires above this value
  double strip_threshold = 0.1;      // a strip fires above this fraction of the cluster's largest charge
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
