// HEPT tracking samples from a TrackML event (hept.md 1.2-1.7): pixel hit selection and layer renumbering, the 15
// per-hit input features (with cell-cluster shape features from the detector geometry), the 6 hashing coordinates,
// per-hit truth (particle id, pT, reconstructable), the phi-sector split (tracking-6k) and the loss/kNN graphs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/detector.h"
#include "data/event.h"
#include "engine/tensor.h"

namespace data {

constexpr int kHeptFeatures = 15;  // x columns
constexpr int kHeptCoords = 6;     // coords columns

struct FeatureOptions {
  int n_sectors = 1;        // 10 for tracking-6k, 1 for tracking-60k (whole event)
  double sector_ds = 1.3;   // extended-sector slope factor
  double sector_di = 0.0;   // extended-sector intercept
  bool graphs = true;       // build point_pairs and knn_edges
  bool radius_pairs = true; // with graphs: also HEPT's radius-graph point_pairs (the largest part of a sample)
  double pair_radius = 1.0; // HEPT radius graph in (eta, phi)
  int pair_max_neighbors = 256;
  int knn_k = 60;           // Lampa / HEPT kNN graph (self loops included)
};

// Every kept pixel hit of one event (before sectoring), in HEPT's order: grouped by (volume, layer) ascending,
// file order inside a group. Row-major host arrays.
struct PixelHits {
  int64_t event_id = 0;
  std::vector<int64_t> hit_id;        // [N]
  std::vector<float> x;               // [N, 15] scaled features (hept.md 1.3)
  std::vector<float> coords;          // [N, 6]  eta, phi, r/1000, phi/pi, z/1000, eta_rz
  std::vector<int64_t> particle_id;   // [N] 0 = noise (or no truth file)
  std::vector<float> pt;              // [N] particle pT (GeV), 0 for noise
  std::vector<float> eta_pt;          // [N] particle pseudorapidity, NaN for noise
  std::vector<int64_t> layer;         // [N] 0..17 after renumbering
  std::vector<int64_t> reconstructable, n_hits, n_layers_hit;  // [N] per particle, over the whole pixel event
  std::vector<float> u, v;            // [N] conformal coordinates x/r^2, y/r^2 (1/mm), for sectoring
  size_t size() const { return hit_id.size(); }
};

// One HEPT sample (an event or one extended phi sector).
struct Sample {
  int64_t event_id = 0;
  int64_t sector = 0;
  engine::Tensor x;                // [N, 15] float32
  engine::Tensor coords;           // [N, 6]  float32
  engine::Tensor pos;              // [N, 2]  float32 (eta, phi in rad)
  engine::Tensor particle_id;      // [N] int64
  engine::Tensor pt;               // [N] float32
  engine::Tensor reconstructable;  // [N] int64 (0/1)
  engine::Tensor layer;            // [N] int64
  engine::Tensor hit_id;           // [N] int64
  engine::Tensor particle_sector;  // [N] int64: the sector the hit's particle is assigned to, or -1
  engine::Tensor point_pairs;      // [2, E] int64 HEPT loss pairs (empty [2, 0] when graphs are off)
  engine::Tensor knn_edges;        // [2, E] int64 undirected kNN graph (idem)
  int64_t num_hits() const { return x.defined() ? x.size(0) : 0; }
};

// Pixel selection + features + truth fields. Needs cells for the cell features (hits without cells get 0 there) and
// particles when truth is present. Throws std::invalid_argument for a hit on a module absent from the detector.
PixelHits pixel_hits(const Event& event, const Detector& detector);

// Sector split and (optionally) graphs: n_sectors samples, or one for n_sectors == 1.
std::vector<Sample> make_samples(const PixelHits& hits, const FeatureOptions& options);

// The z of the collision vertex each hit points back to along its pixel cluster: z - r sinh(eta_c), in metres, with
// eta_c the track's pseudorapidity as the cluster measures it (its sign, which a cluster's extent cannot tell, is the
// hit's own). In the barrel, where the 55 mm spread of the vertices moves a track's hits apart in eta, this places
// each hit's vertex from the hit alone (docs/tracking.md). Clamped to +-kVertexZRange, beyond which it says nothing
// (end-cap hits at large |eta|, hits without cells).
constexpr double kVertexZRange = 0.15;  // metres
enum class VertexZMethod {
  // eta_c = HEPT's feature geta, the cluster's extent over a depth of 2 module_t (thirteenth session). The barrel
  // sensors are 1 module_t deep, so there it underestimates |eta| (by ~0.6 at eta 3). Over the barrel hits of
  // pT > 0.9 GeV particles in the main job's 12 simulated events (unclamped): 35 mm rms about their particle's mean
  // estimate, 86 mm rms from the true vertex.
  ClusterEta,
  // Barrel: sinh(eta_c) from the cluster's length along z, (n_v - 1) pitch_v over the sensor's depth, averaged with
  // the one from its charge (1.0 per mm of path, so path / depth = cosh(eta_c)), each weighted by its resolution:
  // 22 mm and 31 mm on the same hits. End-caps: as ClusterEta (the disks are 2 module_t deep).
  SensorDepth,
};
// "cluster_eta" / "sensor_depth" (the names model configs store); throws std::invalid_argument for any other.
VertexZMethod vertex_z_method(const std::string& name);
// x [N, 15] HEPT features (float) -> [N, 1] float32 on x's device.
engine::Tensor vertex_z_estimates(const engine::Tensor& x, VertexZMethod method);

inline std::vector<Sample> build_samples(const Event& event, const Detector& detector, const FeatureOptions& options) {
  return make_samples(pixel_hits(event, detector), options);
}

}  // namespace data
