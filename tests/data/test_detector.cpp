// Tests of data/detector: module transforms and bounds, the detectors.csv reader (plain, pandas variant with an index
// column and "0.0" numbers, gzip, errors) and the built-in geometry against the real TrackML file.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "data/csv.h"
#include "data/detector.h"
#include "shared_data.h"

namespace {

double max_abs_diff(const std::array<double, 3>& a, const std::array<double, 3>& b) {
  return std::max({std::abs(a[0] - b[0]), std::abs(a[1] - b[1]), std::abs(a[2] - b[2])});
}

const std::string kHeader =
    "volume_id,layer_id,module_id,cx,cy,cz,rot_xu,rot_xv,rot_xw,rot_yu,rot_yv,rot_yw,rot_zu,rot_zv,rot_zw,module_t,"
    "module_minhu,module_maxhu,module_hv,pitch_u,pitch_v\n";

}  // namespace

TEST_CASE("detector: local <-> global round trip and trapezoid bounds") {
  const data::Detector& det = data::builtin_detector();
  for (size_t i = 0; i < det.size(); i += 997) {
    const data::Module& m = det.modules()[i];
    const std::array<double, 3> uvw = {0.3 * m.min_hu, -0.7 * m.hv, 0.05};
    CHECK(max_abs_diff(m.to_local(m.to_global(uvw)), uvw) < 1e-9);
    CHECK(max_abs_diff(m.to_global({0, 0, 0}), m.center) < 1e-12);
  }
  data::Module t;  // trapezoid 10 -> 20 wide, 30 long
  t.min_hu = 10;
  t.max_hu = 20;
  t.hv = 30;
  CHECK(t.contains_local(9.9, -30));
  CHECK_FALSE(t.contains_local(10.5, -30));
  CHECK(t.contains_local(19.9, 30));
  CHECK(t.contains_local(-14.9, 0));
  CHECK_FALSE(t.contains_local(-15.1, 0));
  CHECK_FALSE(t.contains_local(0, 30.1));
}

TEST_CASE("detector: Detector::find and duplicate modules") {
  data::Detector det;
  data::Module m;
  m.volume_id = 8;
  m.layer_id = 2;
  m.module_id = 5;
  det.add(m);
  REQUIRE(det.find(8, 2, 5) != nullptr);
  CHECK(det.find(8, 2, 5)->module_id == 5);
  CHECK(det.find(8, 4, 5) == nullptr);
  CHECK_THROWS_AS(det.add(m), std::invalid_argument);
}

TEST_CASE("detector: read the real detectors.csv") {
  REQUIRE_SHARED_DATA(dir);
  const data::Detector det = data::read_detectors(dir + "/detectors.csv");
  CHECK(det.size() == 18728);
  std::map<int, int> per_volume;
  for (const auto& m : det.modules()) ++per_volume[m.volume_id];
  const std::map<int, int> expected = {{7, 756},  {8, 2492},  {9, 756},  {12, 1020}, {13, 5796},
                                       {14, 1020}, {16, 588}, {17, 5712}, {18, 588}};
  CHECK(per_volume == expected);
  const data::Module* m = det.find(7, 2, 1);
  REQUIRE(m != nullptr);
  CHECK(m->center[0] == doctest::Approx(-65.7965));
  CHECK(m->center[2] == doctest::Approx(-1502.5));
  CHECK(m->rot[2][2] == doctest::Approx(-1));
  CHECK(m->pitch_v == doctest::Approx(0.05625));
}

TEST_CASE("detector: pandas variant (index column, 0.0 numbers, gzip) and parse errors") {
  const std::string tmp = testdata::scratch_dir("detector");
  const std::string row = "8,2,1,-31.5,-6.2,-455.0,0.33,0.0,-0.94,-0.94,0.0,-0.33,0.0,1.0,0.0,0.15,8.4,8.4,36.0,0.05,0.05625\n";
  data::write_text_file_atomic(tmp + "/det.csv.gz", "," + kHeader + "0," + row + "1," +
                                                        "8.0,2.0,2.0" + row.substr(5), true);
  const data::Detector det = data::read_detectors(tmp + "/det.csv.gz");
  REQUIRE(det.size() == 2);
  REQUIRE(det.find(8, 2, 2) != nullptr);
  CHECK(det.find(8, 2, 1)->center[1] == doctest::Approx(-6.2));
  CHECK(det.find(8, 2, 2)->hv == doctest::Approx(36));

  data::write_text_file_atomic(tmp + "/bad.csv", kHeader + row + "8,2,2,-31.5,x,-455", false);
  CHECK_THROWS_AS(data::read_detectors(tmp + "/bad.csv"), data::ParseError);  // wrong field count
  data::write_text_file_atomic(tmp + "/bad2.csv", kHeader + row + "8,2,2,-31.5,abc" + row.substr(15), false);
  try {
    data::read_detectors(tmp + "/bad2.csv");
    FAIL("no error");
  } catch (const data::ParseError& e) {
    const std::string what = e.what();
    CHECK(what.find("bad2.csv:3") != std::string::npos);
    CHECK(what.find("cy") != std::string::npos);
  }
  data::write_text_file_atomic(tmp + "/dup.csv", kHeader + row + row, false);
  CHECK_THROWS_AS(data::read_detectors(tmp + "/dup.csv"), data::ParseError);
  CHECK_THROWS_AS(data::read_detectors(tmp + "/missing.csv"), data::ParseError);
}

TEST_CASE("detector: built-in geometry matches the real file") {
  const data::Detector& builtin = data::builtin_detector();
  CHECK(builtin.size() == 18728);
  REQUIRE_SHARED_DATA(dir);
  const data::Detector real = data::read_detectors(dir + "/detectors.csv");
  // Per layer: same module count, and the same multiset of (r, z, sizes) of the module centres.
  using Shape = std::tuple<long, long, long, long, long>;
  std::map<std::pair<int, int>, std::multiset<Shape>> a, b;
  auto shape = [](const data::Module& m) {
    return Shape{std::lround(std::hypot(m.center[0], m.center[1]) * 4), std::lround(m.center[2] * 10),  // r: 0.25 mm
                 std::lround(m.min_hu * 10), std::lround(m.max_hu * 10), std::lround(m.pitch_v * 1e5)};
  };
  for (const auto& m : real.modules()) a[{m.volume_id, m.layer_id}].insert(shape(m));
  for (const auto& m : builtin.modules()) b[{m.volume_id, m.layer_id}].insert(shape(m));
  CHECK(a.size() == 48);
  for (const auto& [key, shapes] : a) {
    INFO("volume " << key.first << " layer " << key.second);
    CHECK(shapes == b[key]);
  }
  // Barrel module ids, centres and orientations match one to one.
  int compared = 0;
  for (const auto& m : real.modules()) {
    if (m.volume_id != 8 && m.volume_id != 13 && m.volume_id != 17) continue;
    const data::Module* g = builtin.find(m.volume_id, m.layer_id, m.module_id);
    REQUIRE(g != nullptr);
    double rot_diff = 0;
    for (int r = 0; r < 3; ++r) rot_diff = std::max(rot_diff, max_abs_diff(g->rot[r], m.rot[r]));
    if (max_abs_diff(g->center, m.center) > 0.02 || rot_diff > 1e-3) {
      FAIL_CHECK("barrel module " << m.volume_id << "/" << m.layer_id << "/" << m.module_id << " differs");
      break;
    }
    ++compared;
  }
  CHECK(compared == 2492 + 5796 + 5712);
}
