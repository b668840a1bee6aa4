// app::resolve_tracking_dataset's choice of geometry for folders of TrackML files: a detectors.csv in or next to the
// folder (the Kaggle layout), an explicit --detector, and the refusal of a cache built with another geometry.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "apps/lib/datasets.h"

namespace fs = std::filesystem;

namespace {

void touch(const fs::path& p, const std::string& text = "") { std::ofstream(p) << text; }

// <root>/train_1 with one event's hits file name and a cache whose manifest says it was built with `built_with`.
fs::path events_with_cache(const std::string& name, const std::string& built_with) {
  const fs::path root = fs::temp_directory_path() / name, events = root / "train_1";
  fs::remove_all(root);
  fs::create_directories(events / "cache-s10-knn");
  touch(events / "event000001000-hits.csv");
  touch(events / "cache-s10-knn" / "manifest.json", "{\"detector\": \"" + built_with + "\"}");
  return events;
}

app::DataRequest request_for(const fs::path& events) {
  app::DataRequest r;
  r.data = events.string();
  return r;
}

}  // namespace

TEST_CASE("datasets: the geometry file in or next to a folder of events") {
  const fs::path events = events_with_cache("hep-test-detector-lookup", "builtin");
  CHECK(app::detector_next_to(events.string()).empty());
  touch(events.parent_path() / "detectors.csv.gz");
  CHECK(fs::path(app::detector_next_to(events.string())) == events.parent_path() / "detectors.csv.gz");
  touch(events / "detectors.csv");
  CHECK(fs::path(app::detector_next_to(events.string())) == events / "detectors.csv");
  fs::remove_all(events.parent_path());
}

TEST_CASE("datasets: a cache is used only with the geometry it was built with") {
  const fs::path events = events_with_cache("hep-test-detector-cache", "builtin");
  // no detectors.csv anywhere: the built-in geometry, as the cache was built
  CHECK(app::resolve_tracking_dataset(request_for(events)) == (events / "cache-s10-knn").string());
  // the official file next to the events: the built-in cache is refused, with its path
  touch(events.parent_path() / "detectors.csv");
  CHECK_THROWS_WITH_AS(app::resolve_tracking_dataset(request_for(events)),
                       doctest::Contains("was built with the geometry builtin"), std::runtime_error);
  app::DataRequest missing = request_for(events);
  missing.detector = (events / "nope.csv").string();
  CHECK_THROWS_WITH_AS(app::resolve_tracking_dataset(missing), doctest::Contains("no such file"), std::runtime_error);
  fs::remove_all(events.parent_path());
}
