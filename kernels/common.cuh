// Shared CUDA helpers for every kernel family: checked CUDA/cuBLAS calls with file:line, a launch check after every
// kernel, launch geometry, and StridedIndexer, which turns a linear element index into per-operand element offsets
// for up to 16 dims (so kernels accept views exactly like the CPU kernels do).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/error.h"
#include "engine/tensor.h"

#define CUDA_CHECK(expr)                                                                                   \
  do {                                                                                                     \
    cudaError_t err_ = (expr);                                                                             \
    if (err_ != cudaSuccess)                                                                               \
      throw ::engine::EngineError(fmt::format("CUDA error {} ({}) at {}:{} in {}", cudaGetErrorName(err_), \
                                              cudaGetErrorString(err_), __FILE__, __LINE__, #expr));       \
  } while (0)

#define CUBLAS_CHECK(expr)                                                                                   \
  do {                                                                                                       \
    cublasStatus_t st_ = (expr);                                                                             \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                        \
      throw ::engine::EngineError(fmt::format("cuBLAS error {} at {}:{} in {}", static_cast<int>(st_), __FILE__, \
                                              __LINE__, #expr));                                             \
  } while (0)

// After every kernel launch: catches bad launch configurations immediately (asynchronous faults surface later).
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

namespace engine::cuda {

inline cudaStream_t current_stream() { return static_cast<cudaStream_t>(stream()); }

constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535LL * 32 ? 65535LL * 32 : b));
}

// Per-operand strides at a common shape; passed to kernels by value.
template <int N>
struct StridedIndexer {
  int rank = 0;
  int64_t sizes[16];
  int64_t strides[N][16];

  __host__ __device__ void offsets(int64_t linear, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = rank - 1; d >= 0; --d) {
      int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
};

// Builds an indexer from `shape` and each operand's strides at that shape (same rank as shape).
template <int N>
StridedIndexer<N> make_indexer(const Shape& shape, const std::array<Strides, N>& strides) {
  StridedIndexer<N> ix;
  ix.rank = static_cast<int>(shape.size());
  ENGINE_CHECK(ix.rank <= 16, "cuda", "rank {} exceeds 16", ix.rank);
  for (int d = 0; d < ix.rank; ++d) {
    ix.sizes[d] = shape[d];
    for (int k = 0; k < N; ++k) ix.strides[k][d] = strides[k][d];
  }
  return ix;
}

// Grid-stride loop over [0, n).
#define CUDA_KERNEL_LOOP(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

}  // namespace engine::cuda
