// Processed-event cache: one safetensors file per (event, sector) sample, a manifest.json describing the samples,
// the feature options and the train/valid/test split, so training never re-parses CSV. See docs/data.md.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/features.h"

namespace data {

struct CacheOptions {
  FeatureOptions features;     // n_sectors 10 -> tracking-6k, 1 -> tracking-60k
  std::string detector_path;   // detectors.csv; empty = the built-in geometry
  // called after each event, with the events done so far and in all (from one thread at a time)
  std::function<void(size_t done, size_t total)> on_event_done;
};

struct CacheEntry {
  int64_t event_id = 0;
  int64_t sector = 0;
  std::string file;            // relative to the cache folder
  int64_t num_hits = 0, num_point_pairs = 0, num_knn_edges = 0;
};

enum class Split { Train, Valid, Test };

// Event prefixes ("<dir>/eventNNNNNNNNN") of every event*-hits.csv[.gz] in `dir`, sorted.
std::vector<std::string> find_event_prefixes(const std::string& dir);

// Sample i of `entries` sorted by (event_id, sector) goes to a split by HEPT's get_new_idx_split rule: the first
// floor(0.8 L) rounded down to a multiple of 10 train, the next floor(0.1 L) valid, the rest test.
std::vector<std::vector<size_t>> split_indices(const std::vector<CacheEntry>& entries);

void save_sample(const std::string& path, const Sample& sample);
Sample load_sample(const std::string& path);

// Builds the cache from event prefixes and/or folders of TrackML files (each input that is a folder contributes all
// its events). Events are featurised in parallel on the engine's CPU threads; the first failing event in input order
// is the error, and then no manifest is written. Writes <out_dir>/eventNNNNNNNNN_sS.safetensors and
// <out_dir>/manifest.json (atomically, last).
void build_cache(const std::vector<std::string>& inputs, const std::string& out_dir, const CacheOptions& options);

// Reads manifest.json of a cache folder; lists and loads the samples of each split.
class Dataset {
 public:
  explicit Dataset(const std::string& cache_dir);
  const std::vector<CacheEntry>& entries() const { return entries_; }
  const std::vector<size_t>& indices(Split split) const { return split_[static_cast<size_t>(split)]; }
  size_t size(Split split) const { return indices(split).size(); }
  Sample load(Split split, size_t i) const;  // the i-th sample of the split
  const FeatureOptions& features() const { return features_; }

 private:
  std::string dir_;
  std::vector<CacheEntry> entries_;
  std::vector<std::vector<size_t>> split_;
  FeatureOptions features_;
};

}  // namespace data
