// bench_ssd: the fused SSD scan (layers::ssd_scan) against the naive step-by-step reference (one engine op chain
// per time step with autograd, as in tests/layers_ssd), at the catalog widths: Mamba2 d=64 (8 heads x 16, n 16),
// Mamba2 d=128 (16 heads x 16), Hydra d=48 (8 heads x 12, n 16, forward + reverse scan). For L = 6k, 60k, 100k:
// forward time (no grad), forward+backward time, and peak CPU memory of forward+backward above the inputs
// (engine allocator high-water mark). Then whole-layer forward+backward times (Mamba2 d=64/d=128, Hydra d=48).
//
//   bench_ssd [--threads N] [--naive-max L] [--lengths 6000,60000,100000] [--no-layers]
// Defaults: 2 threads, naive reference up to L = 60000 (it keeps O(L*H*P*n) autograd state), total < 2 minutes.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/hydra.h"
#include "layers/mamba2.h"
#include "layers/ssd.h"

using engine::Tensor;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Per-step inputs are made separate leaves first (views of the inputs, detached), so that the autograd graph has no
// O(L)-sized slice gradients per step (which would make the reference's backward O(L^2)); the comparison is then
// the per-step op chain itself.
Tensor naive_ssd(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                 const Tensor& D, bool reverse) {
  using namespace engine;
  const int64_t L = x.size(0), H = x.size(1), P = x.size(2), n = B.size(1);
  const bool grad = x.requires_grad();
  auto leaf = [&](const Tensor& t) {
    Tensor v = t.detach();
    return grad ? v.requires_grad_() : v;
  };
  Tensor S = zeros({H, P, n}, x.options());
  std::vector<Tensor> ys(static_cast<size_t>(L));
  for (int64_t k = 0; k < L; ++k) {
    const int64_t t = reverse ? L - 1 - k : k;
    Tensor xt = leaf(x.select(0, t)), dtt = leaf(dt.select(0, t));
    Tensor Bt = leaf(B.select(0, t)), Ct = leaf(C.select(0, t));
    Tensor a = exp(dtt * A).reshape({H, 1, 1});
    S = S * a + (xt * dtt.unsqueeze(-1)).unsqueeze(-1) * Bt.reshape({1, 1, n});
    ys[static_cast<size_t>(t)] = matmul(S, Ct.reshape({n, 1})).squeeze(-1) + D.unsqueeze(-1) * xt;
  }
  return stack(ys, 0);
}

struct Width {
  const char* name;
  int64_t H, P, n;
  bool bidirectional;
};

struct Result {
  double fwd_s = 0, fwdbwd_s = 0, peak_mb = 0;
};

using ScanFn = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                    const Tensor&, bool)>;

Result run(const Width& w, int64_t L, const ScanFn& scan) {
  using namespace engine;
  manual_seed(L + w.H);
  Tensor x = uniform({L, w.H, w.P}, -1.0, 1.0), dt = uniform({L, w.H}, 0.001, 0.1), A = uniform({w.H}, -16.0, -1.0);
  Tensor B = uniform({L, w.n}, -1.0, 1.0), C = uniform({L, w.n}, -1.0, 1.0), D = ones({w.H});
  Tensor B2 = uniform({L, w.n}, -1.0, 1.0), C2 = uniform({L, w.n}, -1.0, 1.0);
  Result r;
  {
    NoGradGuard ng;
    double t0 = now_s();
    Tensor y = scan(x, dt, A, B, C, D, false);
    if (w.bidirectional) y = y + scan(x, dt, A, B2, C2, D, true);
    r.fwd_s = now_s() - t0;
  }
  for (Tensor* t : {&x, &dt, &A, &B, &C, &D, &B2, &C2}) t->requires_grad_();
  Tensor R = uniform({L, w.H, w.P}, -1.0, 1.0);
  const int64_t base = cpu_allocator_stats().allocated_bytes;
  reset_cpu_peak();
  double t0 = now_s();
  {
    Tensor y = scan(x, dt, A, B, C, D, false);
    if (w.bidirectional) y = y + scan(x, dt, A, B2, C2, D, true);
    sum(y * R).backward();
  }
  r.fwdbwd_s = now_s() - t0;
  r.peak_mb = static_cast<double>(cpu_allocator_stats().peak_allocated_bytes - base) / (1024.0 * 1024.0);
  return r;
}

double layer_fwdbwd(engine::nn::Module& m, const std::function<Tensor(const Tensor&)>& f, int64_t L, int64_t d) {
  using namespace engine;
  Tensor u = uniform({L, d}, -1.0, 1.0).requires_grad_();
  double t0 = now_s();
  Tensor y = f(u);
  sum(y * y).backward();
  m.zero_grad();
  return now_s() - t0;
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

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t naive_max = 60000;
  bool layers_too = true;
  std::vector<int64_t> lengths{6000, 60000, 100000};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--naive-max") && i + 1 < argc) naive_max = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--lengths") && i + 1 < argc) lengths = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--no-layers")) layers_too = false;
    else {
      std::fprintf(stderr, "usage: bench_ssd [--threads N] [--naive-max L] [--lengths a,b,c] [--no-layers]\n");
      return 2;
    }
  }
  engine::set_num_threads(threads);
  const double t_start = now_s();
  std::printf("# bench_ssd: fused SSD scan vs naive step-by-step reference, float32, CPU, %d threads\n\n", threads);
  std::printf("| width | L | fused fwd (s) | fused fwd+bwd (s) | fused peak (MB) | naive fwd (s) | naive fwd+bwd (s) | "
              "naive peak (MB) | speed-up fwd+bwd |\n|---|---|---|---|---|---|---|---|---|\n");
  const Width widths[] = {{"Mamba2 d=64 (8x16, n16)", 8, 16, 16, false},
                          {"Mamba2 d=128 (16x16, n16)", 16, 16, 16, false},
                          {"Hydra d=48 (8x12, n16, fwd+rev)", 8, 12, 16, true}};
  const ScanFn fused = [](const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                          const Tensor& D, bool rev) { return layers::ssd_scan(x, dt, A, B, C, D, 64, rev); };
  for (const Width& w : widths)
    for (int64_t L : lengths) {
      Result f = run(w, L, fused);
      std::printf("| %s | %lld | %.3f | %.3f | %.1f |", w.name, static_cast<long long>(L), f.fwd_s, f.fwdbwd_s,
                  f.peak_mb);
      if (L <= naive_max) {
        Result nv = run(w, L, naive_ssd);
        std::printf(" %.3f | %.3f | %.1f | %.1fx |\n", nv.fwd_s, nv.fwdbwd_s, nv.peak_mb, nv.fwdbwd_s / f.fwdbwd_s);
      } else {
        std::printf(" - | - | - | - |\n");
      }
      std::fflush(stdout);
    }
  if (layers_too) {
    engine::manual_seed(1);
    layers::Mamba2 m64(64), m128(128);
    layers::Hydra hy(48);
    std::printf("\n| whole layer fwd+bwd (s) | L | Mamba2 d=64 | Mamba2 d=128 | Hydra d=48 |\n|---|---|---|---|---|\n");
    for (int64_t L : lengths) {
      const double a = layer_fwdbwd(m64, [&](const Tensor& u) { return m64.forward(u); }, L, 64);
      const double b = layer_fwdbwd(m128, [&](const Tensor& u) { return m128.forward(u); }, L, 128);
      const double c = layer_fwdbwd(hy, [&](const Tensor& u) { return hy.forward(u); }, L, 48);
      std::printf("| | %lld | %.3f | %.3f | %.3f |\n", static_cast<long long>(L), a, b, c);
      std::fflush(stdout);
    }
  }
  std::printf("\ntotal wall time %.1f s\n", now_s() - t_start);
  return 0;
}
