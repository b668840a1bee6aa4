// bench_gdelta: the fused gated delta rule (layers::gated_delta_rule) against the naive step-by-step reference (one
// engine op chain per sub-step with autograd, as in tests/layers_gdelta), at the catalog shape of the Gated
// DeltaProduct (6 heads, K = 16, V = 32, 2 Householder sub-steps per token, so T = 2L), and the whole
// GatedDeltaProduct attention layer at d = 96 (lshgd's width). For L = 6k, 60k, 100k tokens: forward time (no grad),
// forward+backward time, and peak CPU memory of forward+backward above the inputs (engine allocator high-water mark).
//
//   bench_gdelta [--threads N] [--naive-fwd-max L] [--naive-bwd-max L] [--lengths 6000,60000,100000]
// Defaults: 2 threads; the naive forward up to L = 60000 (no grad: O(1) state), the naive forward+backward only up to
// L = 6000 (its autograd graph keeps several [H, K, V] tensors per sub-step: ~0.6 GB at L = 6k, ~6 GB at 60k).
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
  Result r;
  {
    NoGradGuard ng;
    double t0 = now_s();
    Tensor o = rule(q, k, v, g, beta);
    r.fwd_s = now_s() - t0;
  }
  if (!with_bwd) return r;
  for (Tensor* t : {&q, &k, &v, &g, &beta}) t->requires_grad_();
  Tensor R = uniform({T, H, V}, -1.0, 1.0);
  const int64_t base = cpu_allocator_stats().allocated_bytes;
  reset_cpu_peak();
  double t0 = now_s();
  {
    Tensor o = rule(q, k, v, g, beta);
    sum(o * R).backward();
  }
  r.fwdbwd_s = now_s() - t0;
  r.peak_mb = static_cast<double>(cpu_allocator_stats().peak_allocated_bytes - base) / (1024.0 * 1024.0);
  return r;
}

Result layer_run(layers::GatedDeltaProduct& m, int64_t L) {
  using namespace engine;
  Tensor u = uniform({L, m.d}, -1.0, 1.0);
  Result r;
  {
    NoGradGuard ng;
    double t0 = now_s();
    Tensor y = m.forward(u);
    r.fwd_s = now_s() - t0;
  }
  u.requires_grad_();
  const int64_t base = cpu_allocator_stats().allocated_bytes;
  reset_cpu_peak();
  double t0 = now_s();
  {
    Tensor y = m.forward(u);
    sum(y * y).backward();
  }
  r.fwdbwd_s = now_s() - t0;
  r.peak_mb = static_cast<double>(cpu_allocator_stats().peak_allocated_bytes - base) / (1024.0 * 1024.0);
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
  int64_t naive_fwd_max = 60000, naive_bwd_max = 6000;
  std::vector<int64_t> lengths{6000, 60000, 100000};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--naive-fwd-max") && i + 1 < argc) naive_fwd_max = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--naive-bwd-max") && i + 1 < argc) naive_bwd_max = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--lengths") && i + 1 < argc) lengths = parse_list(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: bench_gdelta [--threads N] [--naive-fwd-max L] [--naive-bwd-max L] [--lengths a,b,c]\n");
      return 2;
    }
  }
  engine::set_num_threads(threads);
  const double t_start = now_s();
  std::printf("# bench_gdelta: fused gated delta rule vs naive step-by-step reference, float32, CPU, %d threads\n",
              threads);
  std::printf("# scan shape: 6 heads, K = 16, V = 32, T = 2L sub-steps (2 Householder steps per token)\n\n");
  std::printf("| L (tokens) | T (sub-steps) | fused fwd (s) | fused fwd+bwd (s) | fused peak (MB) | naive fwd (s) | "
              "naive fwd+bwd (s) | naive peak (MB) | speed-up fwd | speed-up fwd+bwd |\n"
              "|---|---|---|---|---|---|---|---|---|---|\n");
  const RuleFn fused = [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const Tensor& b) {
    return layers::gated_delta_rule(q, k, v, g, b, 64);
  };
  for (int64_t L : lengths) {
    Result f = run(L, fused, true);
    Result nv;
    if (L <= naive_fwd_max) nv = run(L, naive_rule, L <= naive_bwd_max);
    std::printf("| %lld | %lld | %s | %s | %s | %s | %s | %s | %s | %s |\n", static_cast<long long>(L),
                static_cast<long long>(2 * L), cell(f.fwd_s).c_str(), cell(f.fwdbwd_s).c_str(),
                cell(f.peak_mb, "%.1f").c_str(), cell(nv.fwd_s).c_str(), cell(nv.fwdbwd_s).c_str(),
                cell(nv.peak_mb, "%.1f").c_str(), cell(nv.fwd_s < 0 ? -1 : nv.fwd_s / f.fwd_s, "%.0fx").c_str(),
                cell(nv.fwdbwd_s < 0 ? -1 : nv.fwdbwd_s / f.fwdbwd_s, "%.0fx").c_str());
    std::fflush(stdout);
  }
  engine::manual_seed(1);
  layers::GatedDeltaProduct attn(96);
  std::printf("\n| GatedDeltaProduct(96) layer | L | fwd (s) | fwd+bwd (s) | peak fwd+bwd (MB) | peak / L (KB) |\n"
              "|---|---|---|---|---|---|\n");
  for (int64_t L : lengths) {
    Result r = layer_run(attn, L);
    std::printf("| | %lld | %.3f | %.3f | %.1f | %.2f |\n", static_cast<long long>(L), r.fwd_s, r.fwdbwd_s,
                r.peak_mb, r.peak_mb * 1024.0 / static_cast<double>(L));
    std::fflush(stdout);
  }
  std::printf("\ntotal wall time %.1f s\n", now_s() - t_start);
  return 0;
}
