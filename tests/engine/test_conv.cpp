// causal_conv1d tests: a naive loop reference on awkward shapes (L = 1, K > L, K = 1, empty), non-contiguous input,
// float64 gradchecks for x, weight and bias, thread-count determinism of the weight gradient, argument errors.
#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;
using testing::rand_f64;

namespace {

// out[b, c, t] = bias[c] + sum_k w[c, k] * x[b, c, t - K + 1 + k], on the host in double.
Tensor naive_causal_conv1d(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t B = x.size(0), C = x.size(1), L = x.size(2), K = w.size(1);
  auto xv = x.contiguous().to_vector<double>(), wv = w.contiguous().to_vector<double>();
  std::vector<double> bv = bias.defined() ? bias.to_vector<double>() : std::vector<double>(C, 0.0);
  std::vector<double> out(static_cast<size_t>(B * C * L));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < L; ++t) {
        double acc = bv[c];
        for (int64_t k = 0; k < K; ++k) {
          int64_t s = t - K + 1 + k;
          if (s >= 0) acc += wv[c * K + k] * xv[(b * C + c) * L + s];
        }
        out[(b * C + c) * L + t] = acc;
      }
  return from_vector(out, {B, C, L});
}

}  // namespace

TEST_CASE("causal_conv1d matches a naive loop on awkward shapes") {
  struct Dims {
    int64_t B, C, L, K;
  };
  for (Dims d : {Dims{2, 3, 7, 4}, Dims{1, 1, 1, 4}, Dims{2, 2, 3, 5}, Dims{3, 5, 33, 1}, Dims{1, 3, 0, 2},
                 Dims{0, 2, 4, 3}, Dims{2, 70, 129, 4}, Dims{1, 17, 1100, 3}}) {
    CAPTURE(d.B);
    CAPTURE(d.L);
    CAPTURE(d.K);
    for (DType t : {DType::F32, DType::F64}) {
      Tensor x = testing::rand_f32({d.B, d.L, d.C}, 1).to(t).transpose(1, 2);  // non-contiguous [B, C, L]
      Tensor w = testing::rand_f32({d.C, d.K}, 2).to(t), bias = testing::rand_f32({d.C}, 3).to(t);
      double tol = t == DType::F32 ? 1e-5 : 1e-12;
      CHECK_CLOSE(causal_conv1d(x, w, bias), naive_causal_conv1d(x, w, bias), tol, tol);
      CHECK_CLOSE(causal_conv1d(x.contiguous(), w), naive_causal_conv1d(x, w, Tensor()), tol, tol);
    }
  }
}

TEST_CASE("causal_conv1d gradients match naive sums on shapes spanning several tiles") {
  const int64_t B = 2, C = 19, L = 1030, K = 4;
  Tensor x = rand_f64({B, L, C}, 11, -1.0, 1.0, false).transpose(1, 2);  // [B, C, L] view of [B, L, C]
  Tensor w = rand_f64({C, K}, 12), b = rand_f64({C}, 13), xl = x.contiguous().requires_grad_();
  Tensor g = rand_f64({B, C, L}, 14, -1.0, 1.0, false);
  causal_conv1d(xl.transpose(1, 2).contiguous().transpose(1, 2), w, b).backward(g);
  auto xv = x.contiguous().to_vector<double>(), gv = g.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> dw(C * K, 0.0), db(C, 0.0), dx(B * C * L, 0.0);
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < L; ++t) {
        const double gt = gv[(bi * C + c) * L + t];
        db[c] += gt;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t s = t - K + 1 + k;
          if (s < 0) continue;
          dw[c * K + k] += gt * xv[(bi * C + c) * L + s];
          dx[(bi * C + c) * L + s] += gt * wv[c * K + k];
        }
      }
  CHECK_CLOSE(w.grad(), from_vector(dw, {C, K}), 1e-10, 1e-10);
  CHECK_CLOSE(b.grad(), from_vector(db, {C}), 1e-10, 1e-10);
  CHECK_CLOSE(xl.grad(), from_vector(dx, {B, C, L}), 1e-12, 1e-12);
}

TEST_CASE("gradcheck: causal_conv1d (x, weight, bias; non-contiguous x; K > L; no bias)") {
  Tensor x = rand_f64({2, 3, 6}, 1), w = rand_f64({3, 4}, 2), b = rand_f64({3}, 3);
  gradcheck([](const Tensors& t) { return causal_conv1d(t[0], t[1], t[2]); }, {x, w, b});
  Tensor xt = rand_f64({2, 6, 3}, 4);
  gradcheck([](const Tensors& t) { return causal_conv1d(t[0].transpose(1, 2), t[1], t[2]); }, {xt, w, b});
  Tensor xs = rand_f64({1, 3, 2}, 5), wl = rand_f64({3, 5}, 6);
  gradcheck([](const Tensors& t) { return causal_conv1d(t[0], t[1]); }, {xs, wl});
  // Only some inputs need gradients; the output gradient arrives non-contiguous.
  Tensor wc = w.detach();
  gradcheck([wc](const Tensors& t) { return causal_conv1d(t[0], wc, t[1]).transpose(0, 2); }, {x, b});
}

TEST_CASE("causal_conv1d weight gradient does not depend on the thread count") {
  Tensor x = testing::rand_f32({4, 16, 300}, 7), w = testing::rand_f32({16, 4}, 8), b = testing::rand_f32({16}, 9);
  w.requires_grad_();
  b.requires_grad_();
  auto grads = [&]() {
    w.zero_grad();
    b.zero_grad();
    sum(square(causal_conv1d(x, w, b))).backward();
    return std::pair{w.grad().to_vector<float>(), b.grad().to_vector<float>()};
  };
  const int threads = get_num_threads();
  auto many = grads();
  set_num_threads(1);
  auto one = grads();
  set_num_threads(threads);
  CHECK(many == one);
}

TEST_CASE("causal_conv1d errors name the argument and the shapes") {
  Tensor x = zeros({2, 3, 5});
  CHECK_THROWS_WITH_AS(causal_conv1d(zeros({3, 5}), zeros({3, 4})), doctest::Contains("causal_conv1d: x must be [B, C, L]"),
                       EngineError);
  CHECK_THROWS_WITH_AS(causal_conv1d(x, zeros({4, 4})), doctest::Contains("weight must be [C, K] with C = 3"), EngineError);
  CHECK_THROWS_AS(causal_conv1d(x, zeros({3, 0})), EngineError);
  CHECK_THROWS_WITH_AS(causal_conv1d(x, zeros({3, 4}), zeros({2})), doctest::Contains("bias must be [C]"), EngineError);
  CHECK_THROWS_AS(causal_conv1d(x, zeros({3, 4}, DType::F64)), EngineError);
  CHECK_THROWS_AS(causal_conv1d(zeros({2, 3, 5}, DType::I64), zeros({3, 4}, DType::I64)), EngineError);
}
