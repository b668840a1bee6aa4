// Kernel-level parity of the core CUDA kernels (elementwise, copy/fill, matmul) against the CPU kernels, with every
// device output placed in a sentinel-guarded buffer (contiguous in the middle, transposed, or with gaps) and the
// guards checked after the launch. Awkward shapes: empty, size 1, sizes off every power of two.
#include "parity.h"

#ifdef ENGINE_WITH_CUDA
#include "engine/backend/cpu/kernels.h"
#include "engine/backend/cuda/kernels.h"

using namespace engine;
using parity::Guarded;

namespace {

const std::vector<Shape> kShapes = {{0}, {1}, {1, 1}, {7, 33}, {3, 1, 257}, {2, 3, 4, 5}};

Tensor rand_of(const Shape& s, DType t, uint64_t seed, double lo = -3, double hi = 3) {
  Tensor x = testing::rand_f64(s, seed, lo, hi, false);
  if (t == DType::F32 || t == DType::F64) return x.to(t);
  return x.to(t == DType::Bool ? DType::F64 : t).to(t);  // ints truncate toward zero; bool: nonzero
}

// Guarded CUDA output (optionally transposed), snapshot taken.
Guarded out_buffer(const Shape& s, DType t, bool transposed = false) {
  Guarded g = parity::guarded(s, t, Device::cuda(), transposed);
  parity::take_snapshot(g);
  return g;
}

void compare(const std::string& name, const Guarded& g, const Tensor& ref, double tol = 0) {
  parity::expect_match(name, g.view, ref, tol);
  parity::guards_intact(name, g);
}

}  // namespace

TEST_CASE("cuda kernels: unary, every op, float32/float64, strided input, guarded output") {
  REQUIRE_CUDA();
  std::vector<UnaryOp> ops;
  for (int k = 0; k <= static_cast<int>(UnaryOp::AddScalar); ++k) ops.push_back(static_cast<UnaryOp>(k));
  for (DType t : {DType::F32, DType::F64})
    for (const Shape& s : kShapes)
      for (UnaryOp op : ops) {
        const bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt;
        Tensor x = rand_of(s, t, 11, positive ? 0.01 : -3, 3);
        const double a = op == UnaryOp::Clamp || op == UnaryOp::ClampMask ? -0.5 : 0.7, b = 1.5;
        Tensor ref = empty(s, t);
        cpu::unary(op, x, ref, a, b);
        Guarded in = parity::guarded_copy(x, Device::cuda(), /*transposed=*/true);
        Guarded out = out_buffer(s, t);
        cuda::unary(op, in.view, out.view, a, b);
        compare(fmt::format("unary op {} {} {}", int(op), dtype_name(t), shape_str(s)), out, ref);
        parity::guards_intact("unary input", in, true);
      }
}

TEST_CASE("cuda kernels: unary on integer tensors, errors for float-only ops") {
  REQUIRE_CUDA();
  for (DType t : {DType::I32, DType::I64, DType::U8})
    for (UnaryOp op : {UnaryOp::Neg, UnaryOp::Square, UnaryOp::Scale, UnaryOp::AddScalar, UnaryOp::LogicalNot}) {
      Tensor x = rand_of({5, 9}, t, 3);
      Tensor ref = empty(x.shape(), t);
      cpu::unary(op, x, ref, 2, 0);
      Guarded out = out_buffer(x.shape(), t);
      cuda::unary(op, x.to(Device::cuda()), out.view, 2, 0);
      compare(fmt::format("unary int op {} {}", int(op), dtype_name(t)), out, ref);
    }
  Tensor xi = zeros({3}, TensorOptions(DType::I32, Device::cuda()));
  CHECK_THROWS_WITH_AS(cuda::unary(UnaryOp::Exp, xi, empty_like(xi), 0, 0), doctest::Contains("floating"),
                       EngineError);
}

TEST_CASE("cuda kernels: binary, every op, broadcast and transposed operands, transposed guarded output") {
  REQUIRE_CUDA();
  std::vector<BinaryOp> ops;
  for (int k = 0; k <= static_cast<int>(BinaryOp::LtMask); ++k) ops.push_back(static_cast<BinaryOp>(k));
  const Shape s = {5, 1, 67};
  for (DType t : {DType::F32, DType::F64, DType::I64})
    for (BinaryOp op : ops) {
      if (t == DType::I64 && (op == BinaryOp::Div || op == BinaryOp::Pow)) continue;  // integer division by zero
      const Shape out_shape = {5, 3, 67};
      Tensor x = rand_of(s, t, 21, op == BinaryOp::Pow ? 0.1 : -3, 3);
      Tensor y = rand_of({3, 1}, t, 22, -3, 3);
      const DType rt = binary_is_comparison(op) ? DType::Bool : t;
      Tensor ref = empty(out_shape, rt);
      cpu::binary(op, x.expand(out_shape), y.expand(out_shape), ref);
      Guarded gx = parity::guarded_copy(x, Device::cuda(), true), gy = parity::guarded_copy(y, Device::cuda(), true);
      for (bool transposed_out : {false, true}) {
        Guarded out = out_buffer(out_shape, rt, transposed_out);
        cuda::binary(op, gx.view.expand(out_shape), gy.view.expand(out_shape), out.view);
        compare(fmt::format("binary op {} {} out{}", int(op), dtype_name(t), transposed_out ? " transposed" : ""), out,
                ref);
      }
      // dense fast path and the scalar fast path
      Tensor xd = rand_of(out_shape, t, 23, op == BinaryOp::Pow ? 0.1 : -3, 3);
      Tensor yd = rand_of(out_shape, t, 24), ys = rand_of({}, t, 25);
      for (const Tensor& yy : {yd, ys}) {
        Tensor r = empty(out_shape, rt);
        cpu::binary(op, xd, yy.expand(out_shape), r);
        Guarded out = out_buffer(out_shape, rt);
        cuda::binary(op, xd.to(Device::cuda()), yy.to(Device::cuda()).expand(out_shape), out.view);
        compare(fmt::format("binary op {} {} dense{}", int(op), dtype_name(t), yy.dim() ? "" : " scalar"), out, r);
      }
    }
}

TEST_CASE("cuda kernels: where with broadcast condition") {
  REQUIRE_CUDA();
  const Shape s = {4, 3, 65};
  Tensor c = gt(testing::rand_f64({3, 1}, 31, -1, 1, false), 0.0);
  for (DType t : {DType::F32, DType::F64, DType::I32}) {
    Tensor x = rand_of({4, 1, 65}, t, 32), y = rand_of({65}, t, 33);
    Tensor ref = empty(s, t);
    cpu::where(c.expand(s), x.expand(s), y.expand(s), ref);
    Guarded out = out_buffer(s, t, true);
    cuda::where(c.to(Device::cuda()).expand(s), x.to(Device::cuda()).expand(s), y.to(Device::cuda()).expand(s),
                out.view);
    compare(fmt::format("where {}", dtype_name(t)), out, ref);
  }
}

TEST_CASE("cuda kernels: copy between every dtype pair, strided source and destination") {
  REQUIRE_CUDA();
  const std::vector<DType> types = {DType::F32, DType::F64, DType::I32, DType::I64, DType::U8, DType::Bool};
  for (const Shape& s : kShapes)
    for (DType from : types)
      for (DType to : types) {
        Tensor x = rand_of(s, from, 41, 0, 200);
        Tensor ref = empty(s, to);
        cpu::copy(x, ref);
        for (bool transposed : {false, true}) {
          Guarded in = parity::guarded_copy(x, Device::cuda(), transposed);
          Guarded out = out_buffer(s, to, !transposed);
          cuda::copy(in.view, out.view);
          compare(fmt::format("copy {}->{} {}", dtype_name(from), dtype_name(to), shape_str(s)), out, ref);
        }
      }
}

TEST_CASE("cuda kernels: fill and copy_ into views with gaps leave the gaps untouched") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::I64, DType::Bool}) {
    Guarded g = out_buffer({6, 20}, t);
    Tensor every_other = g.view.slice(1, 1, 20, 2).slice(0, 0, 6, 3);  // [2, 10], gaps in both dims
    Guarded view{g.buffer, every_other, g.snapshot};
    cuda::fill(every_other, 1);
    Tensor ref = full(every_other.shape(), 1, TensorOptions(t));
    compare(fmt::format("fill gaps {}", dtype_name(t)), view, ref);
    Tensor src = rand_of(every_other.shape(), t, 51, 0, 9);
    every_other.copy_(src);  // cross-device copy into a strided view: staged, then the copy kernel
    compare(fmt::format("copy_ gaps {}", dtype_name(t)), view, src);
  }
}

TEST_CASE("cuda kernels: matmul, every operand layout, broadcast batches, awkward sizes, guarded output") {
  REQUIRE_CUDA();
  struct Dims { int64_t B, M, K, N; };
  const std::vector<Dims> dims = {{1, 1, 1, 1}, {1, 7, 0, 5}, {3, 33, 17, 65}, {2, 1, 70, 1}, {4, 64, 64, 64},
                                  {1, 129, 3, 2}};
  // layout: 0 row-major, 1 column-major (transposed contiguous), 2 column stride 2 (copied), 3 broadcast batch
  auto make = [](const Tensor& dense, int layout, bool on_cuda) {
    Tensor t = on_cuda ? dense.to(Device::cuda()) : dense;
    const int64_t B = dense.size(0), R = dense.size(1), C = dense.size(2);
    if (layout == 1) return t.transpose(1, 2).contiguous().transpose(1, 2);
    if (layout == 2) {  // every other element of a wider buffer
      Tensor v = zeros({B, R, 2 * C}, t.options()).slice(2, 0, 2 * C, 2);
      v.copy_(t);
      return v;
    }
    if (layout == 3) return t.narrow(0, 0, 1).expand({B, R, C});
    return t;
  };
  for (DType t : {DType::F32, DType::F64})
    for (const Dims& d : dims)
      for (int la = 0; la < 4; ++la)
        for (int lb = 0; lb < 4; ++lb) {
          Tensor a = testing::rand_f64({d.B, d.M, d.K}, 61, -1, 1, false).to(t);
          Tensor b = testing::rand_f64({d.B, d.K, d.N}, 62, -1, 1, false).to(t);
          Tensor ref = empty({d.B, d.M, d.N}, t);
          cpu::matmul(make(a, la, false), make(b, lb, false), ref);
          Guarded out = out_buffer({d.B, d.M, d.N}, t);
          cuda::matmul(make(a, la, true), make(b, lb, true), out.view);
          compare(fmt::format("matmul {} B{} M{} K{} N{} layouts {}/{}", dtype_name(t), d.B, d.M, d.K, d.N, la, lb),
                  out, ref, t == DType::F32 ? 1e-5 : 1e-12);
        }
}

#endif  // ENGINE_WITH_CUDA
