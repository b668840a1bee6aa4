// infer: runs a trained model on one event.
//   infer --checkpoint RUN/best.safetensors --event PREFIX|SAMPLE.safetensors [--out DIR] [--device cpu|cuda]
//         [--eps X] [--min-samples N] [--plot] [--save-embeddings] [--task tracking|pileup]
// The task comes from the checkpoint (train --task pileup writes "pileup-<model>" checkpoints).
// Pile-up: --event is a simulated pile-up event (pileup_event<id>.safetensors, data/pileup_sim.h); writes
// DIR/probabilities.csv (the LV probability of every particle), DIR/metrics.json (the model against CHS and the
// PUPPI-style weights on this event: ROC AUC, AP and accuracy on the neutral targets, leading-jet pT response) and,
// with --plot, DIR/eta_phi.svg (particles coloured by the probability). --event may also be a pile-up dataset folder
// (simulate --pileup): then every event of it is classified and DIR/metrics.json holds the comparison over them all.
// Tracking:
// PREFIX is a TrackML event prefix (DIR/event000001000; .csv or .csv.gz files) or a processed sample file. The event
// is embedded in the phi sectors the model was trained on (--sectors; HEPT's extended wedges, which overlap), each
// sector clustered on its own, and every hit takes its track candidate from the sector nearest to it. Writes
// DIR/submission.csv (hit_id,track_id of the pixel hits the model sees), DIR/metrics.json and, with truth, prints
// accuracy@k, recall, the TrackML score, double-majority and LHC-style efficiencies and the fake rate. Every error
// is one line on stderr and a non-zero exit; outputs are written atomically.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "apps/lib/datasets.h"
#include "apps/lib/pileup_task.h"
#include "apps/lib/tracking_task.h"
#include "apps/lib/trainer.h"
#include "data/cache.h"
#include "data/csv.h"
#include "data/detector.h"
#include "data/efficiency.h"
#include "data/features.h"
#include "data/pileup_sim.h"
#include "data/score.h"
#include "data/seeding.h"
#include "data/svg_plot.h"
#include "data/track_building.h"
#include "data/trackml_io.h"
#include "engine/engine.h"
#include "models/registry.h"
#include "models/tracking_metrics.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Times named stages and prints them.
class StageTimer {
 public:
  template <class F>
  auto run(const std::string& name, F&& f) {
    const auto t0 = Clock::now();
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      done(name, t0);
    } else {
      auto r = f();
      done(name, t0);
      return r;
    }
  }
  nlohmann::json json() const { return seconds_; }

 private:
  void done(const std::string& name, Clock::time_point t0) {
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    seconds_[name] = s;
    fmt::print("  {:<22} {:8.3f} s\n", name, s);
    std::fflush(stdout);
  }
  nlohmann::json seconds_ = nlohmann::json::object();
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The event's samples (the whole event, or n_sectors extended phi sectors as in training) and its truth, read from
// a TrackML prefix, or one processed sample file.
struct LoadedEvent {
  std::vector<data::Sample> samples;
  data::Truth truth;  // empty without a truth file (or for a processed sample)
  std::string geometry_note;  // printed once the event is known to be usable: the built-in geometry was used
};

LoadedEvent load_event(const std::string& path, const std::string& detector_path, bool knn_graph, int n_sectors) {
  LoadedEvent ev;
  if (ends_with(path, ".safetensors")) {
    ev.samples.push_back(data::load_sample(path));
    return ev;
  }
  const data::Event event = data::read_event(path);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string folder = parent.empty() ? "." : parent.string();
  const std::string geometry = app::find_detector(folder, detector_path);
  if (geometry.empty()) ev.geometry_note = app::builtin_geometry_note(folder);
  const data::Detector loaded = geometry.empty() ? data::Detector{} : data::read_detectors(geometry);
  const data::Detector& det = geometry.empty() ? data::builtin_detector() : loaded;
  data::FeatureOptions fo;
  fo.n_sectors = n_sectors;
  fo.graphs = knn_graph;
  ev.samples = data::build_samples(event, det, fo);
  ev.truth = event.truth;
  return ev;
}

// The sector whose centre (phi = -2 pi s / n, data/features.cpp) is nearest to phi: every hit's home sector, which
// always holds it (the extended wedges overlap).
int64_t home_sector(double phi, int64_t n_sectors) {
  const auto s = static_cast<int64_t>(std::llround(-phi * static_cast<double>(n_sectors) / (2 * M_PI)));
  return ((s % n_sectors) + n_sectors) % n_sectors;
}

// Per hit of the event (each once, in the order of the samples): its embedding, track candidate and truth, taken from
// its home sector's sample.
struct MergedHits {
  std::vector<int64_t> hit_id, track_id, particle_id;
  std::vector<float> pt, coords;  // coords [n, 6] flat
  std::vector<float> emb;         // [n, d] flat
};

MergedHits merge_sectors(const std::vector<data::Sample>& samples, const std::vector<engine::Tensor>& embs,
                         const std::vector<std::vector<int64_t>>& local_ids) {
  const auto n_sectors = static_cast<int64_t>(samples.size());
  MergedHits m;
  std::unordered_set<int64_t> taken;
  int64_t offset = 0;
  // pass 0: each hit from its home sector; pass 1: any hit still missing, from the first sample that holds it
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t s = 0; s < samples.size(); ++s) {
      const data::Sample& smp = samples[s];
      const auto ids = smp.hit_id.to_vector<int64_t>();
      const auto pid = smp.particle_id.to_vector<int64_t>();
      const auto pt = smp.pt.to_vector<float>();
      const auto c = smp.coords.to_vector<float>();
      const int64_t d = embs[s].size(1);
      const float* e = embs[s].data<float>();
      int64_t max_id = 0;
      for (size_t i = 0; i < ids.size(); ++i) {
        max_id = std::max(max_id, local_ids[s][i]);
        const bool home = n_sectors == 1 || home_sector(c[i * 6 + 1], n_sectors) == smp.sector;
        if ((pass == 0 && !home) || taken.count(ids[i])) continue;
        taken.insert(ids[i]);
        m.hit_id.push_back(ids[i]), m.track_id.push_back(offset + local_ids[s][i]), m.particle_id.push_back(pid[i]);
        m.pt.push_back(pt[i]);
        m.coords.insert(m.coords.end(), c.begin() + static_cast<int64_t>(i) * 6, c.begin() + static_cast<int64_t>(i + 1) * 6);
        m.emb.insert(m.emb.end(), e + static_cast<int64_t>(i) * d, e + static_cast<int64_t>(i + 1) * d);
      }
      offset += max_id + 1;
    }
  }
  return m;
}

void check_sample(const data::Sample& s, const std::string& path) {
  const auto x = s.x.to_vector<float>(), c = s.coords.to_vector<float>();
  const auto ids = s.hit_id.to_vector<int64_t>();
  const int64_t fx = s.x.size(1), fc = s.coords.size(1);
  for (int64_t i = 0; i < s.num_hits(); ++i) {
    bool ok = true;
    for (int64_t j = 0; j < fx; ++j) ok = ok && std::isfinite(x[i * fx + j]);
    for (int64_t j = 0; j < fc; ++j) ok = ok && std::isfinite(c[i * fc + j]);
    if (!ok) throw std::runtime_error(fmt::format("{}: hit {} has a non-finite coordinate or feature", path, ids[i]));
  }
}

void write_text_atomic(const std::string& path, const std::string& text) {
  data::write_text_file_atomic(path, text, /*gzip=*/false);
}

std::string submission_csv(const std::vector<int64_t>& hit_id, const std::vector<int64_t>& track_id) {
  std::string s = "hit_id,track_id\n";
  for (size_t i = 0; i < hit_id.size(); ++i) s += fmt::format("{},{}\n", hit_id[i], track_id[i]);
  return s;
}

// The truth rows of the hits in `hit_ids` (the pixel hits the model saw), in that order.
data::Truth truth_subset(const data::Truth& truth, const std::vector<int64_t>& hit_ids) {
  std::unordered_map<int64_t, size_t> row;
  for (size_t i = 0; i < truth.size(); ++i) row[truth.hit_id[i]] = i;
  data::Truth t;
  for (int64_t id : hit_ids) {
    const size_t r = row.at(id);
    t.hit_id.push_back(id);
    t.particle_id.push_back(truth.particle_id[r]);
    t.tx.push_back(truth.tx[r]), t.ty.push_back(truth.ty[r]), t.tz.push_back(truth.tz[r]);
    t.tpx.push_back(truth.tpx[r]), t.tpy.push_back(truth.tpy[r]), t.tpz.push_back(truth.tpz[r]);
    t.weight.push_back(truth.weight[r]);
  }
  return t;
}

// The phi sectors of the model's training data (train records them in the checkpoint's run info); 1 (whole events)
// for checkpoints from before that or from other programs.
int trained_sectors(const engine::io::CheckpointInfo& info) {
  if (!info.extra.count("run")) return 1;
  const nlohmann::json run = nlohmann::json::parse(info.extra.at("run"), nullptr, false);
  return run.is_object() ? std::max(1, run.value("sectors", 1)) : 1;
}

// HEPT's accuracy / precision / recall of each sample (sector) with hits, in order.
std::vector<models::TrackingMetrics> sample_metrics(const std::vector<data::Sample>& samples,
                                                    const std::vector<engine::Tensor>& embs) {
  std::vector<models::TrackingMetrics> out;
  for (size_t s = 0; s < samples.size(); ++s)
    if (samples[s].num_hits() > 0)
      out.push_back(models::tracking_metrics(embs[s], samples[s].particle_id, samples[s].pt, samples[s].reconstructable));
  return out;
}

// The samples' metrics averaged over the samples, as in training.
nlohmann::json sample_mean_metrics(const std::vector<models::TrackingMetrics>& per_sample) {
  app::MeanMetrics mean;
  for (const models::TrackingMetrics& m : per_sample) mean.add(m.as_map());
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : mean.means()) out[k] = v;
  return out;
}

// accuracy@0.9 pooled over the queries of all samples in bands of |eta| (keys "accuracy@0.9 |eta| 0-1", ..., "3+";
// a band without queries is left out): the pixel barrel (|eta| < ~1) against the end-caps. per_sample: the metrics
// of the samples with hits, in order (sample_metrics).
nlohmann::json accuracy_by_abs_eta(const std::vector<data::Sample>& samples,
                                   const std::vector<models::TrackingMetrics>& per_sample) {
  constexpr double kEdges[] = {0, 1, 2, 3};
  constexpr size_t kBands = std::size(kEdges);
  double sum[kBands] = {};
  int64_t queries[kBands] = {};
  size_t next = 0;  // index into per_sample
  for (const data::Sample& smp : samples) {
    if (smp.num_hits() == 0) continue;
    const std::vector<float> pos = smp.pos.contiguous().to_vector<float>();  // [N, 2] eta, phi
    for (const models::QueryAccuracy& q : per_sample[next++].accuracy_09_by_query) {
      const double abs_eta = std::fabs(pos[static_cast<size_t>(q.hit) * 2]);
      size_t band = kBands - 1;
      while (band > 0 && abs_eta < kEdges[band]) --band;
      sum[band] += q.accuracy;
      queries[band]++;
    }
  }
  nlohmann::json out = nlohmann::json::object();
  for (size_t b = 0; b < kBands; ++b) {
    if (queries[b] == 0) continue;
    const std::string band = b + 1 < kBands ? fmt::format("{}-{}", kEdges[b], kEdges[b + 1]) : fmt::format("{}+", kEdges[b]);
    out["accuracy@0.9 |eta| " + band] = sum[b] / static_cast<double>(queries[b]);
  }
  return out;
}

std::string default_out_dir(const std::string& checkpoint, const std::string& event_path) {
  return (fs::path(checkpoint).parent_path() / ("infer-" + fs::path(event_path).stem().string())).string();
}

// The pile-up path on a dataset folder: every event of its manifest, one comparison over all of them.
void infer_pileup_dataset(models::PileupModel& model, const std::string& backbone, const std::string& dir,
                          const std::string& out_dir, engine::Device device, StageTimer& timer) {
  const data::pileup::PileupDataset ds = data::pileup::read_pileup_manifest(dir);  // throws with the path
  std::vector<std::string> files = ds.train;
  files.insert(files.end(), ds.valid.begin(), ds.valid.end());
  files.insert(files.end(), ds.test.begin(), ds.test.end());
  if (files.empty()) throw std::runtime_error(dir + ": the dataset has no events");
  const std::vector<data::pileup::PileupEvent> events = timer.run("read events", [&] {
    std::vector<data::pileup::PileupEvent> v;
    for (const std::string& f : files) v.push_back(data::pileup::load_pileup_event(f));
    return v;
  });
  std::vector<const data::pileup::PileupEvent*> ptrs;
  for (const auto& ev : events) ptrs.push_back(&ev);
  engine::NoGradGuard no_grad;
  const nlohmann::json rows = timer.run("classify + metrics + jets", [&] {
    return app::compare_with_baselines(ptrs, [&](const auto& ev) { return app::pileup_probabilities(model, ev, device); },
                                       backbone);
  });
  fs::create_directories(out_dir);
  const nlohmann::json report = {{"task", "pileup"}, {"model", backbone}, {"dataset", dir}, {"events", events.size()},
                                 {"all_events", rows}, {"seconds", timer.json()}};
  write_text_atomic(out_dir + "/metrics.json", report.dump(2) + "\n");
  app::print_comparison(fmt::format("{} events", events.size()), rows);
  fmt::print("wrote {}/metrics.json\n", out_dir);
}

// The pile-up path (see the file comment).
void infer_pileup(const std::string& checkpoint, const engine::io::CheckpointInfo& info, const std::string& event_path,
                  std::string out_dir, engine::Device device, bool plot) {
  StageTimer timer;
  fmt::print("stages:\n");
  const std::string backbone = info.model_name.substr(std::string("pileup-").size());
  auto model = timer.run("load checkpoint", [&] {
    auto m = std::make_shared<models::PileupModel>(backbone, data::pileup::kFeatures,
                                                   models::Config::parse(info.config_json));
    engine::io::load_checkpoint(checkpoint, *m, nullptr, nullptr, info.model_name);
    m->to(device);
    m->eval();
    return m;
  });
  if (fs::is_directory(event_path)) {
    infer_pileup_dataset(*model, backbone, event_path, out_dir.empty() ? default_out_dir(checkpoint, event_path) : out_dir,
                         device, timer);
    return;
  }
  const data::pileup::PileupEvent ev = timer.run("read event", [&] { return data::pileup::load_pileup_event(event_path); });
  if (ev.size() == 0) throw std::runtime_error(event_path + ": the event has no particles");
  engine::NoGradGuard no_grad;
  const std::vector<double> p = timer.run("classify", [&] { return app::pileup_probabilities(*model, ev, device); });
  const nlohmann::json rows = timer.run("metrics + jets", [&] {
    return app::compare_with_baselines({&ev}, [&](const data::pileup::PileupEvent&) { return p; }, backbone);
  });
  if (out_dir.empty()) out_dir = default_out_dir(checkpoint, event_path);
  fs::create_directories(out_dir);
  std::string csv = "index,eta,phi,pt,pid_class,neutral_target,label,probability\n";
  for (size_t i = 0; i < ev.size(); ++i)
    csv += fmt::format("{},{},{},{},{},{},{},{:.6f}\n", i, ev.eta[i], ev.phi[i], ev.pt[i], ev.pid_class[i],
                       ev.is_neutral_target(i) ? 1 : 0, ev.label[i], p[i]);
  write_text_atomic(out_dir + "/probabilities.csv", csv);
  if (plot) {
    timer.run("plot", [&] {
      data::write_eta_phi_plot(out_dir + "/eta_phi.svg",
                               fmt::format("{}: LV probability, event {} (mu {:.0f})", backbone, ev.event_id, ev.mu),
                               std::vector<double>(ev.eta.begin(), ev.eta.end()),
                               std::vector<double>(ev.phi.begin(), ev.phi.end()), p);
    });
  }
  const nlohmann::json report = {{"task", "pileup"}, {"model", backbone}, {"event", event_path},
                                 {"particles", ev.size()}, {"this_event", rows}, {"seconds", timer.json()}};
  write_text_atomic(out_dir + "/metrics.json", report.dump(2) + "\n");
  app::print_comparison("this event", rows);
  fmt::print("wrote {}/probabilities.csv and metrics.json\n", out_dir);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Embed the hits of one event with a trained model and build track candidates"};
  std::string checkpoint, event_path, out_dir, device_name = "cpu", detector_path, expect_model;
  double eps = 0;
  int min_samples = 0, threads = 0, sectors = 0;
  bool plot = false, save_embeddings = false;
  cli.add_option("--checkpoint", checkpoint, "a checkpoint written by train (best.safetensors)")->required();
  cli.add_option("--event", event_path, "TrackML event prefix (DIR/eventNNNNNNNNN) or processed .safetensors")->required();
  cli.add_option("--out", out_dir, "output folder (default: <checkpoint folder>/infer-<event name>)");
  cli.add_option("--model", expect_model, "fail unless the checkpoint holds this model");
  cli.add_option("--detector", detector_path,
                 "detectors.csv[.gz] (default: one in or next to the event's folder, else the built-in geometry)");
  cli.add_option("--device", device_name, "cpu or cuda[:N]");
  cli.add_option("--threads", threads, "CPU threads (default: all cores)");
  cli.add_option("--eps", eps, "DBSCAN radius in embedding space (default: tuned by train, in final.json)");
  cli.add_option("--min-samples", min_samples, "DBSCAN min_samples (default: tuned by train)");
  cli.add_option("--sectors", sectors,
                 "phi sectors to embed the event in, as HEPT's tracking-6k samples (default: those the model was "
                 "trained on, recorded by train; 1: the whole event at once)")
      ->check(CLI::Range(1, 64));
  cli.add_flag("--plot", plot, "write event.svg (x-y and r-z views, hits coloured by track candidate)");
  cli.add_flag("--save-embeddings", save_embeddings, "write embeddings.safetensors");
  std::string task;
  cli.add_option("--task", task, "tracking or pileup (default: what the checkpoint holds)")
      ->check(CLI::IsMember({"tracking", "pileup"}));
  CLI11_PARSE(cli, argc, argv);

  try {
    if (threads > 0) engine::set_num_threads(threads);
    const engine::Device device = engine::Device::parse(device_name);
    const auto info = engine::io::read_checkpoint_info(checkpoint);
    const bool pileup_checkpoint = info.model_name.rfind("pileup-", 0) == 0;
    if (!task.empty() && (task == "pileup") != pileup_checkpoint)
      throw std::runtime_error(fmt::format("{}: holds a {} model, not a {} model", checkpoint, info.model_name, task));
    const std::string held = pileup_checkpoint ? info.model_name.substr(7) : info.model_name;
    if (!expect_model.empty() && expect_model != held)
      throw std::runtime_error(fmt::format("{}: holds a {} model, not {}", checkpoint, held, expect_model));
    if (pileup_checkpoint) {
      infer_pileup(checkpoint, info, event_path, out_dir, device, plot);
      return 0;
    }
    StageTimer timer;
    fmt::print("stages:\n");
    // ---- model
    auto model = timer.run("load checkpoint", [&] {
      auto m = models::build_tracking_model(info.model_name,
                                            models::stored_config(info.model_name, models::Config::parse(info.config_json)));
      engine::io::load_checkpoint(checkpoint, *m, nullptr, nullptr, info.model_name);
      m->to(device);
      m->eval();
      return m;
    });
    // ---- data
    if (sectors <= 0) sectors = trained_sectors(info);
    const bool needs_graph = models::reads_edge_index(model->name());
    LoadedEvent ev = timer.run("read event + features", [&] { return load_event(event_path, detector_path, needs_graph, sectors); });
    int64_t total_hits = 0;
    for (const data::Sample& smp : ev.samples) check_sample(smp, event_path), total_hits += smp.num_hits();
    if (total_hits == 0) throw std::runtime_error(fmt::format("{}: the event has no pixel hits", event_path));
    if (!ev.geometry_note.empty()) fmt::print(stderr, "{}\n", ev.geometry_note);
    if (ev.samples.size() > 1)
      fmt::print("  ({} phi sectors; each hit's track candidate from its nearest sector)\n", ev.samples.size());
    // ---- embeddings
    engine::NoGradGuard no_grad;
    const app::ExtraInputs extras = app::extra_inputs(model->config());
    std::vector<engine::Tensor> seeds(ev.samples.size());  // [N_s, 5] per sample, for a model that reads them
    if (extras.seeds)
      timer.run("triplet seeds", [&] {
        for (size_t i = 0; i < ev.samples.size(); ++i) seeds[i] = data::triplet_seeds(ev.samples[i].x);
      });
    const std::vector<engine::Tensor> embs = timer.run("embed", [&] {
      std::vector<engine::Tensor> out;  // [N_s, d] per sample
      for (size_t i = 0; i < ev.samples.size(); ++i)
        out.push_back(ev.samples[i].num_hits() == 0
                          ? engine::empty({0, model->out_dim()})
                          : model->forward(app::model_input(ev.samples[i], device, extras, seeds[i]))
                                .to(engine::Device::cpu())
                                .to(engine::DType::F32)
                                .contiguous());
      return out;
    });
    // ---- track candidates
    const fs::path ckpt_dir = fs::path(checkpoint).parent_path();
    if (eps <= 0 || min_samples <= 0) {
      std::ifstream f(ckpt_dir / "final.json");
      const auto j = f ? nlohmann::json::parse(f, nullptr, false) : nlohmann::json();
      const auto tuned = j.is_object() && j.contains("dbscan") ? j["dbscan"] : nlohmann::json::object();
      if (eps <= 0) eps = tuned.value("eps", 0.1);
      if (min_samples <= 0) min_samples = tuned.value("min_samples", 2);
      if (tuned.empty())
        fmt::print(stderr,
                   "infer: note: no tuned DBSCAN radius in {} (train writes it when a run ends); clustering with eps "
                   "{} and min_samples {}, which may not suit this model's embedding (set --eps / --min-samples)\n",
                   (ckpt_dir / "final.json").string(), eps, min_samples);
    }
    data::ClusterOptions copt;
    copt.eps = eps;
    copt.min_samples = min_samples;
    const MergedHits hits = timer.run("cluster (DBSCAN)", [&] {
      std::vector<std::vector<int64_t>> ids;
      for (size_t s = 0; s < embs.size(); ++s)
        ids.push_back(data::cluster_embeddings(embs[s].data<float>(), embs[s].size(0), embs[s].size(1), copt));
      return merge_sectors(ev.samples, embs, ids);
    });
    const auto n = static_cast<int64_t>(hits.hit_id.size());
    // ---- outputs
    if (out_dir.empty()) out_dir = default_out_dir(checkpoint, event_path);
    fs::create_directories(out_dir);
    write_text_atomic(out_dir + "/submission.csv", submission_csv(hits.hit_id, hits.track_id));
    if (save_embeddings) {
      const int64_t d = embs.front().size(1);
      engine::io::save_safetensors(out_dir + "/embeddings.safetensors",
                                   {{"embeddings", engine::from_vector(hits.emb, {n, d})},
                                    {"hit_id", engine::from_vector(hits.hit_id, {n})}});
    }
    nlohmann::json report = {{"event", event_path}, {"checkpoint", checkpoint}, {"model", model->name()},
                             {"hits", n}, {"sectors", ev.samples.size()}, {"dbscan", {{"eps", eps}, {"min_samples", min_samples}}}};
    const bool has_truth = !ev.truth.hit_id.empty() ||
                           std::any_of(hits.particle_id.begin(), hits.particle_id.end(), [](int64_t p) { return p != 0; });
    if (has_truth) {
      const auto m = timer.run("metrics", [&] {
        // HEPT's metrics per sample (sector), averaged over the samples as in training; the rest over the event
        const std::vector<models::TrackingMetrics> per_sample = sample_metrics(ev.samples, embs);
        nlohmann::json r = sample_mean_metrics(per_sample);
        r.update(accuracy_by_abs_eta(ev.samples, per_sample));
        const data::Efficiencies e = data::track_efficiencies(hits.particle_id, hits.pt, hits.track_id, 0.9);
        r["double_majority_efficiency"] = e.double_majority;
        r["lhc_efficiency"] = e.lhc;
        r["fake_rate"] = e.fake_rate;
        if (!ev.truth.hit_id.empty())
          r["trackml_score"] = data::trackml_score(truth_subset(ev.truth, hits.hit_id), {hits.hit_id, hits.track_id});
        return r;
      });
      report["metrics"] = m;
      fmt::print("event {}: {} pixel hits\n", event_path, n);
      for (const auto& [k, v] : m.items()) fmt::print("  {:<28} {:.4f}\n", k, v.get<double>());
    } else {
      fmt::print("event {}: {} pixel hits, no truth: metrics skipped\n", event_path, n);
    }
    if (plot) {
      timer.run("plot", [&] {
        // hits' global positions are not in the sample; the plot uses r, phi, z from coords
        std::vector<double> x(n), y(n), z(n);
        for (int64_t i = 0; i < n; ++i) {
          const double r = hits.coords[i * 6 + 2] * 1000.0, phi = hits.coords[i * 6 + 1];
          x[i] = r * std::cos(phi), y[i] = r * std::sin(phi), z[i] = hits.coords[i * 6 + 4] * 1000.0;
        }
        data::write_event_plot(out_dir + "/event.svg", x, y, z, hits.track_id);
      });
    }
    report["seconds"] = timer.json();
    write_text_atomic(out_dir + "/metrics.json", report.dump(2) + "\n");
    fmt::print("wrote {}/submission.csv and metrics.json\n", out_dir);
  } catch (const std::exception& e) {
    fmt::print(stderr, "infer: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
