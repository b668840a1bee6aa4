// Reductions: sum/mean, amax/amin/argmax/argmin, var, softmax family, cumsum/cumprod against naive float64 loops on
// awkward shapes, gradchecks (several dims, keepdim both ways, negative dims, non-contiguous inputs), errors, and
// independence of the thread count.
#include <cmath>
#include <functional>

#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;
using testing::rand_f32;
using testing::rand_f64;

namespace {

using RowFn = std::function<void(const double* in, double* out, int64_t n)>;

// Applies f to every row of x moved to [M, R] (R = size of `dim`); returns the [M, out_len] results as a tensor of
// shape `shape` (out_len = R for row-to-row maps, 1 for reductions).
Tensor row_ref(const Tensor& x, int64_t dim, int64_t out_len, const RowFn& f, const Shape& shape) {
  Tensor moved = x.to(DType::F64).transpose(dim, -1).contiguous();
  auto v = moved.to_vector<double>();
  const int64_t R = moved.size(-1), M = R ? moved.numel() / R : 0;
  std::vector<double> out(M * out_len);
  for (int64_t m = 0; m < M; ++m) f(v.data() + m * R, out.data() + m * out_len, R);
  Shape mshape = moved.shape();
  mshape.back() = out_len;
  return from_vector(out, mshape).transpose(dim, -1).contiguous().reshape(shape);
}

const RowFn kSum = [](const double* a, double* o, int64_t n) {
  o[0] = 0;
  for (int64_t i = 0; i < n; ++i) o[0] += a[i];
};
const RowFn kMax = [](const double* a, double* o, int64_t n) { o[0] = *std::max_element(a, a + n); };
const RowFn kArgmin = [](const double* a, double* o, int64_t n) {
  o[0] = static_cast<double>(std::min_element(a, a + n) - a);
};
const RowFn kVar1 = [](const double* a, double* o, int64_t n) {
  double mu = 0, ss = 0;
  for (int64_t i = 0; i < n; ++i) mu += a[i] / n;
  for (int64_t i = 0; i < n; ++i) ss += (a[i] - mu) * (a[i] - mu);
  o[0] = ss / (n - 1);
};
const RowFn kSoftmax = [](const double* a, double* o, int64_t n) {
  double m = -INFINITY, s = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, a[i]);
  for (int64_t i = 0; i < n; ++i) s += std::exp(a[i] - m);
  for (int64_t i = 0; i < n; ++i) o[i] = std::exp(a[i] - m) / s;
};
const RowFn kLogSoftmax = [](const double* a, double* o, int64_t n) {
  kSoftmax(a, o, n);
  for (int64_t i = 0; i < n; ++i) o[i] = std::log(o[i]);
};
const RowFn kCumsum = [](const double* a, double* o, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) o[i] = s += a[i];
};
const RowFn kCumprod = [](const double* a, double* o, int64_t n) {
  double p = 1;
  for (int64_t i = 0; i < n; ++i) o[i] = p *= a[i];
};

}  // namespace

TEST_CASE("reductions and row maps match naive rows on awkward shapes (float32)") {
  for (int64_t R : {1, 7, 1000}) {
    CAPTURE(R);
    // [R, 3] transposed: the reduced dim is non-contiguous in memory.
    Tensor x = rand_f32({R, 3}, 10 + R, -3, 3).t();  // [3, R]
    CHECK_CLOSE(sum(x, {-1}), row_ref(x, 1, 1, kSum, {3}), 1e-5, 1e-5);
    CHECK_CLOSE(mean(x, {1}, true), mul(row_ref(x, 1, 1, kSum, {3, 1}), 1.0 / R), 1e-6, 1e-5);
    CHECK_CLOSE(amax(x, {1}), row_ref(x, 1, 1, kMax, {3}), 1e-12, 0);
    CHECK(argmin(x, -1).to_vector<int64_t>() == row_ref(x, 1, 1, kArgmin, {3}).to_vector<int64_t>());
    if (R > 1) CHECK_CLOSE(var(x, {1}), row_ref(x, 1, 1, kVar1, {3}), 1e-5, 1e-4);
    CHECK_CLOSE(softmax(x, -1), row_ref(x, 1, R, kSoftmax, {3, R}), 1e-7, 1e-5);
    CHECK_CLOSE(log_softmax(x, 1), row_ref(x, 1, R, kLogSoftmax, {3, R}), 1e-5, 1e-5);
    CHECK_CLOSE(logsumexp(x, {1}), log(row_ref(exp(x.to(DType::F64)), 1, 1, kSum, {3})), 1e-5, 1e-5);
    CHECK_CLOSE(cumsum(x, 1), row_ref(x, 1, R, kCumsum, {3, R}), 1e-4, 1e-5);
    Tensor y = rand_f32({3, R}, 20 + R, 0.8, 1.25);
    CHECK_CLOSE(cumprod(y, 1), row_ref(y, 1, R, kCumprod, {3, R}), 1e-30, 1e-4);
    // Along dim 0 of a [R, 5] tensor (reduced dim outermost).
    Tensor z = rand_f32({R, 5}, 30 + R, -2, 2);
    CHECK_CLOSE(sum(z, {0}, true), row_ref(z, 0, 1, kSum, {1, 5}), 1e-5, 1e-5);
    CHECK_CLOSE(amax(z, {0}), row_ref(z, 0, 1, kMax, {5}), 1e-12, 0);
    CHECK_CLOSE(softmax(z, 0), row_ref(z, 0, R, kSoftmax, {R, 5}), 1e-7, 1e-5);
    CHECK_CLOSE(cumsum(z, 0), row_ref(z, 0, R, kCumsum, {R, 5}), 1e-4, 1e-5);
  }
}

TEST_CASE("several reduced dims, keepdim and long reductions match naive sums") {
  Tensor x = rand_f32({4, 5, 6, 3}, 7, -1, 1);
  Tensor xp = x.permute({0, 2, 1, 3});  // [4, 6, 5, 3], non-contiguous
  // reduce dims {1, 3} of xp: move them last and flatten them into one row
  Tensor rows = xp.permute({0, 2, 1, 3}).contiguous().reshape({4, 5, 18});
  CHECK_CLOSE(sum(xp, {1, -1}), row_ref(rows, 2, 1, kSum, {4, 5}), 1e-5, 1e-5);
  CHECK_CLOSE(sum(xp, {3, 1}, true), row_ref(rows, 2, 1, kSum, {4, 1, 5, 1}), 1e-5, 1e-5);
  CHECK_CLOSE(amax(xp, {1, 3}, true), row_ref(rows, 2, 1, kMax, {4, 1, 5, 1}), 1e-12, 0);
  CHECK_CLOSE(var(xp, {1, 3}), row_ref(rows, 2, 1, kVar1, {4, 5}), 1e-6, 1e-4);
  CHECK(sum(x).shape() == Shape{});
  CHECK(sum(x, {}, true).shape() == Shape{1, 1, 1, 1});
  CHECK(amin(x, {0, 1, 2, 3}).shape() == Shape{});
  // A full reduction much longer than one work tile, and a column reduction over many rows.
  Tensor big = rand_f32({200003}, 8, 0, 1);
  CHECK_CLOSE(sum(big), row_ref(big.reshape({1, -1}), 1, 1, kSum, {}), 1e-3, 1e-6);
  Tensor tall = rand_f32({70001, 3}, 9, 0, 1);
  CHECK_CLOSE(sum(tall, {0}), row_ref(tall, 0, 1, kSum, {3}), 1e-3, 1e-6);
  CHECK(sum(arange(0, 100001, DType::I64)).item() == 100001.0 * 100000 / 2);
}

TEST_CASE("empty tensors and scalars") {
  Tensor e = zeros({0, 4});
  CHECK(sum(e, {0}).to_vector<float>() == std::vector<float>(4, 0.f));
  CHECK(sum(e, {1}).shape() == Shape{0});
  CHECK(amax(e, {1}).shape() == Shape{0});
  CHECK(argmax(e, 1).shape() == Shape{0});
  CHECK(var(e, {1}).shape() == Shape{0});
  CHECK(softmax(e, 1).shape() == Shape{0, 4});
  CHECK(log_softmax(e, 0).shape() == Shape{0, 4});
  CHECK(logsumexp(e, {1}).shape() == Shape{0});
  CHECK(cumsum(e, 0).shape() == Shape{0, 4});
  CHECK(cumprod(e, 1).shape() == Shape{0, 4});
  Tensor s = scalar_tensor(2.5);
  CHECK(sum(s).item() == 2.5);
  CHECK(amax(s).item() == 2.5);
  CHECK(argmax(s, 0).item() == 0);
  CHECK(softmax(s, 0).item() == 1.0);
  CHECK(cumsum(s, -1).item() == 2.5);
}

TEST_CASE("amax/amin/argmax/argmin pick the first extreme; NaN and -inf") {
  Tensor x = from_vector<double>({1, 5, 5, 2, -3, -3, 0, 9}, {2, 4});
  CHECK(amax(x, {1}).to_vector<double>() == std::vector<double>{5, 9});
  CHECK(amin(x, {1}).to_vector<double>() == std::vector<double>{1, -3});
  CHECK(amax(x).item() == 9);
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 3});
  CHECK(argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  CHECK(argmax(x, 0, true).shape() == Shape{1, 4});
  CHECK(argmax(x, 0).dtype() == DType::I64);
  CHECK(amax(x, {0}, true).to_vector<double>() == std::vector<double>{1, 5, 5, 9});
  CHECK(amax(from_vector<int32_t>({3, -7, 4}, {3})).item() == 4);
  Tensor n = from_vector<double>({1, NAN, 3, NAN}, {4});
  CHECK(argmax(n, 0).item() == 1);
  CHECK(argmin(n, 0).item() == 1);
  CHECK(std::isnan(amax(n).item()));
  // softmax/logsumexp of rows that are all -inf or contain -inf
  Tensor ninf = from_vector<double>({-INFINITY, -INFINITY, 0, -INFINITY}, {2, 2});
  CHECK(std::isinf(logsumexp(ninf, {1}).to_vector<double>()[0]));
  CHECK(logsumexp(ninf, {1}).to_vector<double>()[1] == 0);
  CHECK(softmax(ninf, 1).to_vector<double>()[2] == 1.0);
  CHECK(softmax(from_vector<float>({1000, 0}, {2}), 0).to_vector<float>()[0] == 1.0f);  // no overflow
}

TEST_CASE("amax/amin gradient goes to the first extreme only") {
  Tensor t = from_vector<double>({2, 7, 7, 1, 4, 4}, {2, 3}).requires_grad_();
  amax(t, {1}).backward(ones({2}, DType::F64));
  CHECK(t.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0, 1, 0});
  t.zero_grad();
  amin(t.t(), {0, 1}).backward();
  CHECK(t.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 1, 0, 0});
}

TEST_CASE("var is stable for large means and respects the correction") {
  Tensor x = rand_f64({3, 5}, 3, -2, 2, false);
  CHECK_CLOSE(var(x, {1}, 0), mul(var(x, {1}, 1), 4.0 / 5.0), 1e-12, 1e-12);
  Tensor big = add(rand_f32({1000}, 4), 1e4);  // E[x^2] - E[x]^2 would cancel catastrophically in float32
  CHECK(var(big).item() == doctest::Approx(var(big.to(DType::F64)).item()).epsilon(1e-3));
}

TEST_CASE("cumsum and cumprod: exact values, zeros, integers") {
  Tensor x = from_vector<double>({1, 2, 0, 3, 2, -1, 4, 0.5}, {2, 4});
  CHECK(cumsum(x, 1).to_vector<double>() == std::vector<double>{1, 3, 3, 6, 2, 1, 5, 5.5});
  CHECK(cumsum(x, -2).to_vector<double>() == std::vector<double>{1, 2, 0, 3, 3, 1, 4, 3.5});
  CHECK(cumprod(x, 1).to_vector<double>() == std::vector<double>{1, 2, 0, 0, 2, -2, -8, -4});
  CHECK(cumsum(arange(0, 5, DType::I64), 0).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 3, 6, 10});
  // gradient of cumprod with zeros, against the hand-derived values: y = [a, ab, abc] with a=2, b=0, c=3
  Tensor z = from_vector<double>({2, 0, 3}, {3}).requires_grad_();
  cumprod(z, 0).backward(from_vector<double>({1, 1, 1}, {3}));
  // dL/da = 1 + b + bc = 1; dL/db = a + ac = 8; dL/dc = ab = 0
  CHECK(z.grad().to_vector<double>() == std::vector<double>{1, 8, 0});
}

TEST_CASE("reduction argument errors") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH_AS(sum(x, {2}), doctest::Contains("sum"), EngineError);
  CHECK_THROWS_WITH_AS(amax(x, {1, -1}), doctest::Contains("repeated"), EngineError);
  CHECK_THROWS_AS(mean(x, {0, 0}), EngineError);
  CHECK_THROWS_AS(var(x, {-3}), EngineError);
  CHECK_THROWS_AS(var(zeros({1}), {0}, 1), EngineError);  // no degrees of freedom
  CHECK_THROWS_AS(argmax(x, 2), EngineError);
  CHECK_THROWS_AS(argmin(zeros({2, 0}), 1), EngineError);
  CHECK_THROWS_AS(amax(zeros({2, 0}), {1}), EngineError);
  CHECK_THROWS_AS(mean(zeros({2, 0}), {1}), EngineError);
  CHECK_THROWS_AS(softmax(x, 5), EngineError);
  CHECK_THROWS_AS(softmax(zeros({2}, DType::I64), 0), EngineError);
  CHECK_THROWS_AS(log_softmax(x, -3), EngineError);
  CHECK_THROWS_AS(logsumexp(x, {0, 0}), EngineError);
  CHECK_THROWS_AS(cumsum(x, 2), EngineError);
  CHECK_THROWS_AS(cumprod(x, -3), EngineError);
  CHECK_THROWS_AS(sum(Tensor()), EngineError);
}

TEST_CASE("gradcheck: reductions") {
  Tensor x = rand_f64({3, 4, 5}, 21);
  for (bool keep : {false, true}) {
    CAPTURE(keep);
    gradcheck([keep](const Tensors& t) { return sum(t[0].transpose(0, 2), {0, -1}, keep); }, {x});
    gradcheck([keep](const Tensors& t) { return mean(t[0], {1}, keep); }, {x});
    gradcheck([keep](const Tensors& t) { return amax(t[0], {1}, keep); }, {x});
    gradcheck([keep](const Tensors& t) { return amin(t[0].transpose(0, 2), {0, 2}, keep); }, {x});
    gradcheck([keep](const Tensors& t) { return var(t[0].permute({2, 0, 1}), {0, 2}, 1, keep); }, {x});
    gradcheck([keep](const Tensors& t) { return logsumexp(t[0], {-1, 0}, keep); }, {x});
  }
  gradcheck([](const Tensors& t) { return amax(t[0]); }, {x});
  gradcheck([](const Tensors& t) { return var(t[0], {}, 0, true); }, {x});
  gradcheck([](const Tensors& t) { return softmax(t[0], 1); }, {x});
  gradcheck([](const Tensors& t) { return softmax(t[0].permute({2, 0, 1}), -1); }, {x});
  gradcheck([](const Tensors& t) { return log_softmax(t[0], 0); }, {x});
  gradcheck([](const Tensors& t) { return log_softmax(t[0].transpose(1, 2), -1); }, {x});
  gradcheck([](const Tensors& t) { return cumsum(t[0], 1); }, {x});
  gradcheck([](const Tensors& t) { return cumsum(t[0].transpose(1, 2), -1); }, {x});
  gradcheck([](const Tensors& t) { return cumprod(t[0], 2); }, {x});
  gradcheck([](const Tensors& t) { return cumprod(t[0].permute({1, 2, 0}), -1); }, {x});
  // exact with zeros: one zero, two zeros, a leading zero, a trailing zero per row
  Tensor z = from_vector<double>({0.5, 0.0, 2.0, 1.1, 0.0, 1.5, 0.0, 3.0, 0.0, 1.0, -2.0, 0.7, 1.2, -0.4, 0.9, 0.0},
                                 {4, 4})
                 .requires_grad_();
  gradcheck([](const Tensors& t) { return cumprod(t[0], 1); }, {z});
  gradcheck([](const Tensors& t) { return cumprod(t[0], 0); }, {z});
}

TEST_CASE("reductions are independent of the thread count") {
  Tensor x = rand_f32({257, 1031}, 5, -1, 1);
  Tensor big = rand_f32({100003}, 6, -1, 1);
  auto run = [&] {
    return std::vector<std::vector<float>>{sum(x, {0}).to_vector<float>(), sum(x, {1}).to_vector<float>(),
                                           sum(big).to_vector<float>(), softmax(x, 0).to_vector<float>(),
                                           cumsum(x, 1).to_vector<float>()};
  };
  int before = get_num_threads();
  set_num_threads(1);
  auto a = run();
  set_num_threads(2);
  auto b = run();
  set_num_threads(3);
  auto c = run();
  set_num_threads(before);
  CHECK(a == b);
  CHECK(a == c);
}
