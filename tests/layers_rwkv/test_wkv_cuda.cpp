// CUDA parity of WKV5 and WKV7: outputs and every gradient, float32 and float64, head sizes 16 and 5 (idle lanes),
// one chunk, several chunks with a partial last one, a long sequence; determinism; whole RWKV-5 and RWKV-7 blocks.
// Skips without a GPU.
#include <doctest/doctest.h>

#include <string>
#include <tuple>
#include <vector>

#include "cuda/parity.h"
#include "engine/engine.h"
#include "layers/rwkv.h"
#include "layers/wkv.h"

using engine::DType;
using engine::Device;
using engine::Tensor;
using engine::Tensors;

namespace {

Tensors wkv_inputs(int64_t L, int64_t H, int64_t N, uint64_t seed, DType t) {
  return {testing::rand_f64({L, H, N}, seed, -1, 1, false).to(t), testing::rand_f64({L, H, N}, seed + 1, -1, 1, false).to(t),
          testing::rand_f64({L, H, N}, seed + 2, -1, 1, false).to(t),
          testing::rand_f64({H, N}, seed + 3, 0.3, 0.99, false).to(t),
          testing::rand_f64({H, N}, seed + 4, -0.5, 0.5, false).to(t)};
}

// RWKV-7 ranges: w <= -0.5, a = -kk, b = kk * gate with unit kk per head.
Tensors wkv7_inputs(int64_t L, int64_t H, int64_t N, uint64_t seed, DType t) {
  using namespace engine;
  const Tensor kk = testing::rand_f64({L, H, N}, seed, -1, 1, false);
  const Tensor kn = kk / sqrt(sum(square(kk), {2}, true) + 1e-12);
  const Tensor gate = testing::rand_f64({L, H, N}, seed + 1, 0, 1, false);
  Tensors in{testing::rand_f64({L, H, N}, seed + 2, -1, 1, false), testing::rand_f64({L, H, N}, seed + 3, -3, -0.5, false),
             testing::rand_f64({L, H, N}, seed + 4, -1, 1, false), testing::rand_f64({L, H, N}, seed + 5, -1, 1, false),
             neg(kn), kn * gate};
  for (Tensor& x : in) x = x.to(t);
  return in;
}

}  // namespace

TEST_CASE("CUDA parity: wkv7 outputs and gradients; RWKV-7 block") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64})
    for (int64_t L : {1, 37, 200})
      for (auto [H, N, chunk] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{4, 16, 64}, {3, 5, 16}}) {
        const std::string name = fmt::format("wkv7 {} L{} H{} N{} Q{}", engine::dtype_name(t), L, H, N, chunk);
        parity::check(name, wkv7_inputs(L, H, N, 30 + L, t), [=](const Tensors& in) {
          return Tensors{layers::wkv7(in[0], in[1], in[2], in[3], in[4], in[5], chunk)};
        });
      }
  engine::manual_seed(5);
  layers::RWKVBlock b(64, 16, 224, 0, 3, 7);
  parity::module_parity("RWKV7Block(64)", b, [&](const Tensor& u) { return b.forward(u); },
                        testing::rand_f32({150, 64}, 2), 1e-4);
}

TEST_CASE("CUDA parity: wkv5 outputs and gradients") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64})
    for (int64_t L : {1, 37, 200})
      for (auto [H, N, chunk] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{8, 16, 64}, {3, 5, 16}}) {
        const std::string name = fmt::format("wkv5 {} L{} H{} N{} Q{}", engine::dtype_name(t), L, H, N, chunk);
        parity::check(name, wkv_inputs(L, H, N, 20 + L, t), [=](const Tensors& in) {
          return Tensors{layers::wkv5(in[0], in[1], in[2], in[3], in[4], chunk)};
        });
      }
  parity::check("wkv5 L5000", wkv_inputs(5000, 8, 16, 3, DType::F32), [](const Tensors& in) {
    return Tensors{layers::wkv5(in[0], in[1], in[2], in[3], in[4])};
  }, {1e-4, 1e-4});
}

TEST_CASE("CUDA parity: wkv5 is deterministic; RWKV block") {
  REQUIRE_CUDA();
  Tensors in = wkv_inputs(300, 4, 16, 8, DType::F32);
  std::vector<float> first;
  for (int rep = 0; rep < 2; ++rep) {
    Tensors leaves;
    for (const Tensor& t : in) leaves.push_back(t.to(Device::cuda()).requires_grad_());
    Tensor y = layers::wkv5(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4]);
    engine::sum(y * y).backward();
    std::vector<float> all = y.to_vector<float>();
    for (const Tensor& l : leaves)
      for (float v : l.grad().to_vector<float>()) all.push_back(v);
    if (rep == 0) first = all;
    else CHECK(all == first);
  }
  engine::manual_seed(4);
  layers::RWKVBlock b(64, 16, 224, 0, 4);
  parity::module_parity("RWKVBlock(64)", b, [&](const Tensor& u) { return b.forward(u); },
                        testing::rand_f32({150, 64}, 1), 1e-4);
}
