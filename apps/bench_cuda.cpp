// GPU micro-benchmark of the CUDA backend: GEMM TFLOP/s (float32 pedantic, TF32, float64) at 4096^3, elementwise and
// copy bandwidth, sum/softmax/layer_norm throughput, host<->device bandwidth (pageable tensors and pinned buffers),
// and a check that a steady-state op loop is served entirely by the caching allocator. Times are CUDA events on the
// engine stream, averaged over repetitions after a warm-up. Prints a markdown table (scripts/gpu-check.sh embeds
// it in the GPU report); exit status 1 when a check fails, 2 in a build without CUDA or without a GPU.
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/engine.h"

#ifdef ENGINE_WITH_CUDA
#include <cuda_runtime.h>

#include "engine/backend/cuda/cuda_backend.h"

using namespace engine;

namespace {

struct Row {
  std::string name;
  double value;
  std::string unit;
  double ms;
};

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw EngineError(fmt::format("bench_cuda: {}: {}", what, cudaGetErrorString(e)));
}

// Mean time (ms) of f on the engine stream over `reps` calls after two warm-up calls.
double time_ms(const std::function<void()>& f, int reps) {
  f();
  f();
  auto s = static_cast<cudaStream_t>(cuda::stream());
  cudaEvent_t t0, t1;
  check_cuda(cudaEventCreate(&t0), "event");
  check_cuda(cudaEventCreate(&t1), "event");
  check_cuda(cudaEventRecord(t0, s), "record");
  for (int r = 0; r < reps; ++r) f();
  check_cuda(cudaEventRecord(t1, s), "record");
  check_cuda(cudaEventSynchronize(t1), "sync");
  float ms = 0;
  check_cuda(cudaEventElapsedTime(&ms, t0, t1), "elapsed");
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  return ms / reps;
}

const TensorOptions kF32(DType::F32, Device::cuda());

void gemm(std::vector<Row>& rows) {
  const int64_t n = 4096;
  const double flop = 2.0 * n * n * n;
  Tensor a = rand({n, n}, kF32), b = rand({n, n}, kF32);  // [n, n]
  for (bool tf32 : {false, true}) {
    cuda::set_tf32(tf32);
    const double ms = time_ms([&] { matmul(a, b); }, 10);
    rows.push_back({tf32 ? "GEMM 4096 float32, TF32 tensor cores" : "GEMM 4096 float32 (FP32, TF32 off)",
                    flop / ms / 1e9, "TFLOP/s", ms});
  }
  cuda::set_tf32(false);
  Tensor a64 = a.to(DType::F64), b64 = b.to(DType::F64);
  const double ms = time_ms([&] { matmul(a64, b64); }, 5);
  rows.push_back({"GEMM 4096 float64", flop / ms / 1e9, "TFLOP/s", ms});
  const double msT = time_ms([&] { matmul(a.t(), b.t()); }, 10);  // transposed operands, no copies
  rows.push_back({"GEMM 4096 float32, both operands transposed views", flop / msT / 1e9, "TFLOP/s", msT});
}

// Bandwidth of an op moving `bytes` per call.
void bandwidth(std::vector<Row>& rows, const std::string& name, double bytes, const std::function<void()>& f) {
  const double ms = time_ms(f, 20);
  rows.push_back({name, bytes / ms / 1e6, "GB/s", ms});
}

void memory_ops(std::vector<Row>& rows) {
  const int64_t n = int64_t(1) << 26;  // 64 Mi floats = 256 MiB per tensor
  const double b = 4.0 * n;
  Tensor x = rand({n}, kF32), y = rand({n}, kF32);
  bandwidth(rows, "add (256 MiB float32 tensors)", 3 * b, [&] { add(x, y); });
  bandwidth(rows, "exp (256 MiB)", 2 * b, [&] { exp(x); });
  bandwidth(rows, "mul by broadcast scalar tensor", 2 * b, [&] { mul(x, scalar_tensor(2.0, kF32)); });
  bandwidth(rows, "clone (cudaMemcpyAsync D2D)", 2 * b, [&] { x.clone(); });
  Tensor m = x.reshape({8192, 8192});
  bandwidth(rows, "transpose copy 8192^2 (strided kernel)", 2 * b, [&] { m.t().contiguous(); });
  bandwidth(rows, "float32 -> float64 copy", 3 * b, [&] { x.to(DType::F64); });
  bandwidth(rows, "sum (all 64 Mi elements)", b, [&] { sum(x); });
  bandwidth(rows, "sum over rows [8192, 8192] -> [8192]", b, [&] { sum(m, {1}); });
  Tensor rows_x = x.reshape({16384, 4096});
  bandwidth(rows, "softmax [16384, 4096] last dim", 2 * b, [&] { softmax(rows_x, -1); });
  Tensor ln = x.reshape({65536, 1024}), w = ones({1024}, kF32), bias = zeros({1024}, kF32);
  bandwidth(rows, "layer_norm [65536, 1024] affine", 2 * b, [&] { layer_norm(ln, w, bias); });
}

void transfers(std::vector<Row>& rows) {
  const int64_t n = int64_t(1) << 26;
  const double b = 4.0 * n;
  Tensor host = rand({n}), dev = empty({n}, kF32);
  bandwidth(rows, "H2D 256 MiB pageable (Tensor::to)", b, [&] { dev.copy_(host); });
  bandwidth(rows, "D2H 256 MiB pageable (Tensor::to)", b, [&] { host.copy_(dev); });
  void* pinned = nullptr;
  check_cuda(cudaMallocHost(&pinned, static_cast<size_t>(b)), "cudaMallocHost");
  bandwidth(rows, "H2D 256 MiB pinned (copy_bytes)", b,
            [&] { cuda::copy_bytes(dev.raw_data(), Device::cuda(), pinned, Device::cpu(), static_cast<size_t>(b)); });
  bandwidth(rows, "D2H 256 MiB pinned (copy_bytes)", b,
            [&] { cuda::copy_bytes(pinned, Device::cpu(), dev.raw_data(), Device::cuda(), static_cast<size_t>(b)); });
  cudaFreeHost(pinned);
}

// A training-like loop of temporaries must be served from the cache after the first iteration.
bool allocator_reuse(std::vector<Row>& rows) {
  Tensor x = rand({1024, 1024}, kF32), w = rand({1024, 1024}, kF32);
  auto step = [&] { sum(softmax(relu(matmul(x, w) + 1.0), -1) * x).item(); };
  step();
  const AllocatorStats before = cuda::device_allocator_stats();
  for (int i = 0; i < 100; ++i) step();
  const AllocatorStats after = cuda::device_allocator_stats();
  const int64_t misses = after.cache_misses - before.cache_misses, hits = after.cache_hits - before.cache_hits;
  std::printf("allocator: 100 steady-state steps: %lld cache hits, %lld cudaMalloc calls; in use %.1f MiB, cached "
              "%.1f MiB, peak %.1f MiB\n",
              static_cast<long long>(hits), static_cast<long long>(misses), after.allocated_bytes / 1048576.0,
              after.cached_bytes / 1048576.0, after.peak_allocated_bytes / 1048576.0);
  rows.push_back({"allocator: cudaMalloc calls in 100 steady steps (expect 0)", static_cast<double>(misses), "calls",
                  0});
  return misses == 0 && hits > 0;
}

}  // namespace

int main() {
  if (!cuda_available()) {
    std::printf("bench_cuda: no CUDA device available\n");
    return 2;
  }
  std::vector<Row> rows;
  bool ok = true;
  auto section = [&](const char* name, const std::function<bool()>& f) {  // one failing section keeps the others
    try {
      ok = f() && ok;
      cuda::synchronize();
    } catch (const std::exception& e) {
      std::printf("bench_cuda: %s FAILED: %s\n", name, e.what());
      ok = false;
    }
  };
  section("gemm", [&] { return gemm(rows), true; });
  section("memory ops", [&] { return memory_ops(rows), true; });
  section("transfers", [&] { return transfers(rows), true; });
  section("allocator", [&] { return allocator_reuse(rows); });
  std::printf("\n| benchmark | value | unit | ms/call |\n|---|---:|---|---:|\n");
  for (const Row& r : rows) std::printf("| %s | %.1f | %s | %.3f |\n", r.name.c_str(), r.value, r.unit.c_str(), r.ms);
  std::printf("\nbench checks: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

#else

int main() {
  std::printf("bench_cuda: the engine was built without CUDA (configure with -DENGINE_CUDA=ON)\n");
  return 2;
}

#endif
