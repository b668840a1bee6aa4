// CUDA elementwise kernels: unary and binary maps, where, strided copy with dtype conversion, fill. The scalar math
// is unary_fn / binary_fn of engine/ops/elementwise_math.h, the same functors the CPU kernels call. Each kernel has
// a fast path for dense operands (plain pointer arithmetic) and a general path through StridedIndexer for views.
#include "engine/backend/cuda/elementwise.h"
#include "engine/backend/dtype_dispatch.h"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

bool dense(const Tensor& t) { return t.is_contiguous(); }

template <UnaryOp OP, class T>
__global__ void unary_dense(const T* x, T* out, T a, T b, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) out[i] = unary_fn<OP, T>(x[i], a, b);
}

template <UnaryOp OP, class T>
__global__ void unary_strided(const T* x, T* out, StridedIndexer<2> ix, T a, T b, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[2];
    ix.offsets(i, off);
    out[off[1]] = unary_fn<OP, T>(x[off[0]], a, b);
  }
}

template <BinaryOp OP, class T, class R>
__global__ void binary_dense(const T* x, const T* y, R* out, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) out[i] = binary_fn<OP, T>(x[i], y[i]);
}

// x dense, y a single broadcast value (the common "tensor op scalar tensor" case).
template <BinaryOp OP, class T, class R>
__global__ void binary_dense_scalar(const T* x, const T* y, R* out, int64_t n) {
  const T c = *y;
  CUDA_KERNEL_LOOP(i, n) out[i] = binary_fn<OP, T>(x[i], c);
}

template <BinaryOp OP, class T, class R>
__global__ void binary_strided(const T* x, const T* y, R* out, StridedIndexer<3> ix, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[3];
    ix.offsets(i, off);
    out[off[2]] = binary_fn<OP, T>(x[off[0]], y[off[1]]);
  }
}

template <class T>
__global__ void where_strided(const uint8_t* c, const T* x, const T* y, T* out, StridedIndexer<4> ix, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[4];
    ix.offsets(i, off);
    out[off[3]] = c[off[0]] ? x[off[1]] : y[off[2]];
  }
}

template <class S, class D>
__device__ __forceinline__ D convert(S v, bool to_bool) {
  return to_bool ? static_cast<D>(v != S(0)) : static_cast<D>(v);
}

template <class S, class D>
__global__ void copy_dense(const S* src, D* dst, bool to_bool, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) dst[i] = convert<S, D>(src[i], to_bool);
}

template <class S, class D>
__global__ void copy_strided(const S* src, D* dst, StridedIndexer<2> ix, bool to_bool, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[2];
    ix.offsets(i, off);
    dst[off[1]] = convert<S, D>(src[off[0]], to_bool);
  }
}

template <class T>
__global__ void fill_strided(T* dst, StridedIndexer<1> ix, T v, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[1];
    ix.offsets(i, off);
    dst[off[0]] = v;
  }
}

template <class T>
__global__ void fill_dense(T* dst, T v, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) dst[i] = v;
}

// Ops the CPU kernel also accepts on integer tensors; the others need a floating dtype.
constexpr bool integer_ok(UnaryOp op) {
  return op == UnaryOp::LogicalNot || op == UnaryOp::Scale || op == UnaryOp::AddScalar || op == UnaryOp::Neg ||
         op == UnaryOp::Square;
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
  const int64_t n = x.numel();
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    visit_unary(op, [&](auto opc) {
      constexpr UnaryOp OP = decltype(opc)::value;
      if constexpr (!std::is_floating_point_v<T> && !integer_ok(OP)) {
        ENGINE_FAIL("unary", "op {} needs a floating tensor, got {}", static_cast<int>(OP), dtype_name(x.dtype()));
      } else {
        if (n == 0) return;
        const T ta = static_cast<T>(a), tb = static_cast<T>(b);
        if (dense(x) && dense(out)) {
          unary_dense<OP, T><<<blocks_for(n), kThreads, 0, current_stream()>>>(x.data<T>(), out.data<T>(), ta, tb, n);
        } else {
          auto ix = make_indexer<2>(x.shape(), {x.strides(), out.strides()});
          unary_strided<OP, T><<<blocks_for(n), kThreads, 0, current_stream()>>>(x.data<T>(), out.data<T>(), ix, ta,
                                                                                  tb, n);
        }
        CUDA_LAUNCH_CHECK();
      }
    });
  });
}

void binary(BinaryOp op, const Tensor& x, const Tensor& y, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    visit_binary(op, [&](auto opc) {
      constexpr BinaryOp OP = decltype(opc)::value;
      using R = decltype(binary_fn<OP, T>(T(), T()));
      const T* px = x.data<T>();
      const T* py = y.data<T>();
      R* po = static_cast<R*>(out.raw_data());
      bool y_scalar = true;
      for (int64_t s : y.strides()) y_scalar = y_scalar && s == 0;
      const unsigned grid = blocks_for(n);
      if (dense(x) && dense(y) && dense(out)) {
        binary_dense<OP, T, R><<<grid, kThreads, 0, current_stream()>>>(px, py, po, n);
      } else if (dense(x) && y_scalar && dense(out)) {
        binary_dense_scalar<OP, T, R><<<grid, kThreads, 0, current_stream()>>>(px, py, po, n);
      } else {
        auto ix = make_indexer<3>(out.shape(), {x.strides(), y.strides(), out.strides()});
        binary_strided<OP, T, R><<<grid, kThreads, 0, current_stream()>>>(px, py, po, ix, n);
      }
      CUDA_LAUNCH_CHECK();
    });
  });
}

void where(const Tensor& cond, const Tensor& x, const Tensor& y, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const auto* pc = static_cast<const uint8_t*>(cond.raw_data());
  auto ix = make_indexer<4>(out.shape(), {cond.strides(), x.strides(), y.strides(), out.strides()});
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    where_strided<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(pc, x.data<T>(), y.data<T>(), out.data<T>(),
                                                                       ix, n);
    CUDA_LAUNCH_CHECK();
  });
}

void copy(const Tensor& src, const Tensor& dst) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const bool to_bool = dst.dtype() == DType::Bool && src.dtype() != DType::Bool;
  if (src.dtype() == dst.dtype() && dense(src) && dense(dst)) {
    CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), static_cast<size_t>(n * dst.element_size()),
                               cudaMemcpyDeviceToDevice, current_stream()));
    return;
  }
  dispatch_all(src.dtype(), [&](auto stag) {
    using S = typename decltype(stag)::type;
    dispatch_all(dst.dtype(), [&](auto dtag) {
      using D = typename decltype(dtag)::type;
      const auto* ps = static_cast<const S*>(src.raw_data());
      auto* pd = static_cast<D*>(dst.raw_data());
      if (dense(src) && dense(dst)) {
        copy_dense<S, D><<<blocks_for(n), kThreads, 0, current_stream()>>>(ps, pd, to_bool, n);
      } else {
        auto ix = make_indexer<2>(dst.shape(), {src.strides(), dst.strides()});
        copy_strided<S, D><<<blocks_for(n), kThreads, 0, current_stream()>>>(ps, pd, ix, to_bool, n);
      }
      CUDA_LAUNCH_CHECK();
    });
  });
}

void fill(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = static_cast<T>(value);
    if (dense(dst)) {
      fill_dense<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(dst.data<T>(), v, n);
    } else {
      auto ix = make_indexer<1>(dst.shape(), {dst.strides()});
      fill_strided<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(dst.data<T>(), ix, v, n);
    }
    CUDA_LAUNCH_CHECK();
  });
}

}  // namespace engine::cuda
