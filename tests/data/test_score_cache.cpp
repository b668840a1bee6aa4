// Official TrackML score reference values on the sample event, score edge cases, the split rule, and the processed
// cache round trip (build_cache -> Dataset -> samples equal to a direct build), and the parallel cache build.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "data/cache.h"
#include "data/score.h"
#include "data/csv.h"
#include "data/simulator.h"
#include "data/trackml_io.h"
#include "engine/io/safetensors.h"
#include "engine/parallel.h"
#include "shared_data.h"

using namespace data;

namespace {

Submission by_particle(const Truth& t, bool half_split) {
  Submission s;
  std::map<int64_t, std::vector<int64_t>> hits_of;  // pid -> hit ids
  for (size_t i = 0; i < t.size(); ++i) hits_of[t.particle_id[i]].push_back(t.hit_id[i]);
  int64_t next = 1;
  for (auto& [pid, ids] : hits_of) {
    std::sort(ids.begin(), ids.end());
    const int64_t a = next++, b = next++;
    for (size_t k = 0; k < ids.size(); ++k) {
      s.hit_id.push_back(ids[k]);
      if (pid == 0) {
        s.track_id.push_back(next++);  // noise: own track
      } else {
        s.track_id.push_back(half_split && k >= (ids.size() + 1) / 2 ? b : a);
      }
    }
  }
  return s;
}

}  // namespace

TEST_CASE("TrackML score reference values on event000000001") {
  REQUIRE_SHARED_DATA(dir);
  const Truth t = read_event(dir + "/event000000001").truth;
  CHECK(trackml_score(t, by_particle(t, false)) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(trackml_score(t, by_particle(t, true)) == doctest::Approx(0.281077).epsilon(1e-6));
  Submission own, one;
  for (size_t i = 0; i < t.size(); ++i) {
    own.hit_id.push_back(t.hit_id[i]), own.track_id.push_back(static_cast<int64_t>(i));
    one.hit_id.push_back(t.hit_id[i]), one.track_id.push_back(0);
  }
  CHECK(trackml_score(t, own) == 0.0);
  CHECK(trackml_score(t, one) == 0.0);
}

TEST_CASE("TrackML score rules on a toy event") {
  // particle 5: hits 1-4 (w .1 each), particle 7: hits 5-7 (w .2 each), noise 8
  Truth t;
  t.hit_id = {1, 2, 3, 4, 5, 6, 7, 8};
  t.particle_id = {5, 5, 5, 5, 7, 7, 7, 0};
  t.weight = {.1f, .1f, .1f, .1f, .2f, .2f, .2f, 0.f};
  CHECK(trackml_score(t, {{1, 2, 3, 4, 5, 6, 7, 8}, {0, 0, 0, 0, 1, 1, 1, 2}}) == doctest::Approx(1.0));
  // 3 of 4 hits of particle 5 + 1 noise hit: 3/4 purity and 3/4 of the particle -> 0.3; particle 7 split 2+1 -> 0.4
  CHECK(trackml_score(t, {{1, 2, 3, 4, 5, 6, 7, 8}, {0, 0, 0, 9, 1, 1, 3, 0}}) == doctest::Approx((0.3 + 0.4) / 1.0));
  // a 2+2 split of particle 5 never scores; a missing hit (7) becomes its own track
  CHECK(trackml_score(t, {{1, 2, 3, 4, 5, 6, 8}, {0, 0, 1, 1, 2, 2, 3}}) == doctest::Approx(0.4));
  // 2 of particle 7's 3 hits plus a noise hit: 2/3 purity and 2/3 of the particle -> credited (0.4 of 0.6)
  CHECK(trackml_score(t, {{1, 2, 3, 4, 5, 6, 7, 8}, {0, 0, 0, 0, 1, 2, 2, 2}}) == doctest::Approx(0.8));
  // 1 + 1 (tie, either majority holds only half of the track): nothing for particle 7
  CHECK(trackml_score(t, {{1, 2, 3, 4, 5, 6, 7, 8}, {0, 0, 0, 0, 1, 2, 3, 3}}) == doctest::Approx(0.4));
  CHECK_THROWS_AS(trackml_score(t, {{1, 1}, {0, 0}}), std::invalid_argument);
  CHECK_THROWS_AS(trackml_score(t, {{1}, {0, 1}}), std::invalid_argument);
}

TEST_CASE("split rule: sorted by event id, 80 percent rounded to a multiple of 10, then 10 percent") {
  std::vector<CacheEntry> entries;
  for (int64_t e = 0; e < 50; ++e) entries.push_back({1000 + (e * 37) % 50, 0, "", 0, 0, 0});  // shuffled ids
  auto split = split_indices(entries);
  REQUIRE(split[0].size() == 40);
  REQUIRE(split[1].size() == 5);
  REQUIRE(split[2].size() == 5);
  for (int s = 0; s < 3; ++s) {
    for (size_t k = 1; k < split[s].size(); ++k)
      CHECK(entries[split[s][k - 1]].event_id < entries[split[s][k]].event_id);
  }
  CHECK(entries[split[0].back()].event_id < entries[split[1].front()].event_id);
  entries.resize(16);
  split = split_indices(entries);
  CHECK(split[0].size() == 10);  // floor(12.8) = 12 -> 10
  CHECK(split[1].size() == 1);
  CHECK(split[2].size() == 5);
}

TEST_CASE("processed cache round trip") {
  REQUIRE_SHARED_DATA(dir);
  const std::string out = testdata::scratch_dir("cache");
  CacheOptions opt;
  opt.features.n_sectors = 10;
  opt.detector_path = dir + "/detectors.csv";
  build_cache({dir + "/event000000001"}, out, opt);
  const Dataset ds(out);
  REQUIRE(ds.entries().size() == 10);
  CHECK(ds.size(Split::Train) + ds.size(Split::Valid) + ds.size(Split::Test) == 10);
  CHECK(ds.features().n_sectors == 10);
  const auto direct = build_samples(read_event(dir + "/event000000001"), read_detectors(opt.detector_path), opt.features);
  const auto& test_idx = ds.indices(Split::Test);
  for (size_t i = 0; i < test_idx.size(); ++i) {
    const Sample got = ds.load(Split::Test, i);
    const Sample& want = direct[static_cast<size_t>(ds.entries()[test_idx[i]].sector)];
    CHECK(got.event_id == 1);
    CHECK(got.sector == want.sector);
    CHECK(got.x.shape() == want.x.shape());
    CHECK(got.x.to_vector<float>() == want.x.to_vector<float>());
    CHECK(got.coords.to_vector<float>() == want.coords.to_vector<float>());
    CHECK(got.particle_id.to_vector<int64_t>() == want.particle_id.to_vector<int64_t>());
    CHECK(got.point_pairs.to_vector<int64_t>() == want.point_pairs.to_vector<int64_t>());
    CHECK(got.knn_edges.to_vector<int64_t>() == want.knn_edges.to_vector<int64_t>());
    CHECK(got.point_pairs.size(1) > 0);
    CHECK(got.point_pairs.dtype() == engine::DType::I64);
  }
  // pair lists are int32 on disk; a sample file with int64 pairs (caches written before) reads back the same
  const std::string file = out + "/" + ds.entries()[0].file;
  auto stored = engine::io::load_safetensors(file);
  REQUIRE(stored.find("point_pairs") != nullptr);
  CHECK(stored.find("point_pairs")->dtype() == engine::DType::I32);
  const Sample sample = load_sample(file);
  for (auto& [name, t] : stored.tensors)
    if (name == "point_pairs" || name == "knn_edges") t = t.to(engine::DType::I64);
  engine::io::save_safetensors(file, stored.tensors, stored.metadata);
  const Sample wide = load_sample(file);
  CHECK(wide.point_pairs.to_vector<int64_t>() == sample.point_pairs.to_vector<int64_t>());
  CHECK(wide.knn_edges.to_vector<int64_t>() == sample.knn_edges.to_vector<int64_t>());
  CHECK_THROWS(Dataset(out + "/nope"));
  std::filesystem::remove_all(out);
}

TEST_CASE("processed cache: events built in parallel, in input order; a broken event fails the build") {
  const std::string dir = testdata::scratch_dir("cache-parallel");
  sim::SimConfig cfg;
  cfg.mu = 2;
  cfg.pixel_only = true;
  const sim::Simulator simulator(builtin_detector(), cfg);
  std::filesystem::create_directories(dir + "/events");
  for (int64_t id : {3, 1, 2}) write_event(event_prefix(dir + "/events", id), simulator.simulate(id), true);
  CacheOptions opt;
  opt.features.n_sectors = 2;
  std::vector<size_t> progress;
  opt.on_event_done = [&](size_t done, size_t total) {
    CHECK(total == 3);
    progress.push_back(done);
  };
  const int threads = engine::get_num_threads();
  engine::set_num_threads(1);
  build_cache({dir + "/events"}, dir + "/serial", opt);
  engine::set_num_threads(2);
  build_cache({dir + "/events"}, dir + "/parallel", opt);
  CHECK(progress == std::vector<size_t>{1, 2, 3, 1, 2, 3});
  const Dataset serial(dir + "/serial"), parallel(dir + "/parallel");
  REQUIRE(parallel.entries().size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    CHECK(parallel.entries()[i].event_id == static_cast<int64_t>(i / 2 + 1));  // the folder's events, sorted by id
    CHECK(parallel.entries()[i].file == serial.entries()[i].file);
  }
  for (Split split : {Split::Train, Split::Valid, Split::Test}) {
    REQUIRE(parallel.size(split) == serial.size(split));
    for (size_t i = 0; i < parallel.size(split); ++i)
      CHECK(parallel.load(split, i).point_pairs.to_vector<int64_t>() ==
            serial.load(split, i).point_pairs.to_vector<int64_t>());
  }
  // event 2 unreadable: the build fails with that event's error and writes no manifest
  write_text_file_atomic(event_prefix(dir + "/events", 2) + "-hits.csv.gz", "hit_id,x\n1,2\n", true);
  CHECK_THROWS_WITH_AS(build_cache({dir + "/events"}, dir + "/broken", opt),
                       doctest::Contains("event000000002-hits.csv"), std::exception);
  CHECK_FALSE(std::filesystem::exists(dir + "/broken/manifest.json"));
  engine::set_num_threads(threads);
  std::filesystem::remove_all(dir);
}
