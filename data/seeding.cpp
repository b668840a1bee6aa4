// Triplet seeds (see seeding.h): doublets in a phi window around each hit, then the best-agreeing pair of doublets.
#include "data/seeding.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "data/features.h"
#include "engine/parallel.h"

namespace data {
namespace {

constexpr int kMaxLayers = 64;  // HEPT's pixel layers are 0..17

struct HitGeometry {
  std::vector<float> r, phi, z, z_cluster;  // [N] metres, rad, metres, metres (NaN: no cluster estimate)
  std::vector<int> layer;                   // [N]
};

// One doublet of a hit: its partner and the four track parameters, phi0 relative to the hit's own phi.
struct Doublet {
  int partner, partner_layer;
  float dphi0, curvature, cot_theta, z0;
};

// An angle difference in [-2 pi, 2 pi] brought into [-pi, pi].
float wrap_angle(float a) {
  constexpr float kPi = static_cast<float>(M_PI), kTwoPi = static_cast<float>(2 * M_PI);
  return a > kPi ? a - kTwoPi : a < -kPi ? a + kTwoPi : a;
}

HitGeometry hit_geometry(const engine::Tensor& x) {
  const std::vector<float> f = x.to(engine::DType::F32).contiguous().to_vector<float>();  // [N, 15]
  const std::vector<float> z0 = vertex_z_estimates(x.to(engine::Device::cpu()), VertexZMethod::SensorDepth)
                                    .to_vector<float>();  // [N], clamped to +-kVertexZRange
  const size_t n = z0.size();
  HitGeometry g;
  g.r.resize(n), g.phi.resize(n), g.z.resize(n), g.z_cluster.resize(n), g.layer.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float* h = &f[i * kHeptFeatures];
    g.r[i] = h[0], g.phi[i] = static_cast<float>(h[1] * M_PI), g.z[i] = h[2];
    g.layer[i] = static_cast<int>(std::lround(h[14] * 10));
    if (!(g.layer[i] >= 0 && g.layer[i] < kMaxLayers))  // (also NaN)
      throw std::invalid_argument(fmt::format("triplet_seeds: row {}: column 14 (layer / 10) is {}, not a layer 0..{}",
                                              i, h[14], kMaxLayers - 1));
    // Hits without cells (all cell features 0, so lz = 0) have no estimate, and the clamp marks those that say
    // nothing (end-cap hits at large |eta|).
    const bool informative = h[11] > 0 && std::fabs(z0[i]) < kVertexZRange * 0.999;
    g.z_cluster[i] = informative ? z0[i] : std::numeric_limits<float>::quiet_NaN();
  }
  return g;
}

bool within_cluster_window(float z0, float z_cluster, double window) {
  return std::isnan(z_cluster) || std::fabs(z0 - z_cluster) <= window;
}

// The hits of one layer sorted by phi, extended by the first ones again at phi + 2 pi so that a window crossing pi
// reads one contiguous range; their geometry copied alongside, so that the doublet search reads memory in order.
struct LayerHits {
  std::vector<float> phi, r, z, z_cluster;  // [M + wrap] phi ascending
  std::vector<int> hit;                     // [M + wrap] indices into HitGeometry
  float r_min = 0, r_max = 0;
};

std::vector<LayerHits> layers_by_phi(const HitGeometry& g, float phi_window) {
  const int n_layers = g.layer.empty() ? 0 : *std::max_element(g.layer.begin(), g.layer.end()) + 1;
  std::vector<LayerHits> layers(static_cast<size_t>(n_layers));
  std::vector<std::vector<int>> members(static_cast<size_t>(n_layers));
  for (int i = 0; i < static_cast<int>(g.r.size()); ++i) members[static_cast<size_t>(g.layer[i])].push_back(i);
  for (size_t l = 0; l < layers.size(); ++l) {
    std::vector<int>& m = members[l];
    if (m.empty()) continue;
    std::sort(m.begin(), m.end(), [&](int a, int b) { return g.phi[a] < g.phi[b]; });
    LayerHits& out = layers[l];
    for (int pass = 0; pass < 2; ++pass)
      for (int i : m) {
        const float phi = g.phi[i] + static_cast<float>(pass * 2 * M_PI);
        if (pass == 1 && phi > out.phi.front() + static_cast<float>(2 * M_PI) + 2 * phi_window) break;
        out.phi.push_back(phi), out.r.push_back(g.r[i]), out.z.push_back(g.z[i]);
        out.z_cluster.push_back(g.z_cluster[i]), out.hit.push_back(i);
      }
    const auto [lo, hi] = std::minmax_element(m.begin(), m.end(), [&](int a, int b) { return g.r[a] < g.r[b]; });
    out.r_min = g.r[*lo], out.r_max = g.r[*hi];
  }
  return layers;
}

// The doublets of hit i with the hits of the other layers inside the phi window its curvature limit allows. The
// curvature and vertex limits are tested before any division: |dphi| <= curvature |dr| / 2, |z0 dr| <= max_z0 |dr|.
void doublets_of(int i, const HitGeometry& g, const std::vector<LayerHits>& layers, const SeedOptions& o,
                 std::vector<Doublet>& out) {
  out.clear();
  const float r_i = g.r[i], z_i = g.z[i], phi_i = g.phi[i];
  const float max_curvature = static_cast<float>(o.max_curvature), max_z0 = static_cast<float>(o.max_vertex_z);
  const float min_dr = static_cast<float>(o.min_radial_gap), window_z = static_cast<float>(o.cluster_window);
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerHits& layer = layers[l];
    if (static_cast<int>(l) == g.layer[i] || layer.phi.empty()) continue;
    const float max_dr = std::max(std::fabs(layer.r_max - r_i), std::fabs(layer.r_min - r_i));
    const float window = max_curvature * max_dr / 2 + 1e-6f;
    float phi_lo = phi_i - window;
    if (phi_lo < layer.phi.front()) phi_lo += static_cast<float>(2 * M_PI);  // read the window from the wrapped copy
    const size_t end = layer.phi.size();
    size_t k = static_cast<size_t>(std::lower_bound(layer.phi.begin(), layer.phi.end(), phi_lo) - layer.phi.begin());
    for (; k < end && layer.phi[k] <= phi_lo + 2 * window; ++k) {
      const float dr = layer.r[k] - r_i, abs_dr = std::fabs(dr), dz = layer.z[k] - z_i;
      const float dphi = wrap_angle(layer.phi[k] - phi_i);
      if (abs_dr < min_dr || 2 * std::fabs(dphi) > max_curvature * abs_dr ||
          std::fabs(z_i * dr - r_i * dz) > max_z0 * abs_dr)
        continue;
      const float cot_theta = dz / dr, z0 = z_i - r_i * cot_theta, curvature = -2 * dphi / dr;  // phi0 - curvature r / 2
      if (!within_cluster_window(z0, g.z_cluster[i], window_z) || !within_cluster_window(z0, layer.z_cluster[k], window_z))
        continue;
      out.push_back({layer.hit[k], static_cast<int>(l), curvature * r_i / 2, curvature, cot_theta, z0});
    }
  }
}

// The closest pair of doublets with partners on different layers, if closer than max_chi2, else {-1, -1}. Doublets
// sorted by cot theta, so the inner loop stops once the cot theta difference alone exceeds the best distance (the
// most selective of the four: doublets spread over many sigma_cot_theta, while inner-layer hits' doublets all share
// phi0 within a few sigma_phi0).
std::pair<int, int> best_pair(std::vector<Doublet>& d, const SeedOptions& o) {
  std::sort(d.begin(), d.end(), [](const Doublet& a, const Doublet& b) { return a.cot_theta < b.cot_theta; });
  double best = o.max_chi2;
  std::pair<int, int> pair{-1, -1};
  for (size_t a = 0; a < d.size(); ++a) {
    for (size_t b = a + 1; b < d.size(); ++b) {
      const double dc = (d[b].cot_theta - d[a].cot_theta) / o.sigma_cot_theta;
      if (dc * dc >= best) break;
      if (d[a].partner_layer == d[b].partner_layer) continue;
      const double dp = (d[b].dphi0 - d[a].dphi0) / o.sigma_phi0;
      const double dk = (d[b].curvature - d[a].curvature) / o.sigma_curvature;
      const double dz = (d[b].z0 - d[a].z0) / o.sigma_z0;
      const double chi2 = dp * dp + dk * dk + dc * dc + dz * dz;
      if (chi2 < best) best = chi2, pair = {static_cast<int>(a), static_cast<int>(b)};
    }
  }
  return pair;
}

}  // namespace

engine::Tensor triplet_seeds(const engine::Tensor& x, const SeedOptions& options) {
  if (x.dim() != 2 || x.size(1) != kHeptFeatures)
    throw std::invalid_argument(fmt::format("triplet_seeds: x must be [N, {}] HEPT features", kHeptFeatures));
  const HitGeometry g = hit_geometry(x);
  const int n = static_cast<int>(g.r.size());
  const auto [r_min, r_max] = std::minmax_element(g.r.begin(), g.r.end());
  const float r_span = n > 0 ? *r_max - *r_min : 0.0f;
  const std::vector<LayerHits> layers = layers_by_phi(g, static_cast<float>(options.max_curvature) * r_span / 2);

  std::vector<float> out(static_cast<size_t>(n) * kSeedFeatures);  // [N, kSeedFeatures]
  engine::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    std::vector<Doublet> doublets;
    for (int i = static_cast<int>(begin); i < end; ++i) {
      doublets_of(i, g, layers, options, doublets);
      const auto [a, b] = best_pair(doublets, options);
      float* s = &out[static_cast<size_t>(i) * kSeedFeatures];
      if (a >= 0) {
        const Doublet &da = doublets[static_cast<size_t>(a)], &db = doublets[static_cast<size_t>(b)];
        const double cot_theta = (da.cot_theta + db.cot_theta) / 2;
        s[kSeedPhi0] = static_cast<float>(wrap_angle(g.phi[i] + (da.dphi0 + db.dphi0) / 2) / M_PI);
        s[kSeedCurvature] = (da.curvature + db.curvature) / 2;
        s[kSeedEta] = static_cast<float>(std::asinh(cot_theta));
        s[kSeedZ0] = (da.z0 + db.z0) / 2;
        s[kSeedFound] = 1;
      } else {
        const float z0 = std::isnan(g.z_cluster[i]) ? 0.f : g.z_cluster[i];
        s[kSeedPhi0] = static_cast<float>(g.phi[i] / M_PI);
        s[kSeedCurvature] = 0;
        s[kSeedEta] = static_cast<float>(std::asinh((g.z[i] - z0) / g.r[i]));
        s[kSeedZ0] = z0;
        s[kSeedFound] = 0;
      }
    }
  });
  return engine::from_vector(out, {static_cast<int64_t>(n), static_cast<int64_t>(kSeedFeatures)}).to(x.device());
}

}  // namespace data
