// bench: the per-model benchmark of the catalog (issue 7). For every model and every sector size N: inference time
// (eval, no grad, forward only), training-step time (train mode: forward + InfoNCE loss + backward + Adam step), the
// engine allocator's peak memory above the bytes already allocated before each (inference and training step
// separately), and the analytic forward FLOPs (engine/profile.h: what is counted is written into the JSON).
//   bench [--models a,b] [--size S|M|L|ref] [--sizes 3000,6000,...] [--device cpu|cuda] [--threads T]
//         [--repeats R] [--budget-s B] [--mem-limit-mb M] [--out DIR] [--seed S]
//   bench --merge A.json,B.json [--out DIR]: the results of earlier runs combined, a later measured row of a model
//         and N replacing an earlier one (e.g. cells measured again with a larger --budget-s), with plots and tables.
// Inputs are a synthetic sector of N hits (x [N, 15], coords [N, 6], truth for the loss) with the project's k = 60
// (eta, phi) kNN graph as edge_index and loss pairs, the vertex z estimates and the triplet seeds (hmambav2 S reads
// both), built outside the timed region (apps/infer times the seeds as a stage of their own). Times are the best of R runs
// after one warm-up run; a warm-up longer than --budget-s is reported alone ("timed_runs" 0, marked "*" in the tables):
// a cold run, which on these VMs includes the slow first touch of the run's freshly mapped memory, so it can read up
// to ~2.4x a warm run. When one measurement of a model takes longer than --budget-s, its larger N are skipped and
// recorded as such; so are sizes whose training-step memory, extrapolated from the previous size, would pass
// --mem-limit-mb. Writes DIR/bench.json (rewritten after every measurement), DIR/bench.svg (inference time vs N)
// and DIR/bench-train.svg (training step vs N); prints progress to stderr and Markdown tables to stdout.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <thread>

#include "data/csv.h"
#include "data/features.h"
#include "data/graphs.h"
#include "data/seeding.h"
#include "data/svg_plot.h"
#include "engine/engine.h"
#include "engine/profile.h"
#include "models/registry.h"
#include "models/tracking_loss.h"
#ifdef ENGINE_WITH_CUDA
#include "engine/backend/cuda/cuda_backend.h"
#endif

namespace {

using Json = nlohmann::json;
using engine::Device;
using engine::Tensor;

constexpr const char* kFlopsCounted =
    "2 per multiply-add of every GEMM (matmul, linear: 2*B*M*N*K); the fused layer ops with the arithmetic of their "
    "kernels (selective_scan, ssd_scan, wkv5, wkv7, gated_delta_rule, hept_bucket_attention incl. its E2LSH "
    "projections, dense_attention over the visible pairs, causal_conv1d); the per-edge sums of EdgeConv, GravNet "
    "(distances, weighting, mean) and LocalAggregation. Not counted: other elementwise ops, norms, activations, "
    "exp/log, reductions, gathers/scatters, sorts, kNN searches (dgcnn/gravnet rebuild their graph every layer).";

struct Cli {
  std::vector<std::string> models;
  std::string size, device_name = "cpu", out_dir = "runs/bench";
  std::vector<int64_t> sizes{3000, 6000, 15000, 30000, 60000, 100000};
  int threads = 0, repeats = 2;
  double budget_s = 60, mem_limit_mb = -1;  // -1: half the physical memory on the CPU, no limit on CUDA
  uint64_t seed = 0;
  std::vector<std::string> merge;  // --merge: combine these result files instead of measuring
};

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// ------------------------------------------------------------------------------------------------ synthetic sector

// One sector as the trainer feeds it: the model input and the truth the InfoNCE loss reads.
struct Sector {
  models::ModelInput in;    // x [N, 15], coords [N, 6], edge_index [2, E] (kNN, k = 60)
  Tensor pairs;             // [2, E] int64 loss pairs (= edge_index, as Lampa)
  Tensor particle_id, pt;   // [N] int64 (0 = noise), [N] float (GeV)
  Tensor reconstructable;   // [N] int64
};

// The 15 features and 6 coordinates of a hit at radius r (mm), eta, phi, as data/features.h writes them
// (x: r/1000, phi/pi, z/1000, eta, x/r^2*1000, y/r^2*1000, 8 cell-shape features, layer/10;
// coords: eta, phi, r/1000, phi/pi, z/1000, eta_rz); the cell features are uniform in [0, 1).
void write_hit(double r_mm, double eta, double phi, std::mt19937_64& rng, float* f, float* c) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double z_mm = r_mm * std::sinh(eta), r2 = r_mm * r_mm;
  const double geo[6] = {r_mm / 1000, phi / M_PI, z_mm / 1000, eta, r_mm * std::cos(phi) / r2 * 1000,
                         r_mm * std::sin(phi) / r2 * 1000};
  for (int k = 0; k < 6; ++k) f[k] = static_cast<float>(geo[k]);
  for (int k = 6; k < 14; ++k) f[k] = static_cast<float>(unit(rng));
  f[14] = static_cast<float>(std::floor((r_mm - 30) / 170 * 18) / 10);  // 18 layers from r = 30 to 200 mm
  const float cols[6] = {f[3], static_cast<float>(phi), f[0], f[1], f[2], f[3]};
  std::copy(cols, cols + 6, c);
}

// N hits with r uniform in 30..200 mm, eta in [-4, 4], phi in [-pi, pi]: particles of 8-12 hits at one eta whose phi
// bends by 0.3 B r / (2 pT) (B = 2 T, pT log-uniform in 0.5..10 GeV), and 10% noise hits (particle 0).
Sector make_sector(int64_t N, uint64_t seed, Device device) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> jitter(0.0, 0.002);
  std::vector<float> x(static_cast<size_t>(N) * 15), coords(static_cast<size_t>(N) * 6), pt(N), pos(N * 2);
  std::vector<int64_t> pid(N), rec(N);
  int64_t particle = 0, left = 0;
  double eta0 = 0, phi0 = 0, p_pt = 0;
  for (int64_t n = 0; n < N; ++n) {
    const bool noise = unit(rng) < 0.1;
    if (!noise && left == 0) {  // a new particle
      ++particle, left = 8 + static_cast<int64_t>(unit(rng) * 5);
      eta0 = unit(rng) * 8 - 4, phi0 = (unit(rng) * 2 - 1) * M_PI, p_pt = 0.5 * std::pow(20.0, unit(rng));
    }
    const double r_mm = 30 + unit(rng) * 170;
    const double eta = std::clamp(noise ? unit(rng) * 8 - 4 : eta0 + jitter(rng), -4.0, 4.0);
    const double phi = std::remainder(
        noise ? (unit(rng) * 2 - 1) * M_PI : phi0 + 0.3 * 2.0 * r_mm / 1000 / (2 * p_pt) + jitter(rng), 2 * M_PI);
    write_hit(r_mm, eta, phi, rng, &x[n * 15], &coords[n * 6]);
    pos[2 * n] = static_cast<float>(eta), pos[2 * n + 1] = static_cast<float>(phi);
    pid[n] = noise ? 0 : particle;
    pt[n] = noise ? 0.0f : static_cast<float>(p_pt);
    rec[n] = noise ? 0 : 1;
    left -= noise ? 0 : 1;
  }
  Sector s;
  const Tensor edges = data::knn_graph(pos, 60);
  const Tensor features = engine::from_vector(x, {N, 15});  // [N, 15]
  s.in = {features.to(device), engine::from_vector(coords, {N, 6}).to(device), edges.to(device),
          data::vertex_z_estimates(features, data::VertexZMethod::SensorDepth).to(device),  // the S preset's
          data::triplet_seeds(features).to(device)};
  s.pairs = s.in.edge_index;
  s.particle_id = engine::from_vector(pid, {N}).to(device);
  s.pt = engine::from_vector(pt, {N}).to(device);
  s.reconstructable = engine::from_vector(rec, {N}).to(device);
  return s;
}

// ------------------------------------------------------------------------------------------------ measurement

void synchronize(Device device) {
#ifdef ENGINE_WITH_CUDA
  if (device.is_cuda()) engine::cuda::synchronize();
#else
  (void)device;
#endif
}

// Bytes the engine allocator of `device` has handed out now; resets its high-water mark to that.
int64_t reset_peak(Device device) {
#ifdef ENGINE_WITH_CUDA
  if (device.is_cuda()) {
    engine::cuda::reset_device_peak();
    return engine::cuda::device_allocator_stats().allocated_bytes;
  }
#endif
  (void)device;
  engine::reset_cpu_peak();
  return engine::cpu_allocator_stats().allocated_bytes;
}

void release_caches() {
  engine::release_cpu_cache();
#ifdef ENGINE_WITH_CUDA
  engine::cuda::release_device_cache();
#endif
}

int64_t peak_bytes(Device device) {
#ifdef ENGINE_WITH_CUDA
  if (device.is_cuda()) return engine::cuda::device_allocator_stats().peak_allocated_bytes;
#endif
  (void)device;
  return engine::cpu_allocator_stats().peak_allocated_bytes;
}

double process_peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux: KiB
}

struct Timing {
  double best_s = std::numeric_limits<double>::infinity();
  double peak_mb = 0;  // max over the timed runs of the allocator peak above the bytes allocated before the run
  int runs = 0;        // timed runs (0: the warm-up alone was over budget and is reported)
};

// One warm-up run, then the best of `repeats`; a warm-up longer than `budget_s` is reported alone.
template <class F>
Timing measure(F&& run, int repeats, double budget_s, Device device) {
  Timing t;
  for (int r = 0; r <= repeats; ++r) {
    const int64_t base = reset_peak(device);
    const double t0 = now_s();
    run();
    synchronize(device);
    const double dt = now_s() - t0;
    const double mb = static_cast<double>(peak_bytes(device) - base) / (1024.0 * 1024.0);
    if (r == 0 && dt > budget_s) return {dt, mb, 0};
    if (r == 0) continue;
    t.best_s = std::min(t.best_s, dt), t.peak_mb = std::max(t.peak_mb, mb), ++t.runs;
  }
  return t;
}

// A catalog model with its optimizer and results.
struct Bench {
  std::string name, config_size;
  std::shared_ptr<models::TrackingModel> model;
  std::unique_ptr<engine::optim::Adam> adam;
  Json rows = Json::array();
  std::string stop;  // why larger N are skipped ("" while measuring)
  int64_t last_N = 0;
  double last_train_peak_mb = 0;
};

// Skips a size whose training-step peak, extrapolated linearly from the last measured size, would pass the limit
// (an out-of-memory kill would end the whole run).
bool over_memory(Bench& b, int64_t N, double limit_mb) {
  if (limit_mb <= 0 || b.last_N == 0) return false;
  const double predicted = b.last_train_peak_mb * static_cast<double>(N) / static_cast<double>(b.last_N);
  if (predicted <= limit_mb) return false;
  b.stop = fmt::format("skipped: predicted training peak {:.0f} MB over the memory limit {:.0f} MB", predicted, limit_mb);
  return true;
}

// The model at --size (default S); a model without that preset (the registry throws invalid_argument) gets the
// shipped config, and config_size says which was used.
Bench make_bench(const std::string& name, const std::string& size, uint64_t seed, Device device) {
  Bench b;
  b.name = name;
  b.config_size = size.empty() ? "S" : size;
  if (b.config_size != "ref" && !models::has_size_preset(name, b.config_size)) b.config_size = "ref";  // shipped config
  engine::manual_seed(seed);
  b.model = models::build_tracking_model(name, b.config_size == "ref" ? Json::object() : Json{{"size", b.config_size}});
  b.model->to(device);
  b.adam = std::make_unique<engine::optim::Adam>(b.model->named_parameters(),
                                                 models::reference_training(name)["lr"].get<double>());
  return b;
}

// "*" after a time that is the warm-up alone (no timed run followed: it took longer than --budget-s).
const char* cold_mark(int timed_runs) { return timed_runs == 0 ? "*" : ""; }

Json measure_row(Bench& b, const Sector& s, int64_t N, const Cli& c, Device device) {
  auto& m = *b.model;
  int64_t flops = -1;
  m.eval();
  const Timing inf = measure(
      [&] {
        engine::NoGradGuard ng;
        if (flops >= 0) {
          m.forward(s.in);
          return;
        }
        engine::profile::FlopScope count;  // the warm-up run is the counted one
        m.forward(s.in);
        flops = count.flops();
      },
      c.repeats, c.budget_s, device);
  m.train();
  const Timing trn = measure(
      [&] {
        const Tensor emb = m.forward(s.in);
        models::infonce_loss(emb, s.pairs, s.particle_id, s.pt, s.reconstructable).backward();
        b.adam->step();
        b.adam->zero_grad();  // so the next run's baseline holds no gradients
      },
      c.repeats, c.budget_s, device);
  Json row = {{"N", N}, {"infer_s", inf.best_s}, {"train_step_s", trn.best_s}, {"infer_peak_mb", inf.peak_mb},
              {"train_peak_mb", trn.peak_mb}, {"gflops_fwd", static_cast<double>(flops) * 1e-9},
              {"timed_runs", {{"infer", inf.runs}, {"train", trn.runs}}}, {"process_peak_rss_mb", process_peak_rss_mb()}};
  fmt::print(stderr, "bench: {:16s} N {:6d}  infer {:8.3f} s{} ({:7.1f} MB, {:.2f} GFLOP)  train step {:8.3f} s{} ({:7.1f} MB)\n",
             b.name, N, inf.best_s, cold_mark(inf.runs), inf.peak_mb, row["gflops_fwd"].get<double>(), trn.best_s,
             cold_mark(trn.runs), trn.peak_mb);
  b.last_N = N, b.last_train_peak_mb = trn.peak_mb;
  if (std::max(inf.best_s, trn.best_s) > c.budget_s || inf.runs == 0 || trn.runs == 0)
    b.stop = fmt::format("skipped: over budget ({} s at N = {})", c.budget_s, N);
  return row;
}

// ------------------------------------------------------------------------------------------------ output

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

Json machine_info(const Cli& c, Device device) {
  char date[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", std::localtime(&t));
  return {{"date", date}, {"device", device.str()}, {"threads", engine::get_num_threads()},
          {"hardware_threads", std::thread::hardware_concurrency()}, {"cpu", cpu_name()},
          {"cuda_build", engine::cuda_compiled()}, {"repeats", c.repeats}, {"budget_s", c.budget_s},
          {"seed", c.seed}, {"sizes", c.sizes}, {"mem_limit_mb", c.mem_limit_mb}};
}

// Pretty-printed JSON, written atomically (data/csv.h).
void write_json(const std::string& path, const Json& j) { data::write_text_file_atomic(path, j.dump(2) + "\n", false); }

Json results(const Cli& c, Device device, const std::vector<Bench>& benches) {
  Json ms = Json::array();
  for (const Bench& b : benches)
    ms.push_back({{"name", b.name}, {"config_size", b.config_size}, {"params", b.model->num_parameters()},
                  {"config", b.model->config()}, {"rows", b.rows}});
  return {{"machine", machine_info(c, device)}, {"flops_counted", kFlopsCounted},
          {"memory", "engine allocator high-water mark above the bytes allocated before the run, MiB (timed runs); "
                     "process_peak_rss_mb: the process's peak RSS so far"},
          {"models", ms}};
}

void write_plot(const std::string& path, const std::string& title, const char* key, const Json& models) {
  std::vector<data::PlotSeries> series;
  for (const Json& m : models) {
    data::PlotSeries s{m["name"].get<std::string>(), {}, {}};
    for (const Json& r : m["rows"])
      if (r.contains(key)) s.xs.push_back(r["N"].get<double>()), s.ys.push_back(r[key].get<double>());
    series.push_back(s);
  }
  data::write_line_plot(path, title, "hits per sector N", "seconds", series, {true, true, true});
}

// "| model | size | params | 3000 | ..." with one cell per N from `cell(row)` ("-" when skipped).
template <class F>
void print_table(const std::string& caption, const Json& models, const std::vector<int64_t>& sizes, F cell) {
  fmt::print("\n{}\n\n| model | size | params |", caption);
  for (int64_t N : sizes) fmt::print(" N={} |", N);
  fmt::print("\n|---|---|---:|{}\n", [&] { std::string s; for (size_t i = 0; i < sizes.size(); ++i) s += "---:|"; return s; }());
  for (const Json& m : models) {
    fmt::print("| {} | {} | {} |", m["name"].get<std::string>(), m["config_size"].get<std::string>(),
               m["params"].get<int64_t>());
    for (int64_t N : sizes) {
      std::string v = "-";
      for (const Json& r : m["rows"])
        if (r["N"].get<int64_t>() == N) v = r.contains("infer_s") ? cell(r) : r.contains("error") ? "error" : "skipped";
      fmt::print(" {} |", v);
    }
    fmt::print("\n");
  }
}

// DIR/bench.json, the two plots and the Markdown tables of a results object (results() or merge_results()).
void write_outputs(const Json& res, const std::string& out_dir) {
  const std::string json_path = out_dir + "/bench.json";
  write_json(json_path, res);
  const Json& machine = res["machine"];
  const std::string device = machine["device"].get<std::string>();
  write_plot(out_dir + "/bench.svg", "inference time per sector (" + device + ")", "infer_s", res["models"]);
  write_plot(out_dir + "/bench-train.svg", "training step per sector (" + device + ")", "train_step_s", res["models"]);
  std::vector<int64_t> sizes;
  for (const Json& m : res["models"])
    for (const Json& r : m["rows"]) sizes.push_back(r["N"].get<int64_t>());
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  const auto num = [](const Json& r, const char* k, const char* f) { return fmt::format(fmt::runtime(f), r[k].get<double>()); };
  const auto time = [&](const Json& r, const char* k, const char* runs) {
    return num(r, k, "{:.3g}") + cold_mark(r["timed_runs"][runs].get<int>());
  };
  print_table(fmt::format("Inference / training step (s), {}, {} threads; *: the warm-up alone (over --budget-s), a "
                          "cold run",
                          device, machine["threads"].get<int>()),
              res["models"], sizes,
              [&](const Json& r) { return time(r, "infer_s", "infer") + " / " + time(r, "train_step_s", "train"); });
  print_table("Forward GFLOP (analytic) / training-step peak memory (MiB)", res["models"], sizes,
              [&](const Json& r) { return num(r, "gflops_fwd", "{:.3g}") + " / " + num(r, "train_peak_mb", "{:.0f}"); });
  fmt::print("\n{} {} {}\n", json_path, out_dir + "/bench.svg", out_dir + "/bench-train.svg");
}

// ------------------------------------------------------------------------------------------------ merge

// The results objects of one file: a bench.json, or an object whose "runs" array holds several.
std::vector<Json> read_results(const std::string& path) {
  Json j;
  try {
    j = Json::parse(data::read_text_file(path));
  } catch (const Json::exception& e) {
    throw std::runtime_error(fmt::format("--merge {}: {}", path, e.what()));
  }
  std::vector<Json> runs = j.contains("runs") ? j["runs"].get<std::vector<Json>>() : std::vector<Json>{j};
  for (const Json& r : runs)
    if (!r.contains("machine") || !r.contains("models") || !r["models"].is_array())
      throw std::runtime_error(fmt::format("--merge {}: not a bench result (no \"machine\" and \"models\")", path));
  return runs;
}

// Merges results in order: for each model (name and size) and N, a later run's measured row replaces an earlier row
// of the same N; other rows and models are added. The runs must share the device and thread count, and a model its
// parameter count.
Json merge_results(const std::vector<std::string>& paths) {
  Json merged, sources = Json::array();
  for (const std::string& path : paths)
    for (const Json& run : read_results(path)) {
      sources.push_back({{"file", path}, {"machine", run["machine"]}});
      if (merged.is_null()) {
        merged = run;
        continue;
      }
      for (const char* key : {"device", "threads"})
        if (run["machine"][key] != merged["machine"][key])
          throw std::runtime_error(fmt::format("--merge {}: machine {} {} differs from the first run's {}", path, key,
                                               run["machine"][key].dump(), merged["machine"][key].dump()));
      for (const Json& model : run["models"]) {
        auto same = [&](const Json& m) { return m["name"] == model["name"] && m["config_size"] == model["config_size"]; };
        auto it = std::find_if(merged["models"].begin(), merged["models"].end(), same);
        if (it == merged["models"].end()) {
          merged["models"].push_back(model);
          continue;
        }
        if ((*it)["params"] != model["params"])
          throw std::runtime_error(fmt::format("--merge {}: {} has {} parameters, {} in an earlier run", path,
                                               model["name"].get<std::string>(), model["params"].dump(),
                                               (*it)["params"].dump()));
        Json& rows = (*it)["rows"];
        for (const Json& row : model["rows"]) {
          auto old = std::find_if(rows.begin(), rows.end(), [&](const Json& r) { return r["N"] == row["N"]; });
          if (old == rows.end()) rows.push_back(row);
          else if (row.contains("infer_s")) *old = row;
        }
        std::sort(rows.begin(), rows.end(), [](const Json& a, const Json& b) { return a["N"] < b["N"]; });
      }
    }
  if (merged.is_null()) throw std::runtime_error("--merge: the files hold no bench results");
  merged["merged_from"] = sources;
  return merged;
}

// ------------------------------------------------------------------------------------------------ main

std::vector<std::string> checked_models(std::vector<std::string> names) {
  const std::vector<std::string> known = models::tracking_model_names();
  if (names.empty()) return known;
  for (const std::string& n : names)
    if (std::find(known.begin(), known.end(), n) == known.end())
      throw std::runtime_error(fmt::format("--models: unknown model '{}' (known: {})", n, fmt::join(known, ", ")));
  return names;
}

Device checked_device(const std::string& name) {
  const Device d = Device::parse(name);
  if (d.is_cuda() && !engine::cuda_compiled())
    throw std::runtime_error("--device cuda: this build has no CUDA backend (configure with -DENGINE_CUDA=ON)");
  if (d.is_cuda() && !engine::cuda_available()) throw std::runtime_error("--device cuda: no CUDA device found");
  return d;
}

int run(Cli& c) {
  if (!c.merge.empty()) {
    std::filesystem::create_directories(c.out_dir);
    write_outputs(merge_results(c.merge), c.out_dir);
    return 0;
  }
  std::sort(c.sizes.begin(), c.sizes.end());
  c.sizes.erase(std::unique(c.sizes.begin(), c.sizes.end()), c.sizes.end());
  const std::vector<std::string> names = checked_models(c.models);
  const Device device = checked_device(c.device_name);
  if (c.threads > 0) engine::set_num_threads(c.threads);
  if (c.mem_limit_mb < 0)
    c.mem_limit_mb = device.is_cpu() ? 0.5 * static_cast<double>(sysconf(_SC_PHYS_PAGES)) *
                                           static_cast<double>(sysconf(_SC_PAGE_SIZE)) / (1024.0 * 1024.0)
                                     : 0;
  std::filesystem::create_directories(c.out_dir);
  const std::string json_path = c.out_dir + "/bench.json";
  std::vector<Bench> benches;
  for (const std::string& n : names) benches.push_back(make_bench(n, c.size, c.seed, device));
  fmt::print(stderr, "bench: {} models, N = {}, {} on {} threads, best of {} after a warm-up, budget {} s -> {}\n",
             benches.size(), fmt::join(c.sizes, ", "), device.str(), engine::get_num_threads(), c.repeats, c.budget_s,
             json_path);
  for (int64_t N : c.sizes) {  // N outer: one sector in memory at a time, every model at small N first
    const Sector s = make_sector(N, c.seed * 1000003ULL + static_cast<uint64_t>(N), device);
    for (Bench& b : benches) {
      if (b.stop.empty()) over_memory(b, N, c.mem_limit_mb);
      if (!b.stop.empty()) {
        fmt::print(stderr, "bench: {:16s} N {:6d}  {}\n", b.name, N, b.stop);
        b.rows.push_back({{"N", N}, {"skipped", b.stop}});
        continue;
      }
      try {
        b.rows.push_back(measure_row(b, s, N, c, device));
      } catch (const std::exception& e) {
        fmt::print(stderr, "bench: {} N {}: error: {}\n", b.name, N, e.what());
        b.rows.push_back({{"N", N}, {"error", e.what()}});
        b.stop = fmt::format("skipped: error at N = {}", N);
      }
      release_caches();  // cached blocks of this size would pile up next to the next size's
      write_json(json_path, results(c, device, benches));
    }
  }
  write_outputs(results(c, device, benches), c.out_dir);
  return 0;
}

// CLI11 check: a positive integer (CLI::PositiveNumber's message prints the whole double range).
const CLI::Validator kPositiveInt(
    [](std::string& v) {
      size_t used = 0;
      long long n = 0;
      try {
        n = std::stoll(v, &used);
      } catch (const std::exception&) {
      }
      return used == v.size() && n > 0 ? std::string() : "'" + v + "' is not a positive integer";
    },
    "INT > 0");

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Per-model benchmark: inference, training step, peak memory and forward FLOPs vs hits per sector"};
  Cli c;
  // the measuring options, which --merge excludes
  const std::vector<CLI::Option*> measuring = {
      cli.add_option("--models", c.models, "comma-separated catalog models (default: all)")->delimiter(','),
      cli.add_option("--size", c.size, "paper size preset S, M, L or ref (default S where a model has presets; "
                                       "models without presets always use the shipped config)")
          ->check(CLI::IsMember({"S", "M", "L", "ref"})),
      cli.add_option("--sizes", c.sizes, "comma-separated hit counts N")->delimiter(',')->check(kPositiveInt),
      cli.add_option("--device", c.device_name, "cpu or cuda[:N]"),
      cli.add_option("--threads", c.threads, "CPU threads (default: all cores)"),
      cli.add_option("--repeats", c.repeats, "timed runs per measurement, best taken (after one warm-up)")
          ->check(kPositiveInt),
      cli.add_option("--budget-s", c.budget_s, "skip larger N of a model once one of its runs takes longer than this"),
      cli.add_option("--mem-limit-mb", c.mem_limit_mb, "skip a size whose training-step peak, extrapolated from the "
                     "previous size, exceeds this (default: half the RAM on the CPU, none on CUDA; 0: no limit)"),
      cli.add_option("--seed", c.seed, "seed of the model init and the synthetic sectors")};
  cli.add_option("--out", c.out_dir, "output folder (bench.json, bench.svg, bench-train.svg)");
  CLI::Option* merge = cli.add_option("--merge", c.merge, "instead of measuring, combine earlier results (bench.json "
                                      "files, or objects with a \"runs\" array of them): for each model and N the "
                                      "last measured row wins; writes the merged bench.json, plots and tables to --out")
                           ->delimiter(',')
                           ->check(CLI::ExistingFile);
  for (CLI::Option* o : measuring) merge->excludes(o);
  CLI11_PARSE(cli, argc, argv);
  try {
    return run(c);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench: error: {}\n", e.what());
    return 1;
  }
}
