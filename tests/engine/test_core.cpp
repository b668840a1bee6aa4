// Core tests: tensor layout and views, broadcasting, autograd mechanics, elementwise ops, sum, matmul, errors, the
// thread pool's per-item loop.
#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;
using testing::rand_f64;

TEST_CASE("views share storage and contiguous copies only when needed") {
  Tensor a = arange(0, 24, DType::F32).reshape({2, 3, 4});
  CHECK(a.is_contiguous());
  Tensor p = a.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK_FALSE(p.is_contiguous());
  CHECK(p.impl()->storage == a.impl()->storage);
  Tensor pc = p.contiguous();
  CHECK(pc.impl()->storage != a.impl()->storage);
  CHECK(pc.contiguous().impl() == pc.impl());
  // p[k, i, j] == a[i, j, k]
  auto v = pc.to_vector<float>();
  CHECK(v[1 * 6 + 1 * 3 + 2] == 1 * 12 + 2 * 4 + 1);
  Tensor s = a.slice(2, 1, 4, 2);  // columns 1, 3
  CHECK(s.shape() == Shape{2, 3, 2});
  CHECK(s.to_vector<float>() == std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
  Tensor e = arange(0, 3, DType::F32).reshape({3, 1}).expand({2, 3, 4});
  CHECK(e.strides() == Strides{0, 1, 0});
  CHECK(e.contiguous().to_vector<float>()[5] == 1.0f);
  CHECK(a.select(1, -1).shape() == Shape{2, 4});
  CHECK(a.flatten(1).shape() == Shape{2, 12});
  CHECK(a.unsqueeze(0).squeeze(0).shape() == a.shape());
  CHECK(a.narrow(0, 1, 1).to_vector<float>()[0] == 12.0f);
}

TEST_CASE("broadcasting arithmetic") {
  Tensor a = arange(0, 6, DType::F64).reshape({2, 3});
  Tensor b = from_vector<double>({10, 20, 30}, {3});
  CHECK((a + b).to_vector<double>() == std::vector<double>{10, 21, 32, 13, 24, 35});
  Tensor c = from_vector<double>({1, 2}, {2, 1});
  CHECK((a * c).to_vector<double>() == std::vector<double>{0, 1, 2, 6, 8, 10});
  CHECK((a.t() - 1.0).shape() == Shape{3, 2});
  CHECK(sum(a, {0}).to_vector<double>() == std::vector<double>{3, 5, 7});
  CHECK(sum(a, {1}, true).shape() == Shape{2, 1});
  CHECK(sum(a).item() == 15.0);
  CHECK(mean(a.t(), {0}).to_vector<double>() == std::vector<double>{1, 4});
  CHECK(gt(a, 2.0).dtype() == DType::Bool);
  CHECK(gt(a, 2.0).to_vector<uint8_t>() == std::vector<uint8_t>{0, 0, 0, 1, 1, 1});
  CHECK_THROWS_WITH_AS(a + from_vector<double>({1, 2}, {2}), doctest::Contains("cannot be broadcast"), EngineError);
}

TEST_CASE("errors name the op and the shapes") {
  Tensor a = zeros({3, 4});
  Tensor b = zeros({5, 6});
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("matmul: a is [3, 4] but b is [5, 6]"), EngineError);
  CHECK_THROWS_AS(a.narrow(1, 3, 2), EngineError);
  CHECK_THROWS_AS(a.view({5, -1}), EngineError);
  CHECK_THROWS_AS(a.permute({0, 0}), EngineError);
  CHECK_THROWS_AS(a.select(0, 3), EngineError);
  CHECK_THROWS_AS(a + zeros({3, 4}, DType::F64), EngineError);
  CHECK_THROWS_AS(Tensor().shape(), EngineError);
  CHECK_THROWS_AS(zeros({2}).backward(), EngineError);
#ifndef ENGINE_WITH_CUDA
  CHECK_THROWS_WITH_AS(a.to(Device::cuda()), doctest::Contains("built without CUDA"), EngineError);
#endif
}

TEST_CASE("autograd: accumulation, shared inputs, no_grad, detach, retain_graph") {
  Tensor x = from_vector<double>({1, 2, 3}, {3}).requires_grad_();
  Tensor y = sum(mul(x, x));  // dy/dx = 2x
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 4, 6});
  sum(x).backward();  // accumulates
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 5, 7});
  x.zero_grad();
  {
    NoGradGuard ng;
    Tensor z = mul(x, 2.0);
    CHECK_FALSE(z.requires_grad());
  }
  CHECK_FALSE(x.detach().requires_grad());
  Tensor z = sum(exp(x));
  z.backward(Tensor(), /*retain_graph=*/true);
  z.backward();
  CHECK_CLOSE(x.grad(), mul(exp(x.detach()), 2.0), 1e-12, 1e-12);
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("retain_graph"), EngineError);
}

TEST_CASE("autograd: long chains run iteratively") {
  Tensor x = from_vector<double>({0.5}, {1}).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = add(y, 0.0);
  sum(y).backward();
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("autograd: a graph of a million chained nodes is freed without deep recursion") {
  // The naive WKV7 reference at L = 60k builds ~600k nodes; freeing them recursively overflowed the stack.
  Tensor x = from_vector<double>({0.5}, {1}).requires_grad_();
  for (bool run_backward : {false, true}) {
    CAPTURE(run_backward);
    Tensor y = x;
    for (int i = 0; i < 1000000; ++i) y = mul(y, 1.0);  // mul saves its inputs: the producers are held twice
    if (run_backward) {
      x.zero_grad();
      sum(y).backward();
      CHECK(x.grad().item() == 1.0);
    }
    y = Tensor();  // frees the whole chain here; the old recursive destructor crashed the test at this line
  }
}

TEST_CASE("gradcheck: binary ops with broadcasting and non-contiguous inputs") {
  Tensor a = rand_f64({3, 4}, 1), b = rand_f64({4}, 2), c = rand_f64({4, 3}, 3, 0.5, 2.0);
  gradcheck([](const Tensors& t) { return add(t[0], t[1]); }, {a, b});
  gradcheck([](const Tensors& t) { return sub(t[0], t[1]); }, {a, b});
  gradcheck([](const Tensors& t) { return mul(t[0], t[1].t()); }, {a, c});
  gradcheck([](const Tensors& t) { return div(t[0], t[1].t()); }, {a, c});
  gradcheck([](const Tensors& t) { return pow(t[1].t(), t[0]); }, {a, c});
  gradcheck([](const Tensors& t) { return maximum(t[0], t[1]); }, {a, b});
  gradcheck([](const Tensors& t) { return minimum(t[0], t[1]); }, {a, b});
  gradcheck([](const Tensors& t) { return where(gt(t[0], 0.0), t[0], t[1]); }, {a, b});
  gradcheck([](const Tensors& t) { return add(mul(t[0], 3.0), 1.5) / 2.0 - 0.25; }, {a});
  gradcheck([](const Tensors& t) { return rsub(1.0, t[0]); }, {a});
  gradcheck([](const Tensors& t) { return rdiv(2.0, t[0]); }, {c});
  gradcheck([](const Tensors& t) { return pow(t[0], 2.5); }, {c});
}

TEST_CASE("gradcheck: unary ops") {
  Tensor x = rand_f64({2, 5}, 7, -2.0, 2.0);
  Tensor pos = rand_f64({2, 5}, 8, 0.2, 3.0);
  using F = Tensor (*)(const Tensor&);
  for (F f : {static_cast<F>(neg), static_cast<F>(exp), static_cast<F>(tanh), static_cast<F>(sigmoid),
              static_cast<F>(silu), static_cast<F>(square), static_cast<F>(relu)}) {
    gradcheck([f](const Tensors& t) { return f(t[0]); }, {x});
  }
  for (F f : {static_cast<F>(log), static_cast<F>(sqrt), static_cast<F>(rsqrt), static_cast<F>(reciprocal),
              static_cast<F>(abs)}) {
    gradcheck([f](const Tensors& t) { return f(t[0]); }, {pos});
  }
  gradcheck([](const Tensors& t) { return gelu(t[0]); }, {x});
  gradcheck([](const Tensors& t) { return gelu(t[0], true); }, {x});
  gradcheck([](const Tensors& t) { return softplus(t[0], 2.0, 3.0); }, {x});
  gradcheck([](const Tensors& t) { return leaky_relu(t[0], 0.1); }, {x});
  gradcheck([](const Tensors& t) { return elu(t[0], 0.7); }, {x});
  gradcheck([](const Tensors& t) { return clamp(t[0], -0.5, 0.7); }, {x});
}

TEST_CASE("gradcheck: views, sum, mean, matmul") {
  Tensor x = rand_f64({2, 3, 4}, 11);
  gradcheck([](const Tensors& t) { return t[0].permute({2, 0, 1}).reshape({4, 6}); }, {x});
  gradcheck([](const Tensors& t) { return t[0].slice(2, 1, 4, 2); }, {x});
  gradcheck([](const Tensors& t) { return t[0].select(1, 2); }, {x});
  gradcheck([](const Tensors& t) { return t[0].narrow(0, 1, 1).expand({3, 1, 3, 4}); }, {x});
  gradcheck([](const Tensors& t) { return sum(t[0], {0, 2}); }, {x});
  gradcheck([](const Tensors& t) { return sum(t[0].transpose(0, 2), {1}, true); }, {x});
  gradcheck([](const Tensors& t) { return mean(t[0], {1}); }, {x});
  Tensor a = rand_f64({5, 3}, 12), b = rand_f64({3, 4}, 13), ba = rand_f64({2, 5, 3}, 14), bb = rand_f64({2, 3, 4}, 15);
  gradcheck([](const Tensors& t) { return matmul(t[0], t[1]); }, {a, b});
  gradcheck([](const Tensors& t) { return matmul(t[1].t(), t[0].t()); }, {a, b});
  gradcheck([](const Tensors& t) { return matmul(t[0], t[1]); }, {ba, bb});
  gradcheck([](const Tensors& t) { return matmul(t[0], t[1]); }, {ba, b});   // 2-D right operand folded
  gradcheck([](const Tensors& t) { return matmul(t[0], t[1]); }, {a, bb});   // broadcast left operand
  Tensor v = rand_f64({3}, 16);
  gradcheck([](const Tensors& t) { return matmul(t[0], t[1]); }, {a, v});
  Tensor u = rand_f64({3}, 19);  // vector . vector is a 0-d dot product
  CHECK(matmul(u, v).dim() == 0);
  gradcheck([](const Tensors& t) { return matmul(t[0], t[1]); }, {u, v});
  Tensor w = rand_f64({4, 3}, 17), bias = rand_f64({4}, 18);
  gradcheck([](const Tensors& t) { return linear(t[0], t[1], t[2]); }, {ba, w, bias});
}

TEST_CASE("matmul matches a naive loop on awkward shapes") {
  // the last two are cut into output blocks: by rows, by columns
  for (auto [M, K, N] : {std::tuple{1, 1, 1}, {7, 13, 5}, {33, 1, 17}, {0, 3, 4}, {64, 65, 63}, {301, 70, 150},
                         {40, 203, 517}}) {
    Tensor a = testing::rand_f32({M, K}, 21), b = testing::rand_f32({N, K}, 22).t();
    Tensor c = matmul(a, b);
    auto va = a.to_vector<double>(), vb = b.contiguous().to_vector<double>();
    std::vector<double> ref(static_cast<size_t>(M * N), 0.0);
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j)
        for (int k = 0; k < K; ++k) ref[i * N + j] += va[i * K + k] * vb[k * N + j];
    CHECK_CLOSE(c, from_vector(ref, {M, N}), 1e-5, 1e-5);
  }
}

TEST_CASE("matmul gives the same bits on any thread count, long depths included") {
  const int threads = get_num_threads();
  Tensor x = testing::rand_f32({5003, 48}, 31);    // [N, in]: hits x features
  Tensor w = testing::rand_f32({192, 48}, 32);     // [out, in]
  Tensor dy = testing::rand_f32({5003, 192}, 33);  // [N, out]
  auto products = [&] {  // a layer's forward, its input gradient and its weight gradient (depth N)
    return std::vector<std::vector<float>>{matmul(x, w.t()).to_vector<float>(), matmul(dy, w).to_vector<float>(),
                                           matmul(dy.t(), x).to_vector<float>()};
  };
  set_num_threads(1);
  const auto one = products();
  for (int t : {2, 3}) {
    set_num_threads(t);
    CHECK(products() == one);
  }
  set_num_threads(threads);
}

TEST_CASE("parallel_for_each: every item once; the lowest failing item's exception after all items ran") {
  const int threads = get_num_threads();
  set_num_threads(2);
  std::vector<int> calls(7, 0);
  parallel_for_each(7, [&](int64_t i) { ++calls[static_cast<size_t>(i)]; });
  CHECK(calls == std::vector<int>(7, 1));
  std::fill(calls.begin(), calls.end(), 0);
  CHECK_THROWS_WITH(parallel_for_each(7,
                                      [&](int64_t i) {
                                        ++calls[static_cast<size_t>(i)];
                                        if (i == 2 || i == 5) throw std::runtime_error(fmt::format("item {}", i));
                                      }),
                    "item 2");
  CHECK(calls == std::vector<int>(7, 1));
  parallel_for_each(0, [&](int64_t) { FAIL("no items"); });
  set_num_threads(threads);
}

TEST_CASE("the CPU caching allocator hands a freed block to a request of its size class or up to 1.5x smaller") {
  release_cpu_cache();  // no blocks from earlier tests in the classes below
  Allocator& a = cpu_allocator();
  const size_t big = 3 << 20;  // 3 MiB: a class of its own (classes are 4 per power of two from 64 KiB)
  void* p = a.allocate(big);
  const AllocatorStats held = cpu_allocator_stats();
  a.deallocate(p, big);
  const AllocatorStats freed = cpu_allocator_stats();
  CHECK(freed.allocated_bytes == held.allocated_bytes - int64_t(big));
  // a request 1.3x smaller (another class) gets the warm block, and the block keeps its own class
  void* q = a.allocate(big * 10 / 13);
  CHECK(q == p);
  const AllocatorStats reused = cpu_allocator_stats();
  CHECK(reused.cache_hits == freed.cache_hits + 1);
  CHECK(reused.allocated_bytes == held.allocated_bytes);
  CHECK(reused.cached_bytes == freed.cached_bytes - int64_t(big));
  a.deallocate(q, big * 10 / 13);
  CHECK(cpu_allocator_stats().cached_bytes == freed.cached_bytes);
  CHECK(cpu_allocator_stats().allocated_bytes == freed.allocated_bytes);
  // a request 2x smaller does not take it
  void* r = a.allocate(big / 2);
  CHECK(r != p);
  CHECK(cpu_allocator_stats().cache_misses == freed.cache_misses + 1);
  a.deallocate(r, big / 2);
  // tensors of a varying row count reuse the same warm storage
  const void* first = nullptr;
  for (int64_t rows : {1000, 900, 800}) {
    Tensor t = empty({rows, 1000}, DType::F32);
    if (!first) first = t.data<float>();
    CHECK(t.data<float>() == first);
  }
}
