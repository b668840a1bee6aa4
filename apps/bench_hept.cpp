// bench_hept: one HEPT transformer layer (layers::HEPTBlock at Lampa's hept config: dim 32, 8 heads x 32, block 100,
// 3 hashes, 100 regions) for N = 6k, 10k, 60k, 100k hits: forward time (no grad, eval), forward+backward time, and
// peak CPU memory of the forward+backward above the inputs (engine allocator high-water mark); then the scaling
// ratio time(100k) / time(10k) (O(N log N) expected: ~10-12; must stay below 15). Optionally the whole hept model;
// --precise-backward: the float32 backward accurate to float64 level (HEPTOptions::precise_backward).
//
//   bench_hept [--threads N] [--sizes 6000,10000,60000,100000] [--dim 32] [--model] [--precise-backward]
// Defaults: 2 threads, total well under 2 minutes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/hept_attention.h"
#include "models/catalog.h"

using engine::Tensor;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Tensor make_coords(int64_t Np, int64_t N, engine::Generator& gen) {
  std::vector<float> u = engine::rand({Np, 6}, engine::DType::F32, &gen).to_vector<float>();
  for (int64_t n = 0; n < Np; ++n) {
    float* c = &u[static_cast<size_t>(n * 6)];
    if (n >= N) {
      for (int e = 0; e < 6; ++e) c[e] = 0;
      continue;
    }
    c[0] = c[0] * 8 - 4;
    c[1] = (c[1] * 2 - 1) * static_cast<float>(M_PI);
    c[3] = c[1] / static_cast<float>(M_PI);
    c[4] = c[4] * 2 - 1;
  }
  return engine::from_vector(u, {Np, 6});
}

struct Row {
  int64_t N;
  double fwd, fwdbwd, peak_mb;
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t dim = 32;
  bool model = false, precise = false;
  std::vector<int64_t> sizes{6000, 10000, 60000, 100000};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--dim" && i + 1 < argc) dim = std::atoll(argv[++i]);
    else if (a == "--model") model = true;
    else if (a == "--precise-backward") precise = true;
    else if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      std::string s = argv[++i];
      size_t p = 0;
      while (p < s.size()) {
        size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        sizes.push_back(std::atoll(s.substr(p, q - p).c_str()));
        p = q + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: bench_hept [--threads N] [--sizes a,b,...] [--dim D] [--model] [--precise-backward]\n");
      return 2;
    }
  }
  engine::set_num_threads(threads);
  const double t_start = now_s();
  layers::HEPTOptions o{dim};
  o.head_dim = dim;
  o.precise_backward = precise;
  engine::Generator gen(1);
  layers::HEPTBlock block(o, &gen);
  block.eval();  // no dropout: timings of the deterministic path
  std::printf("HEPT layer (HEPTBlock dim %lld, %lld heads x %lld, block %lld, %lld hashes, R %.0f%s), %d threads\n\n",
              static_cast<long long>(dim), static_cast<long long>(o.num_heads), static_cast<long long>(dim),
              static_cast<long long>(o.block_size), static_cast<long long>(o.n_hashes), o.num_regions,
              precise ? ", precise backward" : "", threads);
  std::printf("| N | forward (s) | forward+backward (s) | peak memory fwd+bwd (MB) |\n|---|---|---|---|\n");
  std::vector<Row> rows;
  for (int64_t N : sizes) {
    const int64_t Np = (N + o.block_size - 1) / o.block_size * o.block_size;
    Tensor x = engine::randn({Np, dim}, engine::DType::F32, &gen);
    Tensor coords = make_coords(Np, N, gen);
    Row r{N, 1e30, 1e30, 0};
    // Best of several runs for the small sizes (the machine is shared; the ratio must not hinge on one noisy run).
    const int reps = N <= 20000 ? 3 : 2;
    for (int rep = 0; rep < reps; ++rep) {
      engine::NoGradGuard ng;
      double t0 = now_s();
      Tensor y = block.forward(x, coords, N);
      r.fwd = std::min(r.fwd, now_s() - t0);
    }
    for (int rep = 0; rep < reps; ++rep) {
      Tensor xl = x.detach().requires_grad_();
      Tensor g = engine::randn({Np, dim}, engine::DType::F32, &gen);
      block.zero_grad();
      const int64_t base = engine::cpu_allocator_stats().allocated_bytes;
      engine::reset_cpu_peak();
      double t0 = now_s();
      Tensor y = block.forward(xl, coords, N);
      engine::sum(y * g).backward();
      r.fwdbwd = std::min(r.fwdbwd, now_s() - t0);
      r.peak_mb = static_cast<double>(engine::cpu_allocator_stats().peak_allocated_bytes - base) / (1024.0 * 1024.0);
    }
    std::printf("| %lld | %.3f | %.3f | %.1f |\n", static_cast<long long>(N), r.fwd, r.fwdbwd, r.peak_mb);
    std::fflush(stdout);
    rows.push_back(r);
  }
  const Row *r10 = nullptr, *r100 = nullptr;
  for (const Row& r : rows) {
    if (r.N == 10000) r10 = &r;
    if (r.N == 100000) r100 = &r;
  }
  if (r10 && r100) {
    const double fr = r100->fwd / r10->fwd, br = r100->fwdbwd / r10->fwdbwd;
    std::printf("\nscaling time(100k)/time(10k): forward %.2f, forward+backward %.2f (limit 15): %s\n", fr, br,
                fr < 15 && br < 15 ? "ok" : "TOO SLOW");
  }
  if (model) {
    auto m = models::hept_entry().make(models::hept_entry().defaults());
    m->eval();
    std::printf("\nwhole hept model (Lampa config)\n| N | forward (s) | forward+backward (s) |\n|---|---|---|\n");
    for (int64_t N : sizes) {
      models::ModelInput in;
      in.x = engine::randn({N, 15}, engine::DType::F32, &gen);
      in.coords = make_coords(N, N, gen);
      double t0 = now_s();
      {
        engine::NoGradGuard ng;
        m->forward(in);
      }
      const double f = now_s() - t0;
      t0 = now_s();
      engine::sum(m->forward(in)).backward();
      std::printf("| %lld | %.3f | %.3f |\n", static_cast<long long>(N), f, now_s() - t0);
      std::fflush(stdout);
    }
  }
  std::printf("\ntotal %.1f s\n", now_s() - t_start);
  return 0;
}
