// Detector geometry: one record per module (TrackML detectors.csv), with local<->global transforms, and lookup by
// (volume, layer, module). Filled from a detectors.csv file or from the built-in generic TrackML-like geometry.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace data {

struct Module {
  int32_t volume_id = 0, layer_id = 0, module_id = 0;
  std::array<double, 3> center{};  // cx, cy, cz (mm)
  // Rotation local (u, v, w) -> global (x, y, z): rot[row][col], rows x,y,z; cols u,v,w.
  std::array<std::array<double, 3>, 3> rot{};
  double thickness = 0;                  // module_t (mm)
  double min_hu = 0, max_hu = 0, hv = 0;  // trapezoid half-widths at v = -hv / +hv, half-length
  double pitch_u = 0, pitch_v = 0;       // cell sizes (mm)

  std::array<double, 3> to_global(const std::array<double, 3>& uvw) const;
  std::array<double, 3> to_local(const std::array<double, 3>& xyz) const;
  bool contains_local(double u, double v) const;  // inside the trapezoid (|w| ignored)
};

class Detector {
 public:
  void add(const Module& m);
  const std::vector<Module>& modules() const { return modules_; }
  // nullptr when absent.
  const Module* find(int32_t volume_id, int32_t layer_id, int32_t module_id) const;
  size_t size() const { return modules_.size(); }

 private:
  static uint64_t key(int32_t v, int32_t l, int32_t m) {
    return (uint64_t(uint32_t(v)) << 42) | (uint64_t(uint32_t(l)) << 21) | uint64_t(uint32_t(m));
  }
  std::vector<Module> modules_;
  std::unordered_map<uint64_t, size_t> index_;
};

// Reads detectors.csv (plain or .gz; the variant with an extra leading index column too). Columns by header name.
// Throws data::ParseError naming file, line and column on bad input.
Detector read_detectors(const std::string& path);
// The built-in generic geometry: same volumes, layers, radii, disk positions, module sizes and pitches as TrackML.
const Detector& builtin_detector();

}  // namespace data
