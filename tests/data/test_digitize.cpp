// Tests of the cell digitiser against the calibration it claims (data/digitize.h): charge per mm of path, cluster
// length along v for a slanted crossing, the pixel disks' doubled depth, the cell threshold and binary strips.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "data/detector.h"
#include "data/digitize.h"

using data::Module;
using data::sim::Cluster;
using data::sim::DigitizeConfig;

namespace {

// The first module of a (volume, layer) in the built-in geometry.
const Module& first_module(const data::Detector& det, int32_t volume, int32_t layer) {
  const Module* m = det.find(volume, layer, 1);
  REQUIRE(m != nullptr);
  return *m;
}

double total_charge(const Cluster& c) { return std::accumulate(c.value.begin(), c.value.end(), 0.0); }

int span_v_cells(const Cluster& c) {
  const auto [lo, hi] = std::minmax_element(c.ch1.begin(), c.ch1.end());
  return *hi - *lo + 1;
}

// Local unit direction with the given slopes du/dw and dv/dw.
data::sim::Vec3 direction(double su, double sv) {
  const double n = std::sqrt(su * su + sv * sv + 1);
  return {su / n, sv / n, 1 / n};
}

}  // namespace

TEST_CASE("digitize: pixel charge is charge_per_mm times the path through the sensor") {
  const data::Detector& det = data::builtin_detector();
  DigitizeConfig cfg;
  cfg.charge_fluctuation = 0;
  data::sim::Rng rng(3);
  const Module& barrel = first_module(det, 8, 2);
  const Module& disk = first_module(det, 7, 2);
  for (double sv : {0.0, 0.7, 3.0}) {
    const double path = barrel.thickness * std::sqrt(1 + 0.1 * 0.1 + sv * sv);
    const Cluster c = data::sim::digitize(barrel, 0.01, 0.02, direction(0.1, sv), 0.0, cfg, rng);
    CHECK(total_charge(c) == doctest::Approx(cfg.charge_per_mm * path).epsilon(0.01));
    const Cluster d = data::sim::digitize(disk, 0.01, 0.02, direction(0.1, sv), 0.0, cfg, rng);
    CHECK(total_charge(d) == doctest::Approx(cfg.charge_per_mm * cfg.pixel_disk_depth * path).epsilon(0.01));
  }
}

TEST_CASE("digitize: a slanted crossing fires the cells its projection along v covers") {
  const data::Detector& det = data::builtin_detector();
  DigitizeConfig cfg;
  data::sim::Rng rng(5);
  const Module& barrel = first_module(det, 8, 4);
  const Module& disk = first_module(det, 9, 4);
  for (double sv : {0.0, 1.0, 4.0, 12.0}) {
    for (int trial = 0; trial < 20; ++trial) {
      const double v = rng.uniform(-1, 1);
      const double projected = sv * barrel.thickness / barrel.pitch_v;  // span in pitches
      const Cluster c = data::sim::digitize(barrel, 0.0, v, direction(0, sv), 0.0, cfg, rng);
      CHECK(span_v_cells(c) >= int(std::floor(projected)));  // +-1 for the charge spread at the ends
      CHECK(span_v_cells(c) <= int(std::ceil(projected)) + 2);
      const double disk_projected = sv * cfg.pixel_disk_depth * disk.thickness / disk.pitch_v;
      const Cluster d = data::sim::digitize(disk, 0.0, v, direction(0, sv), 0.0, cfg, rng);
      CHECK(span_v_cells(d) >= int(std::floor(disk_projected)));
      CHECK(span_v_cells(d) <= int(std::ceil(disk_projected)) + 2);
    }
  }
}

TEST_CASE("digitize: pixel cells above the threshold, unique, with the centroid inside the cluster; strips binary") {
  const data::Detector& det = data::builtin_detector();
  DigitizeConfig cfg;
  data::sim::Rng rng(7);
  const Module& barrel = first_module(det, 8, 6);
  for (int trial = 0; trial < 50; ++trial) {
    const Cluster c = data::sim::digitize(barrel, rng.uniform(-5, 5), rng.uniform(-20, 20),
                                          direction(rng.uniform(-1, 1), rng.uniform(-8, 8)), 2.0, cfg, rng);
    REQUIRE(c.size() > 0);
    CHECK(*std::min_element(c.value.begin(), c.value.end()) >= cfg.min_cell_charge);
    std::set<std::pair<int32_t, int32_t>> cells;
    for (size_t i = 0; i < c.size(); ++i) cells.insert({c.ch0[i], c.ch1[i]});
    CHECK(cells.size() == c.size());
    const auto [lo, hi] = std::minmax_element(c.ch1.begin(), c.ch1.end());
    CHECK(c.v >= *lo * barrel.pitch_v - barrel.hv);
    CHECK(c.v <= (*hi + 1) * barrel.pitch_v - barrel.hv);
  }
  const Module& strip = first_module(det, 13, 2);
  REQUIRE(data::sim::is_strip(strip));
  const Cluster s = data::sim::digitize(strip, 0.0, 0.0, direction(2.0, 0.1), 2.0, cfg, rng);
  CHECK(std::all_of(s.value.begin(), s.value.end(), [](float x) { return x == 1.0f; }));
}
