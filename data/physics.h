// Physics building blocks of the TrackML event simulator: a portable seeded random generator, helix motion in a
// solenoid field (Bz), multiple scattering (Highland) and ionisation energy loss, particle species and spectra tuned
// to the real TrackML events, the TrackML particle_id bit layout and the official per-hit weights.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "data/event.h"

namespace data::sim {

using Vec3 = std::array<double, 3>;

// xoshiro256** seeded through splitmix64: identical streams on every platform and compiler (the standard
// library distributions are implementation-defined, so every distribution below is written out).
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();                  // [0, 1)
  double uniform(double lo, double hi);
  double normal();                   // N(0, 1), Box-Muller
  double exponential(double mean);
  double gamma(double shape);        // Marsaglia-Tsang, unit scale
  int poisson(double mean);
  int negative_binomial(double mean, double k);  // gamma-Poisson mixture, variance mean + mean^2 / k

 private:
  uint64_t s_[4];
};

// Mixes a user seed and an event id into an independent event seed.
uint64_t event_seed(uint64_t seed, int64_t event_id);

// ---- Kinematics and motion ------------------------------------------------------------------------------------

constexpr double kCLight = 0.299792458e-3;  // GeV / (T mm): radius R[mm] = pT[GeV] / (kCLight * B[T] * |q|)
constexpr double kSiliconX0 = 93.7;         // radiation length of silicon (mm)

struct Species {
  int32_t pdg;  // signed PDG id matching the charge
  double mass;  // GeV
};
// A charged hadron/lepton mix like the TrackML particles (pions ~78%, protons ~13%, kaons ~8%, e/mu ~1%).
Species sample_species(Rng& rng, int charge);

// Transverse momentum of a minimum-bias charged particle (GeV, >= 0.1): inverse CDF through the quantiles of the
// real TrackML event 1001, with a power-law tail P(>pT) ~ pT^-tail_exponent above its 99th percentile (2.57 GeV).
// The default 1.6 fits event 1001 as a whole, hard scatter included (the tracking simulator); a soft collision alone
// falls much faster (pile-up uses ~4.5, see data/pileup_sim.h).
double sample_minbias_pt(Rng& rng, double tail_exponent = 1.6);
// |eta| density ~ 0.42 + 0.58 exp(-|eta|), |eta| < eta_max (fitted to event 1001), random sign.
double sample_minbias_eta(Rng& rng, double eta_max);

// A charged particle in flight: position (mm), unit direction, momentum (GeV), charge and mass.
struct Track {
  Vec3 pos{};
  Vec3 dir{};
  double p = 0;
  int charge = 0;
  double mass = 0;
  Vec3 momentum() const { return {p * dir[0], p * dir[1], p * dir[2]}; }
  double pt() const;
};

// Helix in a uniform field Bz along the path length s (mm). omega = dphi/ds (negative for q > 0 in +Bz).
class Helix {
 public:
  Helix(const Track& t, double bz);
  Vec3 position(double s) const;
  Vec3 direction(double s) const;
  double omega() const { return omega_; }
  // Path lengths s > s_min where the transverse circle meets the cylinder r = radius (0, 1 or 2 values).
  std::vector<double> cylinder_crossings(double radius, double s_min) const;
  // Path length s > s_min where z = z0, if any.
  std::optional<double> z_crossing(double z, double s_min) const;
  // Path length near s_guess where the helix meets the plane n.(x - c) = 0 (Newton iteration), if it converges.
  std::optional<double> plane_crossing(const Vec3& c, const Vec3& n, double s_guess) const;

 private:
  Vec3 pos0_, dir0_;
  double omega_;        // 1/mm
  double xc_ = 0, yc_ = 0, rt_ = 0;  // transverse circle centre and radius (valid when omega_ != 0)
};

// Moves the track along its helix to path length s.
void advance(Track& t, const Helix& h, double s);

// Highland width of the projected scattering angle for material thickness x (mm) with radiation length x0.
double highland_theta0(double p, double mass, int charge, double x, double x0);
// Deflects the direction by two independent Gaussian angles of width theta0.
void scatter(Track& t, double theta0, Rng& rng);
// Mean ionisation loss in silicon (~0.39 MeV/mm at minimum ionisation, scaled by 1/beta^2) over path x (mm).
void lose_energy(Track& t, double x);

// ---- TrackML ids and weights ----------------------------------------------------------------------------------

// particle_id bit fields (trackml-library decode_particle_id): vertex 52-63, primary 36-51, generation 24-35,
// secondary 12-23, process 0-11. Throws std::invalid_argument when a field does not fit.
int64_t encode_particle_id(int64_t vertex, int64_t primary, int64_t generation, int64_t secondary, int64_t process);
int64_t particle_generation(int64_t particle_id);

// Fills truth.weight with the official TrackML weights (trackml-format.md): weight_pt(pT of the particle) x
// weight_order(rank of |tz - vz| within the particle, profile [10,8,6,5,3,3,3,5,6] stretched over nhits, zero below
// 4 hits, ranks >= 20 zero), normalised to sum 1 over the event. Noise gets 0. With primaries_only (the throughput
// phase rule), particles with generation != 0 get 0 too. Particles are looked up by id (any order).
void compute_weights(Truth& truth, const Particles& particles, bool primaries_only);
double weight_pt(double pt);
double weight_order(int rank, int nhits);

}  // namespace data::sim
