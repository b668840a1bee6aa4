// A small simulated tracking cache for the apps_lib tests: 2 events at mu 5 (seed 4) under a fresh HEP_CACHE root.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

#include "apps/lib/datasets.h"

// Empties `root`, makes it the HEP_CACHE and returns the cache folder built there (the caller removes `root`).
inline std::string small_simulated_cache(const std::string& root, bool radius_pairs = false) {
  std::filesystem::remove_all(root);
  setenv("HEP_CACHE", root.c_str(), 1);
  app::DataRequest request;
  request.sim_events = 2;
  request.sim_mu = 5;
  request.sim_seed = 4;
  request.radius_pairs = radius_pairs;
  return app::resolve_tracking_dataset(request);
}
