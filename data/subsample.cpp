// Particle sub-sampling of a TrackML event (see subsample.h).
#include "data/subsample.h"

#include <fmt/format.h>

#include <stdexcept>
#include <unordered_set>
#include <vector>

namespace data {

namespace {

// splitmix64 of (key, seed) mapped to [0, 1)
double unit_hash(uint64_t key, uint64_t seed) {
  uint64_t z = key + 0x9E3779B97F4A7C15ull * (seed + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

template <class T>
void keep_rows(std::vector<T>& column, const std::vector<char>& keep) {
  if (column.empty()) return;  // optional column (e.g. particle_type of the Kaggle files)
  size_t out = 0;
  for (size_t i = 0; i < keep.size(); ++i)
    if (keep[i]) column[out++] = column[i];
  column.resize(out);
}

template <class... Columns>
void keep_all(const std::vector<char>& keep, Columns&... columns) {
  (keep_rows(columns, keep), ...);
}

}  // namespace

Event subsample_particles(const Event& event, double fraction, uint64_t seed) {
  if (!(fraction >= 0.0 && fraction <= 1.0))
    throw std::invalid_argument(fmt::format("subsample_particles: fraction {} is not in [0, 1]", fraction));
  if (event.truth.size() != event.hits.size())
    throw std::invalid_argument(fmt::format("subsample_particles: event {} has {} hits but {} truth rows",
                                            event.event_id, event.hits.size(), event.truth.size()));
  Event out = event;
  std::vector<char> keep_truth(out.truth.size());  // [hits]
  std::unordered_set<int64_t> kept_hits;
  for (size_t i = 0; i < keep_truth.size(); ++i) {
    const int64_t pid = out.truth.particle_id[i];
    const uint64_t key = pid != 0 ? uint64_t(pid) : uint64_t(out.truth.hit_id[i]) ^ 0xA5A5A5A5A5A5A5A5ull;
    keep_truth[i] = unit_hash(key, seed) < fraction;
    if (keep_truth[i]) kept_hits.insert(out.truth.hit_id[i]);
  }
  Truth& t = out.truth;
  keep_all(keep_truth, t.hit_id, t.particle_id, t.tx, t.ty, t.tz, t.tpx, t.tpy, t.tpz, t.weight);

  std::vector<char> keep_hit(out.hits.size());
  for (size_t i = 0; i < keep_hit.size(); ++i) keep_hit[i] = kept_hits.count(out.hits.hit_id[i]) > 0;
  Hits& h = out.hits;
  keep_all(keep_hit, h.hit_id, h.x, h.y, h.z, h.volume_id, h.layer_id, h.module_id);

  std::vector<char> keep_cell(out.cells.size());
  for (size_t i = 0; i < keep_cell.size(); ++i) keep_cell[i] = kept_hits.count(out.cells.hit_id[i]) > 0;
  Cells& c = out.cells;
  keep_all(keep_cell, c.hit_id, c.ch0, c.ch1, c.value);

  std::vector<char> keep_particle(out.particles.size());
  for (size_t i = 0; i < keep_particle.size(); ++i)
    keep_particle[i] = unit_hash(uint64_t(out.particles.particle_id[i]), seed) < fraction;
  Particles& p = out.particles;
  keep_all(keep_particle, p.particle_id, p.vx, p.vy, p.vz, p.px, p.py, p.pz, p.q, p.nhits, p.particle_type);
  return out;
}

}  // namespace data
