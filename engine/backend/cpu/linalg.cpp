// CPU GEMM through Eigen: operands are mapped in place as row- or column-major matrices (transposed views need no
// copy). Every Eigen product here runs on one thread (EIGEN_DONT_PARALLELIZE): a batch of products is split across
// our threads, and one large product is cut into output blocks whose bounds depend on its shape alone. So each output
// element is summed the same way whatever the thread count (Eigen's own threading blocks the depth by another rule
// than its single-threaded path, and training then depended on the thread count).
#include "engine/backend/cpu/linalg.h"

#include <Eigen/Core>

#include "engine/autograd.h"
#include "engine/backend/cpu/loops.h"

namespace engine::cpu {

namespace {

template <class T> using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <class M> using StridedMap = Eigen::Map<const M, 0, Eigen::OuterStride<>>;

enum class Layout { Row, Col, Other };

Layout layout_of(const Tensor& t) {  // t: [B, rows, cols]
  int64_t rows = t.shape()[1], cols = t.shape()[2];
  int64_t rs = t.strides()[1], cs = t.strides()[2];
  if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(cols, 1)) return Layout::Row;
  if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(rows, 1)) return Layout::Col;
  return Layout::Other;
}

int64_t outer_stride(const Tensor& t, Layout l) {
  if (l == Layout::Row) return std::max<int64_t>(t.shape()[1] == 1 ? t.shape()[2] : t.strides()[1], 1);
  return std::max<int64_t>(t.shape()[2] == 1 ? t.shape()[1] : t.strides()[2], 1);
}

#ifndef EIGEN_DONT_PARALLELIZE
#error "the engine's GEMM splits work itself: build with EIGEN_DONT_PARALLELIZE (set in the top-level CMakeLists.txt)"
#endif

constexpr int64_t kMinFlopsPerBlock = int64_t(1) << 21;  // smaller products run as one block
constexpr int64_t kMaxBlocks = 16;
constexpr int64_t kMinBlockWidth = 32;

// Number of output blocks for one [M, K] x [K, N] product, cut along its larger output dimension: a function of
// the shape only, never of the thread count.
int64_t output_blocks(int64_t M, int64_t N, int64_t K) {
  const int64_t flops = 2 * M * N * K;
  const int64_t by_work = std::max<int64_t>(flops / kMinFlopsPerBlock, 1);
  const int64_t by_width = std::max<int64_t>(std::max(M, N) / kMinBlockWidth, 1);
  return std::min({by_work, by_width, kMaxBlocks});
}

// out = a * b for one product, cut into output row blocks (M >= N) or column blocks, each one single-threaded Eigen
// product, run in parallel.
template <class MA, class MB, class MO>
void gemm_blocked(const MA& A, const MB& Bm, MO& O) {
  const int64_t M = O.rows(), N = O.cols(), K = A.cols();
  const bool by_rows = M >= N;
  const int64_t width = by_rows ? M : N;
  const int64_t blocks = output_blocks(M, N, K);
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t lo = width * blk / blocks, n = width * (blk + 1) / blocks - lo;
      if (by_rows) O.middleRows(lo, n).noalias() = A.middleRows(lo, n) * Bm;
      else O.middleCols(lo, n).noalias() = A * Bm.middleCols(lo, n);
    }
  });
}

template <class T, class MA, class MB>
void gemm_batch(const Tensor& a, const Tensor& b, const Tensor& out, int64_t osa, int64_t osb) {
  const int64_t B = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a.shape()[2];
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  // product i of the batch; a single product (B == 1) is cut into output blocks on the threads instead
  auto one = [&](int64_t i) {
    StridedMap<MA> A(pa + i * a.strides()[0], M, K, Eigen::OuterStride<>(osa));
    StridedMap<MB> Bm(pb + i * b.strides()[0], K, N, Eigen::OuterStride<>(osb));
    Eigen::Map<RowMat<T>> O(po + i * M * N, M, N);
    if (K == 0) O.setZero();
    else if (B == 1) gemm_blocked(A, Bm, O);
    else O.noalias() = A * Bm;
  };
  if (B == 1) return one(0);
  parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; ++i) one(i);
  });
}

}  // namespace

void matmul(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  if (out.numel() == 0) return;
  Tensor a = a_in, b = b_in;
  Layout la = layout_of(a), lb = layout_of(b);
  NoGradGuard ng;
  if (la == Layout::Other) { a = a.contiguous(); la = Layout::Row; }
  if (lb == Layout::Other) { b = b.contiguous(); lb = Layout::Row; }
  const int64_t osa = outer_stride(a, la), osb = outer_stride(b, lb);
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (la == Layout::Row && lb == Layout::Row) gemm_batch<T, RowMat<T>, RowMat<T>>(a, b, out, osa, osb);
    else if (la == Layout::Row) gemm_batch<T, RowMat<T>, ColMat<T>>(a, b, out, osa, osb);
    else if (lb == Layout::Row) gemm_batch<T, ColMat<T>, RowMat<T>>(a, b, out, osa, osb);
    else gemm_batch<T, ColMat<T>, ColMat<T>>(a, b, out, osa, osb);
  });
}

}  // namespace engine::cpu
