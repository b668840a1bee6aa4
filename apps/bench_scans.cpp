// bench_scans: the fused recurrences of layers/ against their naive step-by-step references (one engine op chain per
// time step with autograd, as in the tests) at the catalog widths: Mamba v1's selective scan (hmambav2/v1 d_model 96:
// E = 192, n = 16; the paper's S size d_model 48: E = 96), RWKV-5's WKV5 (rwkv: 8 heads x 16) and RWKV-7's WKV7
// (rwkv7: 4 heads x 16). For each L: forward time (no grad), forward+backward time and peak CPU memory of
// forward+backward above the inputs (engine allocator high-water mark); then whole MambaBlock forward+backward times.
// (The SSD and gated-delta scans have their own apps/bench_ssd and apps/bench_gdelta.) Markdown on stdout. The fused
// scan is timed after one warm-up run (the first touch of fresh pages is ~100x slower than reuse on these machines);
// the naive reference, minutes long, runs once.
//
//   bench_scans [--threads N] [--naive-max L] [--lengths 6000,60000,100000]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/mamba.h"
#include "layers/selective_scan.h"
#include "layers/wkv.h"

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

// The WKV recurrences step by step (as tests/layers_rwkv), per-step slices as detached leaves.
Tensor naive_wkv(const Tensors& in, int version) {
  using namespace engine;
  const int64_t L = in[0].size(0), H = in[0].size(1), N = in[0].size(2);
  const bool grad = in[0].requires_grad();
  auto step = [&](int i, int64_t t) {
    Tensor v = in[static_cast<size_t>(i)].select(0, t).detach();
    return grad ? v.requires_grad_() : v;
  };
  Tensor S = zeros({H, N, N});
  std::vector<Tensor> ys(static_cast<size_t>(L));
  for (int64_t t = 0; t < L; ++t) {
    if (version == 5) {  // r, k, v, w, u
      Tensor kv = step(1, t).unsqueeze(2) * step(2, t).unsqueeze(1);
      ys[static_cast<size_t>(t)] = sum(step(0, t).unsqueeze(2) * (in[4].unsqueeze(2) * kv + S), {1});
      S = in[3].unsqueeze(2) * S + kv;
    } else {  // r, w, k, v, a, b
      const Tensor sa = sum(S * step(4, t).unsqueeze(1), {2});
      S = S * exp(neg(exp(step(1, t)))).unsqueeze(1) + sa.unsqueeze(2) * step(5, t).unsqueeze(1) +
          step(3, t).unsqueeze(2) * step(2, t).unsqueeze(1);
      ys[static_cast<size_t>(t)] = sum(S * step(0, t).unsqueeze(1), {2});
    }
  }
  return stack(ys, 0);
}

struct Result {
  double fwd_s = 0, fwdbwd_s = 0, peak_mb = 0;
};

Tensors scan_inputs(int64_t L, int64_t E) {
  using namespace engine;
  const int64_t n = 16;
  return {uniform({L, E}, -1, 1), uniform({L, E}, -3, 1), uniform({E, n}, -16, -1), uniform({L, n}, -1, 1),
          uniform({L, n}, -1, 1), ones({E}),              uniform({E}, -6, -2),     uniform({L, E}, -2, 2)};
}

Tensors wkv_inputs(int64_t L, int64_t H, int version) {
  using namespace engine;
  const int64_t N = 16;
  if (version == 5)
    return {uniform({L, H, N}, -1, 1), uniform({L, H, N}, -1, 1), uniform({L, H, N}, -1, 1),
            uniform({H, N}, 0.3, 0.99), uniform({H, N}, -0.5, 0.5)};
  const Tensor kk = uniform({L, H, N}, -1, 1), kn = kk / sqrt(sum(square(kk), {2}, true));
  return {uniform({L, H, N}, -1, 1), uniform({L, H, N}, -3, -0.5), uniform({L, H, N}, -1, 1),
          uniform({L, H, N}, -1, 1), neg(kn), kn * uniform({L, H, N}, 0, 1)};
}

// Times f on `in` without gradients, then forward+backward with every input a leaf; peak memory of the latter.
Result measure(Tensors in, const std::function<Tensor(const Tensors&)>& scan) {
  using namespace engine;
  Result r;
  Shape out_shape;
  {
    NoGradGuard ng;
    const double t0 = now_s();
    out_shape = scan(in).shape();
    r.fwd_s = now_s() - t0;
  }
  for (Tensor& t : in) t = t.detach().requires_grad_();
  const Tensor R = uniform(out_shape, -1, 1);
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
  CLI::App cli{"Fused recurrences (selective scan, WKV5, WKV7) vs their naive references (time and peak memory)"};
  cli.add_option("--threads", threads, "CPU threads");
  cli.add_option("--naive-max", naive_max, "longest L for the naive reference");
  cli.add_option("--lengths", lengths, "sequence lengths")->delimiter(',');
  CLI11_PARSE(cli, argc, argv);
  engine::set_num_threads(threads);
  const double t_start = now_s();
  std::printf("# bench_scans: fused recurrences vs naive step-by-step references, float32, CPU, %d threads\n\n",
              threads);
  std::printf("| width | L | fused fwd (s) | fused fwd+bwd (s) | fused peak (MB) | naive fwd (s) | naive fwd+bwd (s) | "
              "naive peak (MB) | speed-up fwd+bwd |\n|---|---|---|---|---|---|---|---|---|\n");
  struct Case {
    std::string name;
    std::function<Tensors(int64_t)> inputs;
    std::function<Tensor(const Tensors&)> fused, naive;
  };
  const Case cases[] = {
      {"selective scan E=192 n=16", [](int64_t L) { return scan_inputs(L, 192); }, fused_scan, naive_scan},
      {"selective scan E=96 n=16", [](int64_t L) { return scan_inputs(L, 96); }, fused_scan, naive_scan},
      {"WKV5 8 heads x 16", [](int64_t L) { return wkv_inputs(L, 8, 5); },
       [](const Tensors& in) { return layers::wkv5(in[0], in[1], in[2], in[3], in[4]); },
       [](const Tensors& in) { return naive_wkv(in, 5); }},
      {"WKV7 4 heads x 16", [](int64_t L) { return wkv_inputs(L, 4, 7); },
       [](const Tensors& in) { return layers::wkv7(in[0], in[1], in[2], in[3], in[4], in[5]); },
       [](const Tensors& in) { return naive_wkv(in, 7); }}};
  for (const Case& c : cases)
    for (int64_t L : lengths) {
      engine::manual_seed(static_cast<uint64_t>(L));
      const Tensors in = c.inputs(L);
      (void)measure(in, c.fused);  // warm-up: the allocator then reuses the pages (a training loop's steady state)
      const Result f = measure(in, c.fused);
      std::printf("| %s | %lld | %.3f | %.3f | %.1f |", c.name.c_str(), static_cast<long long>(L), f.fwd_s,
                  f.fwdbwd_s, f.peak_mb);
      if (L <= naive_max) {
        const Result nv = measure(in, c.naive);
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
