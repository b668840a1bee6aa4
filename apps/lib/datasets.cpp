// Dataset resolution (see datasets.h).
#include "apps/lib/datasets.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "apps/lib/progress.h"
#include "data/cache.h"
#include "data/detector.h"
#include "data/simulator.h"
#include "data/trackml_io.h"
#include "engine/parallel.h"

namespace app {

namespace fs = std::filesystem;

std::string default_cache_root() {
  if (const char* p = std::getenv("HEP_CACHE"); p && *p) return p;
  if (const char* p = std::getenv("XDG_CACHE_HOME"); p && *p) return std::string(p) + "/hepengine";
  if (const char* p = std::getenv("HOME"); p && *p) return std::string(p) + "/.cache/hepengine";
  return ".hepengine-cache";
}

std::string detector_next_to(const std::string& events_dir) {
  for (const fs::path& dir : {fs::path(events_dir), fs::absolute(events_dir).parent_path()})
    for (const char* name : {"detectors.csv", "detectors.csv.gz"})
      if (fs::exists(dir / name)) return (dir / name).string();
  return "";
}

std::string find_detector(const std::string& events_dir, const std::string& requested) {
  if (!requested.empty()) {
    if (!fs::exists(requested)) throw std::runtime_error(fmt::format("--detector {}: no such file", requested));
    return requested;
  }
  return detector_next_to(events_dir);
}

std::string builtin_geometry_note(const std::string& events_dir) {
  return fmt::format("note: no detectors.csv in or next to {}: features use the built-in TrackML geometry, as "
                     "simulated events do (real events need --detector: the official file numbers the end-cap "
                     "modules differently)", events_dir);
}

namespace {

std::string cache_name(const DataRequest& r) {
  return fmt::format("cache-s{}-{}", r.n_sectors, r.radius_pairs ? "radius" : "knn");
}

bool has_manifest(const std::string& dir) { return fs::exists(fs::path(dir) / "manifest.json"); }

// Simulates `events` pixel-only events into `dir` (skipping files that already exist, so an interrupted run resumes).
void simulate_events(const std::string& dir, const DataRequest& r) {
  fs::create_directories(dir);
  data::sim::SimConfig cfg;
  cfg.mu = r.sim_mu;
  cfg.sigma_z = r.sim_sigma_z;
  cfg.seed = r.sim_seed;
  cfg.pixel_only = true;
  const data::sim::Simulator sim(data::builtin_detector(), cfg);
  Progress progress(fmt::format("simulating {} events (mu {}, vertex z spread {} mm) into {}", r.sim_events, r.sim_mu,
                                r.sim_sigma_z, dir),
                    r.sim_events, 5);
  std::mutex progress_mutex;
  int64_t done = 0;
  engine::parallel_for_each(r.sim_events, [&](int64_t i) {
    const int64_t id = i + 1;
    const std::string prefix = data::event_prefix(dir, id);
    if (!fs::exists(prefix + "-hits.csv.gz")) data::write_event(prefix, sim.simulate(id), /*gzip=*/true);
    const std::lock_guard<std::mutex> lock(progress_mutex);
    progress.update(++done, fmt::format("event {}", id));
  });
  progress.finish("done");
}

// Refuses a cache that was featurised with another geometry than `detector`.
void check_cache_detector(const std::string& cache, const std::string& detector) {
  std::ifstream f(fs::path(cache) / "manifest.json");
  const auto manifest = nlohmann::json::parse(f, nullptr, false);
  const std::string built = manifest.is_object() ? manifest.value("detector", "builtin") : "builtin";
  const std::string wanted = detector.empty() ? "builtin" : detector;
  if (built != wanted && fs::path(built).filename() != fs::path(wanted).filename())
    throw std::runtime_error(fmt::format("{} was built with the geometry {}, not {}: remove it or choose another "
                                         "--cache", cache, built, wanted));
}

void build(const std::string& events_dir, const std::string& cache, const DataRequest& r) {
  data::CacheOptions options;
  options.features.n_sectors = r.n_sectors;
  options.features.radius_pairs = r.radius_pairs;
  options.detector_path = r.detector;
  Progress progress(fmt::format("building the processed cache {} from {} ({} sector(s) per event)", cache, events_dir,
                                r.n_sectors),
                    static_cast<int64_t>(data::find_event_prefixes(events_dir).size()), 5);
  options.on_event_done = [&](size_t done, size_t) { progress.update(static_cast<int64_t>(done), "events"); };
  data::build_cache({events_dir}, cache, options);
  progress.finish("done");
}

}  // namespace

std::string resolve_tracking_dataset(const DataRequest& r) {
  if (r.data.empty()) {
    const std::string root = fmt::format("{}/sim-v{}-mu{}-sz{}-n{}-seed{}", default_cache_root(),
                                         data::sim::kSimulationVersion, r.sim_mu, r.sim_sigma_z, r.sim_events,
                                         r.sim_seed);
    const std::string cache = r.cache_dir.empty() ? fmt::format("{}/{}", root, cache_name(r)) : r.cache_dir;
    if (has_manifest(cache)) return cache;
    simulate_events(root + "/events", r);
    build(root + "/events", cache, r);
    return cache;
  }
  if (!fs::exists(r.data)) throw std::runtime_error(fmt::format("--data {}: no such file or folder", r.data));
  if (has_manifest(r.data)) return r.data;
  if (!fs::is_directory(r.data))
    throw std::runtime_error(fmt::format("--data {}: expected a folder of TrackML events or a processed cache", r.data));
  if (data::find_event_prefixes(r.data).empty())
    throw std::runtime_error(fmt::format("--data {}: no event*-hits.csv[.gz] files and no manifest.json", r.data));
  const std::string cache = r.cache_dir.empty() ? fmt::format("{}/{}", r.data, cache_name(r)) : r.cache_dir;
  DataRequest request = r;
  request.detector = find_detector(r.data, r.detector);
  if (request.detector.empty()) fmt::print(stderr, "{}\n", builtin_geometry_note(r.data));
  if (has_manifest(cache)) check_cache_detector(cache, request.detector);
  else build(r.data, cache, request);
  return cache;
}

}  // namespace app
