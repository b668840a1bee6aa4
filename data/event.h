// A TrackML event in memory: the hits, truth, particles and cells tables (columns as in the TrackML files).
// Readers fill it from CSV files; the simulator fills it and writes it out with the same writers.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace data {

// Bad input file: the message names the file, the line and the column.
class ParseError : public std::runtime_error {
 public:
  explicit ParseError(const std::string& what) : std::runtime_error(what) {}
};

struct Hits {  // hits.csv
  std::vector<int64_t> hit_id;
  std::vector<float> x, y, z;
  std::vector<int32_t> volume_id, layer_id, module_id;
  size_t size() const { return hit_id.size(); }
};

struct Truth {  // truth.csv, row i <-> the hit with hit_id[i]
  std::vector<int64_t> hit_id, particle_id;  // particle_id 0 = noise
  std::vector<float> tx, ty, tz, tpx, tpy, tpz, weight;
  size_t size() const { return hit_id.size(); }
};

struct Particles {  // particles.csv
  std::vector<int64_t> particle_id;
  std::vector<float> vx, vy, vz, px, py, pz;
  std::vector<int32_t> q, nhits;
  std::vector<int32_t> particle_type;  // Codalab variant only; empty for the Kaggle variant
  size_t size() const { return particle_id.size(); }
};

struct Cells {  // cells.csv
  std::vector<int64_t> hit_id;
  std::vector<int32_t> ch0, ch1;
  std::vector<float> value;
  size_t size() const { return hit_id.size(); }
};

struct Event {
  int64_t event_id = 0;
  Hits hits;
  Truth truth;          // empty when the event has no truth file
  Particles particles;  // empty when absent
  Cells cells;          // empty when absent
};

}  // namespace data
