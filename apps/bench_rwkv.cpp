// bench_rwkv: the fused WKV recurrences of layers/wkv.h (wkv5: RWKV-5 with static decay, Lampa's rwkv model; wkv7:
// RWKV-7's generalised delta rule, Lampa's rwkv7 model) against naive step-by-step references (one engine op chain
// per token with autograd, the recurrences as written in layers/wkv.h), at C = 128 (8 heads of 16). For each length:
// forward time (no grad), forward+backward time, and peak CPU memory of forward+backward above the inputs (engine
// allocator high-water mark). Times are the best of two runs.
//
//   bench_rwkv [--threads N] [--lengths 6000,60000] [--naive-lengths 500,1000] [--device cpu|cuda]
// Defaults: 2 threads, CPU. The naive references cost tens of microseconds to milliseconds per token (a handful of
// small engine ops with autograd per step), so they are MEASURED at the small --naive-lengths only (two of them, to
// show the cost per token is constant) and their time at the benchmark lengths is EXTRAPOLATED linearly from the
// lowest per-token cost measured (columns "est."). With --device cuda the fused ops run on the GPU (no naive
// reference, no CPU peak memory). Total < 1 minute on 2 cores. On a loaded machine run it with
// OMP_WAIT_POLICY=passive: the naive references run thousands of tiny OpenMP regions, whose spinning threads make
// their times erratic (seconds instead of tenths) when the cores are oversubscribed.
#include <algorithm>
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
#include "layers/wkv.h"

using engine::Tensor;
using engine::Tensors;

namespace {

constexpr int64_t kHeads = 8, kHeadSize = 16;  // C = 128

engine::Device g_device = engine::Device::cpu();

// Waits for the device's queued work (a scalar copy to the host synchronises the stream).
void sync_device(const Tensor& t) {
  if (!g_device.is_cpu()) (void)engine::sum(t.detach()).to(engine::Device::cpu()).item();
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Per-step inputs are separate leaves (detached views), so the autograd graph has no O(L)-sized slice gradients per
// step (that would make the reference's backward O(L^2)); the comparison is then the per-step op chain itself.
Tensor step_leaf(const Tensor& t, int64_t i) {
  Tensor x = t.select(0, i).detach();
  return t.requires_grad() ? x.requires_grad_() : x;
}

// wkv5 one token at a time: in = {r, k, v [L, H, N], w, u [H, N]}; state S [H, N(key), N(value)].
Tensor naive_wkv5(const Tensors& in) {
  using namespace engine;
  const Tensor &r = in[0], &k = in[1], &v = in[2], &w = in[3], &u = in[4];
  const int64_t L = r.size(0), H = r.size(1), N = r.size(2);
  Tensor S = zeros({H, N, N}, r.options());
  std::vector<Tensor> ys(static_cast<size_t>(L));
  for (int64_t t = 0; t < L; ++t) {
    Tensor rt = step_leaf(r, t), kt = step_leaf(k, t), vt = step_leaf(v, t);  // [H, N]
    Tensor kv = kt.unsqueeze(2) * vt.unsqueeze(1);                              // [H, N, N]
    ys[static_cast<size_t>(t)] = matmul(rt.unsqueeze(1), S + u.unsqueeze(2) * kv).squeeze(1);
    S = w.unsqueeze(2) * S + kv;
  }
  return stack(ys, 0);
}

// wkv7 one token at a time: in = {r, w, k, v, a, b [L, H, N]}; state S [H, N(value), N(key)].
Tensor naive_wkv7(const Tensors& in) {
  using namespace engine;
  const int64_t L = in[0].size(0), H = in[0].size(1), N = in[0].size(2);
  Tensor S = zeros({H, N, N}, in[0].options());
  std::vector<Tensor> ys(static_cast<size_t>(L));
  for (int64_t t = 0; t < L; ++t) {
    Tensor rt = step_leaf(in[0], t), wt = step_leaf(in[1], t), kt = step_leaf(in[2], t);
    Tensor vt = step_leaf(in[3], t), at = step_leaf(in[4], t), bt = step_leaf(in[5], t);  // [H, N]
    Tensor sa = matmul(S, at.unsqueeze(2));                                                // [H, N, 1]
    S = S * exp(neg(exp(wt))).unsqueeze(1) + sa * bt.unsqueeze(1) + vt.unsqueeze(2) * kt.unsqueeze(1);
    ys[static_cast<size_t>(t)] = matmul(S, rt.unsqueeze(2)).squeeze(2);
  }
  return stack(ys, 0);
}

using OpFn = std::function<Tensor(const Tensors&)>;

// Inputs in the models' ranges. wkv5: r, k, v in (-1, 1), decay w = exp(-exp(time_decay)) in (0.05, 0.998), bonus u
// in (-0.5, 0.5). wkv7: r, k, v in (-1, 1), log-log decay w in (-3, -0.6), a = -kh and b = kh * gate with kh a unit
// vector per head (the model's normalised kappa) and gate in (0, 1).
Tensors make_inputs(bool seven, int64_t L) {
  using namespace engine;
  const int64_t H = kHeads, N = kHeadSize;
  manual_seed(L);
  Tensors in;
  if (!seven) {
    in = {uniform({L, H, N}, -1.0, 1.0), uniform({L, H, N}, -1.0, 1.0), uniform({L, H, N}, -1.0, 1.0),
          exp(neg(exp(uniform({H, N}, -6.0, 1.0)))), uniform({H, N}, -0.5, 0.5)};
  } else {
    Tensor kappa = uniform({L, H, N}, -1.0, 1.0);
    Tensor kh = kappa * rsqrt(sum(kappa * kappa, {-1}, true) + 1e-12);
    in = {uniform({L, H, N}, -1.0, 1.0), uniform({L, H, N}, -3.0, -0.6), uniform({L, H, N}, -1.0, 1.0),
          uniform({L, H, N}, -1.0, 1.0), neg(kh), kh * uniform({L, H, N}, 0.0, 1.0)};
  }
  for (Tensor& t : in) t = t.contiguous().to(g_device);
  return in;
}

struct Result {
  double fwd_s = -1, fwdbwd_s = -1, peak_mb = -1;
};

Result run_once(bool seven, int64_t L, const OpFn& op) {
  using namespace engine;
  Tensors in = make_inputs(seven, L);
  Result res;
  {
    NoGradGuard ng;
    double t0 = now_s();
    Tensor y = op(in);
    sync_device(y);
    res.fwd_s = now_s() - t0;
  }
  for (Tensor& t : in) t.requires_grad_();
  Tensor R = uniform({L, kHeads, kHeadSize}, -1.0, 1.0).to(g_device);  // dL/dy
  sync_device(R);
  const int64_t base = cpu_allocator_stats().allocated_bytes;
  reset_cpu_peak();
  double t0 = now_s();
  {
    Tensor y = op(in);
    sum(y * R).backward();
    sync_device(in[0].grad());
  }
  res.fwdbwd_s = now_s() - t0;
  if (g_device.is_cpu())
    res.peak_mb = static_cast<double>(cpu_allocator_stats().peak_allocated_bytes - base) / (1024.0 * 1024.0);
  return res;
}

// Best of two runs: this machine is shared, and one run can be slowed several-fold by other processes.
Result run(bool seven, int64_t L, const OpFn& op) {
  Result a = run_once(seven, L, op);
  const Result b = run_once(seven, L, op);
  a.fwd_s = std::min(a.fwd_s, b.fwd_s);
  a.fwdbwd_s = std::min(a.fwdbwd_s, b.fwdbwd_s);
  return a;
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

// One op: the naive reference at the small lengths, then the fused op at the benchmark lengths.
void bench_op(const char* name, bool seven, const OpFn& naive, const OpFn& fused, const std::vector<int64_t>& lengths,
              const std::vector<int64_t>& naive_lengths) {
  double naive_fwd_per_tok = -1, naive_fb_per_tok = -1;
  if (g_device.is_cpu() && !naive_lengths.empty()) {
    std::printf("\n| %s naive reference: L | fwd (s) | fwd+bwd (s) | peak fwd+bwd (MB) | fwd per token (us) | "
                "fwd+bwd per token (us) |\n|---|---|---|---|---|---|\n", name);
    for (int64_t L : naive_lengths) {
      Result nv = run(seven, L, naive);
      const double fwd_per_tok = nv.fwd_s / static_cast<double>(L), fb_per_tok = nv.fwdbwd_s / static_cast<double>(L);
      naive_fwd_per_tok = naive_fwd_per_tok < 0 ? fwd_per_tok : std::min(naive_fwd_per_tok, fwd_per_tok);
      naive_fb_per_tok = naive_fb_per_tok < 0 ? fb_per_tok : std::min(naive_fb_per_tok, fb_per_tok);
      std::printf("| %lld | %.3f | %.3f | %.1f | %.1f | %.1f |\n", static_cast<long long>(L), nv.fwd_s, nv.fwdbwd_s,
                  nv.peak_mb, fwd_per_tok * 1e6, fb_per_tok * 1e6);
      std::fflush(stdout);
    }
  }
  std::printf("\n| %s fused: L | fwd (s) | fwd+bwd (s) | peak fwd+bwd (MB) | peak / L (KB) | naive fwd est. (s) | "
              "naive fwd+bwd est. (s) | speed-up fwd | speed-up fwd+bwd |\n|---|---|---|---|---|---|---|---|---|\n",
              name);
  for (int64_t L : lengths) {
    Result f = run(seven, L, fused);
    const double nf = naive_fwd_per_tok < 0 ? -1 : naive_fwd_per_tok * static_cast<double>(L);
    const double nb = naive_fb_per_tok < 0 ? -1 : naive_fb_per_tok * static_cast<double>(L);
    std::printf("| %lld | %s | %s | %s | %s | %s | %s | %s | %s |\n", static_cast<long long>(L), cell(f.fwd_s).c_str(),
                cell(f.fwdbwd_s).c_str(), cell(f.peak_mb, "%.1f").c_str(),
                cell(f.peak_mb < 0 ? -1 : f.peak_mb * 1024.0 / static_cast<double>(L), "%.2f").c_str(),
                cell(nf, "%.1f").c_str(), cell(nb, "%.1f").c_str(), cell(nf < 0 ? -1 : nf / f.fwd_s, "%.0fx").c_str(),
                cell(nb < 0 ? -1 : nb / f.fwdbwd_s, "%.0fx").c_str());
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  std::vector<int64_t> lengths{6000, 60000}, naive_lengths{500, 1000};
  std::string device_name = "cpu";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--naive-lengths") && i + 1 < argc) naive_lengths = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--lengths") && i + 1 < argc) lengths = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--device") && i + 1 < argc) device_name = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_rwkv [--threads N] [--lengths a,b] [--naive-lengths a,b] [--device cpu|cuda]\n");
      return 2;
    }
  }
  engine::set_num_threads(threads);
  g_device = engine::Device::parse(device_name);
  const double t_start = now_s();
  std::printf("# bench_rwkv: fused WKV recurrences vs naive step-by-step references, float32, %s, %d CPU threads\n",
              g_device.str().c_str(), threads);
  std::printf("# shape: C = 128 = %lld heads of %lld, chunk 64\n", static_cast<long long>(kHeads),
              static_cast<long long>(kHeadSize));
  bench_op("wkv5", false, naive_wkv5,
           [](const Tensors& in) { return layers::wkv5(in[0], in[1], in[2], in[3], in[4], 64); }, lengths,
           naive_lengths);
  bench_op("wkv7", true, naive_wkv7,
           [](const Tensors& in) { return layers::wkv7(in[0], in[1], in[2], in[3], in[4], in[5], 64); }, lengths,
           naive_lengths);
  std::printf("\ntotal wall time %.1f s\n", now_s() - t_start);
  return 0;
}
