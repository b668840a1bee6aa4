// bench_graph: time and peak memory of the exact kNN (D = 2 and D = 32, k = 32) and of EdgeConv / GravNetConv
// (forward, forward + backward) for N = 6k, 10k, 60k, 100k on the CPU (or --device cuda).
//
// Inputs: kNN D = 2 takes uniform (eta, phi)-like points; D = 32 takes points on a 3-D manifold embedded in 32-D by a
// fixed random linear map and a tanh (what a learned projection of hit features looks like: the intrinsic dimension
// of hits is ~3). The convs take features h-dimensional functions of 3-D hit positions built the same way (so the
// projection s = lin_s(x) the kNN runs on has the same low intrinsic dimension). Uniform 32-D noise, for which no
// exact method is sub-quadratic, is timed at 10k with both methods for comparison.
//
// On a shared machine run it with OMP_WAIT_POLICY=passive (spinning OpenMP threads of an oversubscribed machine
// otherwise dominate the times).
//
//   bench_graph [--threads 2] [--device cpu|cuda] [--sizes 6000,10000,60000,100000] [--markdown FILE]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "layers/graph_conv.h"
#include "layers/knn.h"

using namespace engine;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Device g_device = Device::cpu();

void sync() {
  if (g_device.is_cuda()) (void)zeros({1}, TensorOptions(DType::F32, g_device)).to(Device::cpu());
}

int64_t peak_bytes() { return g_device.is_cuda() ? -1 : cpu_allocator_stats().peak_allocated_bytes; }
void reset_peak() {
  if (!g_device.is_cuda()) reset_cpu_peak();
}

struct Result {
  double seconds;
  double peak_mb;
};

// Best of `reps` runs after one warm-up run (the first touch of fresh pages is slow on these machines).
Result measure(const std::function<void()>& f, int reps) {
  f();
  double best = 1e30;
  double peak = 0;
  for (int r = 0; r < reps; ++r) {
    sync();
    reset_peak();
    const double t0 = now_s();
    f();
    sync();
    best = std::min(best, now_s() - t0);
    peak = std::max(peak, peak_bytes() / 1048576.0);
  }
  return {best, peak};
}

Tensor manifold(int64_t N, int64_t D, uint64_t seed) {
  Generator gen(seed);
  Tensor base = uniform({N, 3}, -1.0, 1.0, {}, &gen);
  Tensor map = uniform({3, D}, -1.5, 1.5, {}, &gen);
  return tanh(matmul(base, map)).contiguous().to(g_device);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  std::vector<int64_t> sizes{6000, 10000, 60000, 100000};
  std::string markdown;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    auto next = [&]() -> std::string {
      if (a + 1 >= argc) throw std::runtime_error("missing value after " + arg);
      return argv[++a];
    };
    if (arg == "--threads") {
      threads = std::stoi(next());
    } else if (arg == "--device") {
      g_device = next() == "cuda" ? Device::cuda() : Device::cpu();
    } else if (arg == "--sizes") {
      sizes.clear();
      std::stringstream ss(next());
      std::string item;
      while (std::getline(ss, item, ',')) sizes.push_back(std::stoll(item));
    } else if (arg == "--markdown") {
      markdown = next();
    } else {
      std::fprintf(stderr, "usage: bench_graph [--threads N] [--device cpu|cuda] [--sizes a,b,...] [--markdown F]\n");
      return 2;
    }
  }
  set_num_threads(threads);
  std::ostringstream md;
  md << "device " << g_device.str() << ", threads " << threads << "; times are the best of 2 runs after a warm-up run "
     << "(1 run at N >= 60k); peak = CPU allocator high-water mark during the run\n\n";
  const double t_start = now_s();

  md << "| kNN (k = 32) | N | time (s) | peak (MB) |\n|---|---|---|---|\n";
  std::vector<std::pair<std::string, std::vector<double>>> ratios;
  for (int64_t D : {2, 32}) {
    std::vector<double> times;
    for (int64_t N : sizes) {
      Tensor p = D == 2 ? uniform({N, 2}, -3.0, 3.0).to(g_device) : manifold(N, D, 7);
      const Result r = measure([&] { (void)layers::knn(p, 32); }, N >= 60000 ? 1 : 2);
      times.push_back(r.seconds);
      md << "| D = " << D << (D == 2 ? " uniform" : " 3-D manifold") << " | " << N << " | "
         << fmt::format("{:.3f}", r.seconds) << " | " << fmt::format("{:.1f}", r.peak_mb) << " |\n";
      std::fprintf(stderr, "knn D=%ld N=%ld %.3f s\n", static_cast<long>(D), static_cast<long>(N), r.seconds);
    }
    ratios.push_back({fmt::format("D = {}", D), times});
  }
  if (!g_device.is_cuda()) {
    Tensor noise = uniform({10000, 32}, -1.0, 1.0);
    for (auto [name, m] : {std::pair{"kd-tree", layers::KnnMethod::KdTree},
                           std::pair{"brute force", layers::KnnMethod::BruteForce}}) {
      const Result r = measure([&, m = m] { (void)layers::knn(noise, 32, true, m); }, 1);
      md << "| D = 32 uniform noise, " << name << " | 10000 | " << fmt::format("{:.3f}", r.seconds) << " | "
         << fmt::format("{:.1f}", r.peak_mb) << " |\n";
    }
  }
  md << "\n";
  for (auto& [name, t] : ratios) {
    for (size_t i = 0; i < sizes.size(); ++i)
      for (size_t j = 0; j < sizes.size(); ++j)
        if (sizes[i] == 10000 && sizes[j] == 100000)
          md << "kNN " << name << ": time(100k) / time(10k) = " << fmt::format("{:.1f}", t[j] / t[i]) << "\n";
  }
  md << "\n| conv | N | forward (s) | forward peak (MB) | forward+backward (s) | fwd+bwd peak (MB) |\n"
     << "|---|---|---|---|---|---|\n";
  for (const std::string name : {"EdgeConv(h 64, k 32, knn_dim 32)", "GravNet(h 72, k 32, space 32, prop 32)"}) {
    const bool edge = name[0] == 'E';
    manual_seed(1);
    std::shared_ptr<nn::UnaryModule> conv;
    if (edge)
      conv = std::make_shared<layers::EdgeConv>(64, 32, 32);
    else
      conv = std::make_shared<layers::GravNetConv>(72, 32, 32, 32);
    conv->to(g_device);
    const int64_t h = edge ? 64 : 72;
    for (int64_t N : sizes) {
      Tensor x = manifold(N, h, 11);
      const int reps = N >= 60000 ? 1 : 2;
      const Result f = measure([&] {
        NoGradGuard ng;
        (void)conv->forward(x);
      }, reps);
      Tensor xg = x.detach();
      xg.requires_grad_();
      Tensor R = uniform({N, h}, -1.0, 1.0).to(g_device);
      const Result fb = measure([&] {
        conv->zero_grad();
        xg.zero_grad();
        sum(conv->forward(xg) * R).backward();
      }, reps);
      const std::string row = fmt::format("| {} | {} | {:.3f} | {:.1f} | {:.3f} | {:.1f} |\n", name, N, f.seconds,
                                          f.peak_mb, fb.seconds, fb.peak_mb);
      md << row;
      std::fputs(row.c_str(), stderr);
    }
  }
  md << "\ntotal wall time " << fmt::format("{:.1f}", now_s() - t_start) << " s\n";
  std::printf("%s", md.str().c_str());
  if (!markdown.empty()) std::ofstream(markdown) << md.str();
  return 0;
}
