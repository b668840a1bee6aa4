// CUDA random kernels: one thread per element evaluates the Philox formula of engine/rng.h (the same inline code
// the CPU kernels run) at counter offset + element index, so both backends produce the same streams and masks.
#include "engine/backend/cuda/random.h"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

template <class T>
__global__ void random_kernel(RandomKind kind, T* out, uint64_t seed, uint64_t offset, double a, double b, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) out[i] = philox_value<T>(kind, seed, offset, i, a, b);
}

// out is dense: element i is the row-major element index the mask is keyed on.
template <class T>
__global__ void dropout_kernel(const T* x, StridedIndexer<1> ix, T* out, float p, T scale, uint64_t seed,
                               uint64_t offset, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[1];
    ix.offsets(i, off);
    out[i] = philox_keep(seed, offset, i, p) ? x[off[0]] * scale : T(0);
  }
}

}  // namespace

void random_fill(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t offset, double a, double b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  auto launch = [&](auto* ptr) {
    random_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(kind, ptr, seed, offset, a, b, n);
    CUDA_LAUNCH_CHECK();
  };
  switch (out.dtype()) {
    case DType::F32: return launch(out.data<float>());
    case DType::F64: return launch(out.data<double>());
    case DType::I32: return launch(out.data<int32_t>());
    case DType::I64: return launch(out.data<int64_t>());
    default: ENGINE_FAIL("random_fill", "unsupported dtype {}", dtype_name(out.dtype()));
  }
}

void dropout(const Tensor& x, const Tensor& out, double p, uint64_t seed, uint64_t offset) {
  const int64_t n = x.numel();
  if (n == 0) return;
  auto ix = make_indexer<1>(x.shape(), {x.strides()});
  auto launch = [&](auto* po, auto scale) {
    dropout_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(static_cast<const decltype(scale)*>(x.raw_data()),
                                                                     ix, po, static_cast<float>(p), scale, seed,
                                                                     offset, n);
    CUDA_LAUNCH_CHECK();
  };
  if (x.dtype() == DType::F64) launch(out.data<double>(), 1.0 / (1.0 - p));
  else launch(out.data<float>(), static_cast<float>(1.0 / (1.0 - p)));
}

}  // namespace engine::cuda
