// CPU random kernels: every element evaluates the shared Philox formula of engine/rng.h at its own counter, so the
// result is independent of the thread count and identical to the CUDA kernels.
#include "engine/backend/cpu/random.h"

#include "engine/backend/cpu/loops.h"

namespace engine::cpu {

void random_fill(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t offset, double a, double b) {
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* po = out.data<T>();
    parallel_for(0, out.numel(), 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) po[i] = philox_value<T>(kind, seed, offset, i, a, b);
    });
  });
}

void dropout(const Tensor& x, const Tensor& out, double p, uint64_t seed, uint64_t offset) {
  const float pf = static_cast<float>(p);
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    const T* px = x.data<T>();
    T* po = out.data<T>();  // dense and fresh: its element offset is the row-major element index
    for_each_strided<2>(x.shape(), {x.strides(), out.strides()}, [&](auto off, int64_t n, auto step) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t o = off[1] + i * step[1];
        po[o] = philox_keep(seed, offset, o, pf) ? px[off[0] + i * step[0]] * scale : T(0);
      }
    });
  });
}

}  // namespace engine::cpu
