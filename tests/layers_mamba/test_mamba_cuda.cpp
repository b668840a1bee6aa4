// CUDA parity of Mamba v1: selective_scan (output and all eight gradients; float32 and float64; the n = 16 fast
// path and the generic path; gate on and off; one chunk, several chunks with a partial last one, channel counts that
// leave idle lanes in a warp; non-contiguous inputs through the harness), determinism, and the whole MambaBlock.
// Skips cleanly without a GPU.
#include <doctest/doctest.h>

#include <string>
#include <tuple>
#include <vector>

#include "cuda/parity.h"
#include "engine/engine.h"
#include "layers/mamba.h"
#include "layers/selective_scan.h"

using engine::DType;
using engine::Device;
using engine::Tensor;
using engine::Tensors;

namespace {

Tensors scan_inputs(int64_t L, int64_t E, int64_t n, uint64_t seed, DType t, bool gate) {
  Tensors in{testing::rand_f64({L, E}, seed, -1, 1, false).to(t),
             testing::rand_f64({L, E}, seed + 1, -3, 1, false).to(t),
             testing::rand_f64({E, n}, seed + 2, -3.0, -0.2, false).to(t),
             testing::rand_f64({L, n}, seed + 3, -1, 1, false).to(t),
             testing::rand_f64({L, n}, seed + 4, -1, 1, false).to(t),
             testing::rand_f64({E}, seed + 5, 0.5, 1.5, false).to(t),
             testing::rand_f64({E}, seed + 6, -2, 0, false).to(t)};
  if (gate) in.push_back(testing::rand_f64({L, E}, seed + 7, -2, 2, false).to(t));
  return in;
}

Tensor run_scan(const Tensors& in, int64_t chunk) {
  return layers::selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in.size() > 7 ? in[7] : Tensor(),
                                chunk);
}

}  // namespace

TEST_CASE("CUDA parity: selective_scan outputs and gradients") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64})
    for (int64_t L : {1, 37, 300})
      for (auto [E, n, chunk, gate] : std::vector<std::tuple<int64_t, int64_t, int64_t, bool>>{
               {40, 16, 64, true}, {20, 5, 16, false}, {96, 16, 256, true}}) {
        const std::string name = fmt::format("selective_scan {} L{} E{} n{} Q{}{}", engine::dtype_name(t), L, E, n,
                                             chunk, gate ? " gated" : "");
        parity::check(name, scan_inputs(L, E, n, 50 + L, t, gate),
                      [=](const Tensors& in) { return Tensors{run_scan(in, chunk)}; });
      }
  parity::check("selective_scan L5000", scan_inputs(5000, 64, 16, 3, DType::F32, true),
                [](const Tensors& in) { return Tensors{run_scan(in, 256)}; }, {1e-4, 1e-4});
}

TEST_CASE("CUDA parity: selective_scan is deterministic") {
  REQUIRE_CUDA();
  Tensors in = scan_inputs(700, 72, 16, 8, DType::F32, true);
  std::vector<float> first;
  for (int rep = 0; rep < 2; ++rep) {
    Tensors leaves;
    for (const Tensor& t : in) leaves.push_back(t.to(Device::cuda()).requires_grad_());
    Tensor y = run_scan(leaves, 64);
    engine::sum(y * y).backward();
    std::vector<float> all = y.to_vector<float>();
    for (const Tensor& l : leaves)
      for (float v : l.grad().to_vector<float>()) all.push_back(v);
    if (rep == 0) first = all;
    else CHECK(all == first);
  }
}

TEST_CASE("CUDA parity: MambaBlock") {
  REQUIRE_CUDA();
  engine::manual_seed(13);
  layers::MambaBlock b(48);
  parity::module_parity("MambaBlock(48)", b, [&](const Tensor& u) { return b.forward(u); },
                        testing::rand_f32({300, 48}, 1), 1e-4);
  b.to(DType::F64);
  parity::module_parity("MambaBlock(48) f64", b, [&](const Tensor& u) { return b.forward(u); },
                        testing::rand_f64({90, 48}, 2, -1, 1, false), 1e-10);
}
