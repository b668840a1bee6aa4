// Particle sub-sampling of a TrackML event: keep whole particles (every hit, cell and particle row of a kept
// particle) and the same fraction of noise hits. This is how the real sample event000000001 was made (548
// particles of a full event), so a simulated event sub-sampled this way can be compared with it at equal density.
#pragma once
#include <cstdint>

#include "data/event.h"

namespace data {

// Keeps particle p when a hash of (p, seed) falls below `fraction` (in [0, 1]); a noise hit (particle_id 0) when a
// hash of (hit_id, seed) does. Deterministic. Needs the truth table (throws std::invalid_argument without one).
Event subsample_particles(const Event& event, double fraction, uint64_t seed = 0);

}  // namespace data
