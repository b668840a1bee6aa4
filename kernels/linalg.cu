// CUDA GEMM through cuBLAS (column-major) for row-major engine tensors: C = A B is computed as C^T = B^T A^T, where a
// row-major matrix read as column-major is its own transpose. Row-major and column-major ("transposed contiguous")
// operands are passed in place with the matching op flag, broadcast batches with batch stride 0; any other layout is
// copied to a dense one first. float32 computes in FP32 (TF32 tensor cores when set_tf32(true)), float64 in FP64.
#include <climits>

#include "engine/autograd.h"
#include "engine/backend/cuda/linalg.h"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

// How one [B, rows, cols] operand is laid out per batch, and its leading dimension for cuBLAS.
struct GemmOperand {
  const void* data = nullptr;
  bool row_major = true;  // row-major: cuBLAS sees the transpose (op N); column-major: op T
  int64_t ld = 1;
  int64_t batch_stride = 0;
};

// Row-major when the columns are unit-stride (or single) and rows do not overlap; column-major symmetrically.
GemmOperand describe(const Tensor& t) {  // t: [B, rows, cols]
  const int64_t rows = t.shape()[1], cols = t.shape()[2];
  const int64_t rs = t.strides()[1], cs = t.strides()[2];
  GemmOperand op;
  op.data = t.raw_data();
  op.batch_stride = t.shape()[0] == 1 ? 0 : t.strides()[0];
  if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(cols, 1)) {
    op.row_major = true;
    op.ld = std::max<int64_t>(rows == 1 ? cols : rs, 1);
  } else if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(rows, 1)) {
    op.row_major = false;
    op.ld = std::max<int64_t>(cols == 1 ? rows : cs, 1);
  } else {
    op.data = nullptr;  // needs a dense copy
  }
  return op;
}

void check_int(int64_t v, const char* what) {
  ENGINE_CHECK(v <= INT_MAX, "matmul", "{} = {} exceeds cuBLAS's 32-bit limit", what, v);
}

}  // namespace

void matmul(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  const int64_t B = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a_in.shape()[2];
  if (out.numel() == 0) return;
  if (K == 0) {
    CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, static_cast<size_t>(out.numel() * out.element_size()),
                               current_stream()));
    return;
  }
  NoGradGuard ng;
  Tensor a = a_in, b = b_in;
  GemmOperand ga = describe(a), gb = describe(b);
  if (!ga.data) ga = describe(a = a.contiguous());
  if (!gb.data) gb = describe(b = b.contiguous());
  for (auto [v, what] : {std::pair{B, "batch"}, {M, "M"}, {N, "N"}, {K, "K"}, {ga.ld, "lda"}, {gb.ld, "ldb"}})
    check_int(v, what);
  // Column-major view: C^T (N x M, ld N) = op(B^T) (N x K) * op(A^T) (K x M).
  const cublasOperation_t opb = gb.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cublasOperation_t opa = ga.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
  auto handle = static_cast<cublasHandle_t>(cublas_handle());
  const bool f64 = a.dtype() == DType::F64;
  ENGINE_CHECK(f64 || a.dtype() == DType::F32, "matmul", "expected a float32 or float64 tensor, got {}",
               dtype_name(a.dtype()));
  const double one64 = 1.0, zero64 = 0.0;
  const float one32 = 1.0f, zero32 = 0.0f;
  const cudaDataType_t type = f64 ? CUDA_R_64F : CUDA_R_32F;
  const cublasComputeType_t compute =
      f64 ? CUBLAS_COMPUTE_64F : (tf32_enabled() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
  const void* alpha = f64 ? static_cast<const void*>(&one64) : &one32;
  const void* beta = f64 ? static_cast<const void*>(&zero64) : &zero32;
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, opb, opa, static_cast<int>(N), static_cast<int>(M),
                                          static_cast<int>(K), alpha, gb.data, type, static_cast<int>(gb.ld),
                                          gb.batch_stride, ga.data, type, static_cast<int>(ga.ld), ga.batch_stride,
                                          beta, out.raw_data(), type, static_cast<int>(N), M * N, static_cast<int>(B),
                                          compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace engine::cuda
