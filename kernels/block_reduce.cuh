// Deterministic block-wide reductions for row kernels: every thread contributes one partial value, the block combines
// them in a fixed shared-memory tree, so the result does not depend on scheduling. blockDim.x must be kRowThreads.
#pragma once
#include <cuda_runtime.h>

namespace engine::cuda {

constexpr int kRowThreads = 256;

// Returns op-reduction of v over the block to every thread. `shared` holds kRowThreads values of T.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kRowThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] = op(shared[threadIdx.x], shared[threadIdx.x + s]);
    __syncthreads();
  }
  T r = shared[0];
  __syncthreads();
  return r;
}

struct SumOp {
  template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  template <class T> __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};

// Grid of row blocks: one block per row, looping when there are more rows than grid blocks.
inline unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(rows < 1 ? 1 : (rows > 65535 ? 65535 : rows)); }

}  // namespace engine::cuda
