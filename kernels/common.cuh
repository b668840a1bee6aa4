// Shared CUDA helpers for every kernel family: checked CUDA/cuBLAS calls with file:line, a launch check after every
// kernel, launch geometry, and StridedIndexer, which turns a linear element index into per-operand element offsets
// for up to 16 dims (so kernels accept views exactly like the CPU kernels do). Also included by the host-only
// backend services (engine/backend/cuda/*.cpp, compiled by g++), so everything outside kernels is plain C++.
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
      throw ::engine::EngineError(fmt::format("cuBLAS error {} ({}) at {}:{} in {}", static_cast<int>(st_),  \
                                              cublasGetStatusString(st_), __FILE__, __LINE__, #expr));       \
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

// Builds an indexer from `shape` and each operand's strides at that shape (same rank as shape). Size-1 dims are
// dropped and dims that are contiguous with each other in every operand are merged; this keeps the mapping from a
// row-major linear index to offsets unchanged and makes the per-element division loop as short as possible.
template <int N>
StridedIndexer<N> make_indexer(const Shape& shape, const std::array<Strides, N>& strides) {
  StridedIndexer<N> ix;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = ix.rank > 0;
    for (int k = 0; k < N && merge; ++k) merge = ix.strides[k][ix.rank - 1] == strides[k][d] * shape[d];
    if (merge) {
      ix.sizes[ix.rank - 1] *= shape[d];
      for (int k = 0; k < N; ++k) ix.strides[k][ix.rank - 1] = strides[k][d];
      continue;
    }
    ENGINE_CHECK(ix.rank < 16, "cuda", "shape {} has more than 16 non-mergeable dims", shape_str(shape));
    ix.sizes[ix.rank] = shape[d];
    for (int k = 0; k < N; ++k) ix.strides[k][ix.rank] = strides[k][d];
    ix.rank++;
  }
  return ix;
}

// Grid-stride loop over [0, n).
#define CUDA_KERNEL_LOOP(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

}  // namespace engine::cuda
