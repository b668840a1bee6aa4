// The default generator, the random factories and dropout: argument checks, counter reservation, dispatch to the
// backend kernels, and dropout's autograd rule (the backward re-applies the same mask from the saved counters).
#include "engine/rng.h"

#include <limits>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"
#include "engine/ops/elementwise.h"

namespace engine {

namespace {

Generator& pick(Generator* gen) { return gen ? *gen : default_generator(); }

Tensor random_tensor(RandomKind kind, const Shape& shape, TensorOptions opt, Generator* gen, double a, double b) {
  Tensor out = empty(shape, opt);
  Generator& g = pick(gen);
  const uint64_t offset = g.reserve(static_cast<uint64_t>(out.numel()));
  ENGINE_DISPATCH(opt.device, random_fill, kind, out, g.seed(), offset, a, b);
  return out;
}

void check_float(const char* op, TensorOptions opt) {
  ENGINE_CHECK(is_floating(opt.dtype), op, "dtype must be float32 or float64, got {}", dtype_name(opt.dtype));
}

// Dropout with an explicit mask stream; its gradient is the same masked scaling of the incoming gradient.
Tensor dropout_with(const Tensor& x, double p, uint64_t seed, uint64_t offset) {
  Tensor out = empty(x.shape(), x.options());
  ENGINE_DISPATCH(x.device(), dropout, x.detach(), out, p, seed, offset);
  return record("dropout", {x}, out,
                [p, seed, offset](const Tensors& g) { return Tensors{dropout_with(g[0], p, seed, offset)}; });
}

}  // namespace

Generator& default_generator() {
  static Generator gen;
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

Tensor rand(const Shape& shape, TensorOptions opt, Generator* gen) {
  check_float("rand", opt);
  return random_tensor(RandomKind::Uniform, shape, opt, gen, 0.0, 1.0);
}

Tensor randn(const Shape& shape, TensorOptions opt, Generator* gen) {
  check_float("randn", opt);
  return random_tensor(RandomKind::Normal, shape, opt, gen, 0.0, 0.0);
}

Tensor uniform(const Shape& shape, double lo, double hi, TensorOptions opt, Generator* gen) {
  check_float("uniform", opt);
  ENGINE_CHECK(lo <= hi, "uniform", "lo {} > hi {}", lo, hi);
  return random_tensor(RandomKind::Uniform, shape, opt, gen, lo, hi);
}

Tensor randint(int64_t lo, int64_t hi, const Shape& shape, TensorOptions opt, Generator* gen) {
  const char* op = "randint";
  ENGINE_CHECK(opt.dtype != DType::Bool && opt.dtype != DType::U8, op, "dtype must be int32, int64 or float, got {}",
               dtype_name(opt.dtype));
  ENGINE_CHECK(lo < hi, op, "empty range [{}, {})", lo, hi);
  ENGINE_CHECK(opt.dtype != DType::I32 || (lo >= std::numeric_limits<int32_t>::min() &&
                                            hi - 1 <= std::numeric_limits<int32_t>::max()),
               op, "range [{}, {}) does not fit int32", lo, hi);
  // Integers travel as doubles to the kernel: exact up to 2^53.
  constexpr int64_t kExact = int64_t(1) << 53;
  ENGINE_CHECK(lo >= -kExact && hi <= kExact, op, "bounds [{}, {}) must lie within +-2^53", lo, hi);
  return random_tensor(RandomKind::Int, shape, opt, gen, static_cast<double>(lo), static_cast<double>(hi));
}

Tensor randperm(int64_t n, Generator* gen) {
  ENGINE_CHECK(n >= 0, "randperm", "n must be non-negative, got {}", n);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  Generator& g = pick(gen);
  const uint64_t offset = g.reserve(static_cast<uint64_t>(n));
  for (int64_t i = 0; i + 1 < n; ++i) {  // Fisher-Yates, draw i at counter offset + i
    const uint64_t r = Philox::bits64(Philox::block(offset + static_cast<uint64_t>(i), g.seed()).data());
    std::swap(perm[i], perm[i + static_cast<int64_t>(r % static_cast<uint64_t>(n - i))]);
  }
  return from_vector(perm, {n});
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  const char* op = "dropout";
  check_defined(op, x, "x");
  ENGINE_CHECK(is_floating(x.dtype()), op, "x must be float32 or float64, got {}", dtype_name(x.dtype()));
  ENGINE_CHECK(p >= 0.0 && p <= 1.0, op, "p must lie in [0, 1], got {}", p);
  if (!training || p == 0.0) return x;
  if (p == 1.0) return mul(x, 0.0);
  Generator& g = pick(gen);
  const uint64_t offset = g.reserve(static_cast<uint64_t>(x.numel()));
  return dropout_with(x, p, g.seed(), offset);
}

}  // namespace engine
