// Track-finding efficiencies a physicist reports (paper-results.md, ML4Jets talk), from hit-level truth and
// candidate track ids. Particles counted: id != 0, pT > pt_min, at least min_hits hits in the sample.
//  - double majority (DM): a particle is found when a candidate has > 50% of its hits from the particle AND holds
//    > 50% of the particle's hits;
//  - LHC-style: a candidate of >= min_hits hits matches the particle that gives >= 75% of its hits; a particle is
//    found when some candidate matches it;
//  - fake rate: candidates with >= min_hits hits that match no particle under the LHC rule, over all such
//    candidates (candidates whose majority particle is below pt_min are left out of both counts).
#pragma once
#include <cstdint>
#include <vector>

namespace data {

struct Efficiencies {
  double double_majority = 0, lhc = 0, fake_rate = 0;
  int64_t particles = 0, candidates = 0;
};

Efficiencies track_efficiencies(const std::vector<int64_t>& particle_id, const std::vector<float>& pt,
                                const std::vector<int64_t>& track_id, double pt_min = 0.9, int min_hits = 3);

}  // namespace data
