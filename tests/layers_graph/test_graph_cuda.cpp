// CUDA parity of the kNN kernel (exact index equality with the CPU) and of EdgeConv / GravNet (outputs and input
// gradients). Skips cleanly without a GPU.
#include <random>

#include "cuda/parity.h"
#include "layers/graph_conv.h"
#include "layers/knn.h"

using engine::Device;
using engine::Tensor;
using engine::Tensors;

TEST_CASE("cuda parity: knn indices equal the CPU's (D = 2, 6, 32; ties; k > N; self excluded; float64)") {
  REQUIRE_CUDA();
  for (int64_t D : {2, 6, 32}) {
    for (int64_t N : {1, 5, 300, 1000}) {
      Tensor p = testing::rand_f32({N, D}, 3 + N + D, -1, 1);
      for (bool self : {true, false})
        parity::check(fmt::format("knn D={} N={} self={}", D, N, self), {p},
                      [self](const Tensors& in) { return Tensors{layers::knn(in[0], 32, self)}; },
                      parity::Options{0, 0, false});
    }
  }
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> u(0, 3);
  std::vector<float> v(600);
  for (float& x : v) x = static_cast<float>(u(rng));
  parity::check("knn lattice ties", {engine::from_vector(v, {200, 3})},
                [](const Tensors& in) { return Tensors{layers::knn(in[0], 20)}; }, parity::Options{0, 0, false});
  parity::check("knn float64", {testing::rand_f64({500, 16}, 9, -5, 5, false)},
                [](const Tensors& in) { return Tensors{layers::knn(in[0], 10)}; }, parity::Options{0, 0, false});
  Tensor empty = layers::knn(engine::empty({0, 3}, engine::TensorOptions(engine::DType::F32, Device::cuda())), 4);
  CHECK(empty.shape() == engine::Shape{0, 0});
}

TEST_CASE("cuda parity: EdgeConv and GravNetConv forward and input gradients") {
  REQUIRE_CUDA();
  engine::manual_seed(21);
  for (int64_t N : {1, 37, 700}) {
    auto ec = std::make_shared<layers::EdgeConv>(16, 8, 6);
    ec->tile_edges = 1000;
    parity::check(fmt::format("EdgeConv N={}", N), {testing::rand_f32({N, 16}, 30 + N)}, [ec](const Tensors& in) {
      ec->to(in[0].device());
      return Tensors{ec->forward(in[0])};
    });
    auto gn = std::make_shared<layers::GravNetConv>(16, 8, 4, 6);
    gn->tile_edges = 1000;
    parity::check(fmt::format("GravNet N={}", N), {testing::rand_f32({N, 16}, 40 + N)}, [gn](const Tensors& in) {
      gn->to(in[0].device());
      return Tensors{gn->forward(in[0])};
    });
  }
}
