// CPU elementwise kernels over strided operands, parallel over runs of the innermost dimension.
#include "engine/backend/cpu/elementwise.h"

#include "engine/backend/cpu/loops.h"
#include "engine/simd_math.h"

namespace engine::cpu {

namespace {

// The composite ops' exp and tanh in vectorisable form (libm's expf and tanhf are scalar calls, which kept every
// sigmoid, silu, gelu and tanh loop scalar); float64 keeps the standard functions.
struct VectorMath {
  template <class T> static T exp(T x) { return simd_exp(x); }
  template <class T> static T tanh(T x) { return simd_tanh(x); }
};

}  // namespace

Strides broadcast_strides(const Tensor& t, const Shape& shape) {
  Strides st(shape.size(), 0);
  size_t lead = shape.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i)
    st[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return st;
}

void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const T ta = static_cast<T>(a), tb = static_cast<T>(b);
    visit_unary(op, [&](auto opc) {
      constexpr UnaryOp OP = decltype(opc)::value;
      constexpr bool kIntegerOk = OP == UnaryOp::LogicalNot || OP == UnaryOp::Scale || OP == UnaryOp::AddScalar ||
                                  OP == UnaryOp::Neg || OP == UnaryOp::Square;
      if constexpr (!std::is_floating_point_v<T> && !kIntegerOk) {
        ENGINE_FAIL("unary", "op {} needs a floating tensor, got {}", static_cast<int>(OP), dtype_name(x.dtype()));
      } else {
      for_each_strided<2>(x.shape(), {x.strides(), out.strides()}, [&](auto off, int64_t n, auto step) {
        const T* s = px + off[0];
        T* d = po + off[1];
        if (step[0] == 1 && step[1] == 1) {
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) d[i] = unary_fn<OP, T, VectorMath>(s[i], ta, tb);
        } else {
          for (int64_t i = 0; i < n; ++i) d[i * step[1]] = unary_fn<OP, T, VectorMath>(s[i * step[0]], ta, tb);
        }
      });
      }
    });
  });
}

void binary(BinaryOp op, const Tensor& x, const Tensor& y, const Tensor& out) {
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    visit_binary(op, [&](auto opc) {
      constexpr BinaryOp OP = decltype(opc)::value;
      using R = decltype(binary_fn<OP, T>(T(), T()));
      R* po = static_cast<R*>(out.raw_data());
      for_each_strided<3>(out.shape(), {x.strides(), y.strides(), out.strides()}, [&](auto off, int64_t n, auto step) {
        const T* s = px + off[0];
        const T* t = py + off[1];
        R* d = po + off[2];
        if (step[0] == 1 && step[1] == 1 && step[2] == 1) {
          for (int64_t i = 0; i < n; ++i) d[i] = binary_fn<OP, T>(s[i], t[i]);
        } else if (step[0] == 1 && step[1] == 0 && step[2] == 1) {
          const T c = t[0];
          for (int64_t i = 0; i < n; ++i) d[i] = binary_fn<OP, T>(s[i], c);
        } else {
          for (int64_t i = 0; i < n; ++i) d[i * step[2]] = binary_fn<OP, T>(s[i * step[0]], t[i * step[1]]);
        }
      });
    });
  });
}

void where(const Tensor& cond, const Tensor& x, const Tensor& y, const Tensor& out) {
  const uint8_t* pc = static_cast<const uint8_t*>(cond.raw_data());
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    T* po = out.data<T>();
    for_each_strided<4>(out.shape(), {cond.strides(), x.strides(), y.strides(), out.strides()},
                        [&](auto off, int64_t n, auto step) {
                          for (int64_t i = 0; i < n; ++i)
                            po[off[3] + i * step[3]] =
                                pc[off[0] + i * step[0]] ? px[off[1] + i * step[1]] : py[off[2] + i * step[2]];
                        });
  });
}

void copy(const Tensor& src, const Tensor& dst) {
  dispatch_all(src.dtype(), [&](auto stag) {
    using S = typename decltype(stag)::type;
    dispatch_all(dst.dtype(), [&](auto dtag) {
      using D = typename decltype(dtag)::type;
      const S* ps = static_cast<const S*>(src.raw_data());
      D* pd = static_cast<D*>(dst.raw_data());
      const bool to_bool = dst.dtype() == DType::Bool;
      for_each_strided<2>(dst.shape(), {src.strides(), dst.strides()}, [&](auto off, int64_t n, auto step) {
        const S* s = ps + off[0];
        D* d = pd + off[1];
        if (to_bool) {
          for (int64_t i = 0; i < n; ++i) d[i * step[1]] = static_cast<D>(s[i * step[0]] != S(0));
        } else if (step[0] == 1 && step[1] == 1) {
          for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) d[i * step[1]] = static_cast<D>(s[i * step[0]]);
        }
      });
    });
  });
}

void fill(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* pd = dst.data<T>();
    const T v = static_cast<T>(value);
    for_each_strided<1>(dst.shape(), {dst.strides()}, [&](auto off, int64_t n, auto step) {
      T* d = pd + off[0];
      if (step[0] == 1) std::fill(d, d + n, v);
      else
        for (int64_t i = 0; i < n; ++i) d[i * step[0]] = v;
    });
  });
}

}  // namespace engine::cpu
