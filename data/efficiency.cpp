// Double-majority and LHC-style efficiencies, fake rate (see efficiency.h).
#include "data/efficiency.h"

#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>

namespace data {

Efficiencies track_efficiencies(const std::vector<int64_t>& pid, const std::vector<float>& pt,
                                const std::vector<int64_t>& track, double pt_min, int min_hits) {
  if (pid.size() != pt.size() || pid.size() != track.size())
    throw std::invalid_argument("track_efficiencies: particle_id, pt and track_id lengths differ");
  std::unordered_map<int64_t, int64_t> particle_hits, track_hits;
  std::unordered_map<int64_t, double> particle_pt;
  std::map<std::pair<int64_t, int64_t>, int64_t> common;  // (track, particle) -> shared hits
  for (size_t i = 0; i < pid.size(); ++i) {
    track_hits[track[i]]++;
    common[{track[i], pid[i]}]++;
    if (pid[i] != 0) particle_hits[pid[i]]++, particle_pt[pid[i]] = pt[i];
  }
  auto counted = [&](int64_t p) { return p != 0 && particle_pt[p] > pt_min && particle_hits[p] >= min_hits; };
  std::unordered_map<int64_t, std::pair<int64_t, int64_t>> majority;  // track -> (particle, shared hits)
  for (const auto& [key, c] : common) {
    auto& m = majority[key.first];
    if (c > m.second) m = {key.second, c};
  }
  std::set<int64_t> dm_found, lhc_found;
  Efficiencies e;
  int64_t fakes = 0;
  for (const auto& [t, m] : majority) {
    const int64_t n_t = track_hits[t];
    const bool lhc_match = m.first != 0 && n_t >= min_hits && 4 * m.second >= 3 * n_t;
    if (m.first != 0 && counted(m.first)) {
      if (2 * m.second > n_t && 2 * m.second > particle_hits[m.first]) dm_found.insert(m.first);
      if (lhc_match) lhc_found.insert(m.first);
    }
    if (n_t >= min_hits && (m.first == 0 || counted(m.first) || !lhc_match)) {
      e.candidates++;
      fakes += !lhc_match;
    }
  }
  for (const auto& [p, n] : particle_hits) e.particles += counted(p);
  if (e.particles > 0) {
    e.double_majority = static_cast<double>(dm_found.size()) / static_cast<double>(e.particles);
    e.lhc = static_cast<double>(lhc_found.size()) / static_cast<double>(e.particles);
  }
  if (e.candidates > 0) e.fake_rate = static_cast<double>(fakes) / static_cast<double>(e.candidates);
  return e;
}

}  // namespace data
