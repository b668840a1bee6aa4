// Where training data comes from: resolves the user's --data argument to a processed cache folder (data/cache.h),
// building the cache from TrackML files, or simulating a small dataset first when no data is given, so
// `train --model NAME` works on a fresh machine with no download.
#pragma once
#include <cstdint>
#include <string>

#include "data/simulator.h"

namespace app {

struct DataRequest {
  std::string data;          // "" (simulate), a cache folder (manifest.json), or a folder of TrackML event files
  std::string cache_dir;     // where to build the cache ("" = next to the events)
  std::string detector;      // detectors.csv[.gz] for TrackML folders ("" = found next to them, else built-in)
  int n_sectors = 10;        // 10: tracking-6k style sectors; 1: whole events (tracking-60k style)
  bool radius_pairs = false; // also build HEPT's radius-graph loss pairs (10x the build time and disk of kNN only)
  int sim_events = 12;       // simulated events when data is ""
  double sim_mu = 200;       // their pile-up
  double sim_sigma_z = data::sim::kThroughputSigmaZ;  // their luminous region's length (mm)
  uint64_t sim_seed = 1;
};

// The official geometry file (detectors.csv or detectors.csv.gz) in `events_dir` or its parent folder (the Kaggle
// layout: train_1/ next to detectors.csv), or "" when there is none.
std::string detector_next_to(const std::string& events_dir);

// The geometry for featurising the TrackML files in `events_dir`: `requested` (which must exist, else
// std::runtime_error), else the one detector_next_to finds, else "" (the built-in geometry).
std::string find_detector(const std::string& events_dir, const std::string& requested);

// The note to print when the files in `events_dir` are featurised with the built-in geometry: fine for simulated
// events, wrong for real ones (the official file numbers the end-cap modules differently).
std::string builtin_geometry_note(const std::string& events_dir);

// The default folder for simulated data: $HEP_CACHE, else $XDG_CACHE_HOME/hepengine, else ~/.cache/hepengine.
std::string default_cache_root();

// Returns a cache folder holding manifest.json, creating it (and simulating events) when needed. Progress goes to
// stderr. A folder of TrackML files is featurised with request.detector, else with the detectors.csv[.gz] found in
// it or its parent (the Kaggle layout), else with the built-in geometry and a note (simulated events use it; the
// official file numbers the end-cap modules differently). Throws std::runtime_error with the path for an unusable
// --data, or for a cache built with another geometry.
std::string resolve_tracking_dataset(const DataRequest& request);

}  // namespace app
