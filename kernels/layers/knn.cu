// CUDA tiled brute-force kNN (layers/knn_kernels.h): one thread per query row; blocks stage tiles of points in
// shared memory (in increasing index order) and every thread keeps its running top-k list in its output row, with
// the squared distances in a double scratch row. Distances accumulate in double from coordinate differences in
// increasing d with explicitly rounded operations (no FMA contraction), so the indices equal the CPU kernels'.
// Because candidates arrive in increasing index order, a candidate enters only with a strictly smaller distance
// than the current k-th one, and insertion keeps equal distances in index order: ties resolve by index.
#include <cfloat>

#include "engine/dtype.h"
#include "kernels/common.cuh"
#include "layers/knn_kernels.h"

namespace layers::cuda {

using engine::Tensor;

namespace {

constexpr int kKnnThreads = 128;

template <class T>
__global__ void knn_bruteforce_kernel(const T* __restrict__ pts, int64_t N, int D, int64_t k, bool include_self,
                                      int tile, int64_t* __restrict__ out, double* __restrict__ dist) {
  extern __shared__ __align__(16) unsigned char knn_smem[];
  T* sm = reinterpret_cast<T*>(knn_smem);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = i < N;
  int64_t* o = out + (active ? i : 0) * k;
  double* dd = dist + (active ? i : 0) * k;
  const T* q = pts + (active ? i : 0) * D;
  int64_t n = 0;
  double worst = DBL_MAX;
  for (int64_t p0 = 0; p0 < N; p0 += tile) {
    const int len = static_cast<int>(min(static_cast<int64_t>(tile), N - p0));
    __syncthreads();
    for (int t = threadIdx.x; t < len * D; t += blockDim.x) sm[t] = pts[p0 * D + t];
    __syncthreads();
    if (!active) continue;
    for (int t = 0; t < len; ++t) {
      const int64_t j = p0 + t;
      if (j == i && !include_self) continue;
      double acc = 0.0;
      for (int d = 0; d < D; ++d) {
        const double v = __dsub_rn(static_cast<double>(sm[t * D + d]), static_cast<double>(__ldg(q + d)));
        acc = __dadd_rn(acc, __dmul_rn(v, v));
      }
      if (n == k && !(acc < worst)) continue;
      int64_t pos = n < k ? n++ : k - 1;
      while (pos > 0 && dd[pos - 1] > acc) {
        dd[pos] = dd[pos - 1];
        o[pos] = o[pos - 1];
        --pos;
      }
      dd[pos] = acc;
      o[pos] = j;
      if (n == k) worst = dd[k - 1];
    }
  }
}

template <class T>
void launch(const Tensor& points, int64_t k, bool include_self, const Tensor& out) {
  const int64_t N = points.size(0);
  const int D = static_cast<int>(points.size(1));
  Tensor dist = engine::empty({N, k}, engine::TensorOptions(engine::DType::F64, points.device()));
  const int tile = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(256, (40 * 1024) / (D * sizeof(T)))));
  const size_t smem = static_cast<size_t>(tile) * D * sizeof(T);
  const unsigned blocks = static_cast<unsigned>((N + kKnnThreads - 1) / kKnnThreads);
  knn_bruteforce_kernel<T><<<blocks, kKnnThreads, smem, engine::cuda::current_stream()>>>(
      points.data<T>(), N, D, k, include_self, tile, out.data<int64_t>(), dist.data<double>());
  CUDA_LAUNCH_CHECK();
}

}  // namespace

void knn_bruteforce(const Tensor& points, int64_t k, bool include_self, const Tensor& out) {
  ENGINE_CHECK(points.size(1) * 8 <= 40 * 1024, "knn", "CUDA kNN supports D <= 5120, got {}", points.size(1));
  if (points.dtype() == engine::DType::F64)
    launch<double>(points, k, include_self, out);
  else
    launch<float>(points, k, include_self, out);
}

}  // namespace layers::cuda
