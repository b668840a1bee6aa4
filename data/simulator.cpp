// TrackML event simulator (see simulator.h): event generation, helix propagation through the module planes,
// material effects, digitisation, noise, hit ordering and truth.
#include "data/simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

namespace data::sim {

namespace {

using std::numbers::pi;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kStepEps = 1e-4;  // mm: a crossing must be this far along the path to count as the next one

double wrap_phi(double phi) { return phi - 2 * pi * std::floor((phi + pi) / (2 * pi)); }

bool is_pixel_volume(int32_t volume) { return volume == 7 || volume == 8 || volume == 9; }

Vec3 normal_of(const Module& m) { return {m.rot[0][2], m.rot[1][2], m.rot[2][2]}; }

// The 8 corners of a module box (trapezoid x thickness) in global coordinates.
std::array<Vec3, 8> corners(const Module& m) {
  std::array<Vec3, 8> out;
  int k = 0;
  for (double sv : {-1.0, 1.0}) {
    const double hu = sv < 0 ? m.min_hu : m.max_hu;
    for (double su : {-1.0, 1.0}) {
      for (double sw : {-1.0, 1.0}) out[k++] = m.to_global({su * hu, sv * m.hv, sw * m.thickness / 2});
    }
  }
  return out;
}

}  // namespace

// Outside the anonymous namespace: Simulator::Geometry (declared in the header) holds these.
// One detector layer: a barrel cylinder or an endcap disk, with its modules binned in phi x (z or r).
struct LayerIndex {
  int32_t volume = 0, layer = 0;
  bool barrel = true;
  double nominal = 0;    // barrel: mean radius of the module centres; disk: mean z
  double lo = kInf, hi = -kInf;  // barrel: z extent; disk: r extent (module corners)
  double spread = 0;     // largest distance of a corner from the nominal surface (along r or z)
  static constexpr int kPhiBins = 256, kBins = 64;
  std::vector<std::vector<uint32_t>> bins = std::vector<std::vector<uint32_t>>(kPhiBins * kBins);

  int phi_bin(double phi) const {
    const int b = int(std::floor((phi + pi) / (2 * pi) * kPhiBins));
    return ((b % kPhiBins) + kPhiBins) % kPhiBins;
  }
  int coord_bin(double x) const {
    return std::clamp(int(std::floor((x - lo) / (hi - lo) * kBins)), 0, kBins - 1);
  }
  // Calls f(bin) for every bin of the window (phi in [phi0, phi1], coordinate in [c0, c1]).
  template <class F> void for_window(double phi0, double phi1, double c0, double c1, F&& f) const {
    const int np = std::min(kPhiBins, int(std::floor((phi1 - phi0) / (2 * pi) * kPhiBins)) + 2);
    const int p0 = phi_bin(phi0), b0 = coord_bin(c0), b1 = coord_bin(c1);
    for (int i = 0; i < np; ++i) {
      for (int b = b0; b <= b1; ++b) f(((p0 + i) % kPhiBins) * kBins + b);
    }
  }
  void insert(uint32_t index, const Module& m) {
    const double phic = std::atan2(m.center[1], m.center[0]);
    double dmin = kInf, dmax = -kInf, cmin = kInf, cmax = -kInf;
    for (const Vec3& c : corners(m)) {
      const double d = wrap_phi(std::atan2(c[1], c[0]) - phic);
      dmin = std::min(dmin, d);
      dmax = std::max(dmax, d);
      const double x = barrel ? c[2] : std::hypot(c[0], c[1]);
      cmin = std::min(cmin, x);
      cmax = std::max(cmax, x);
    }
    for_window(phic + dmin - 1e-3, phic + dmax + 1e-3, cmin - 0.1, cmax + 0.1, [&](int bin) {
      auto& v = bins[bin];
      if (v.empty() || v.back() != index) v.push_back(index);
    });
  }
};

namespace {

struct GenParticle {
  int64_t id = 0;
  int32_t pdg = 0;
  Track start;  // production vertex and momentum
  int32_t nhits = 0;
};

struct RawHit {
  uint32_t module = 0;
  int64_t particle = -1;  // index into the generated particles, -1 = noise
  Vec3 truth{}, momentum{};
  Cluster cluster;
};

Track make_track(const Vec3& vertex, double pt, double eta, double phi, int charge, double mass) {
  Track t;
  t.pos = vertex;
  const double pz = pt * std::sinh(eta);
  t.p = std::hypot(pt, pz);
  t.dir = {pt * std::cos(phi) / t.p, pt * std::sin(phi) / t.p, pz / t.p};
  t.charge = charge;
  t.mass = mass;
  return t;
}

}  // namespace

struct Simulator::Geometry {
  std::vector<LayerIndex> layers;
  std::vector<uint32_t> noise_modules;  // modules of the active volumes
  double r_envelope = 0, z_envelope = 0;
};

Simulator::Simulator(const Detector& detector, const SimConfig& config)
    : detector_(detector), config_(config), geometry_(std::make_unique<Geometry>()) {
  if (config.mu < 0) throw std::invalid_argument(fmt::format("Simulator: mu must be >= 0 (got {})", config.mu));
  if (config.noise_fraction < 0 || config.noise_fraction >= 1) {
    throw std::invalid_argument(fmt::format("Simulator: noise_fraction must be in [0, 1) (got {})", config.noise_fraction));
  }
  if (!(config.sigma_z >= 0) || !(config.sigma_xy >= 0)) {
    throw std::invalid_argument(fmt::format(
        "Simulator: the luminous region's sigma_z and sigma_xy must be >= 0 (got {}, {})", config.sigma_z,
        config.sigma_xy));
  }
  const auto& mods = detector.modules();
  std::map<std::pair<int32_t, int32_t>, std::vector<uint32_t>> by_layer;
  for (uint32_t i = 0; i < mods.size(); ++i) {
    if (config.pixel_only && !is_pixel_volume(mods[i].volume_id)) continue;
    by_layer[{mods[i].volume_id, mods[i].layer_id}].push_back(i);
    geometry_->noise_modules.push_back(i);
  }
  if (by_layer.empty()) throw std::invalid_argument("Simulator: the detector has no modules in the active volumes");
  for (const auto& [key, idx] : by_layer) {
    LayerIndex L;
    L.volume = key.first;
    L.layer = key.second;
    L.barrel = std::abs(mods[idx[0]].rot[2][2]) < 0.5;  // normal across z: barrel
    for (uint32_t i : idx) L.nominal += L.barrel ? std::hypot(mods[i].center[0], mods[i].center[1]) : mods[i].center[2];
    L.nominal /= double(idx.size());
    for (uint32_t i : idx) {
      for (const Vec3& c : corners(mods[i])) {
        const double r = std::hypot(c[0], c[1]), x = L.barrel ? c[2] : r;
        L.lo = std::min(L.lo, x);
        L.hi = std::max(L.hi, x);
        L.spread = std::max(L.spread, std::abs((L.barrel ? r : c[2]) - L.nominal));
        geometry_->r_envelope = std::max(geometry_->r_envelope, r);
        geometry_->z_envelope = std::max(geometry_->z_envelope, std::abs(c[2]));
      }
    }
    for (uint32_t i : idx) L.insert(i, mods[i]);
    geometry_->layers.push_back(std::move(L));
  }
  geometry_->r_envelope += 5;
  geometry_->z_envelope += 5;
}

Simulator::~Simulator() = default;

namespace {

// Everything one event needs while it is being built.
class EventBuilder {
 public:
  EventBuilder(const Detector& det, const SimConfig& cfg, const std::vector<LayerIndex>& layers,
               const std::vector<uint32_t>& noise_modules, double r_env, double z_env, uint64_t seed)
      : det_(det), cfg_(cfg), layers_(layers), noise_modules_(noise_modules), r_env_(r_env), z_env_(z_env),
        rng_(seed) {}

  Event build(int64_t event_id);

 private:
  void generate_collisions();
  void add_jets(const Vec3& vertex, int64_t vertex_id, int64_t& primary);
  void add_particle(int64_t id, const Vec3& vertex, double pt, double eta, double phi);
  void propagate(size_t index);
  std::pair<int, double> next_layer(const Helix& h) const;
  void hit_layer(const LayerIndex& L, const Helix& h, double s_nom, const Track& t, size_t particle,
                 std::vector<uint32_t>& hit);
  void traverse_material(Track& t, const std::vector<uint32_t>& modules, size_t particle);
  void interact(size_t parent, const Track& at);
  void add_noise();
  Event assemble(int64_t event_id);

  const Detector& det_;
  const SimConfig& cfg_;
  const std::vector<LayerIndex>& layers_;
  const std::vector<uint32_t>& noise_modules_;
  double r_env_, z_env_;
  Rng rng_;
  std::vector<GenParticle> particles_;
  std::vector<RawHit> hits_;
  std::map<int64_t, int64_t> next_secondary_;  // (vertex, primary) bits of a lineage -> next secondary id
  std::vector<uint32_t> candidates_;           // scratch: modules near a layer crossing
};

void EventBuilder::add_particle(int64_t id, const Vec3& vertex, double pt, double eta, double phi) {
  const int charge = rng_.uniform() < 0.55 ? 1 : -1;
  const Species sp = sample_species(rng_, charge);
  particles_.push_back({id, sp.pdg, make_track(vertex, pt, eta, phi, charge, sp.mass), 0});
}

void EventBuilder::add_jets(const Vec3& vertex, int64_t vertex_id, int64_t& primary) {
  const int njets = 2 + rng_.poisson(1.0);
  const double phi0 = rng_.uniform(-pi, pi);
  for (int j = 0; j < njets; ++j) {
    const double ptj = std::min(1000.0, 30 * std::pow(1 - rng_.uniform(), -1.0 / 3));  // dN/dpT ~ pT^-4
    const double etaj = rng_.uniform(-2.5, 2.5);
    const double phij = j == 0 ? phi0 : j == 1 ? phi0 + pi + 0.2 * rng_.normal() : rng_.uniform(-pi, pi);
    const int nch = 1 + rng_.poisson(3 + 3 * std::log(ptj / 10));
    std::vector<double> z(nch);
    double zsum = 0;
    for (double& x : z) zsum += (x = rng_.gamma(0.6));
    for (double x : z) {
      const double pt = 0.6 * ptj * x / zsum;  // charged particles carry ~60% of the jet
      if (pt < cfg_.min_pt) continue;
      add_particle(encode_particle_id(vertex_id, ++primary, 0, 0, 0), vertex, pt, etaj + 0.1 * rng_.normal(),
                   phij + 0.1 * rng_.normal());
    }
  }
}

void EventBuilder::generate_collisions() {
  const int n = rng_.poisson(cfg_.mu) + (cfg_.hard_scatter ? 1 : 0);
  for (int v = 0; v < n; ++v) {
    const Vec3 vertex = {cfg_.sigma_xy * rng_.normal(), cfg_.sigma_xy * rng_.normal(), cfg_.sigma_z * rng_.normal()};
    int64_t primary = 0;
    if (v == 0 && cfg_.hard_scatter) add_jets(vertex, v + 1, primary);
    const int nch = rng_.negative_binomial(cfg_.tracks_per_collision, cfg_.multiplicity_k);
    for (int i = 0; i < nch; ++i) {
      const double pt = sample_minbias_pt(rng_);
      if (pt < cfg_.min_pt) continue;
      add_particle(encode_particle_id(v + 1, ++primary, 0, 0, 0), vertex, pt, sample_minbias_eta(rng_, cfg_.eta_max),
                   rng_.uniform(-pi, pi));
    }
  }
}

// The nearest layer surface ahead (layer index, path length), or -1 when the particle leaves the tracker first.
std::pair<int, double> EventBuilder::next_layer(const Helix& h) const {
  double best_s = kInf;
  for (double s : h.cylinder_crossings(r_env_, kStepEps)) best_s = std::min(best_s, s);
  for (double z : {-z_env_, z_env_}) {
    if (auto s = h.z_crossing(z, kStepEps)) best_s = std::min(best_s, *s);
  }
  int best = -1;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerIndex& L = layers_[i];
    if (L.barrel) {
      for (double s : h.cylinder_crossings(L.nominal, kStepEps)) {
        if (s >= best_s) continue;
        const double z = h.position(s)[2];
        if (z >= L.lo && z <= L.hi) best = int(i), best_s = s;
      }
    } else if (auto s = h.z_crossing(L.nominal, kStepEps); s && *s < best_s) {
      const Vec3 p = h.position(*s);
      const double r = std::hypot(p[0], p[1]);
      if (r >= L.lo && r <= L.hi) best = int(i), best_s = *s;
    }
  }
  return {best, best_s};
}

// Hits of the track on the modules of layer L around its nominal crossing s_nom; appends the modules hit.
void EventBuilder::hit_layer(const LayerIndex& L, const Helix& h, double s_nom, const Track& t, size_t particle,
                             std::vector<uint32_t>& hit) {
  const Vec3 x = h.position(s_nom), d = h.direction(s_nom);
  const double r = std::max(std::hypot(x[0], x[1]), 1.0), phi = std::atan2(x[1], x[0]);
  const double tr = (x[0] * d[0] + x[1] * d[1]) / r, tphi = (x[0] * d[1] - x[1] * d[0]) / r;
  // How far along the path the module planes can be from the nominal surface, and the window that covers it.
  const double ds = std::min((L.spread + 0.5) / std::max(L.barrel ? std::abs(tr) : std::abs(d[2]), 0.02), 300.0);
  const double dphi = std::min((std::abs(tphi) * ds + 1) / r, pi);
  const double c = L.barrel ? x[2] : r, dc = (L.barrel ? std::abs(d[2]) : std::abs(tr)) * ds + 1;
  candidates_.clear();
  L.for_window(phi - dphi, phi + dphi, c - dc, c + dc,
               [&](int bin) { candidates_.insert(candidates_.end(), L.bins[bin].begin(), L.bins[bin].end()); });
  std::sort(candidates_.begin(), candidates_.end());
  candidates_.erase(std::unique(candidates_.begin(), candidates_.end()), candidates_.end());
  for (uint32_t m : candidates_) {
    const Module& mod = det_.modules()[m];
    const auto s = h.plane_crossing(mod.center, normal_of(mod), s_nom);
    if (!s || *s <= kStepEps || std::abs(*s - s_nom) > ds + 1) continue;
    const Vec3 pos = h.position(*s);
    const Vec3 loc = mod.to_local(pos);
    if (!mod.contains_local(loc[0], loc[1])) continue;
    const Vec3 dir = h.direction(*s);
    Vec3 ldir;
    for (int k = 0; k < 3; ++k) ldir[k] = mod.rot[0][k] * dir[0] + mod.rot[1][k] * dir[1] + mod.rot[2][k] * dir[2];
    hits_.push_back({m, int64_t(particle), pos, {t.p * dir[0], t.p * dir[1], t.p * dir[2]},
                     digitize(mod, loc[0], loc[1], ldir, cfg_.bz, cfg_.digitize, rng_)});
    ++particles_[particle].nhits;
    hit.push_back(m);
  }
}

// Multiple scattering, energy loss and material interactions after crossing the given modules.
void EventBuilder::traverse_material(Track& t, const std::vector<uint32_t>& modules, size_t particle) {
  double x = 0;
  for (uint32_t m : modules) {
    const Module& mod = det_.modules()[m];
    const Vec3 n = normal_of(mod);
    const double cosine = std::abs(n[0] * t.dir[0] + n[1] * t.dir[1] + n[2] * t.dir[2]);
    x += mod.thickness / std::max(cosine, 0.05);
  }
  x *= cfg_.material_scale;
  scatter(t, highland_theta0(t.p, t.mass, t.charge, x, kSiliconX0), rng_);
  if (cfg_.energy_loss) lose_energy(t, x);
  for (size_t k = 0; k < modules.size(); ++k) {
    if (rng_.uniform() < cfg_.secondary_rate) interact(particle, t);
  }
}

// A material interaction: 1 + Poisson(0.8) soft charged secondaries around the parent direction.
void EventBuilder::interact(size_t parent, const Track& at) {
  const int64_t pid = particles_[parent].id;
  const int64_t generation = particle_generation(pid) + 1;
  if (generation > 3) return;
  const int64_t lineage = pid >> 36;  // vertex and primary fields
  const double eta = std::asinh(at.dir[2] / std::max(std::hypot(at.dir[0], at.dir[1]), 1e-9));
  const double phi = std::atan2(at.dir[1], at.dir[0]);
  const int n = 1 + rng_.poisson(0.8);
  for (int k = 0; k < n; ++k) {
    const int64_t secondary = ++next_secondary_[lineage];
    if (secondary >= 4096) return;
    const int64_t id = encode_particle_id(lineage >> 16, lineage & 0xffff, generation, secondary, 1);
    add_particle(id, at.pos, cfg_.min_pt + rng_.exponential(0.15), eta + 0.5 * rng_.normal(),
                 phi + 0.5 * rng_.normal());
  }
}

// Follows particle `index` from its vertex through the layers until it leaves, stops or has looped max_turns.
void EventBuilder::propagate(size_t index) {
  Track t = particles_[index].start;
  const double max_angle = cfg_.max_turns * 2 * pi;
  double turned = 0;
  std::vector<uint32_t> modules;
  for (int crossing = 0; crossing < 1000; ++crossing) {
    const Helix h(t, cfg_.bz);
    const auto [layer, s] = next_layer(h);
    if (layer < 0) return;
    turned += std::abs(h.omega()) * s;
    if (turned > max_angle) return;
    modules.clear();
    hit_layer(layers_[layer], h, s, t, index, modules);
    advance(t, h, s);
    if (!modules.empty()) traverse_material(t, modules, index);
    if (t.p < 0.01 || t.pt() < 0.02) return;
  }
}

// Noise: uniform over the active modules and over each module's area, a short cluster around the normal.
void EventBuilder::add_noise() {
  const auto n = size_t(std::llround(cfg_.noise_fraction / (1 - cfg_.noise_fraction) * double(hits_.size())));
  for (size_t i = 0; i < n; ++i) {
    const uint32_t m = noise_modules_[size_t(rng_.uniform() * double(noise_modules_.size()))];
    const Module& mod = det_.modules()[m];
    double u, v;
    do {
      u = rng_.uniform(-mod.max_hu, mod.max_hu);
      v = rng_.uniform(-mod.hv, mod.hv);
    } while (!mod.contains_local(u, v));
    Vec3 dir = {0.3 * rng_.normal(), 0.3 * rng_.normal(), 1.0};
    const double n2 = std::sqrt(dir[0] * dir[0] + dir[1] * dir[1] + 1.0);
    for (double& c : dir) c /= n2;
    Cluster cl = digitize(mod, u, v, dir, cfg_.bz, cfg_.digitize, rng_);
    const Vec3 pos = mod.to_global({cl.u, cl.v, 0.0});
    hits_.push_back({m, -1, pos, {0, 0, 0}, std::move(cl)});
  }
}

// The TrackML tables: hits sorted by (volume, layer, module), hit ids 1..N, truth in hit order, cells, particles.
Event EventBuilder::assemble(int64_t event_id) {
  const auto& mods = det_.modules();
  std::vector<size_t> order(hits_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Module &ma = mods[hits_[a].module], &mb = mods[hits_[b].module];
    return std::tie(ma.volume_id, ma.layer_id, ma.module_id) < std::tie(mb.volume_id, mb.layer_id, mb.module_id);
  });
  Event ev;
  ev.event_id = event_id;
  for (size_t k = 0; k < order.size(); ++k) {
    const RawHit& h = hits_[order[k]];
    const Module& mod = mods[h.module];
    const int64_t hit_id = int64_t(k + 1);
    const Vec3 pos = mod.to_global({h.cluster.u, h.cluster.v, 0.0});
    ev.hits.hit_id.push_back(hit_id);
    ev.hits.x.push_back(float(pos[0]));
    ev.hits.y.push_back(float(pos[1]));
    ev.hits.z.push_back(float(pos[2]));
    ev.hits.volume_id.push_back(mod.volume_id);
    ev.hits.layer_id.push_back(mod.layer_id);
    ev.hits.module_id.push_back(mod.module_id);
    ev.truth.hit_id.push_back(hit_id);
    ev.truth.particle_id.push_back(h.particle < 0 ? 0 : particles_[size_t(h.particle)].id);
    ev.truth.tx.push_back(float(h.truth[0]));
    ev.truth.ty.push_back(float(h.truth[1]));
    ev.truth.tz.push_back(float(h.truth[2]));
    ev.truth.tpx.push_back(float(h.momentum[0]));
    ev.truth.tpy.push_back(float(h.momentum[1]));
    ev.truth.tpz.push_back(float(h.momentum[2]));
    for (size_t c = 0; c < h.cluster.size(); ++c) {
      ev.cells.hit_id.push_back(hit_id);
      ev.cells.ch0.push_back(h.cluster.ch0[c]);
      ev.cells.ch1.push_back(h.cluster.ch1[c]);
      ev.cells.value.push_back(h.cluster.value[c]);
    }
  }
  for (const GenParticle& p : particles_) {
    const Vec3 mom = p.start.momentum();
    ev.particles.particle_id.push_back(p.id);
    ev.particles.particle_type.push_back(p.pdg);
    ev.particles.vx.push_back(float(p.start.pos[0]));
    ev.particles.vy.push_back(float(p.start.pos[1]));
    ev.particles.vz.push_back(float(p.start.pos[2]));
    ev.particles.px.push_back(float(mom[0]));
    ev.particles.py.push_back(float(mom[1]));
    ev.particles.pz.push_back(float(mom[2]));
    ev.particles.q.push_back(p.start.charge);
    ev.particles.nhits.push_back(p.nhits);
  }
  compute_weights(ev.truth, ev.particles, cfg_.primaries_only_weights);
  return ev;
}

Event EventBuilder::build(int64_t event_id) {
  generate_collisions();
  for (size_t i = 0; i < particles_.size(); ++i) propagate(i);  // secondaries are appended and followed too
  add_noise();
  return assemble(event_id);
}

}  // namespace

Event Simulator::simulate(int64_t event_id) const {
  EventBuilder builder(detector_, config_, geometry_->layers, geometry_->noise_modules, geometry_->r_envelope,
                       geometry_->z_envelope, event_seed(config_.seed, event_id));
  return builder.build(event_id);
}

}  // namespace data::sim
