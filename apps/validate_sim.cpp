// validate_sim: compares one simulated event with the real TrackML events and writes the report
// docs/simulation-validation.md plus the plot docs/simulation-validation.svg.
//   validate_sim [--real DIR] [--detector detectors.csv] [--docs DIR] [--seed S] [--mu 200] [--hept-checkpoint PT]
// Real references: event000001001 (full hits-only event: hits per layer, particle spectra, nhits) and
// event000000001 (truth + cells: cluster sizes per volume, the pixel clusters' charge and length against the crossing
// their true momentum predicts). With HEPT's published checkpoint (trained on real
// events), also what a trained model sees: its accuracy on the real sample and on the simulated event sub-sampled by
// particle to the same density, next to embeddings made of raw input columns.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "data/detector.h"
#include "data/features.h"
#include "data/simulator.h"
#include "data/subsample.h"
#include "data/trackml_io.h"
#include "engine/engine.h"
#include "models/hept.h"
#include "models/tracking_metrics.h"

namespace {

using LayerKey = std::pair<int32_t, int32_t>;

std::map<LayerKey, int> hits_per_layer(const data::Hits& h) {
  std::map<LayerKey, int> out;
  for (size_t i = 0; i < h.size(); ++i) ++out[{h.volume_id[i], h.layer_id[i]}];
  return out;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

struct Spectra {
  std::vector<double> pt, abs_eta;
  std::vector<int> nhits;  // histogram 0..25 (last bin = overflow)
};

Spectra spectra(const data::Particles& p) {
  Spectra s;
  s.nhits.assign(26, 0);
  for (size_t i = 0; i < p.size(); ++i) {
    const double pt = std::hypot(p.px[i], p.py[i]);
    s.pt.push_back(pt);
    s.abs_eta.push_back(std::abs(std::asinh(p.pz[i] / std::max(pt, 1e-9))));
    ++s.nhits[std::min(p.nhits[i], 25)];
  }
  return s;
}

// The cells' extent and summed value of every hit that has cells.
struct ClusterExtent {
  int32_t u0 = 1 << 30, u1 = -1, v0 = 1 << 30, v1 = -1;
  double charge = 0;
};

std::unordered_map<int64_t, ClusterExtent> cluster_extents(const data::Cells& cells) {
  std::unordered_map<int64_t, ClusterExtent> out;
  for (size_t c = 0; c < cells.size(); ++c) {
    ClusterExtent& r = out[cells.hit_id[c]];
    r.u0 = std::min(r.u0, cells.ch0[c]);
    r.u1 = std::max(r.u1, cells.ch0[c]);
    r.v0 = std::min(r.v0, cells.ch1[c]);
    r.v1 = std::max(r.v1, cells.ch1[c]);
    r.charge += cells.value[c];
  }
  return out;
}

// Mean cluster size along u and v per volume, over the hits of particles (noise excluded).
std::map<int32_t, std::pair<double, double>> cluster_sizes(const data::Event& ev) {
  std::unordered_map<int64_t, size_t> row;
  for (size_t i = 0; i < ev.hits.size(); ++i) row[ev.hits.hit_id[i]] = i;
  std::map<int32_t, std::array<double, 3>> acc;
  for (const auto& [hit_id, r] : cluster_extents(ev.cells)) {
    const size_t i = row.at(hit_id);
    if (ev.truth.particle_id[i] == 0) continue;
    auto& a = acc[ev.hits.volume_id[i]];
    a[0] += r.u1 - r.u0 + 1;
    a[1] += r.v1 - r.v0 + 1;
    a[2] += 1;
  }
  std::map<int32_t, std::pair<double, double>> out;
  for (const auto& [v, a] : acc) out[v] = {a[0] / a[2], a[1] / a[2]};
  return out;
}

// A pixel particle hit's cluster next to the straight crossing its true momentum predicts in its module.
struct PixelCluster {
  bool barrel = false;
  int cells_v = 0;           // cluster length along v (cells)
  double projected_v = 0;    // |p_v / p_w| * module_t / pitch_v: the crossing's projection along v, in pitches
  double charge_per_mm = 0;  // summed cell values / (module_t / |p_w / |p||)
};

std::vector<PixelCluster> pixel_clusters(const data::Event& ev, const data::Detector& det) {
  const auto extents = cluster_extents(ev.cells);
  std::vector<PixelCluster> out;
  for (size_t i = 0; i < ev.hits.size(); ++i) {
    const int32_t volume = ev.hits.volume_id[i];
    const auto it = extents.find(ev.hits.hit_id[i]);
    if (volume < 7 || volume > 9 || ev.truth.particle_id[i] == 0 || it == extents.end()) continue;
    const data::Module* m = det.find(volume, ev.hits.layer_id[i], ev.hits.module_id[i]);
    const std::array<double, 3> p = {ev.truth.tpx[i], ev.truth.tpy[i], ev.truth.tpz[i]};
    const double norm = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    if (m == nullptr || norm == 0) continue;
    std::array<double, 3> local{};  // unit direction in (u, v, w)
    for (int l = 0; l < 3; ++l)
      for (int x = 0; x < 3; ++x) local[l] += m->rot[x][l] * p[x] / norm;
    if (std::abs(local[2]) < 1e-3) continue;
    out.push_back({volume == 8, it->second.v1 - it->second.v0 + 1,
                   std::abs(local[1] / local[2]) * m->thickness / m->pitch_v,
                   it->second.charge * std::abs(local[2]) / m->thickness});
  }
  return out;
}

// Cells' values of the pixel hits (volumes 7-9), barrel or disks.
std::vector<double> pixel_cell_values(const data::Event& ev, bool barrel) {
  std::unordered_map<int64_t, int32_t> volume;
  for (size_t i = 0; i < ev.hits.size(); ++i) volume[ev.hits.hit_id[i]] = ev.hits.volume_id[i];
  std::vector<double> out;
  for (size_t c = 0; c < ev.cells.size(); ++c) {
    const int32_t v = volume.at(ev.cells.hit_id[c]);
    if (v >= 7 && v <= 9 && (v == 8) == barrel) out.push_back(ev.cells.value[c]);
  }
  return out;
}

std::string quantiles_text(const std::vector<double>& v, std::initializer_list<double> qs, int digits) {
  std::string out;
  for (double q : qs) out += fmt::format("{}{:.{}f}", out.empty() ? "" : " / ", quantile(v, q), digits);
  return out;
}

// Mean and count, or "-" under 5 values.
std::string mean_text(const std::vector<double>& v) {
  if (v.size() < 5) return "-";
  double s = 0;
  for (double x : v) s += x;
  return fmt::format("{:.2f} ({})", s / double(v.size()), v.size());
}

// How the digitiser is calibrated (data/digitize.h): charge per mm of path, cluster length along v against the
// crossing's projection, and the cells' values, real event 1 against the simulated event, pixel barrel and disks.
std::string cluster_calibration_section(const data::Event& real, const data::Event& sim, const data::Detector& det) {
  const auto real_cl = pixel_clusters(real, det), sim_cl = pixel_clusters(sim, det);
  auto select = [](const std::vector<PixelCluster>& cl, bool barrel, double lo, double hi, bool charge) {
    std::vector<double> out;
    for (const PixelCluster& c : cl)
      if (c.barrel == barrel && c.projected_v >= lo && c.projected_v < hi)
        out.push_back(charge ? c.charge_per_mm : double(c.cells_v));
    return out;
  };
  std::string md =
      "\n## Pixel cluster calibration\n\n"
      "Particle hits of the pixel volumes; each cluster next to the straight crossing its true momentum (truth tpx, "
      "tpy, tpz) predicts through a sensor `module_t` deep. The digitiser (data/digitize.h) is tuned to these "
      "tables.\n\n"
      "| summed cell value per mm of path, q10 / q50 / q90 | real event 1 | simulated |\n|---|---|---|\n";
  for (bool barrel : {true, false}) {
    md += fmt::format("| {} | {} | {} |\n", barrel ? "barrel" : "disks",
                      quantiles_text(select(real_cl, barrel, 0, 1e9, true), {0.1, 0.5, 0.9}, 3),
                      quantiles_text(select(sim_cl, barrel, 0, 1e9, true), {0.1, 0.5, 0.9}, 3));
  }
  md += "\nMean cluster length along v (cells; hits in brackets) against the crossing's projection along v "
        "(pitches):\n\n| projection | barrel, real | barrel, simulated | disks, real | disks, simulated |\n"
        "|---|---|---|---|---|\n";
  const double edges[] = {0, 0.25, 0.5, 1, 2, 4, 8, 16, 1e9};
  for (size_t b = 0; b + 1 < std::size(edges); ++b) {
    const double lo = edges[b], hi = edges[b + 1];
    const std::string bin = hi > 1e8 ? fmt::format(">= {}", lo) : fmt::format("{} - {}", lo, hi);
    md += fmt::format("| {} | {} | {} | {} | {} |\n", bin, mean_text(select(real_cl, true, lo, hi, false)),
                      mean_text(select(sim_cl, true, lo, hi, false)), mean_text(select(real_cl, false, lo, hi, false)),
                      mean_text(select(sim_cl, false, lo, hi, false)));
  }
  md += "\n| cell value, q01 / q10 / q50 / q90 | real event 1 | simulated |\n|---|---|---|\n";
  for (bool barrel : {true, false}) {
    md += fmt::format("| {} | {} | {} |\n", barrel ? "barrel" : "disks",
                      quantiles_text(pixel_cell_values(real, barrel), {0.01, 0.1, 0.5, 0.9}, 4),
                      quantiles_text(pixel_cell_values(sim, barrel), {0.01, 0.1, 0.5, 0.9}, 4));
  }
  return md;
}

int noise_hits(const data::Event& ev) {
  return int(std::count(ev.truth.particle_id.begin(), ev.truth.particle_id.end(), 0));
}

// The pixel hits of an event as one HEPT sample (whole event, no graphs).
data::Sample pixel_sample(const data::Event& ev, const data::Detector& det) {
  data::FeatureOptions fo;
  fo.n_sectors = 1;
  fo.graphs = false;
  return data::build_samples(ev, det, fo).at(0);
}

// accuracy@0.9 / recall@0.9 of three embeddings of one sample: the trained model, raw (eta, phi) and the cluster
// direction (geta, gphi: input columns 12, 13).
std::string model_view_row(const std::string& label, const data::Sample& s, models::TrackingModel& model) {
  using engine::Tensor;
  const Tensor emb = model.forward({s.x, s.coords, Tensor(), Tensor()});  // [N, 12]
  const Tensor eta_phi = s.coords.slice(1, 0, 2).contiguous();   // [N, 2]
  const Tensor cluster_dir = s.x.slice(1, 12, 14).contiguous();  // [N, 2]
  std::string row = fmt::format("| {} | {} |", label, s.num_hits());
  for (const Tensor& e : {emb, eta_phi, cluster_dir}) {
    const models::TrackingMetrics m = models::tracking_metrics(e, s.particle_id, s.pt, s.reconstructable);
    row += fmt::format(" {:.3f} / {:.3f} |", m.accuracy[2], m.recall[2]);
  }
  return row + "\n";
}

// The sample with input column `column` shuffled across its hits (the hashing coordinates are kept).
data::Sample with_shuffled_column(const data::Sample& s, int64_t column) {
  const int64_t n = s.num_hits(), d = s.x.size(1);
  std::vector<float> x = s.x.contiguous().to_vector<float>();  // [n, d]
  std::vector<float> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = x[i * d + column];
  std::mt19937 rng(static_cast<uint32_t>(column) + 1);
  std::shuffle(values.begin(), values.end(), rng);
  for (int64_t i = 0; i < n; ++i) x[i * d + column] = values[i];
  data::Sample out = s;
  out.x = engine::from_vector(x, {n, d});
  return out;
}

double checkpoint_accuracy(const data::Sample& s, models::TrackingModel& model) {
  const engine::Tensor emb = model.forward({s.x, s.coords, engine::Tensor(), engine::Tensor()});  // [N, 12]
  return models::tracking_metrics(emb, s.particle_id, s.pt, s.reconstructable).accuracy[2];
}

constexpr const char* kColumnNames[data::kHeptFeatures] = {
    "r", "phi", "z", "eta_rz", "u", "v", "charge_frac", "leta", "lphi", "lx", "ly", "lz", "geta", "gphi", "layer/10"};

// A sample's input columns and per-hit labels as host vectors.
struct HostSample {
  int64_t d = 0;
  std::vector<float> x;  // [N, d]
  std::vector<int64_t> layer, particle_id;
};

HostSample to_host(const data::Sample& s) {
  return {s.x.size(1), s.x.contiguous().to_vector<float>(), s.layer.to_vector<int64_t>(),
          s.particle_id.to_vector<int64_t>()};
}

// "q10 / q50 / q90" of input column `column` over the particle hits of `s` in the barrel (layers 7-10) or end-caps.
std::string column_quantiles(const HostSample& s, int64_t column, bool barrel) {
  std::vector<double> values;
  for (size_t i = 0; i < s.layer.size(); ++i)
    if (s.particle_id[i] != 0 && (s.layer[i] >= 7 && s.layer[i] <= 10) == barrel)
      values.push_back(s.x[i * s.d + column]);
  return fmt::format("{:.3g} / {:.3g} / {:.3g}", quantile(values, 0.1), quantile(values, 0.5), quantile(values, 0.9));
}

// The input columns' distributions over the particle hits, real against simulated, barrel and end-caps.
std::string column_distribution_section(const data::Sample& real_sample, const data::Sample& sim_sample) {
  const HostSample real = to_host(real_sample), sim = to_host(sim_sample);
  std::string md =
      "\n### Input columns, real against simulated\n\n"
      "Quantiles 10% / 50% / 90% of each column over the particle hits (noise excluded) of the two events above.\n\n"
      "| column | barrel, real | barrel, simulated | end-caps, real | end-caps, simulated |\n|---|---|---|---|---|\n";
  for (int64_t c = 0; c < data::kHeptFeatures; ++c)
    md += fmt::format("| {} | {} | {} | {} | {} |\n", kColumnNames[c], column_quantiles(real, c, true),
                      column_quantiles(sim, c, true), column_quantiles(real, c, false),
                      column_quantiles(sim, c, false));
  return md;
}

// How much the checkpoint's accuracy@0.9 falls when one input column is shuffled across the hits: which columns it
// uses on the real event, and whether they carry the same information in the simulated one.
std::string column_use_section(const data::Sample& real, const data::Sample& sim, models::TrackingModel& model) {
  std::string md = fmt::format(
      "\n### Which input columns the checkpoint uses\n\n"
      "Its accuracy@0.9 with one of the 15 input columns shuffled across the hits (the 6 hashing coordinates "
      "unchanged), on the real sample event and on the simulated one at the same density. Unshuffled: {:.3f} real, "
      "{:.3f} simulated.\n\n| shuffled column | real | simulated |\n|---|---|---|\n",
      checkpoint_accuracy(real, model), checkpoint_accuracy(sim, model));
  for (int64_t c = 0; c < data::kHeptFeatures; ++c)
    md += fmt::format("| {} | {:.3f} | {:.3f} |\n", kColumnNames[c],
                      checkpoint_accuracy(with_shuffled_column(real, c), model),
                      checkpoint_accuracy(with_shuffled_column(sim, c), model));
  return md;
}

// What HEPT's published checkpoint (trained on real tracking-60k events) sees in the real sample event and in the
// simulated one sub-sampled by particle to the same number of pixel hits, plus the whole simulated event.
std::string model_view_section(const std::string& checkpoint, const data::Event& real_sample, const data::Event& sim,
                               const data::Detector& det) {
  const auto model = models::load_published_hept(checkpoint);
  engine::NoGradGuard no_grad;
  const data::Sample real = pixel_sample(real_sample, det), full = pixel_sample(sim, det);
  const double fraction = std::min(1.0, double(real.num_hits()) / double(full.num_hits()));
  std::string md =
      "\n## What a trained model sees\n\n"
      "HEPT's published checkpoint (trained on real tracking-60k events) embeds the pixel hits of the real sample "
      "event and of the simulated event, sub-sampled by particle (whole particles and the same fraction of noise, as "
      "the real sample was made) to the same number of hits; last row: the whole simulated event. Accuracy@0.9 / "
      "recall@0.9 (HEPT's definitions) of its embedding and of two embeddings made of raw input columns. Equal "
      "(eta, phi) columns mean the tracks' geometry agrees; the (geta, gphi) column measures how much the cluster "
      "shapes alone say about which hits belong together.\n\n"
      "| event | pixel hits | HEPT checkpoint | raw (eta, phi) | cluster direction (geta, gphi) |\n"
      "|---|---|---|---|---|\n";
  const data::Sample sim_same_density = pixel_sample(data::subsample_particles(sim, fraction, 1), det);
  md += model_view_row("real event000000001", real, *model);
  md += model_view_row(fmt::format("simulated, {:.3f} of the particles", fraction), sim_same_density, *model);
  md += model_view_row("simulated, whole event", full, *model);
  return md + column_use_section(real, sim_same_density, *model) + column_distribution_section(real, sim_same_density);
}

// Hits per layer, real vs simulated, as grouped bars.
std::string svg_plot(const std::map<LayerKey, int>& real, const std::map<LayerKey, int>& sim, const Spectra& rs,
                     const Spectra& ss) {
  const int W = 960, H = 620, x0 = 60, w = W - 80;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, H);
  auto panel = [&](int top, int height, const std::string& title, const std::vector<std::string>& labels,
                   const std::vector<double>& a, const std::vector<double>& b) {
    const double vmax = std::max(*std::max_element(a.begin(), a.end()), *std::max_element(b.begin(), b.end()));
    const double bw = double(w) / double(labels.size());
    s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"13\">{}</text>\n", x0, top - 8, title);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n", x0, top + height,
                     x0 + w, top + height);
    for (int t = 0; t <= 4; ++t) {
      const double y = top + height - height * t / 4.0;
      s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.0f}</text>\n", x0 - 4, y + 4,
                       vmax * t / 4);
      s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", x0, y, x0 + w, y);
    }
    for (size_t i = 0; i < labels.size(); ++i) {
      const double x = x0 + bw * double(i);
      for (int k = 0; k < 2; ++k) {
        const double v = k == 0 ? a[i] : b[i], hh = height * v / vmax;
        s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>\n",
                         x + bw * (0.1 + 0.4 * k), top + height - hh, bw * 0.4, hh, k == 0 ? "#4477aa" : "#ee6677");
      }
      s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"8\" text-anchor=\"end\" transform=\"rotate(-60 "
                       "{:.1f} {})\">{}</text>\n",
                       x + bw / 2, top + height + 10, x + bw / 2, top + height + 10, labels[i]);
    }
  };
  std::vector<std::string> labels;
  std::vector<double> a, b;
  for (const auto& [k, n] : real) {
    labels.push_back(fmt::format("{}/{}", k.first, k.second));
    a.push_back(n);
    b.push_back(sim.count(k) ? sim.at(k) : 0);
  }
  panel(40, 220, "Hits per volume/layer: real event 1001 (blue) vs simulated (red)", labels, a, b);
  labels.clear();
  a.clear();
  b.clear();
  for (int n = 0; n <= 25; ++n) {
    labels.push_back(n == 25 ? "25+" : std::to_string(n));
    a.push_back(rs.nhits[n] / double(rs.pt.size()));
    b.push_back(ss.nhits[n] / double(ss.pt.size()));
  }
  panel(340, 220, "Hits per particle (fraction of particles): real event 1001 (blue) vs simulated (red)", labels, a,
        b);
  // The second panel's axis labels print fractions x1 scaled; overwrite by a note.
  s += fmt::format("<text x=\"{}\" y=\"{}\">(y axis of the lower panel: fraction of particles)</text>\n", x0, H - 8);
  s += "</svg>\n";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Compare a simulated TrackML event with the real ones and write docs/simulation-validation.md"};
  std::string real_dir = "../shared/data/trackml", detector_path, docs = "docs", hept_checkpoint;
  data::sim::SimConfig cfg;
  app.add_option("--real", real_dir, "folder with the real TrackML files");
  app.add_option("--detector", detector_path, "detectors.csv (default: <real>/detectors.csv, else built-in)");
  app.add_option("--docs", docs, "output folder for the report and the plot");
  app.add_option("--seed", cfg.seed, "simulation seed");
  app.add_option("--mu", cfg.mu, "pile-up");
  app.add_option("--hept-checkpoint", hept_checkpoint,
                 "HEPT's published tracking checkpoint (default: <real>/../hept/tracking-60k-model.pt when present)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (detector_path.empty() && std::filesystem::exists(real_dir + "/detectors.csv")) {
      detector_path = real_dir + "/detectors.csv";
    }
    const data::Detector loaded = detector_path.empty() ? data::Detector{} : data::read_detectors(detector_path);
    const data::Detector& det = detector_path.empty() ? data::builtin_detector() : loaded;
    const data::sim::Simulator simulator(det, cfg);
    const data::Event sim = simulator.simulate(1000);
    const data::Event full = data::read_event(real_dir + "/event000001001");
    const data::Event cells = data::read_event(real_dir + "/event000000001");

    const auto real_layers = hits_per_layer(full.hits), sim_layers = hits_per_layer(sim.hits);
    const Spectra rs = spectra(full.particles), ss = spectra(sim.particles);
    const auto real_cl = cluster_sizes(cells), sim_cl = cluster_sizes(sim);

    std::string md = "# Simulation validation\n\n";
    md += fmt::format(
        "Generated by `build/apps/validate_sim` (seed {}, mu {}, geometry: {}). Real references: "
        "`event000001001` (complete event, hits + particles) and `event000000001` (sub-sampled, with truth and "
        "cells).\n\n![hits per layer and hits per particle](simulation-validation.svg)\n\n",
        cfg.seed, cfg.mu, detector_path.empty() ? "built-in" : "detectors.csv");
    const int sim_noise = noise_hits(sim);
    md += "## Totals\n\n| quantity | real 1001 | simulated |\n|---|---|---|\n";
    md += fmt::format("| hits | {} | {} |\n", full.hits.size(), sim.hits.size());
    int real_particle_hits = 0;
    for (int n : full.particles.nhits) real_particle_hits += n;
    md += fmt::format("| noise fraction | {:.3f} | {:.3f} |\n",
                      1.0 - double(real_particle_hits) / double(full.hits.size()),
                      double(sim_noise) / double(sim.hits.size()));
    md += fmt::format("| particles | {} | {} |\n", full.particles.size(), sim.particles.size());
    md += fmt::format("| particles with nhits = 0 | {:.3f} | {:.3f} |\n", rs.nhits[0] / double(rs.pt.size()),
                      ss.nhits[0] / double(ss.pt.size()));
    for (double q : {0.1, 0.5, 0.9, 0.99}) {
      md += fmt::format("| pT quantile {:.2f} (GeV) | {:.3f} | {:.3f} |\n", q, quantile(rs.pt, q), quantile(ss.pt, q));
    }
    for (double q : {0.25, 0.5, 0.75}) {
      md += fmt::format("| abs(eta) quantile {:.2f} | {:.2f} | {:.2f} |\n", q, quantile(rs.abs_eta, q),
                        quantile(ss.abs_eta, q));
    }
    md += "\n## Hits per volume/layer\n\n| volume/layer | real 1001 | simulated | sim/real |\n|---|---|---|---|\n";
    for (const auto& [k, n] : real_layers) {
      const int m = sim_layers.count(k) ? sim_layers.at(k) : 0;
      md += fmt::format("| {}/{} | {} | {} | {:.2f} |\n", k.first, k.second, n, m, double(m) / n);
    }
    md += "\n## Hits per particle (fraction of particles)\n\n| nhits | real 1001 | simulated |\n|---|---|---|\n";
    for (int n = 0; n <= 25; ++n) {
      md += fmt::format("| {}{} | {:.3f} | {:.3f} |\n", n, n == 25 ? "+" : "", rs.nhits[n] / double(rs.pt.size()),
                        ss.nhits[n] / double(ss.pt.size()));
    }
    md += "\n## Mean cluster size (cells along u x v) per volume, particle hits\n\n"
          "| volume | real event 1 (u) | simulated (u) | real (v) | simulated (v) |\n|---|---|---|---|---|\n";
    for (const auto& [v, r] : real_cl) {
      const auto s = sim_cl.count(v) ? sim_cl.at(v) : std::pair<double, double>{0, 0};
      md += fmt::format("| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} |\n", v, r.first, s.first, r.second, s.second);
    }
    md += cluster_calibration_section(cells, sim, det);
    if (hept_checkpoint.empty() && std::filesystem::exists(real_dir + "/../hept/tracking-60k-model.pt"))
      hept_checkpoint = real_dir + "/../hept/tracking-60k-model.pt";
    if (!hept_checkpoint.empty()) md += model_view_section(hept_checkpoint, cells, sim, det);
    std::filesystem::create_directories(docs);
    std::ofstream(docs + "/simulation-validation.md") << md;
    std::ofstream(docs + "/simulation-validation.svg") << svg_plot(real_layers, sim_layers, rs, ss);
    fmt::print("{}", md);
  } catch (const std::exception& e) {
    fmt::print(stderr, "validate_sim: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
