// Public elementwise ops: argument checks, broadcasting, dispatch to the backend kernels, and autograd rules.
#include "engine/ops/elementwise.h"

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"

#include <limits>

namespace engine {

namespace {

Tensor scalar_like(double v, const Tensor& like) { return scalar_tensor(v, like.options()); }

Tensor unary_grad(const Tensor& g, UnaryOp derivative, const Tensor& x, double a = 0, double b = 0) {
  return mul(g, unary_map(derivative, x, a, b));
}

}  // namespace

// ---------------------------------------------------------------- raw maps
Tensor unary_map(UnaryOp op, const Tensor& x, double a, double b) {
  check_defined("unary", x, "x");
  Tensor out = empty(x.shape(), x.options());
  ENGINE_DISPATCH(x.device(), unary, op, x, out, a, b);
  return out;
}

Tensor binary_map(BinaryOp op, const Tensor& x, const Tensor& y) {
  check_defined("binary", x, "a");
  check_defined("binary", y, "b");
  check_same_device("binary", x, y);
  check_same_dtype("binary", x, y);
  Shape shape = broadcast_shapes(x.shape(), y.shape(), "binary");
  DType out_t = binary_is_comparison(op) ? DType::Bool : x.dtype();
  Tensor out = empty(shape, TensorOptions(out_t, x.device()));
  NoGradGuard ng;
  ENGINE_DISPATCH(x.device(), binary, op, x.expand(shape), y.expand(shape), out);
  return out;
}

// ---------------------------------------------------------------- binary arithmetic
Tensor add(const Tensor& a, const Tensor& b) {
  return record("add", {a, b}, binary_map(BinaryOp::Add, a, b), [](const Tensors& g) { return Tensors{g[0], g[0]}; });
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return record("sub", {a, b}, binary_map(BinaryOp::Sub, a, b),
                [](const Tensors& g) { return Tensors{g[0], neg(g[0])}; });
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return record("mul", {a, b}, binary_map(BinaryOp::Mul, a, b), [a, b](const Tensors& g) {
    return Tensors{mul(g[0], b.detach()), mul(g[0], a.detach())};
  });
}
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map(BinaryOp::Div, a, b);
  Tensor saved = out.detach();
  return record("div", {a, b}, out, [b, saved](const Tensors& g) {
    Tensor ga = div(g[0], b.detach());
    return Tensors{ga, neg(mul(ga, saved))};
  });
}
Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map(BinaryOp::Pow, a, b);
  Tensor saved = out.detach();
  return record("pow", {a, b}, out, [a, b, saved](const Tensors& g) {
    Tensor ad = a.detach(), bd = b.detach();
    Tensor ga = mul(g[0], mul(bd, pow(ad, sub(bd, 1.0))));
    Tensor gb = b.requires_grad() ? mul(g[0], mul(saved, log(ad))) : Tensor();
    return Tensors{ga, gb};
  });
}
Tensor maximum(const Tensor& a, const Tensor& b) {
  return record("maximum", {a, b}, binary_map(BinaryOp::Maximum, a, b), [a, b](const Tensors& g) {
    Tensor m = binary_map(BinaryOp::GeMask, a.detach(), b.detach());
    return Tensors{mul(g[0], m), mul(g[0], rsub(1.0, m))};
  });
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return record("minimum", {a, b}, binary_map(BinaryOp::Minimum, a, b), [a, b](const Tensors& g) {
    Tensor m = binary_map(BinaryOp::GeMask, b.detach(), a.detach());
    return Tensors{mul(g[0], m), mul(g[0], rsub(1.0, m))};
  });
}

Tensor add(const Tensor& a, double b) {
  return record("add_scalar", {a}, unary_map(UnaryOp::AddScalar, a, b), [](const Tensors& g) { return Tensors{g[0]}; });
}
Tensor sub(const Tensor& a, double b) { return add(a, -b); }
Tensor mul(const Tensor& a, double b) {
  return record("mul_scalar", {a}, unary_map(UnaryOp::Scale, a, b),
                [b](const Tensors& g) { return Tensors{mul(g[0], b)}; });
}
Tensor div(const Tensor& a, double b) { return mul(a, 1.0 / b); }
Tensor rsub(double a, const Tensor& b) { return add(neg(b), a); }
Tensor rdiv(double a, const Tensor& b) { return mul(reciprocal(b), a); }
Tensor pow(const Tensor& a, double p) {
  return record("pow_scalar", {a}, unary_map(UnaryOp::PowScalar, a, p), [a, p](const Tensors& g) {
    return Tensors{mul(g[0], mul(unary_map(UnaryOp::PowScalar, a.detach(), p - 1.0), p))};
  });
}

// ---------------------------------------------------------------- unary
Tensor neg(const Tensor& x) {
  return record("neg", {x}, unary_map(UnaryOp::Neg, x), [](const Tensors& g) { return Tensors{neg(g[0])}; });
}
Tensor abs(const Tensor& x) {
  return record("abs", {x}, unary_map(UnaryOp::Abs, x),
                [x](const Tensors& g) { return Tensors{unary_grad(g[0], UnaryOp::Sign, x.detach())}; });
}
Tensor sign(const Tensor& x) { return unary_map(UnaryOp::Sign, x.detach()); }
Tensor exp(const Tensor& x) {
  Tensor out = unary_map(UnaryOp::Exp, x);
  Tensor saved = out.detach();
  return record("exp", {x}, out, [saved](const Tensors& g) { return Tensors{mul(g[0], saved)}; });
}
Tensor log(const Tensor& x) {
  return record("log", {x}, unary_map(UnaryOp::Log, x), [x](const Tensors& g) { return Tensors{div(g[0], x.detach())}; });
}
Tensor sqrt(const Tensor& x) {
  Tensor out = unary_map(UnaryOp::Sqrt, x);
  Tensor saved = out.detach();
  return record("sqrt", {x}, out, [saved](const Tensors& g) { return Tensors{div(mul(g[0], 0.5), saved)}; });
}
Tensor rsqrt(const Tensor& x) {
  Tensor out = unary_map(UnaryOp::Rsqrt, x);
  Tensor saved = out.detach();
  return record("rsqrt", {x}, out, [saved](const Tensors& g) {
    return Tensors{mul(g[0], mul(unary_map(UnaryOp::PowScalar, saved, 3.0), -0.5))};
  });
}
Tensor square(const Tensor& x) {
  return record("square", {x}, unary_map(UnaryOp::Square, x),
                [x](const Tensors& g) { return Tensors{mul(g[0], mul(x.detach(), 2.0))}; });
}
Tensor reciprocal(const Tensor& x) {
  Tensor out = unary_map(UnaryOp::Reciprocal, x);
  Tensor saved = out.detach();
  return record("reciprocal", {x}, out,
                [saved](const Tensors& g) { return Tensors{neg(mul(g[0], unary_map(UnaryOp::Square, saved)))}; });
}
Tensor tanh(const Tensor& x) {
  Tensor out = unary_map(UnaryOp::Tanh, x);
  Tensor saved = out.detach();
  return record("tanh", {x}, out, [saved](const Tensors& g) {
    return Tensors{mul(g[0], rsub(1.0, unary_map(UnaryOp::Square, saved)))};
  });
}
Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_map(UnaryOp::Sigmoid, x);
  Tensor saved = out.detach();
  return record("sigmoid", {x}, out,
                [saved](const Tensors& g) { return Tensors{mul(g[0], mul(saved, rsub(1.0, saved)))}; });
}
Tensor silu(const Tensor& x) {
  return record("silu", {x}, unary_map(UnaryOp::Silu, x),
                [x](const Tensors& g) { return Tensors{unary_grad(g[0], UnaryOp::SiluGrad, x.detach())}; });
}
Tensor gelu(const Tensor& x, bool tanh_approximation) {
  UnaryOp f = tanh_approximation ? UnaryOp::GeluTanh : UnaryOp::Gelu;
  UnaryOp df = tanh_approximation ? UnaryOp::GeluTanhGrad : UnaryOp::GeluGrad;
  return record("gelu", {x}, unary_map(f, x), [x, df](const Tensors& g) { return Tensors{unary_grad(g[0], df, x.detach())}; });
}
Tensor softplus(const Tensor& x, double beta, double threshold) {
  ENGINE_CHECK(beta > 0, "softplus", "beta must be positive, got {}", beta);
  return record("softplus", {x}, unary_map(UnaryOp::Softplus, x, beta, threshold), [x, beta, threshold](const Tensors& g) {
    return Tensors{unary_grad(g[0], UnaryOp::SoftplusGrad, x.detach(), beta, threshold)};
  });
}
Tensor relu(const Tensor& x) {
  return record("relu", {x}, unary_map(UnaryOp::Relu, x),
                [x](const Tensors& g) { return Tensors{unary_grad(g[0], UnaryOp::Step, x.detach())}; });
}
Tensor leaky_relu(const Tensor& x, double slope) {
  return record("leaky_relu", {x}, unary_map(UnaryOp::LeakyRelu, x, slope), [x, slope](const Tensors& g) {
    return Tensors{unary_grad(g[0], UnaryOp::LeakyReluGrad, x.detach(), slope)};
  });
}
Tensor elu(const Tensor& x, double alpha) {
  return record("elu", {x}, unary_map(UnaryOp::Elu, x, alpha), [x, alpha](const Tensors& g) {
    return Tensors{unary_grad(g[0], UnaryOp::EluGrad, x.detach(), alpha)};
  });
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  ENGINE_CHECK(lo <= hi, "clamp", "min {} > max {}", lo, hi);
  return record("clamp", {x}, unary_map(UnaryOp::Clamp, x, lo, hi), [x, lo, hi](const Tensors& g) {
    return Tensors{unary_grad(g[0], UnaryOp::ClampMask, x.detach(), lo, hi)};
  });
}
Tensor clamp_min(const Tensor& x, double lo) { return clamp(x, lo, std::numeric_limits<double>::infinity()); }
Tensor clamp_max(const Tensor& x, double hi) { return clamp(x, -std::numeric_limits<double>::infinity(), hi); }

// ---------------------------------------------------------------- comparisons and where
Tensor eq(const Tensor& a, const Tensor& b) { return binary_map(BinaryOp::Eq, a.detach(), b.detach()); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_map(BinaryOp::Ne, a.detach(), b.detach()); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_map(BinaryOp::Lt, a.detach(), b.detach()); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_map(BinaryOp::Le, a.detach(), b.detach()); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_map(BinaryOp::Gt, a.detach(), b.detach()); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_map(BinaryOp::Ge, a.detach(), b.detach()); }
Tensor eq(const Tensor& a, double b) { return eq(a, scalar_like(b, a)); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_like(b, a)); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_like(b, a)); }
Tensor logical_not(const Tensor& mask) {
  ENGINE_CHECK(mask.dtype() == DType::Bool || mask.dtype() == DType::U8, "logical_not", "expected a bool mask, got {}",
               dtype_name(mask.dtype()));
  return unary_map(UnaryOp::LogicalNot, mask.detach());
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond, "cond");
  ENGINE_CHECK(cond.dtype() == DType::Bool || cond.dtype() == DType::U8, "where", "cond must be bool, got {}",
               dtype_name(cond.dtype()));
  check_same_device("where", cond, a);
  check_same_device("where", a, b);
  check_same_dtype("where", a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, a.options());
  {
    NoGradGuard ng;
    ENGINE_DISPATCH(a.device(), where, cond.expand(shape), a.expand(shape), b.expand(shape), out);
  }
  Tensor c = cond.detach();
  return record("where", {cond, a, b}, out, [c](const Tensors& g) {
    Tensor z = zeros({}, g[0].options());
    return Tensors{Tensor(), where(c, g[0], z), where(c, z, g[0])};
  });
}

}  // namespace engine
