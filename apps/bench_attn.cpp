// bench_attn: the attention layers of the transformer baselines at the catalog widths, for N = 6k, 60k, 100k hits:
// forward time (no grad), forward+backward time and peak CPU memory above the inputs (engine allocator high-water
// mark, and per hit, which stays flat when nothing allocates O(N^2)) of
//   - dense and causal multi-head softmax attention (mhaformer / casualformer: MultiHeadAttention h 24, 4 heads x 24),
//   - one FlatFormer layer (FlatformerAttention h 30, 8 heads x 30, 4 sub-layers, groups of 200, window curves
//     included in the timed forward),
//   - one PCT layer (PCTBlock h 24, 8 heads, over the undirected 60-NN (eta, phi) graph of data::knn_graph; the
//     graph is built once per N outside the timings, its build time is printed beside them).
// Dense attention costs O(N^2) time (not memory): a measurement whose time, extrapolated from the previous size of
// the same case, would exceed --budget seconds is skipped and printed with its prediction.
//
//   bench_attn [--threads 2] [--sizes 6000,60000,100000] [--budget 120]
// Run it on a quiet machine with OMP_WAIT_POLICY=passive.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "data/graphs.h"
#include "engine/allocator.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/dense_attention.h"
#include "layers/pct.h"
#include "layers/window_attention.h"

using engine::Tensor;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Hit-like coordinates [N, 6]: eta uniform in [-4, 4], phi in [-pi, pi], then r, z-like columns.
Tensor make_coords(int64_t N) {
  using namespace engine;
  const Tensor eta = uniform({N, 1}, -4, 4), phi = uniform({N, 1}, -M_PI, M_PI);
  return concat({eta, phi, uniform({N, 1}, 0, 1), phi / M_PI, uniform({N, 1}, -1, 1), uniform({N, 1}, 0, 1)}, 1);
}

// PCT's input graph: the event's undirected 60-NN (eta, phi) graph, as the data pipeline builds it for the pct model.
layers::PCTGraph pct_input_graph(const Tensor& coords) {
  const std::vector<float> eta_phi = coords.narrow(1, 0, 2).contiguous().to_vector<float>();  // [N, 2]
  return layers::pct_graph(data::knn_graph(eta_phi, 60), coords.size(0));
}

struct Measurement {
  bool run = false;
  double seconds = 0, predicted = 0, peak_mb = 0;
};

// Timed calls of f, with the peak memory above what was allocated before each. Skipped when the extrapolation from the previous size (time x (N / N_prev)^power) exceeds the budget.
Measurement measure(const std::function<void()>& f, double previous_s, double growth, double budget) {
  Measurement m;
  m.predicted = previous_s * growth;
  if (previous_s > 0 && m.predicted > budget) return m;
  // Best of two when that fits well in the budget (the first run also pays the first touch of fresh memory).
  const int reps = m.predicted * 2 < budget / 2 ? 2 : 1;
  m.seconds = 1e300;
  for (int r = 0; r < reps; ++r) {
    const int64_t base = engine::cpu_allocator_stats().allocated_bytes;
    engine::reset_cpu_peak();
    const double t0 = now_s();
    f();
    m.seconds = std::min(m.seconds, now_s() - t0);
    m.peak_mb = static_cast<double>(engine::cpu_allocator_stats().peak_allocated_bytes - base) / (1024.0 * 1024.0);
  }
  m.run = true;
  return m;
}

std::string cell_time(const Measurement& m) {
  char buf[64];
  if (m.run) std::snprintf(buf, sizeof buf, "%.3f", m.seconds);
  else std::snprintf(buf, sizeof buf, "skipped (~%.0f predicted)", m.predicted);
  return buf;
}

std::string cell_memory(const Measurement& m, int64_t N) {
  char buf[64];
  if (m.run) std::snprintf(buf, sizeof buf, "%.1f (%.2f kB/hit)", m.peak_mb, m.peak_mb * 1024.0 / N);
  else std::snprintf(buf, sizeof buf, "-");
  return buf;
}

struct Case {
  std::string name;
  double time_power;  // 2 for dense attention, 1 for the windowed / graph layers (extrapolation only)
  engine::nn::Module* module;
  // Builds the per-N state (outside the timings) and returns the layer call on input x [N, h].
  std::function<std::function<Tensor(const Tensor&)>(const Tensor& coords)> prepare;
  int64_t h;
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  double budget = 120;
  std::vector<int64_t> sizes{6000, 60000, 100000};
  CLI::App cli{"Attention layers of the transformer baselines: time and peak memory for N hits"};
  cli.add_option("--threads", threads, "CPU threads");
  cli.add_option("--sizes", sizes, "numbers of hits")->delimiter(',');
  cli.add_option("--budget", budget, "skip a measurement predicted to take longer (s)");
  CLI11_PARSE(cli, argc, argv);
  engine::set_num_threads(threads);
  engine::manual_seed(1);
  const double t_start = now_s();

  layers::MultiHeadAttention mha(24, 4, 24);
  layers::FlatformerAttention flat(30, 8);
  layers::PCTBlock pct(24, 8);
  pct.eval();  // no dropout: the deterministic path
  auto dense_case = [&](bool causal) {
    return [&mha, causal](const Tensor&) -> std::function<Tensor(const Tensor&)> {
      layers::DenseAttentionOptions o;
      o.causal = causal;
      return [&mha, o](const Tensor& x) { return mha.forward(x, x, x, o); };
    };
  };
  double knn_s = 0;
  std::vector<Case> cases = {
      {"dense attention (4 x 24)", 2, &mha, dense_case(false), 24},
      {"causal attention (4 x 24)", 2, &mha, dense_case(true), 24},
      {"FlatFormer layer (h 30, 8 heads, G 200)", 1, &flat,
       [&flat](const Tensor& coords) -> std::function<Tensor(const Tensor&)> {
         return [&flat, coords](const Tensor& x) {
           layers::WindowCurves curves;
           {
             engine::NoGradGuard ng;
             curves = layers::window_curves(coords.select(1, 0), coords.select(1, 1), 1000, 30, 200);
           }
           return flat.forward(x, coords, curves)[3];
         };
       },
       30},
      {"PCT layer (h 24, 8 heads, 60-NN)", 1, &pct,
       [&pct, &knn_s](const Tensor& coords) -> std::function<Tensor(const Tensor&)> {
         const double t0 = now_s();
         const layers::PCTGraph g = pct_input_graph(coords);
         knn_s = now_s() - t0;
         return [&pct, coords, g](const Tensor& x) { return pct.forward(x, coords, g); };
       },
       24}};

  std::printf("# bench_attn: attention layers, float32, CPU, %d threads, budget %.0f s per measurement\n\n", threads,
              budget);
  std::printf("| layer | N | forward (s) | forward+backward (s) | peak memory fwd+bwd (MB) | note |\n"
              "|---|---|---|---|---|---|\n");
  for (Case& c : cases) {
    double prev_fwd = 0, prev_bwd = 0;
    int64_t prev_N = 0;
    for (int64_t N : sizes) {
      const double growth = prev_N > 0 ? std::pow(static_cast<double>(N) / prev_N, c.time_power) : 1;
      const Tensor coords = make_coords(N);
      const auto call = c.prepare(coords);
      const Tensor x = engine::randn({N, c.h});
      const Measurement fwd = measure(
          [&] {
            engine::NoGradGuard ng;
            (void)call(x);
          },
          prev_fwd, growth, budget);
      const Measurement bwd = measure(
          [&] {
            const Tensor xl = x.detach().requires_grad_();
            const Tensor y = call(xl);
            engine::sum(y * y).backward();
            c.module->zero_grad();
          },
          prev_bwd, growth, budget);
      std::string note;
      if (c.name.rfind("PCT", 0) == 0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "60-NN graph %.2f s", knn_s);
        note = buf;
      }
      if (!bwd.run && fwd.run) note += (note.empty() ? "" : "; ") + std::string("forward peak ") + cell_memory(fwd, N);
      std::printf("| %s | %lld | %s | %s | %s | %s |\n", c.name.c_str(), static_cast<long long>(N),
                  cell_time(fwd).c_str(), cell_time(bwd).c_str(), cell_memory(bwd, N).c_str(), note.c_str());
      std::fflush(stdout);
      prev_fwd = fwd.run ? fwd.seconds : fwd.predicted;
      prev_bwd = bwd.run ? bwd.seconds : bwd.predicted;
      prev_N = N;
    }
  }
  std::printf("\ntotal wall time %.1f s\n", now_s() - t_start);
  return 0;
}
