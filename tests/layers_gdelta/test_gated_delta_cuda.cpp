// CUDA parity of the gated-delta family: gated_delta_rule (output and all five gradients; float32 and float64; the
// K = 16 / V = 32 catalog shape and generic shapes with V not a multiple of 32; several chunks with a partial last
// one; non-contiguous inputs through the harness; determinism), and whole GatedDeltaProduct / block (local1) /
// LocalAggregation modules (output, input gradient, every parameter gradient). Skips cleanly without a GPU.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "cuda/parity.h"
#include "engine/engine.h"
#include "layers/gated_delta.h"
#include "layers/local_aggregation.h"

using engine::DType;
using engine::Device;
using engine::Tensor;
using engine::Tensors;

namespace {

Tensors rule_inputs(int64_t T, int64_t H, int64_t K, int64_t V, uint64_t seed, DType t) {
  return {testing::rand_f64({T, H, K}, seed, -1, 1, false).to(t),
          testing::rand_f64({T, H, K}, seed + 1, -1, 1, false).to(t),
          testing::rand_f64({T, H, V}, seed + 2, -1, 1, false).to(t),
          testing::rand_f64({T, H}, seed + 3, -1.5, 0.0, false).to(t),
          testing::rand_f64({T, H}, seed + 4, 0.05, 0.95, false).to(t)};
}

Tensor edges(int64_t N, uint64_t seed) {
  std::vector<int64_t> src, dst;
  uint64_t s = seed + 88172645463325252ULL;
  for (int64_t i = 0; i < N; ++i) {
    src.push_back(i), dst.push_back(i);
    for (int e = 0; e < 5; ++e) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      src.push_back(static_cast<int64_t>(s % N)), dst.push_back(i);
    }
  }
  std::vector<int64_t> all(src);
  all.insert(all.end(), dst.begin(), dst.end());
  return engine::from_vector(all, {2, static_cast<int64_t>(src.size())});
}


}  // namespace

TEST_CASE("CUDA parity: gated_delta_rule outputs and gradients") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64})
    for (int64_t T : {1, 65, 300})
      for (auto [K, V, chunk] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{16, 32, 64}, {5, 37, 16}}) {
        const std::string name =
            fmt::format("gated_delta_rule {} T{} K{} V{} Q{}", engine::dtype_name(t), T, K, V, chunk);
        parity::check(name, rule_inputs(T, 3, K, V, 40 + T, t), [=](const Tensors& in) {
          return Tensors{layers::gated_delta_rule(in[0], in[1], in[2], in[3], in[4], chunk)};
        });
      }
  parity::check("gated_delta_rule T4000 K64 V64", rule_inputs(4000, 2, 64, 64, 5, DType::F32),
                [](const Tensors& in) {
                  return Tensors{layers::gated_delta_rule(in[0], in[1], in[2], in[3], in[4], 64)};
                },
                {1e-4, 1e-4});
}

TEST_CASE("CUDA parity: gated_delta_rule is deterministic") {
  REQUIRE_CUDA();
  Tensors in = rule_inputs(500, 6, 16, 32, 9, DType::F32);
  auto run = [&]() {
    Tensors c;
    for (const Tensor& x : in) c.push_back(x.to(Device::cuda()).requires_grad_());
    Tensor o = layers::gated_delta_rule(c[0], c[1], c[2], c[3], c[4]);
    engine::sum(o * o).backward();
    Tensors r{o.detach().to(Device::cpu())};
    for (const Tensor& x : c) r.push_back(x.grad().to(Device::cpu()));
    return r;
  };
  Tensors a = run(), b = run();
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector<float>() == b[i].to_vector<float>());
}

TEST_CASE("CUDA parity: GatedDeltaProduct, local1 block, LocalAggregation") {
  REQUIRE_CUDA();
  engine::manual_seed(1);
  layers::GatedDeltaProduct attn(48);
  parity::module_parity("GatedDeltaProduct(48)", attn, [&](const Tensor& u) { return attn.forward(u); },
                testing::rand_f32({150, 48}, 3, -1, 1), 1e-4);
  const int64_t N = 130;
  Tensor ei = edges(N, 4);
  layers::GatedDeltaProductBlock blk(48, true);
  parity::module_parity("GatedDeltaProductBlock(48, local)", blk,
                [&](const Tensor& u) { return blk.forward(u, ei.to(u.device())); },
                testing::rand_f32({N, 48}, 5, -1, 1), 1e-4);
  layers::LocalAggregation agg(16);
  parity::module_parity("LocalAggregation(16)", agg, [&](const Tensor& u) { return agg.forward(u, ei.to(u.device())); },
                testing::rand_f32({N, 16}, 6, -1, 1), 1e-5);
}
