// Physics building blocks of the TrackML event simulator (see physics.h): random numbers, helices, material
// effects, spectra, particle ids and the official per-hit weights.
#include "data/physics.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

namespace data::sim {

namespace {
using std::numbers::pi;

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

// ---- Rng ------------------------------------------------------------------------------------------------------

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return double(next() >> 11) * 0x1.0p-53; }
double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double Rng::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * pi * uniform());
}

double Rng::exponential(double mean) { return -mean * std::log(1.0 - uniform()); }

double Rng::gamma(double shape) {
  if (shape < 1) return gamma(shape + 1) * std::pow(1.0 - uniform(), 1.0 / shape);
  const double d = shape - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    const double x = normal(), v0 = 1 + c * x;
    if (v0 <= 0) continue;
    const double v = v0 * v0 * v0, u = 1.0 - uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

int Rng::poisson(double mean) {
  if (mean <= 0) return 0;
  if (mean > 50) return std::max(0, int(std::lround(mean + std::sqrt(mean) * normal())));
  const double limit = std::exp(-mean);
  int n = 0;
  for (double prod = uniform(); prod > limit; prod *= uniform()) ++n;
  return n;
}

int Rng::negative_binomial(double mean, double k) { return poisson(gamma(k) * mean / k); }

uint64_t event_seed(uint64_t seed, int64_t event_id) {
  uint64_t x = seed ^ (uint64_t(event_id) * 0xd1b54a32d192ed03ULL);
  splitmix64(x);
  return splitmix64(x);
}

// ---- Species and spectra --------------------------------------------------------------------------------------

Species sample_species(Rng& rng, int charge) {
  const double u = rng.uniform();
  const int s = charge > 0 ? 1 : -1;
  if (u < 0.78) return {211 * s, 0.13957};
  if (u < 0.91) return {2212 * s, 0.93827};
  if (u < 0.99) return {321 * s, 0.49368};
  if (u < 0.995) return {-11 * s, 0.000511};  // e- has PDG +11
  return {-13 * s, 0.10566};
}

double sample_minbias_pt(Rng& rng, double tail_exponent) {
  // Quantiles of pT (GeV) in the real event 1001.
  static constexpr double q[] = {0.0, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.99};
  static constexpr double pt[] = {0.100, 0.123, 0.146, 0.215, 0.355, 0.614, 1.009, 2.573};
  constexpr int n = int(std::size(q));
  const double u = rng.uniform();
  if (u >= q[n - 1]) return pt[n - 1] * std::pow((1 - u) / (1 - q[n - 1]), -1 / tail_exponent);  // power-law tail
  int i = 0;
  while (u >= q[i + 1]) ++i;
  const double f = (u - q[i]) / (q[i + 1] - q[i]);
  return pt[i] * std::pow(pt[i + 1] / pt[i], f);  // log-linear between quantiles
}

double sample_minbias_eta(Rng& rng, double eta_max) {
  for (;;) {
    const double a = rng.uniform(0, eta_max);
    if (rng.uniform() * 1.0 <= 0.42 + 0.58 * std::exp(-a)) return rng.uniform() < 0.5 ? -a : a;
  }
}

// ---- Track and helix ------------------------------------------------------------------------------------------

double Track::pt() const { return p * std::hypot(dir[0], dir[1]); }

Helix::Helix(const Track& t, double bz) : pos0_(t.pos), dir0_(t.dir), omega_(-t.charge * kCLight * bz / t.p) {
  if (omega_ != 0) {
    xc_ = pos0_[0] - dir0_[1] / omega_;
    yc_ = pos0_[1] + dir0_[0] / omega_;
    rt_ = std::hypot(dir0_[0], dir0_[1]) / std::abs(omega_);
  }
}

Vec3 Helix::position(double s) const {
  const double a = omega_ * s;
  if (std::abs(a) < 1e-9) return {pos0_[0] + dir0_[0] * s, pos0_[1] + dir0_[1] * s, pos0_[2] + dir0_[2] * s};
  const double sn = std::sin(a) / omega_, cm = -2 * std::sin(a / 2) * std::sin(a / 2) / omega_;  // (cos a - 1)/w
  return {pos0_[0] + dir0_[0] * sn + dir0_[1] * cm, pos0_[1] + dir0_[1] * sn - dir0_[0] * cm, pos0_[2] + dir0_[2] * s};
}

Vec3 Helix::direction(double s) const {
  const double c = std::cos(omega_ * s), sn = std::sin(omega_ * s);
  return {dir0_[0] * c - dir0_[1] * sn, dir0_[0] * sn + dir0_[1] * c, dir0_[2]};
}

std::vector<double> Helix::cylinder_crossings(double radius, double s_min) const {
  std::vector<double> out;
  if (omega_ == 0) return out;
  const double d = std::hypot(xc_, yc_);
  if (d < 1e-9 || d > radius + rt_ || d < std::abs(radius - rt_)) return out;
  const double a = (radius * radius - rt_ * rt_ + d * d) / (2 * d);
  const double h = std::sqrt(std::max(0.0, radius * radius - a * a));
  const double ex = xc_ / d, ey = yc_ / d;
  const double alpha0 = std::atan2(pos0_[1] - yc_, pos0_[0] - xc_);
  for (int sign : {-1, 1}) {
    const double px = a * ex - sign * h * ey, py = a * ey + sign * h * ex;
    double dalpha = std::atan2(py - yc_, px - xc_) - alpha0;
    if (omega_ < 0) dalpha = -dalpha;
    dalpha = std::fmod(dalpha + 4 * pi, 2 * pi);
    const double s = dalpha / std::abs(omega_);
    if (s > s_min) out.push_back(s);
  }
  return out;
}

std::optional<double> Helix::z_crossing(double z, double s_min) const {
  if (dir0_[2] == 0) return std::nullopt;
  const double s = (z - pos0_[2]) / dir0_[2];
  if (s > s_min) return s;
  return std::nullopt;
}

std::optional<double> Helix::plane_crossing(const Vec3& c, const Vec3& n, double s_guess) const {
  double s = s_guess;
  for (int it = 0; it < 10; ++it) {
    const Vec3 x = position(s), t = direction(s);
    const double f = n[0] * (x[0] - c[0]) + n[1] * (x[1] - c[1]) + n[2] * (x[2] - c[2]);
    const double df = n[0] * t[0] + n[1] * t[1] + n[2] * t[2];
    if (std::abs(f) < 1e-7) return s;
    if (std::abs(df) < 1e-6) return std::nullopt;
    s -= f / df;
  }
  return std::nullopt;
}

void advance(Track& t, const Helix& h, double s) {
  t.pos = h.position(s);
  t.dir = h.direction(s);
}

// ---- Material -------------------------------------------------------------------------------------------------

double highland_theta0(double p, double mass, int charge, double x, double x0) {
  if (x <= 0) return 0;
  const double e = std::hypot(p, mass), beta = p / e, xr = x / x0;
  const double z2 = double(charge) * charge;
  return 0.0136 / (beta * p) * std::abs(charge) * std::sqrt(xr) * (1 + 0.038 * std::log(xr * z2 / (beta * beta)));
}

void scatter(Track& t, double theta0, Rng& rng) {
  if (theta0 <= 0) return;
  // Orthonormal basis (a, b) perpendicular to the direction.
  const Vec3& d = t.dir;
  Vec3 a = std::abs(d[2]) < 0.9 ? Vec3{-d[1], d[0], 0} : Vec3{0, -d[2], d[1]};
  const double na = std::sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
  for (auto& x : a) x /= na;
  const Vec3 b = {d[1] * a[2] - d[2] * a[1], d[2] * a[0] - d[0] * a[2], d[0] * a[1] - d[1] * a[0]};
  const double ta = theta0 * rng.normal(), tb = theta0 * rng.normal();
  Vec3 nd;
  for (int i = 0; i < 3; ++i) nd[i] = d[i] + ta * a[i] + tb * b[i];
  const double n = std::sqrt(nd[0] * nd[0] + nd[1] * nd[1] + nd[2] * nd[2]);
  for (int i = 0; i < 3; ++i) t.dir[i] = nd[i] / n;
}

void lose_energy(Track& t, double x) {
  const double e = std::hypot(t.p, t.mass), beta2 = (t.p / e) * (t.p / e);
  const double de = 0.39e-3 * x / std::max(beta2, 0.05);  // GeV
  const double e_new = e - de;
  t.p = e_new > t.mass ? std::sqrt(e_new * e_new - t.mass * t.mass) : 0.0;
}

// ---- Ids and weights ------------------------------------------------------------------------------------------

int64_t encode_particle_id(int64_t vertex, int64_t primary, int64_t generation, int64_t secondary, int64_t process) {
  auto check = [](int64_t v, int bits, const char* name) {
    if (v < 0 || v >= (int64_t(1) << bits)) {
      throw std::invalid_argument(fmt::format("encode_particle_id: {} = {} does not fit in {} bits", name, v, bits));
    }
  };
  check(vertex, 11, "vertex");  // 12 bits, kept below bit 63 so the id stays a positive int64
  check(primary, 16, "primary");
  check(generation, 12, "generation");
  check(secondary, 12, "secondary");
  check(process, 12, "process");
  return (vertex << 52) | (primary << 36) | (generation << 24) | (secondary << 12) | process;
}

int64_t particle_generation(int64_t particle_id) { return (particle_id >> 24) & 0xfff; }

double weight_pt(double pt) {
  if (pt < 0.05) return 0;
  if (pt < 0.5) return 0.2;
  if (pt < 3) return 0.2 + 0.8 * (pt - 0.5) / 2.5;
  return 1;
}

double weight_order(int rank, int nhits) {
  static constexpr double profile[] = {10, 8, 6, 5, 3, 3, 3, 5, 6};
  constexpr int np = int(std::size(profile));
  nhits = std::min(nhits, 20);
  if (nhits < 4 || rank < 0 || rank >= nhits) return 0;
  auto interp = [&](int i) {  // profile stretched linearly onto nhits slots
    const double x = double(i) * (np - 1) / (nhits - 1);
    const int k = std::min(int(x), np - 2);
    return profile[k] + (profile[k + 1] - profile[k]) * (x - k);
  };
  double sum = 0;
  for (int i = 0; i < nhits; ++i) sum += interp(i);
  return interp(rank) / sum;
}

void compute_weights(Truth& truth, const Particles& particles, bool primaries_only) {
  std::unordered_map<int64_t, size_t> row;
  for (size_t i = 0; i < particles.size(); ++i) row.emplace(particles.particle_id[i], i);
  // Hits of each particle, ranked by |tz - vz|.
  std::unordered_map<int64_t, std::vector<size_t>> hits_of;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth.particle_id[i] != 0) hits_of[truth.particle_id[i]].push_back(i);
  }
  truth.weight.assign(truth.size(), 0.0f);
  std::vector<double> w(truth.size(), 0.0);
  double total = 0;
  for (auto& [pid, idx] : hits_of) {
    const auto it = row.find(pid);
    if (it == row.end()) throw std::invalid_argument(fmt::format("compute_weights: particle {} not in particles", pid));
    const size_t r = it->second;
    if (primaries_only && particle_generation(pid) != 0) continue;
    const double vz = particles.vz[r], wpt = weight_pt(std::hypot(particles.px[r], particles.py[r]));
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      return std::abs(truth.tz[a] - vz) < std::abs(truth.tz[b] - vz);
    });
    for (size_t k = 0; k < idx.size(); ++k) {
      w[idx[k]] = wpt * weight_order(int(k), particles.nhits[r]);
      total += w[idx[k]];
    }
  }
  if (total <= 0) return;
  for (size_t i = 0; i < w.size(); ++i) truth.weight[i] = float(w[i] / total);
}

}  // namespace data::sim
