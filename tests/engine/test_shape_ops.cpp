// Shape-op tests: concat/stack/split/chunk/pad/flip/roll against naive index arithmetic, gradchecks (including
// non-contiguous inputs) and argument errors.
#include <functional>

#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;
using testing::rand_f64;

namespace {

// A float64 tensor of `shape` whose element at multi-index i is f(i).
Tensor tabulate(const Shape& shape, const std::function<double(const std::vector<int64_t>&)>& f) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  std::vector<int64_t> idx(shape.size(), 0);
  for (double& out : v) {
    out = f(idx);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return from_vector(v, shape);
}

// Element of a tensor at a multi-index (reads through any layout).
double at(const Tensor& t, const std::vector<int64_t>& idx) {
  Tensor v = t.detach();
  for (size_t d = 0; d < idx.size(); ++d) v = v.narrow(static_cast<int64_t>(d), idx[d], 1);
  return v.contiguous().to_vector<double>()[0];
}

Tensor seq(const Shape& shape, double start = 0.0) {
  return add(arange(0, shape_numel(shape), DType::F64), start).reshape(shape);
}

}  // namespace

TEST_CASE("concat and stack match index arithmetic, including empty inputs") {
  Tensor a = seq({2, 3, 4}), b = seq({2, 0, 4}, 100), c = seq({2, 2, 4}, 200);
  Tensor out = concat({a, b, c}, 1);
  CHECK(out.shape() == Shape{2, 5, 4});
  CHECK_CLOSE(out, tabulate({2, 5, 4}, [&](const std::vector<int64_t>& i) {
                return i[1] < 3 ? at(a, i) : at(c, {i[0], i[1] - 3, i[2]});
              }), 0, 0);
  // Negative dim, non-contiguous input.
  Tensor at_ = seq({4, 2}).t();  // [2, 4]
  Tensor out2 = concat({at_, seq({2, 1}, 50)}, -1);
  CHECK(out2.shape() == Shape{2, 5});
  CHECK(out2.to_vector<double>() == std::vector<double>{0, 2, 4, 6, 50, 1, 3, 5, 7, 51});
  CHECK(concat({seq({0, 3}), seq({0, 3})}, 0).shape() == Shape{0, 3});
  Tensor s = stack({seq({2, 3}), seq({2, 3}, 10)}, 1);
  CHECK(s.shape() == Shape{2, 2, 3});
  CHECK(s.to_vector<double>() == std::vector<double>{0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15});
  CHECK(stack({seq({3}), seq({3})}, -1).shape() == Shape{3, 2});
  Tensor i = concat({arange(0, 2), arange(5, 7)}, 0);
  CHECK(i.dtype() == DType::I64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 5, 6});
}

TEST_CASE("split and chunk are views with torch sizes") {
  Tensor x = seq({10, 3});
  auto parts = split(x, 4, 0);
  REQUIRE(parts.size() == 3);
  CHECK(parts[2].shape() == Shape{2, 3});
  CHECK(parts[1].impl()->storage == x.impl()->storage);
  CHECK(at(parts[1], {0, 1}) == at(x, {4, 1}));
  auto sizes_of = [](const std::vector<Tensor>& ps, int64_t d) {
    std::vector<int64_t> s;
    for (const Tensor& p : ps) s.push_back(p.size(d));
    return s;
  };
  CHECK(sizes_of(chunk(x, 4, 0), 0) == std::vector<int64_t>{3, 3, 3, 1});
  CHECK(sizes_of(chunk(x, 3, 1), 1) == std::vector<int64_t>{1, 1, 1});
  CHECK(sizes_of(chunk(seq({5}), 3, 0), 0) == std::vector<int64_t>{2, 2, 1});
  CHECK(sizes_of(chunk(seq({2}), 5, 0), 0) == std::vector<int64_t>{1, 1});
  CHECK(sizes_of(split(x, {0, 7, 3}, -2), 0) == std::vector<int64_t>{0, 7, 3});
  CHECK(sizes_of(split(seq({0, 2}), 3, 0), 0) == std::vector<int64_t>{0});
  CHECK(at(split(x, {7, 3}, 0)[1], {2, 2}) == at(x, {9, 2}));
}

TEST_CASE("pad matches a naive reference (positive, zero and negative pads)") {
  Tensor x = seq({2, 3, 4}, 1);
  struct Case {
    std::vector<int64_t> pads;
    Shape shape;
  };
  for (const Case& c : {Case{{1, 2}, {2, 3, 7}}, Case{{0, 0, 2, 0}, {2, 5, 4}}, Case{{-1, 1, 1, -2, 1, 0}, {3, 2, 4}},
                        Case{{-4, 1}, {2, 3, 1}}, Case{{}, {2, 3, 4}}}) {
    Tensor out = pad(x, c.pads, -7.5);
    REQUIRE(out.shape() == c.shape);
    std::vector<int64_t> before(3, 0);
    for (size_t p = 0; p < c.pads.size() / 2; ++p) before[2 - p] = c.pads[2 * p];
    Tensor ref = tabulate(c.shape, [&](const std::vector<int64_t>& i) {
      std::vector<int64_t> src(3);
      for (int d = 0; d < 3; ++d) {
        src[d] = i[d] - before[d];
        if (src[d] < 0 || src[d] >= x.size(d)) return -7.5;
      }
      return at(x, src);
    });
    CHECK_CLOSE(out, ref, 0, 0);
  }
  CHECK(pad(seq({3, 4}).t(), {1, 1}).shape() == Shape{4, 5});  // non-contiguous input
}

TEST_CASE("flip and roll match index arithmetic") {
  Tensor x = seq({3, 4, 5});
  Tensor f = flip(x, {0, -1});
  CHECK_CLOSE(f, tabulate({3, 4, 5}, [&](const std::vector<int64_t>& i) { return at(x, {2 - i[0], i[1], 4 - i[2]}); }), 0, 0);
  Tensor xt = x.transpose(0, 2);  // non-contiguous [5, 4, 3]
  CHECK_CLOSE(flip(xt, {1}), tabulate({5, 4, 3}, [&](const std::vector<int64_t>& i) { return at(xt, {i[0], 3 - i[1], i[2]}); }), 0, 0);
  CHECK_CLOSE(flip(x, {}), x, 0, 0);
  CHECK(flip(seq({0, 2}), {0}).shape() == Shape{0, 2});
  for (int64_t shift : {0, 1, -1, 3, 7, -12}) {
    Tensor r = roll(x, shift, 1);
    CHECK_CLOSE(r, tabulate({3, 4, 5}, [&](const std::vector<int64_t>& i) {
                  return at(x, {i[0], (((i[1] - shift) % 4) + 4) % 4, i[2]});
                }), 0, 0);
  }
  CHECK(roll(seq({2, 0}), 3, 1).shape() == Shape{2, 0});
}

TEST_CASE("gradcheck: concat, stack, split, chunk, pad, flip, roll") {
  Tensor a = rand_f64({2, 3}, 1), b = rand_f64({2, 4}, 2), c = rand_f64({3, 2}, 3);
  gradcheck([](const Tensors& t) { return concat({t[0], t[1], t[2].t()}, 1); }, {a, b, c});
  gradcheck([](const Tensors& t) { return concat({t[0].t(), t[1]}, 0); }, {a, c});
  gradcheck([](const Tensors& t) { return stack({t[0], t[1].t(), t[0]}, 1); }, {a, c});
  Tensor x = rand_f64({5, 4}, 4);
  gradcheck([](const Tensors& t) {
    auto p = split(t[0].t(), {1, 3, 1}, 1);
    return concat({mul(p[2], 2.0), p[0], exp(p[1])}, 1);
  }, {x});
  gradcheck([](const Tensors& t) {
    auto p = chunk(t[0], 2, 0);
    return mul(p[0].narrow(0, 0, 2), p[1]);
  }, {x});
  gradcheck([](const Tensors& t) { return pad(t[0].t(), {1, -1, 2, 0}, 3.0); }, {x});
  gradcheck([](const Tensors& t) { return pad(t[0], {-2, 1}); }, {x});
  gradcheck([](const Tensors& t) { return flip(t[0].t(), {0, 1}); }, {x});
  gradcheck([](const Tensors& t) { return flip(t[0], {1}); }, {x});
  gradcheck([](const Tensors& t) { return roll(t[0].t(), -3, 1); }, {x});
}

TEST_CASE("shape-op errors name the op, the offending tensor and the shapes") {
  Tensor a = zeros({2, 3}), b = zeros({2, 4}), c = zeros({3, 3});
  CHECK_THROWS_WITH_AS(concat({a, b, c}, 1), doctest::Contains("concat: tensor 2 has shape [3, 3] but tensor 0 has shape [2, 3]"),
                       EngineError);
  CHECK_THROWS_WITH_AS(concat({a, zeros({2, 3}, DType::F64)}, 0), doctest::Contains("tensor 1 is float64"), EngineError);
  CHECK_THROWS_WITH_AS(concat({a, zeros({2, 3, 1})}, 0), doctest::Contains("tensor 1 has shape [2, 3, 1]"), EngineError);
  CHECK_THROWS_AS(concat({}, 0), EngineError);
  CHECK_THROWS_AS(concat({a}, 2), EngineError);
  CHECK_THROWS_WITH_AS(stack({a, a, b}, 0), doctest::Contains("stack: tensor 2 has shape [2, 4]"), EngineError);
  CHECK_THROWS_WITH_AS(split(a, {1, 1}, 1), doctest::Contains("sum to 2 but dim 1"), EngineError);
  CHECK_THROWS_AS(split(a, 0, 1), EngineError);
  CHECK_THROWS_AS(chunk(a, 0, 1), EngineError);
  CHECK_THROWS_WITH_AS(pad(a, {1}), doctest::Contains("pad: pads [1]"), EngineError);
  CHECK_THROWS_AS(pad(a, {1, 1, 1, 1, 1, 1}), EngineError);
  CHECK_THROWS_WITH_AS(pad(a, {-2, -2}), doctest::Contains("below zero"), EngineError);
  CHECK_THROWS_WITH_AS(flip(a, {1, -1}), doctest::Contains("repeated"), EngineError);
  CHECK_THROWS_AS(flip(a, {2}), EngineError);
  CHECK_THROWS_AS(roll(a, 1, -3), EngineError);
}
