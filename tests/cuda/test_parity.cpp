// CPU-vs-CUDA parity of every public op (engine/ops/*.h, engine/rng.h): outputs and input gradients through the
// harness of parity.h (guarded inputs, transposed-input rerun, NaN/Inf agreement), on awkward shapes.
#include "parity.h"

using namespace engine;
using parity::check;
using parity::Options;
using testing::rand_f64;

namespace {

Tensor r64(const Shape& s, uint64_t seed, double lo = -2, double hi = 2) { return rand_f64(s, seed, lo, hi, false); }
Tensor ids(const std::vector<int64_t>& v, const Shape& s) { return from_vector<int64_t>(v, s); }

}  // namespace

TEST_CASE("cuda parity: elementwise ops with broadcasting, both float dtypes") {
  REQUIRE_CUDA();
  using U = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<const char*, U>> unary = {
      {"neg", [](auto& x) { return neg(x); }},         {"abs", [](auto& x) { return abs(x); }},
      {"sign", [](auto& x) { return sign(x); }},       {"exp", [](auto& x) { return exp(x); }},
      {"log", [](auto& x) { return log(abs(x)); }},    {"sqrt", [](auto& x) { return sqrt(abs(x)); }},
      {"rsqrt", [](auto& x) { return rsqrt(abs(x)); }}, {"square", [](auto& x) { return square(x); }},
      {"reciprocal", [](auto& x) { return reciprocal(x); }}, {"tanh", [](auto& x) { return tanh(x); }},
      {"sigmoid", [](auto& x) { return sigmoid(x); }}, {"silu", [](auto& x) { return silu(x); }},
      {"gelu", [](auto& x) { return gelu(x); }},       {"gelu_tanh", [](auto& x) { return gelu(x, true); }},
      {"softplus", [](auto& x) { return softplus(x, 2.0, 3.0); }}, {"relu", [](auto& x) { return relu(x); }},
      {"leaky_relu", [](auto& x) { return leaky_relu(x, 0.1); }}, {"elu", [](auto& x) { return elu(x, 0.7); }},
      {"clamp", [](auto& x) { return clamp(x, -0.5, 0.8); }}, {"clamp_min", [](auto& x) { return clamp_min(x, 0.1); }},
      {"clamp_max", [](auto& x) { return clamp_max(x, 0.1); }}, {"pow_scalar", [](auto& x) { return pow(abs(x), 1.7); }},
      {"scalar arith", [](auto& x) { return rdiv(2.0, add(mul(sub(x, 0.5), 3.0), 10.0)) - div(x, 4.0) + rsub(1.0, x); }},
  };
  for (DType t : {DType::F32, DType::F64})
    for (const auto& [name, f] : unary)
      check(fmt::format("{} {}", name, dtype_name(t)), {r64({7, 33}, 1).to(t)}, [f = f](const Tensors& in) {
        return Tensors{f(in[0])};
      });
  using B = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::vector<std::pair<const char*, B>> binary = {
      {"add", [](auto& a, auto& b) { return add(a, b); }},         {"sub", [](auto& a, auto& b) { return sub(a, b); }},
      {"mul", [](auto& a, auto& b) { return mul(a, b); }},         {"div", [](auto& a, auto& b) { return div(a, b); }},
      {"pow", [](auto& a, auto& b) { return pow(abs(a), b); }},    {"maximum", [](auto& a, auto& b) { return maximum(a, b); }},
      {"minimum", [](auto& a, auto& b) { return minimum(a, b); }},
  };
  for (DType t : {DType::F32, DType::F64})
    for (const auto& [name, f] : binary)
      check(fmt::format("{} broadcast {}", name, dtype_name(t)), {r64({4, 1, 65}, 2).to(t), r64({3, 1}, 3).to(t)},
            [f = f](const Tensors& in) { return Tensors{f(in[0], in[1])}; });
  check("comparisons + logical_not", {r64({5, 6}, 4), r64({6}, 5)}, [](const Tensors& in) {
    const Tensor &a = in[0], &b = in[1];
    return Tensors{eq(a, a), ne(a, b), lt(a, b), le(a, b), gt(a, b), ge(a, b), lt(a, 0.3), gt(a, 0.3), eq(a, 0.0),
                   logical_not(gt(a, b))};
  });
  check("where broadcast", {r64({4, 1}, 6), r64({4, 7}, 7), r64({7}, 8)},
        [](const Tensors& in) { return Tensors{where(gt(in[0], 0.0), in[1], in[2])}; });
}

TEST_CASE("cuda parity: NaN and Inf propagate identically") {
  REQUIRE_CUDA();
  const double inf = INFINITY, nan = NAN;
  Tensor x = from_vector<double>({nan, inf, -inf, 0.0, -0.0, 1e308, -1e-308, 3.0, -2.0}, {9});
  for (DType t : {DType::F32, DType::F64})
    check(fmt::format("nan/inf {}", dtype_name(t)), {x.to(t)}, [](const Tensors& in) {
      const Tensor& a = in[0];
      return Tensors{exp(a), log(a), sqrt(a), reciprocal(a), tanh(a), sigmoid(a), relu(a), maximum(a, flip(a, {0})),
                     minimum(a, flip(a, {0})), clamp(a, -1, 1), mul(a, 0.0), sum(a, {}, false), amax(a), softplus(a)};
    }, Options{0, 0, false});
}

TEST_CASE("cuda parity: reductions (sum/mean/amax/amin/argmax/argmin/var/softmax/log_softmax/logsumexp/cumsum/cumprod)") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64})
    for (const Shape& s : std::vector<Shape>{{1}, {1, 1}, {5, 1, 300}, {3, 1000}, {2, 3, 4, 5}, {4097}}) {
      const int64_t last = static_cast<int64_t>(s.size()) - 1;
      const int64_t correction = s.back() > 1 ? 1 : 0;  // one element leaves no degree of freedom for correction 1
      check(fmt::format("reductions {} {}", dtype_name(t), shape_str(s)), {r64(s, 10).to(t)},
            [last, correction](const Tensors& in) {
        const Tensor& x = in[0];
        return Tensors{sum(x), sum(x, {0}), sum(x, {last}, true), mean(x, {-1}), amax(x, {last}), amin(x, {0}, true),
                       argmax(x, last), argmin(x, 0), var(x, {last}, correction), var(x, {}, 0), softmax(x, last),
                       log_softmax(x, 0), logsumexp(x, {last}), cumsum(x, last), cumprod(x, 0)};
      });
    }
  check("empty-dim reductions", {r64({0, 4}, 11)}, [](const Tensors& in) {
    return Tensors{sum(in[0], {0}), mean(in[0], {1}), cumsum(in[0], 0), softmax(in[0], 1)};
  });
}

TEST_CASE("cuda parity: layer_norm and rms_norm") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64})
    for (int64_t d : {1, 7, 64, 1000}) {
      Shape xs = {3, 5, d};
      check(fmt::format("layer_norm {} D{}", dtype_name(t), d), {r64(xs, 12).to(t), r64({d}, 13).to(t), r64({d}, 14).to(t)},
            [](const Tensors& in) { return Tensors{layer_norm(in[0], in[1], in[2], 1e-5)}; });
      check(fmt::format("layer_norm no-affine {} D{}", dtype_name(t), d), {r64(xs, 15).to(t)},
            [d](const Tensors& in) { return Tensors{layer_norm(in[0], d, 1e-5)}; });
      check(fmt::format("rms_norm {} D{}", dtype_name(t), d), {r64(xs, 16).to(t), r64({d}, 17).to(t)},
            [](const Tensors& in) { return Tensors{rms_norm(in[0], in[1], 1e-6), rms_norm(in[0], Tensor(), 1e-6)}; });
    }
}

TEST_CASE("cuda parity: matmul and linear, batch broadcasting, vectors, transposed operands") {
  REQUIRE_CUDA();
  Options f32{2e-5, 5e-5, true};
  for (DType t : {DType::F32, DType::F64}) {
    const Options o = t == DType::F32 ? f32 : Options{};
    check(fmt::format("matmul 2D {}", dtype_name(t)), {r64({33, 17}, 20).to(t), r64({17, 65}, 21).to(t)},
          [](const Tensors& in) { return Tensors{matmul(in[0], in[1]), matmul(in[1].t(), in[0].t())}; }, o);
    check(fmt::format("matmul batched broadcast {}", dtype_name(t)), {r64({2, 1, 5, 7}, 22).to(t), r64({3, 7, 4}, 23).to(t)},
          [](const Tensors& in) { return Tensors{matmul(in[0], in[1])}; }, o);
    check(fmt::format("matmul vectors {}", dtype_name(t)), {r64({7}, 24).to(t), r64({4, 7, 3}, 25).to(t), r64({3}, 26).to(t)},
          [](const Tensors& in) { return Tensors{matmul(in[0], in[1]), matmul(in[1], in[2]), matmul(in[2], in[2])}; }, o);
    check(fmt::format("linear {}", dtype_name(t)), {r64({2, 9, 70}, 27).to(t), r64({31, 70}, 28).to(t), r64({31}, 29).to(t)},
          [](const Tensors& in) { return Tensors{linear(in[0], in[1], in[2]), linear(in[0], in[1])}; }, o);
  }
}

TEST_CASE("cuda parity: shape ops (concat/stack/split/chunk/pad/flip/roll, views, contiguous, to)") {
  REQUIRE_CUDA();
  check("concat/stack", {r64({2, 3, 4}, 30), r64({2, 5, 4}, 31), r64({2, 0, 4}, 32)}, [](const Tensors& in) {
    return Tensors{concat({in[0], in[1], in[2]}, 1), stack({in[0], in[0] * 2.0}, 0), stack({in[0], in[0]}, -1)};
  });
  check("split/chunk", {r64({7, 6}, 33)}, [](const Tensors& in) {
    Tensors out;
    for (const Tensor& p : split(in[0], {2, 0, 5}, 0)) out.push_back(p * 1.0);
    for (const Tensor& p : split(in[0], 4, 1)) out.push_back(p * 2.0);
    for (const Tensor& p : chunk(in[0], 3, 0)) out.push_back(p * 3.0);
    return out;
  });
  check("pad/flip/roll", {r64({3, 4, 5}, 34)}, [](const Tensors& in) {
    return Tensors{pad(in[0], {1, 2, 0, 3}, 0.5), pad(in[0], {-1, 1}), flip(in[0], {0, 2}), roll(in[0], 2, 1),
                   roll(in[0], -7, 2)};
  });
  check("views + contiguous + dtype", {r64({4, 6}, 35)}, [](const Tensors& in) {
    const Tensor& x = in[0];
    return Tensors{x.t().contiguous(), x.reshape({3, 8}) * 1.0, x.slice(1, 1, 6, 2).clone(), x.select(0, 2) * 1.0,
                   x.unsqueeze(1).expand({4, 3, 6}).contiguous(), x.to(DType::F32).to(DType::F64), x.flatten() * 1.0};
  });
}

TEST_CASE("cuda parity: sort, argsort, topk (stable, NaN last, ties)") {
  REQUIRE_CUDA();
  Tensor ties = from_vector<double>({3, 1, 2, 1, NAN, 3, -0.0, 0.0, 2, 1, 5, NAN}, {2, 6});
  for (DType t : {DType::F32, DType::F64, DType::I64}) {
    Tensor x = t == DType::I64 ? r64({5, 300}, 40, -20, 20).to(t) : r64({5, 300}, 40).to(t);
    check(fmt::format("sort {}", dtype_name(t)), {x}, [](const Tensors& in) {
      auto [v, i] = sort(in[0], -1);
      auto [vd, id] = sort(in[0], 0, true);
      auto [tv, ti] = topk(in[0], 7, -1);
      auto [sv, si] = topk(in[0], 2, 0, false);
      return Tensors{v, i, vd, id, argsort(in[0], 1, true), tv, ti, sv, si};
    });
  }
  check("sort ties and NaN", {ties}, [](const Tensors& in) {
    auto [v, i] = sort(in[0], -1);
    auto [vd, id] = sort(in[0], -1, true);
    return Tensors{v, i, vd, id, argsort(in[0], 0)};
  });
}

TEST_CASE("cuda parity: causal_conv1d") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64})
    for (auto [B, C, L, K] : std::vector<std::array<int64_t, 4>>{{1, 1, 1, 1}, {2, 3, 17, 4}, {3, 70, 130, 3}}) {
      check(fmt::format("causal_conv1d {} B{} C{} L{} K{}", dtype_name(t), B, C, L, K),
            {r64({B, C, L}, 41).to(t), r64({C, K}, 42).to(t), r64({C}, 43).to(t)}, [](const Tensors& in) {
              return Tensors{causal_conv1d(in[0], in[1], in[2]), causal_conv1d(in[0], in[1])};
            });
    }
}

TEST_CASE("cuda parity: gather/scatter_add/index_select/index_add/segments/embedding/one_hot") {
  REQUIRE_CUDA();
  for (DType it : {DType::I64, DType::I32}) {
    Tensor g_idx = ids({0, 2, 1, 2, 2, 0, 1, 1}, {4, 2}).to(it);
    Tensor rows = ids({3, 0, 3, 3, 1}, {5}).to(it);
    Tensor offsets = ids({0, 2, 2, 5, 6}, {5}).to(it);
    const std::string tag = dtype_name(it);
    check("gather/scatter_add " + tag, {r64({3, 2}, 50), r64({4, 2}, 51), g_idx}, [](const Tensors& in) {
      return Tensors{gather(in[0], 0, in[2]), scatter_add(in[0], 0, in[2], in[1])};
    });
    check("index_select/index_add " + tag, {r64({4, 5, 2}, 52), r64({5, 5, 2}, 53), rows}, [](const Tensors& in) {
      return Tensors{index_select(in[0], 0, in[2]), index_add(in[0], 0, in[2], in[1])};
    });
    check("segments " + tag, {r64({6, 3}, 54), offsets}, [](const Tensors& in) {
      return Tensors{segment_sum(in[0], in[1]), segment_mean(in[0], in[1]), segment_max(in[0], in[1])};
    });
    check("embedding/one_hot " + tag, {r64({4, 5}, 55), rows}, [](const Tensors& in) {
      return Tensors{embedding(in[0], in[1].reshape({5, 1})), one_hot(in[1], 4), one_hot(in[1], 6, DType::F64)};
    });
  }
}

TEST_CASE("cuda parity: random factories and dropout give the same streams and masks for the same seed") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64}) {
    auto draw = [t](Device dev) {
      Generator g(1234);
      Tensors out;
      out.push_back(rand({3, 1001}, TensorOptions(t, dev), &g));
      out.push_back(uniform({77}, -2.5, 4, TensorOptions(t, dev), &g));
      out.push_back(randn({513}, TensorOptions(t, dev), &g));
      out.push_back(randint(-5, 1000, {2, 99}, TensorOptions(DType::I64, dev), &g));
      out.push_back(randint(0, 7, {31}, TensorOptions(DType::I32, dev), &g));
      out.push_back(dropout(ones({4, 257}, TensorOptions(t, dev)), 0.3, true, &g));
      out.push_back(dropout(ones({4, 257}, TensorOptions(t, dev)).t(), 0.5, true, &g));  // non-contiguous input
      out.push_back(dropout(ones({5}, TensorOptions(t, dev)), 0.5, false, &g));
      return out;
    };
    const Tensors cpu = draw(Device::cpu()), gpu = draw(Device::cuda());
    const char* names[] = {"rand", "uniform", "randn", "randint i64", "randint i32", "dropout", "dropout .t()",
                           "dropout eval"};
    for (size_t k = 0; k < cpu.size(); ++k) {
      // uniforms, integers and masks are bit-identical; normals may differ in the last ulp of log/cos
      const double tol = k == 2 ? parity::default_tol(t) : 1e-300;
      parity::expect_match(fmt::format("{} {}", names[k], dtype_name(t)), gpu[k], cpu[k], tol);
    }
  }
  Generator g(7);
  Tensor x = testing::rand_f64({64, 33}, 60, -1, 1, false).to(Device::cuda()).requires_grad_();
  Tensor y = dropout(x, 0.25, true, &g);
  sum(y * y).backward();  // the backward recomputes the same mask: grad = 2 y / (1 - p) where kept, 0 elsewhere
  parity::expect_match("dropout backward mask", x.grad(), (y * (2.0 / 0.75)).to(Device::cpu()));
}
