// CUDA matrix products (cuBLAS strided-batched GEMM on the engine stream).
#pragma once
#include "engine/tensor.h"

namespace engine::cuda {

// out[b] = a[b] @ b[b] for a: [B, M, K], b: [B, K, N] (any strides, batch stride may be 0), out: [B, M, N] contiguous.
void matmul(const Tensor& a, const Tensor& b, const Tensor& out);

}  // namespace engine::cuda
