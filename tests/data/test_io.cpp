// Reader/writer tests: real sample files (counts, ids > 2^53, both particle variants), malformed inputs with
// file/line/column messages, truncated gzip, write/read round trip, and the load time of a full event (printed).
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>

#include "data/csv.h"
#include "data/trackml_io.h"
#include "shared_data.h"

using namespace data;

namespace {

void write_plain(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// The ParseError message of f(), or "" when it does not throw.
template <class F> std::string parse_error(F&& f) {
  try {
    f();
  } catch (const ParseError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("read the real TrackML sample events") {
  REQUIRE_SHARED_DATA(dir);
  const Event ev = read_event(dir + "/event000000001");
  CHECK(ev.event_id == 1);
  CHECK(ev.hits.size() == 5527);
  CHECK(ev.truth.size() == 5527);
  CHECK(ev.particles.size() == 548);
  CHECK(ev.particles.particle_type.size() == 548);  // throughput-phase variant
  CHECK(ev.cells.size() == 18564);
  CHECK(ev.truth.hit_id == ev.hits.hit_id);
  CHECK(std::count(ev.truth.particle_id.begin(), ev.truth.particle_id.end(), 0) == 829);
  CHECK(ev.hits.hit_id.front() == 6);
  CHECK(ev.hits.hit_id.back() == 111635);
  CHECK(ev.particles.particle_id[0] == 4505867370102784LL);  // exact int64, not via double
  CHECK(ev.particles.particle_type[0] == -211);
  double wsum = 0;
  for (float w : ev.truth.weight) wsum += w;
  CHECK(wsum == doctest::Approx(0.0513).epsilon(0.01));

  const auto t0 = std::chrono::steady_clock::now();
  const Event full = read_event(dir + "/event000001001");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("read_event(event000001001): " << full.hits.size() << " hits, " << full.particles.size() << " particles in "
                                          << ms << " ms");
  CHECK(full.hits.size() == 93680);
  CHECK(full.truth.size() == 0);
  CHECK(full.particles.size() == 8915);
  CHECK(full.particles.particle_type.empty());  // Kaggle variant
  CHECK(full.particles.particle_id[0] == 4503668346847232LL);
  int64_t nhits = 0;
  for (int32_t n : full.particles.nhits) nhits += n;
  CHECK(nhits == 76210);
}

TEST_CASE("particle ids above 2^53 parse exactly") {
  const std::string d = testdata::scratch_dir("bigid");
  write_plain(d + "/p.csv", "particle_id,vx,vy,vz,px,py,pz,q,nhits\n963770663854669825,0,0,0,1,1,1,1,3\n"
                            "9007199254740993,0,0,0,1,1,1,-1,0\n");
  const Particles p = read_particles(d + "/p.csv");
  CHECK(p.particle_id[0] == 963770663854669825LL);
  CHECK(p.particle_id[1] == 9007199254740993LL);  // 2^53 + 1, not representable as a double
}

TEST_CASE("malformed inputs give errors naming file, line and column") {
  const std::string d = testdata::scratch_dir("bad");
  const std::string good_hits = "hit_id,x,y,z,volume_id,layer_id,module_id\n1,1.5,2,3,8,2,1\n2,4,5,6,8,2,1\n";

  write_plain(d + "/missing.csv", "hit_id,x,y,volume_id,layer_id,module_id\n1,1,2,8,2,1\n");
  std::string msg = parse_error([&] { read_hits(d + "/missing.csv"); });
  CHECK(contains(msg, "missing.csv:1"));
  CHECK(contains(msg, "missing column 'z'"));

  write_plain(d + "/badnum.csv", "hit_id,x,y,z,volume_id,layer_id,module_id\n1,1,2,3,8,2,1\n2,4.0x,5,6,8,2,1\n");
  msg = parse_error([&] { read_hits(d + "/badnum.csv"); });
  CHECK(contains(msg, "badnum.csv:3"));
  CHECK(contains(msg, "column 2 'x'"));
  CHECK(contains(msg, "4.0x"));

  write_plain(d + "/nan.csv", "hit_id,x,y,z,volume_id,layer_id,module_id\n1,1,2,3,8,2,1\n2,4,nan,6,8,2,1\n");
  msg = parse_error([&] { read_hits(d + "/nan.csv"); });
  CHECK(contains(msg, "nan.csv:3"));
  CHECK(contains(msg, "column 3 'y'"));
  CHECK(contains(msg, "non-finite"));

  write_plain(d + "/fields.csv", "hit_id,x,y,z,volume_id,layer_id,module_id\n1,1,2,3,8,2\n");
  msg = parse_error([&] { read_hits(d + "/fields.csv"); });
  CHECK(contains(msg, "fields.csv:2"));
  CHECK(contains(msg, "expected 7 fields, found 6"));

  write_plain(d + "/dup.csv", good_hits + "1,7,8,9,8,2,1\n");
  msg = parse_error([&] { read_hits(d + "/dup.csv"); });
  CHECK(contains(msg, "dup.csv:4"));
  CHECK(contains(msg, "duplicate hit_id 1"));

  // truth naming a hit that the hits file lacks
  write_plain(d + "/event000000007-hits.csv", good_hits);
  write_plain(d + "/event000000007-truth.csv",
              "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n1,5,0,0,0,0,0,0,0\n3,5,0,0,0,0,0,0,0\n");
  msg = parse_error([&] { read_event(d + "/event000000007"); });
  CHECK(contains(msg, "event000000007-truth.csv"));
  CHECK(contains(msg, "hit_id 3 is not in the hits file"));

  CHECK(contains(parse_error([&] { read_hits(d + "/nonexistent.csv"); }), "cannot open"));
  CHECK(contains(parse_error([&] { read_event(d + "/event000000099"); }), "no hits file"));
}

TEST_CASE("truncated gzip is detected") {
  const std::string d = testdata::scratch_dir("gz");
  std::string text = "hit_id,x,y,z,volume_id,layer_id,module_id\n";
  for (int i = 1; i <= 5000; ++i) text += std::to_string(i) + ",1.25,2.5,-3.75,8,2," + std::to_string(i % 7) + "\n";
  write_text_file_atomic(d + "/h.csv.gz", text, /*gzip=*/true);
  CHECK(read_hits(d + "/h.csv.gz").size() == 5000);
  std::string bytes;
  {
    std::ifstream in(d + "/h.csv.gz", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  REQUIRE(bytes.size() > 100);
  std::ofstream(d + "/cut.csv.gz", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  const std::string msg = parse_error([&] { read_hits(d + "/cut.csv.gz"); });
  CHECK(contains(msg, "cut.csv.gz"));
  CHECK(contains(msg, "truncated"));
}

TEST_CASE("write_event / read_event round trip, plain and gzip") {
  Event ev;
  ev.event_id = 42;
  ev.hits = {{10, 11}, {1.5f, -2.25f}, {0.1f, 3e-7f}, {-1502.5f, 600.f}, {7, 8}, {2, 4}, {1, 99}};
  ev.truth = {{10, 11}, {0, 963770663854669824LL}, {1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}, {0, 0.125f}};
  ev.particles.particle_id = {963770663854669824LL};
  for (auto* v : {&ev.particles.vx, &ev.particles.vy, &ev.particles.vz, &ev.particles.px, &ev.particles.py,
                  &ev.particles.pz})
    v->push_back(0.333333343f);
  ev.particles.q = {-1};
  ev.particles.nhits = {1};
  ev.cells = {{10, 10, 11}, {1, 2, 3}, {4, 5, 6}, {0.5f, 0.25f, 1e-3f}};
  for (bool gz : {false, true}) {
    const std::string d = testdata::scratch_dir(gz ? "rt-gz" : "rt");
    write_event(event_prefix(d, 42), ev, gz);
    CHECK(find_event_file(event_prefix(d, 42), "hits").ends_with(gz ? ".csv.gz" : ".csv"));
    const Event back = read_event(event_prefix(d, 42));
    CHECK(back.event_id == 42);
    CHECK(back.hits.hit_id == ev.hits.hit_id);
    CHECK(back.hits.y == ev.hits.y);
    CHECK(back.hits.module_id == ev.hits.module_id);
    CHECK(back.truth.particle_id == ev.truth.particle_id);
    CHECK(back.truth.weight == ev.truth.weight);
    CHECK(back.particles.particle_id == ev.particles.particle_id);
    CHECK(back.particles.px == ev.particles.px);
    CHECK(back.particles.particle_type.empty());
    CHECK(back.cells.value == ev.cells.value);
    CHECK(back.cells.ch1 == ev.cells.ch1);
  }
}
