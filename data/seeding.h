// Triplet seeds: for each pixel hit, the helix from the beam line that it and two hits on other layers agree on best
// (the classical seeding step of track finding), as per-hit input features for the tracking models.
//
// A doublet (hit i, hit j on another layer) defines, with the beam line, a straight line in r-z (cot theta and the
// vertex z0) and a circle through the origin in x-y (its curvature and the track's phi at the origin, phi0). Two
// doublets of the same track share these four parameters up to the hits' resolution and multiple scattering; the seed
// of hit i is the pair of its doublets (partners on two different layers) closest in (phi0, curvature, cot theta, z0),
// which fixes hit i's track in most cases even at mu 200 (docs/tracking.md, "Sixteenth session"). Assumes TrackML's
// setting: the beam line at x = y = 0, a 2 T solenoid (the curvature limit), pixel layers numbered as in features.h.
#pragma once
#include "engine/tensor.h"

namespace data {

struct SeedOptions {
  double max_curvature = 1.3;     // 1/m: a transverse radius of at least 0.77 m, pT >= 0.45 GeV in the 2 T field
  double max_vertex_z = 0.25;     // m: |z0| of a doublet's line (the luminous region's sigma is 55 mm)
  double min_radial_gap = 0.003;  // m: partners at nearly the same radius give no direction
  double cluster_window = 0.1;    // m: |z0 - each hit's cluster-based vertex estimate| (vertex_z_estimates)
  // Scales of the four parameters' differences between two doublets of one track (rms over true triplets of
  // pT > 0.9 GeV particles on simulated events: 0.002 rad, 0.08 1/m, 0.03, 0.0015 m; the accuracy is flat from half
  // to twice these)
  double sigma_phi0 = 0.002, sigma_curvature = 0.04, sigma_cot_theta = 0.01, sigma_z0 = 0.002;
  // The largest squared distance in these units that still makes a triplet (true triplets: ~15 on average; 25 to
  // 1e30 give the same accuracy, docs/tracking.md)
  double max_chi2 = 100;
};

// Columns of triplet_seeds' output.
constexpr int kSeedFeatures = 5;
enum SeedColumn : int {
  kSeedPhi0 = 0,       // the track's phi at the beam line, / pi (as HEPT's phi feature)
  kSeedCurvature = 1,  // 1/m, signed (1 / transverse radius)
  kSeedEta = 2,        // the track's pseudorapidity, asinh(cot theta)
  kSeedZ0 = 3,         // the vertex z, m
  kSeedFound = 4,      // 1 with a triplet; 0 when the hit has none (phi0 = its phi, curvature 0, eta and z0 from its
                       // cluster's vertex estimate)
};

// x [N, 15] HEPT features (any device) -> [N, kSeedFeatures] float32 on x's device. Throws std::invalid_argument for
// another shape or a layer column (14) that is no layer index.
engine::Tensor triplet_seeds(const engine::Tensor& x, const SeedOptions& options = {});

}  // namespace data
