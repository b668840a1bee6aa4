// Scalar math of every elementwise op, shared by the CPU and CUDA kernels so both backends compute the same thing.
// unary_fn<OP>(x, a, b) and binary_fn<OP>(x, y) are host+device functions; a and b are the op's scalar parameters
// (leaky_relu/elu alpha, softplus beta/threshold, clamp min/max, pow exponent).
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define ENGINE_HD __host__ __device__ __forceinline__
#else
#define ENGINE_HD inline
#endif

namespace engine {

enum class UnaryOp : uint8_t {
  Neg, Abs, Sign, Exp, Log, Sqrt, Rsqrt, Tanh, Sigmoid, Silu, SiluGrad, Gelu, GeluGrad, GeluTanh, GeluTanhGrad,
  Softplus, SoftplusGrad, Relu, Step, LeakyRelu, LeakyReluGrad, Elu, EluGrad, Clamp, ClampMask, PowScalar,
  Square, Reciprocal, LogicalNot, Scale, AddScalar
};

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge, GeMask, LtMask };

// Comparison ops produce Bool outputs; GeMask/LtMask produce x>=y / x<y as 1/0 in the input dtype.
ENGINE_HD bool binary_is_comparison(BinaryOp op) { return op >= BinaryOp::Eq && op <= BinaryOp::Ge; }

// The exp and tanh inside the composite ops (sigmoid, silu, gelu, softplus, elu and their gradients, and tanh): the
// standard functions here (CUDA, float64); the CPU float kernels pass vectorisable ones (engine/simd_math.h). The Exp
// op itself always uses the standard exp.
struct StdMath {
  template <class T> ENGINE_HD static T exp(T x) { using std::exp; return exp(x); }
  template <class T> ENGINE_HD static T tanh(T x) { using std::tanh; return tanh(x); }
};

template <class M, class T> ENGINE_HD T sigmoid_of(T x) { return T(1) / (T(1) + M::exp(-x)); }

template <UnaryOp OP, class T, class M = StdMath>
ENGINE_HD T unary_fn(T x, T a, T b) {
  using std::abs; using std::erf; using std::exp; using std::log; using std::log1p; using std::sqrt;
  using std::pow;
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
  constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
  constexpr T kSqrt2OverPi = T(0.79788456080286535588);
  if constexpr (OP == UnaryOp::Neg) return -x;
  else if constexpr (OP == UnaryOp::Abs) return x < T(0) ? -x : x;
  else if constexpr (OP == UnaryOp::Sign) return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
  else if constexpr (OP == UnaryOp::Exp) return exp(x);
  else if constexpr (OP == UnaryOp::Log) return log(x);
  else if constexpr (OP == UnaryOp::Sqrt) return sqrt(x);
  else if constexpr (OP == UnaryOp::Rsqrt) return T(1) / sqrt(x);
  else if constexpr (OP == UnaryOp::Tanh) return M::tanh(x);
  else if constexpr (OP == UnaryOp::Sigmoid) return sigmoid_of<M>(x);
  else if constexpr (OP == UnaryOp::Silu) return x * sigmoid_of<M>(x);
  else if constexpr (OP == UnaryOp::SiluGrad) { T s = sigmoid_of<M>(x); return s * (T(1) + x * (T(1) - s)); }
  else if constexpr (OP == UnaryOp::Gelu) return T(0.5) * x * (T(1) + erf(x * kInvSqrt2));
  else if constexpr (OP == UnaryOp::GeluGrad)
    return T(0.5) * (T(1) + erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * M::exp(T(-0.5) * x * x);
  else if constexpr (OP == UnaryOp::GeluTanh) {
    T u = kSqrt2OverPi * (x + T(0.044715) * x * x * x);
    return T(0.5) * x * (T(1) + M::tanh(u));
  } else if constexpr (OP == UnaryOp::GeluTanhGrad) {
    T u = kSqrt2OverPi * (x + T(0.044715) * x * x * x);
    T t = M::tanh(u);
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * kSqrt2OverPi * (T(1) + T(3 * 0.044715) * x * x);
  }
  // softplus(x) = log(1 + exp(beta x)) / beta, linear above threshold (PyTorch semantics); a = beta, b = threshold
  else if constexpr (OP == UnaryOp::Softplus) return a * x > b ? x : log1p(M::exp(a * x)) / a;
  else if constexpr (OP == UnaryOp::SoftplusGrad) return a * x > b ? T(1) : sigmoid_of<M>(a * x);
  else if constexpr (OP == UnaryOp::Relu) return x > T(0) ? x : T(0);
  else if constexpr (OP == UnaryOp::Step) return x > T(0) ? T(1) : T(0);
  else if constexpr (OP == UnaryOp::LeakyRelu) return x > T(0) ? x : a * x;
  else if constexpr (OP == UnaryOp::LeakyReluGrad) return x > T(0) ? T(1) : a;
  else if constexpr (OP == UnaryOp::Elu) return x > T(0) ? x : a * (M::exp(x) - T(1));
  else if constexpr (OP == UnaryOp::EluGrad) return x > T(0) ? T(1) : a * M::exp(x);
  else if constexpr (OP == UnaryOp::Clamp) return x < a ? a : (x > b ? b : x);
  else if constexpr (OP == UnaryOp::ClampMask) return (x >= a && x <= b) ? T(1) : T(0);
  else if constexpr (OP == UnaryOp::PowScalar) return pow(x, a);
  else if constexpr (OP == UnaryOp::Square) return x * x;
  else if constexpr (OP == UnaryOp::Reciprocal) return T(1) / x;
  else if constexpr (OP == UnaryOp::LogicalNot) return x == T(0) ? T(1) : T(0);
  else if constexpr (OP == UnaryOp::Scale) return a * x;
  else if constexpr (OP == UnaryOp::AddScalar) return x + a;
  else return x;
}

template <BinaryOp OP, class T>
ENGINE_HD auto binary_fn(T x, T y) {
  using std::pow;
  if constexpr (OP == BinaryOp::Add) return T(x + y);
  else if constexpr (OP == BinaryOp::Sub) return T(x - y);
  else if constexpr (OP == BinaryOp::Mul) return T(x * y);
  else if constexpr (OP == BinaryOp::Div) return T(x / y);
  else if constexpr (OP == BinaryOp::Pow) return T(pow(x, y));
  else if constexpr (OP == BinaryOp::Maximum) return x != x ? x : (x > y ? x : y);  // NaN propagates
  else if constexpr (OP == BinaryOp::Minimum) return x != x ? x : (x < y ? x : y);
  else if constexpr (OP == BinaryOp::GeMask) return x >= y ? T(1) : T(0);
  else if constexpr (OP == BinaryOp::LtMask) return x < y ? T(1) : T(0);
  else if constexpr (OP == BinaryOp::Eq) return uint8_t(x == y);
  else if constexpr (OP == BinaryOp::Ne) return uint8_t(x != y);
  else if constexpr (OP == BinaryOp::Lt) return uint8_t(x < y);
  else if constexpr (OP == BinaryOp::Le) return uint8_t(x <= y);
  else if constexpr (OP == BinaryOp::Gt) return uint8_t(x > y);
  else return uint8_t(x >= y);
}

}  // namespace engine

#include <type_traits>

namespace engine {

// Calls f(std::integral_constant<UnaryOp, op>{}) so kernels are instantiated once per op (host code only).
template <class F>
void visit_unary(UnaryOp op, F&& f) {
#define ENGINE_U(name) case UnaryOp::name: f(std::integral_constant<UnaryOp, UnaryOp::name>{}); return;
  switch (op) {
    ENGINE_U(Neg) ENGINE_U(Abs) ENGINE_U(Sign) ENGINE_U(Exp) ENGINE_U(Log) ENGINE_U(Sqrt) ENGINE_U(Rsqrt)
    ENGINE_U(Tanh) ENGINE_U(Sigmoid) ENGINE_U(Silu) ENGINE_U(SiluGrad) ENGINE_U(Gelu) ENGINE_U(GeluGrad)
    ENGINE_U(GeluTanh) ENGINE_U(GeluTanhGrad) ENGINE_U(Softplus) ENGINE_U(SoftplusGrad) ENGINE_U(Relu)
    ENGINE_U(Step) ENGINE_U(LeakyRelu) ENGINE_U(LeakyReluGrad) ENGINE_U(Elu) ENGINE_U(EluGrad) ENGINE_U(Clamp)
    ENGINE_U(ClampMask) ENGINE_U(PowScalar) ENGINE_U(Square) ENGINE_U(Reciprocal) ENGINE_U(LogicalNot)
    ENGINE_U(Scale) ENGINE_U(AddScalar)
  }
#undef ENGINE_U
}

template <class F>
void visit_binary(BinaryOp op, F&& f) {
#define ENGINE_B(name) case BinaryOp::name: f(std::integral_constant<BinaryOp, BinaryOp::name>{}); return;
  switch (op) {
    ENGINE_B(Add) ENGINE_B(Sub) ENGINE_B(Mul) ENGINE_B(Div) ENGINE_B(Pow) ENGINE_B(Maximum) ENGINE_B(Minimum)
    ENGINE_B(Eq) ENGINE_B(Ne) ENGINE_B(Lt) ENGINE_B(Le) ENGINE_B(Gt) ENGINE_B(Ge) ENGINE_B(GeMask) ENGINE_B(LtMask)
  }
#undef ENGINE_B
}

}  // namespace engine
