// bench_mamba: Mamba v1's fused selective scan (layers::selective_scan) against the naive step-by-step reference
// (one engine op chain per time step with autograd, as in tests/layers_mamba) at the catalog widths: hmambav2/v1
// d_model 96 (E = 192, n = 16) and the paper's S size d_model 48 (E = 96). For each L: forward time (no grad),
// forward+backward time and peak CPU memory of forward+backward above the inputs (engine allocator high-water
// mark); then whole MambaBlock forward+backward times. Markdown on stdout.
//
//   bench_mamba [--threads N] [--naive-max L] [--lengths 6000,60000,100000]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "engine/allocator.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/mamba.h"
#include "layers/selective_scan.h"

using engine::Tensor;
using engine::Tensors;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Per-step slices are detached leaves, so the reference's backward stays O(L) (no O(L)-sized slice gradients per
// step); what is compared is the per-step op chain itself.
Tensor naive_scan(const Tensors& in) {
  using namespace engine;
  const Tensor &x = in[0], &delta = in[1], &A = in[2], &B = in[3], &C = in[4], &D = in[5], &bias = in[6], &z = in[7];
  const int64_t L = x.size(0), E = x.size(1), n = A.size(1);
  const bool grad = x.requires_grad();
  auto leaf = [&](const Tensor& t) {
    Tensor v = t.detach();
    return grad ? v.requires_grad_() : v;
  };
  Tensor h = zeros({E, n});
  std::vector<Tensor> ys(static_cast<size_t>(L));
  for (int64_t t = 0; t < L; ++t) {
    Tensor xt = leaf(x.select(0, t)), dt = softplus(leaf(delta.select(0, t)) + bias).reshape({E, 1});
    h = exp(dt * A) * h + (dt * xt.reshape({E, 1})) * leaf(B.select(0, t)).reshape({1, n});
    ys[static_cast<size_t>(t)] = matmul(h, leaf(C.select(0, t)).reshape({n, 1})).reshape({E}) + D * xt;
  }
  return stack(ys, 0) * silu(z);
}

Tensor fused_scan(const Tensors& in) {
  return layers::selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]);
}

struct Result {
  double fwd_s = 0, fwdbwd_s = 0, peak_mb = 0;
};

Result run(int64_t L, int64_t E, const std::function<Tensor(const Tensors&)>& scan) {
  using namespace engine;
  manual_seed(L + E);
  const int64_t n = 16;
  Tensors in{uniform({L, E}, -1, 1),      uniform({L, E}, -3, 1), uniform({E, n}, -16, -1), uniform({L, n}, -1, 1),
             uniform({L, n}, -1, 1),      ones({E}),              uniform({E}, -6, -2),     uniform({L, E}, -2, 2)};
  Result r;
  {
    NoGradGuard ng;
    const double t0 = now_s();
    scan(in);
    r.fwd_s = now_s() - t0;
  }
  for (Tensor& t : in) t.requires_grad_();
  const Tensor R = uniform({L, E}, -1, 1);
  const int64_t base = cpu_allocator_stats().allocated_bytes;
  reset_cpu_peak();
  const double t0 = now_s();
  sum(scan(in) * R).backward();
  r.fwdbwd_s = now_s() - t0;
  r.peak_mb = static_cast<double>(cpu_allocator_stats().peak_allocated_bytes - base) / (1024.0 * 1024.0);
  return r;
}

double block_fwdbwd(layers::MambaBlock& block, int64_t L, int64_t d) {
  using namespace engine;
  Tensor u = uniform({L, d}, -1, 1).requires_grad_();
  const double t0 = now_s();
  Tensor y = block.forward(u);
  sum(y * y).backward();
  block.zero_grad();
  return now_s() - t0;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t naive_max = 60000;
  std::vector<int64_t> lengths{6000, 60000, 100000};
  CLI::App cli{"Fused selective scan vs the naive reference (time and peak memory)"};
  cli.add_option("--threads", threads, "CPU threads");
  cli.add_option("--naive-max", naive_max, "longest L for the naive reference");
  cli.add_option("--lengths", lengths, "sequence lengths")->delimiter(',');
  CLI11_PARSE(cli, argc, argv);
  engine::set_num_threads(threads);
  const double t_start = now_s();
  std::printf("# bench_mamba: fused selective scan vs naive step-by-step reference, float32, CPU, %d threads\n\n",
              threads);
  std::printf("| width | L | fused fwd (s) | fused fwd+bwd (s) | fused peak (MB) | naive fwd (s) | naive fwd+bwd (s) | "
              "naive peak (MB) | speed-up fwd+bwd |\n|---|---|---|---|---|---|---|---|---|\n");
  for (int64_t E : {192, 96})
    for (int64_t L : lengths) {
      const Result f = run(L, E, fused_scan);
      std::printf("| E=%lld n=16 | %lld | %.3f | %.3f | %.1f |", static_cast<long long>(E), static_cast<long long>(L),
                  f.fwd_s, f.fwdbwd_s, f.peak_mb);
      if (L <= naive_max) {
        const Result nv = run(L, E, naive_scan);
        std::printf(" %.3f | %.3f | %.1f | %.1fx |\n", nv.fwd_s, nv.fwdbwd_s, nv.peak_mb, nv.fwdbwd_s / f.fwdbwd_s);
      } else {
        std::printf(" - | - | - | - |\n");
      }
      std::fflush(stdout);
    }
  engine::manual_seed(1);
  layers::MambaBlock b96(96), b48(48);
  std::printf("\n| MambaBlock fwd+bwd (s) | L | d_model 96 | d_model 48 |\n|---|---|---|---|\n");
  for (int64_t L : lengths) {
    std::printf("| | %lld | %.3f | %.3f |\n", static_cast<long long>(L), block_fwdbwd(b96, L, 96),
                block_fwdbwd(b48, L, 48));
    std::fflush(stdout);
  }
  std::printf("\ntotal wall time %.1f s\n", now_s() - t_start);
  return 0;
}
