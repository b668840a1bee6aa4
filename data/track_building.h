// Track candidates from per-hit embeddings: DBSCAN in embedding space (exact radius search on a kd-tree), and a
// small search for the DBSCAN radius that maximises the TrackML-style score on a sample with truth. Plain arrays in,
// labels out: data/ knows nothing of models.
#pragma once
#include <cstdint>
#include <vector>

namespace data {

struct ClusterOptions {
  double eps = 0.1;      // neighbourhood radius (L2 in embedding space)
  int min_samples = 2;   // core points need this many neighbours within eps, themselves included
};

// Track id per hit: clusters get ids 1, 2, ...; noise hits get their own ids after the clusters (one-hit tracks,
// which the TrackML score treats like unassigned hits). Deterministic (clusters grown in hit order).
std::vector<int64_t> cluster_embeddings(const float* emb, int64_t n, int64_t dim, const ClusterOptions& options);

// The TrackML score with unit weight for every hit of a particle and 0 for noise hits: the fraction of
// particle hits in double-majority matched (track, particle) intersections. For tuning and quick checks; the
// official weighted score is data/score.h.
double unweighted_trackml_score(const std::vector<int64_t>& particle_id, const std::vector<int64_t>& track_id);

struct TunedClustering {
  double eps = 0.1;
  int min_samples = 2;
  double score = 0;  // unweighted_trackml_score at the chosen values
};
// One sample's embedding (row-major [n, dim]) with the particle of each row.
struct LabelledEmbedding {
  const float* emb;
  int64_t n, dim;
  const std::vector<int64_t>& particle_id;
};
// Tries eps over a geometric grid (steps of 2^(1/4)) spanning the embeddings' nearest-neighbour distance scale and
// min_samples in {1, 2, 3}; returns the values with the best mean score over the samples (several samples make the
// choice less noisy than one). The grid is walked upwards and left once a radius scores below half the best: past
// the best radius, clusters merge and the score falls, while the radius searches grow costlier (an untrained
// model's embeddings took ~20 s over the whole grid).
TunedClustering tune_clustering(const std::vector<LabelledEmbedding>& samples);

}  // namespace data
