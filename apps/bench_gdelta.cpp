// bench_gdelta: the fused gated delta rule (layers::gated_delta_rule) against the naive step-by-step reference (one
// engine op chain per sub-step with autograd, as in tests/layers_gdelta), at the catalog shape of the Gated
// DeltaProduct (6 heads, K = 16, V = 32, 2 Householder sub-steps per token, so T = 2L), and the whole
// GatedDeltaProduct attention layer at d = 96 (lshgd's width). For L = 6k, 60k, 100k tokens: forward time (no grad),
// forward+backward time, and peak CPU memory of forward+backward above the inputs (engine allocator high-water mark).
//
//   bench_gdelta [--threads N] [--lengths 6000,60000,100000] [--naive-lengths 1000,2000] [--device cpu|cuda]
// Defaults: 2 threads, CPU. The naive reference costs ~1-3 ms per sub-step on this 2-core machine (a dozen small
// engine ops with autograd per step), i.e. minutes at L = 6k and far more at 60k, so it is MEASURED at the small
// --naive-lengths only (two of them, to show its cost per sub-step is constant) and its time at the benchmark
// lengths is EXTRAPOLATED linearly from the per-sub-step cost at the largest naive length (columns "est.").
// With --device cuda the fused rule and the layer run on the GPU (no naive reference, no CPU peak memory).
// Total < 2 minutes on 2 cores.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/gated_delta.h"

using engine::Tensor;

namespace {

engine::Device g_device = engine::Device::cpu();

// Waits for the device's queued work (a scalar copy to the host synchronises the stream).
void sync_device(const Tensor& t) {
  if (!g_device.is_cpu()) (void)engine::sum(t.detach()).to(engine::Device::cpu()).item();
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Per-step inputs are separate leaves (detached views), so the autograd graph has no O(T)-sized slice gradients per
// step (that would make the reference's backward O(T^2)); the comparison is then the per-step op chain itself.
Tensor naive_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& beta) {
  using namespace engine;
  const int64_t T = q.size(0), H = q.size(1), K = q.size(2), V = v.size(2);
  const bool grad = q.requires_grad();
  auto leaf = [&](const Tensor& t) {
    Tensor x = t.detach();
    return grad ? x.requires_grad_() : x;
  };
  Tensor S = zeros({H, K, V}, q.options());
  std::vector<Tensor> os(static_cast<size_t>(T));
  const double scale = 1.0 / std::sqrt(static_cast<double>(K));
  for (int64_t t = 0; t < T; ++t) {
    Tensor qt = leaf(q.select(0, t)), kt = leaf(k.select(0, t)), vt = leaf(v.select(0, t));
    Tensor gt = leaf(g.select(0, t)), bt = leaf(beta.select(0, t));
    Tensor kn = kt * rsqrt(sum(kt * kt, {-1}, true) + 1e-6);
    Tensor qs = qt * rsqrt(sum(qt * qt, {-1}, true) + 1e-6) * scale;
    S = S * exp(gt).reshape({H, 1, 1});
    Tensor u = bt.reshape({H, 1, 1}) * (vt.unsqueeze(1) - matmul(kn.unsqueeze(1), S));
    S = S + matmul(kn.unsqueeze(2), u);
    os[static_cast<size_t>(t)] = matmul(qs.unsqueeze(1), S).squeeze(1);
  }
  return stack(os, 0);
}

using RuleFn = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&)>;

struct Result {
  double fwd_s = -1, fwdbwd_s = -1, peak_mb = -1;
};

Result run(int64_t L, const RuleFn& rule, bool with_bwd) {
  using namespace engine;
  const int64_t T = 2 * L, H = 6, K = 16, V = 32;
  manual_seed(L);
  Tensor q = uniform({T, H, K}, -1.0, 1.0), k = uniform({T, H, K}, -1.0, 1.0), v = uniform({T, H, V}, -1.0, 1.0);
  Tensor g = uniform({T, H}, -0.2, 0.0), beta = uniform({T, H}, 0.0, 1.0);
  for (Tensor* t : {&q, &k, &v, &g, &beta}) *t = t->to(g_device);
  Result r;
  {
    NoGradGuard ng;
    double t0 = now_s();
    Tensor o = rule(q, k, v, g, beta);
    sync_device(o);
    r.fwd_s = now_s() - t0;
  }
  if (!with_bwd) return r;
  for (Tensor* t : {&q, &k, &v, &g, &beta}) t->requires_grad_();
  Tensor R = uniform({T, H, V}, -1.0, 1.0).to(g_device);
  sync_device(R);
  const int64_t base = cpu_allocator_stats().allocated_bytes;
  reset_cpu_peak();
  double t0 = now_s();
  {
    Tensor o = rule(q, k, v, g, beta);
    sum(o * R).backward();
    sync_device(q.grad());
  }
  r.fwdbwd_s = now_s() - t0;
  if (g_device.is_cpu()) r.peak_mb = static_cast<double>(cpu_allocator_stats().peak_allocated_bytes - base) / (1024.0 * 1024.0);
  return r;
}

Result layer_run(layers::GatedDeltaProduct& m, int64_t L) {
  using namespace engine;
  Tensor u = uniform({L, m.d}, -1.0, 1.0).to(g_device);
  sync_device(u);
  Result r;
  {
    NoGradGuard ng;
    double t0 = now_s();
    Tensor y = m.forward(u);
    sync_device(y);
    r.fwd_s = now_s() - t0;
  }
  u.requires_grad_();
  const int64_t base = cpu_allocator_stats().allocated_bytes;
  reset_cpu_peak();
  double t0 = now_s();
  {
    Tensor y = m.forward(u);
    sum(y * y).backward();
    sync_device(u.grad());
  }
  r.fwdbwd_s = now_s() - t0;
  if (g_device.is_cpu()) r.peak_mb = static_cast<double>(cpu_allocator_stats().peak_allocated_bytes - base) / (1024.0 * 1024.0);
  m.zero_grad();
  return r;
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  for (const char* p = s; *p;) {
    v.push_back(std::strtoll(p, nullptr, 10));
    p = std::strchr(p, ',');
    if (!p) break;
    ++p;
  }
  return v;
}

std::string cell(double x, const char* fmt = "%.3f") {
  if (x < 0) return "-";
  char b[64];
  std::snprintf(b, sizeof b, fmt, x);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  std::vector<int64_t> lengths{6000, 60000, 100000}, naive_lengths{1000, 2000};
  std::string device_name = "cpu";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--naive-lengths") && i + 1 < argc) naive_lengths = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--lengths") && i + 1 < argc) lengths = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--device") && i + 1 < argc) device_name = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_gdelta [--threads N] [--lengths a,b,c] [--naive-lengths a,b] "
                           "[--device cpu|cuda]\n");
      return 2;
    }
  }
  engine::set_num_threads(threads);
  g_device = engine::Device::parse(device_name);
  const bool cpu = g_device.is_cpu();
  const double t_start = now_s();
  std::printf("# bench_gdelta: fused gated delta rule vs naive step-by-step reference, float32, %s, %d CPU threads\n",
              g_device.str().c_str(), threads);
  std::printf("# scan shape: 6 heads, K = 16, V = 32, T = 2L sub-steps (2 Householder steps per token)\n");
  // The naive reference (measured at small L; its cost per sub-step is constant, checked by the two lengths).
  double naive_fwd_per_step = -1, naive_fb_per_step = -1;
  if (cpu && !naive_lengths.empty()) {
    std::printf("\n| naive reference: L (tokens) | T | fwd (s) | fwd+bwd (s) | peak fwd+bwd (MB) | fwd per sub-step (us) | "
                "fwd+bwd per sub-step (us) |\n|---|---|---|---|---|---|---|\n");
    for (int64_t L : naive_lengths) {
      Result nv = run(L, naive_rule, true);
      naive_fwd_per_step = nv.fwd_s / static_cast<double>(2 * L);
      naive_fb_per_step = nv.fwdbwd_s / static_cast<double>(2 * L);
      std::printf("| | %lld | %lld | %.3f | %.3f | %.1f | %.1f | %.1f |\n", static_cast<long long>(L),
                  static_cast<long long>(2 * L), nv.fwd_s, nv.fwdbwd_s, nv.peak_mb, naive_fwd_per_step * 1e6,
                  naive_fb_per_step * 1e6);
      std::fflush(stdout);
    }
  }
  std::printf("\n| fused: L (tokens) | T | fwd (s) | fwd+bwd (s) | peak fwd+bwd (MB) | peak / L (KB) | naive fwd est. (s) | "
              "naive fwd+bwd est. (s) | speed-up fwd | speed-up fwd+bwd |\n|---|---|---|---|---|---|---|---|---|---|\n");
  const RuleFn fused = [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& b) {
    return layers::gated_delta_rule(q, k, v, g, b, 64);
  };
  for (int64_t L : lengths) {
    Result f = run(L, fused, true);
    const double T = static_cast<double>(2 * L);
    const double nf = naive_fwd_per_step < 0 ? -1 : naive_fwd_per_step * T;
    const double nb = naive_fb_per_step < 0 ? -1 : naive_fb_per_step * T;
    std::printf("| | %lld | %lld | %s | %s | %s | %s | %s | %s | %s | %s |\n", static_cast<long long>(L),
                static_cast<long long>(2 * L), cell(f.fwd_s).c_str(), cell(f.fwdbwd_s).c_str(),
                cell(f.peak_mb, "%.1f").c_str(), cell(f.peak_mb < 0 ? -1 : f.peak_mb * 1024.0 / L, "%.2f").c_str(),
                cell(nf, "%.0f").c_str(), cell(nb, "%.0f").c_str(), cell(nf < 0 ? -1 : nf / f.fwd_s, "%.0fx").c_str(),
                cell(nb < 0 ? -1 : nb / f.fwdbwd_s, "%.0fx").c_str());
    std::fflush(stdout);
  }
  engine::manual_seed(1);
  layers::GatedDeltaProduct attn(96);
  attn.to(g_device);
  std::printf("\n| GatedDeltaProduct(96) layer: L | fwd (s) | fwd+bwd (s) | peak fwd+bwd (MB) | peak / L (KB) |\n"
              "|---|---|---|---|---|\n");
  for (int64_t L : lengths) {
    Result r = layer_run(attn, L);
    std::printf("| %lld | %.3f | %.3f | %s | %s |\n", static_cast<long long>(L), r.fwd_s, r.fwdbwd_s,
                cell(r.peak_mb, "%.1f").c_str(), cell(r.peak_mb < 0 ? -1 : r.peak_mb * 1024.0 / L, "%.2f").c_str());
    std::fflush(stdout);
  }
  std::printf("\ntotal wall time %.1f s\n", now_s() - t_start);
  return 0;
}
