// Engine micro-benchmark (CPU): float32 GEMM GFLOP/s for 4096^3 (the Eigen kernel into a preallocated output, and
// matmul() with its allocation), memory throughput of add/exp/sum/softmax/layer_norm, a fused AdamW step, and the
// cost of a 256 MB elementwise op with and without the CPU caching allocator. Prints a table; --json FILE too.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/backend/cpu/linalg.h"
#include "engine/engine.h"
#include "engine/ops/norm.h"

using namespace engine;

namespace {

struct Row {
  std::string name;
  std::string unit;
  double value;  // in `unit`
  double ms;     // best time of one call
};

// Best wall time (ms) of f over `reps` calls after one warm-up call.
double best_ms(const std::function<void()>& f, int reps) {
  f();
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

void gemm_rows(int64_t n, int reps, std::vector<Row>& rows) {
  Tensor a = rand({n, n}), b = rand({n, n});  // [n, n] float32
  Tensor out = empty({1, n, n});              // preallocated [1, n, n]
  Tensor a3 = a.unsqueeze(0), b3 = b.unsqueeze(0);
  const double flop = 2.0 * static_cast<double>(n) * n * n;
  const double ms_kernel = best_ms([&] { cpu::matmul(a3, b3, out); }, reps);
  const double ms_op = best_ms([&] { matmul(a, b); }, reps);
  rows.push_back({fmt::format("gemm {}^3 f32, cpu::matmul (prealloc)", n), "GFLOP/s", flop / ms_kernel / 1e6, ms_kernel});
  rows.push_back({fmt::format("gemm {}^3 f32, matmul()", n), "GFLOP/s", flop / ms_op / 1e6, ms_op});
}

void throughput_rows(int64_t rows_n, int64_t cols, int reps, std::vector<Row>& rows) {
  Tensor x = rand({rows_n, cols}), y = rand({rows_n, cols});  // [rows, cols] float32
  Tensor w = ones({cols}), bias = zeros({cols});
  const double mb = static_cast<double>(x.numel()) * 4 / 1e6;  // one operand, MB
  auto add_row = [&](const std::string& name, double operands, const std::function<void()>& f) {
    const double ms = best_ms(f, reps);
    rows.push_back({fmt::format("{} [{}, {}]", name, rows_n, cols), "GB/s", operands * mb / ms, ms});
  };
  add_row("add", 3, [&] { add(x, y); });
  add_row("exp", 2, [&] { exp(x); });
  add_row("sum (all)", 1, [&] { sum(x); });
  add_row("softmax (last dim)", 2, [&] { softmax(x, -1); });
  add_row("layer_norm (last dim)", 2, [&] { layer_norm(x, w, bias); });
  // AdamW reads param, grad, m, v and writes param, m, v: 7 passes.
  Tensor p = x.clone().requires_grad_();
  p.set_grad(y);
  optim::AdamW opt({{"p", p}}, 1e-3);
  add_row("AdamW step (fused)", 7, [&] { opt.step(); });
}

// A 256 MB elementwise op (after one warm-up call), with the caching allocator on and off: without caching every
// call maps fresh pages and pays their first touch.
void caching_rows(int reps, std::vector<Row>& rows) {
  const int64_t n = 64 << 20;  // 64 Mi float32 = 256 MB
  Tensor x = rand({n});
  for (bool caching : {true, false}) {
    set_cpu_caching(caching);
    const double ms = best_ms([&] { add(x, 1.0); }, reps);
    rows.push_back({fmt::format("add_scalar 256 MB, caching {}", caching ? "on" : "off"), "GB/s",
                    2.0 * n * 4 / 1e6 / ms, ms});
  }
  set_cpu_caching(true);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("engine micro-benchmark");
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int64_t gemm_n = 4096;
  int reps = 3;
  std::string json_path;
  app.add_option("--threads", threads, "CPU threads (default: hardware concurrency)");
  app.add_option("--gemm-size", gemm_n, "GEMM size N for N x N x N")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "timed repetitions per row (best is reported)")->check(CLI::PositiveNumber);
  app.add_option("--json", json_path, "also write the results as JSON to this file");
  CLI11_PARSE(app, argc, argv);

  set_num_threads(threads);
  manual_seed(0);
  NoGradGuard ng;
  std::vector<Row> rows;
  gemm_rows(gemm_n, reps, rows);
  throughput_rows(4096, 4096, reps, rows);
  caching_rows(reps, rows);

  fmt::print("engine benchmark, {} thread(s)\n", get_num_threads());
  fmt::print("{:<48} {:>16} {:>9}\n", "benchmark", "throughput", "ms/call");
  for (const Row& r : rows) fmt::print("{:<48} {:>8.1f} {:<7} {:>9.2f}\n", r.name, r.value, r.unit, r.ms);

  if (!json_path.empty()) {
    nlohmann::json j = {{"threads", get_num_threads()}, {"results", nlohmann::json::array()}};
    for (const Row& r : rows) j["results"].push_back({{"name", r.name}, {"unit", r.unit}, {"value", r.value}, {"ms", r.ms}});
    std::ofstream out(json_path);
    out << j.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "bench_engine: cannot write {}\n", json_path);
      return 1;
    }
  }
  return 0;
}
