// Fused LayerNorm / RMSNorm: forward and the fused backward (dx, dweight, dbias) against naive float64 loops on
// awkward shapes, gradchecks (non-contiguous x, 2-D normalized shapes, missing affine parameters), argument errors,
// and weight/bias gradients independent of the thread count.
#include <cmath>

#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;
using testing::rand_f32;
using testing::rand_f64;

namespace {

struct NormRef {
  std::vector<double> y, gx, gw, gb;
};

// Naive forward and backward over rows of length D (the last D elements), for upstream gradient gy.
NormRef naive_norm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy, int64_t D, double eps,
                   bool center) {
  auto v = x.to_vector<double>(), g = gy.to_vector<double>();
  const int64_t M = x.numel() / D;
  auto wv = w.defined() ? w.to_vector<double>() : std::vector<double>(D, 1.0);
  auto bv = b.defined() ? b.to_vector<double>() : std::vector<double>(D, 0.0);
  NormRef r{std::vector<double>(v.size()), std::vector<double>(v.size()), std::vector<double>(D),
            std::vector<double>(D)};
  for (int64_t m = 0; m < M; ++m) {
    const double* row = v.data() + m * D;
    const double* gr = g.data() + m * D;
    double mu = 0, ss = 0;
    if (center)
      for (int64_t d = 0; d < D; ++d) mu += row[d] / D;
    for (int64_t d = 0; d < D; ++d) ss += (row[d] - mu) * (row[d] - mu) / D;
    const double rstd = 1 / std::sqrt(ss + eps);
    double mgh = 0, mghx = 0;  // means of gh = gy * w and gh * xhat
    for (int64_t d = 0; d < D; ++d) {
      const double xhat = (row[d] - mu) * rstd;
      r.y[m * D + d] = xhat * wv[d] + bv[d];
      r.gw[d] += gr[d] * xhat;
      r.gb[d] += gr[d];
      mgh += gr[d] * wv[d] / D;
      mghx += gr[d] * wv[d] * xhat / D;
    }
    for (int64_t d = 0; d < D; ++d) {
      const double xhat = (row[d] - mu) * rstd;
      r.gx[m * D + d] = rstd * (gr[d] * wv[d] - (center ? mgh : 0) - xhat * mghx);
    }
  }
  return r;
}

Tensor f64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s); }

// Runs layer_norm (center) or rms_norm in float32 with gradients and compares with the naive float64 reference.
void check_against_naive(const Shape& xs, int64_t D, bool center, bool affine, uint64_t seed) {
  CAPTURE(shape_str(xs));
  CAPTURE(center);
  CAPTURE(affine);
  Tensor x = rand_f32(xs, seed, -3, 5).requires_grad_();
  Tensor w = affine ? rand_f32({D}, seed + 1).requires_grad_() : Tensor();
  Tensor b = affine && center ? rand_f32({D}, seed + 2).requires_grad_() : Tensor();
  Tensor gy = rand_f32(xs, seed + 3);
  Tensor y = center ? (affine ? layer_norm(x, w, b) : layer_norm(x, D)) : rms_norm(x, w);
  y.backward(gy);
  NormRef r = naive_norm(x, w, b, gy, D, 1e-5, center);
  CHECK_CLOSE(y, f64(r.y, xs), 1e-5, 1e-4);
  CHECK_CLOSE(x.grad(), f64(r.gx, xs), 1e-4, 1e-3);
  if (w.defined()) CHECK_CLOSE(w.grad(), f64(r.gw, {D}), 1e-4, 1e-4);
  if (b.defined()) CHECK_CLOSE(b.grad(), f64(r.gb, {D}), 1e-4, 1e-4);
}

}  // namespace

TEST_CASE("layer_norm and rms_norm forward and fused backward match naive rows") {
  for (int64_t D : {1, 7, 1000}) {
    CAPTURE(D);
    for (bool center : {true, false}) {
      for (bool affine : {true, false}) {
        check_against_naive({5, D}, D, center, affine, 10 * D);
        check_against_naive({0, D}, D, center, affine, 10 * D + 5);  // empty batch: zero weight/bias gradients
      }
    }
  }
  // many rows: several blocks of the weight/bias gradient sums, 3-D input
  check_against_naive({3, 67, 9}, 9, true, true, 77);
  check_against_naive({3, 67, 9}, 9, false, true, 78);
}

TEST_CASE("layer_norm over a multi-dim normalized shape equals normalising flattened rows") {
  Tensor x = rand_f64({4, 3, 5}, 1, -2, 2, false);
  Tensor w = rand_f64({3, 5}, 2, -1, 1, false), b = rand_f64({3, 5}, 3, -1, 1, false);
  Tensor flat = layer_norm(x.reshape({4, 15}), w.reshape({15}), b.reshape({15}));
  CHECK_CLOSE(layer_norm(x, w, b), flat.reshape({4, 3, 5}), 1e-12, 1e-12);
  CHECK_CLOSE(layer_norm(x, 15), layer_norm(x.reshape({4, 15}), 15).reshape({4, 3, 5}), 1e-12, 1e-12);
}

TEST_CASE("norm argument errors") {
  CHECK_THROWS_WITH_AS(layer_norm(zeros({2, 4}), ones({3}), zeros({3})), doctest::Contains("layer_norm"), EngineError);
  CHECK_THROWS_AS(layer_norm(zeros({2, 4}), ones({4}), zeros({3})), EngineError);             // bias != weight
  CHECK_THROWS_AS(layer_norm(zeros({2, 4}), ones({3, 4}), zeros({3, 4})), EngineError);           // trailing dims
  CHECK_THROWS_AS(layer_norm(zeros({2, 4}), ones({4}), zeros({4}, DType::F64)), EngineError);  // dtype
  CHECK_THROWS_AS(layer_norm(zeros({2, 4}), Tensor(), Tensor()), EngineError);
  CHECK_THROWS_AS(layer_norm(zeros({2, 3, 4}), 6), EngineError);  // straddles a dim
  CHECK_THROWS_AS(layer_norm(zeros({2, 4}), 0), EngineError);
  CHECK_THROWS_AS(layer_norm(zeros({2, 4}, DType::I64), 4), EngineError);
  CHECK_THROWS_AS(rms_norm(zeros({2, 4}), ones({5})), EngineError);
  CHECK_THROWS_AS(rms_norm(zeros({2, 4}), ones({1, 4})), EngineError);
  CHECK_THROWS_AS(rms_norm(scalar_tensor(1.0), Tensor()), EngineError);
}

TEST_CASE("gradcheck: layer_norm and rms_norm") {
  Tensor x = rand_f64({2, 3, 6}, 1, -2, 2), w = rand_f64({6}, 2), b = rand_f64({6}, 3);
  gradcheck([](const Tensors& t) { return layer_norm(t[0], t[1], t[2]); }, {x, w, b});
  gradcheck([](const Tensors& t) { return layer_norm(t[0].transpose(0, 1), t[1], t[2]); }, {x, w, b});
  gradcheck([](const Tensors& t) { return layer_norm(t[0], t[1], Tensor()); }, {x, w});
  gradcheck([](const Tensors& t) { return layer_norm(t[0], 6); }, {x});
  gradcheck([](const Tensors& t) { return layer_norm(t[0].permute({2, 0, 1}), 3, 0.1); }, {x});
  gradcheck([](const Tensors& t) { return rms_norm(t[0], t[1]); }, {x, w});
  gradcheck([](const Tensors& t) { return rms_norm(t[0].transpose(0, 1), Tensor()); }, {x});
  Tensor w2 = rand_f64({3, 6}, 4), b2 = rand_f64({3, 6}, 5);
  gradcheck([](const Tensors& t) { return layer_norm(t[0], t[1], t[2]); }, {x, w2, b2});  // 2-D normalized shape
  // only the parameters require grad; and more rows than one gradient block
  Tensor xc = rand_f64({70, 2}, 6, -2, 2, false), w3 = rand_f64({2}, 7), b3 = rand_f64({2}, 8);
  gradcheck([xc](const Tensors& t) { return layer_norm(xc, t[0], t[1]); }, {w3, b3});
}

TEST_CASE("norm weight and bias gradients are independent of the thread count") {
  Tensor x = rand_f32({1000, 33}, 11, -2, 2), w = rand_f32({33}, 12), b = rand_f32({33}, 13);
  Tensor gy = rand_f32({1000, 33}, 14);
  auto run = [&] {
    Tensor xl = x.detach().requires_grad_(), wl = w.detach().requires_grad_(), bl = b.detach().requires_grad_();
    layer_norm(xl, wl, bl).backward(gy);
    return std::vector<std::vector<float>>{xl.grad().to_vector<float>(), wl.grad().to_vector<float>(),
                                           bl.grad().to_vector<float>()};
  };
  int before = get_num_threads();
  set_num_threads(1);
  auto a = run();
  set_num_threads(3);
  auto c = run();
  set_num_threads(before);
  CHECK(a == c);
}
