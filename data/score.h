// The official TrackML score (trackml-library score.py, see trackml-format.md): double-majority matching of
// reconstructed tracks to particles, weighted by the truth hit weights, normalised by the given truth's weight sum.
#pragma once
#include <cstdint>
#include <vector>

#include "data/event.h"

namespace data {

struct Submission {
  std::vector<int64_t> hit_id;    // [M]
  std::vector<int64_t> track_id;  // [M]
};

// Score in [0, 1]. Truth hits missing from the submission become one-hit tracks (the library's NaN track id);
// submission rows for hits not in the truth are ignored. Throws std::invalid_argument on a repeated submission
// hit_id, mismatched column lengths, or an empty truth weight sum.
double trackml_score(const Truth& truth, const Submission& submission);

}  // namespace data
