// CUDA parity of the SSD family: ssd_scan (outputs and all six gradients; float32 and float64; both directions;
// the n = 16 fast path and the generic path; several chunks with a partial last one; non-contiguous inputs through
// the harness), and whole Mamba2 / Hydra modules (output, input gradient, every parameter gradient).
// Skips cleanly without a GPU.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "cuda/parity.h"
#include "engine/engine.h"
#include "layers/hydra.h"
#include "layers/mamba2.h"
#include "layers/ssd.h"

using engine::DType;
using engine::Device;
using engine::Tensor;
using engine::Tensors;

namespace {

Tensors scan_inputs(int64_t L, int64_t H, int64_t P, int64_t n, uint64_t seed, DType t) {
  return {testing::rand_f64({L, H, P}, seed, -1, 1, false).to(t),
          testing::rand_f64({L, H}, seed + 1, 0.01, 0.6, false).to(t),
          testing::rand_f64({H}, seed + 2, -2.0, -0.3, false).to(t),
          testing::rand_f64({L, n}, seed + 3, -1, 1, false).to(t),
          testing::rand_f64({L, n}, seed + 4, -1, 1, false).to(t),
          testing::rand_f64({H}, seed + 5, 0.5, 1.5, false).to(t)};
}


}  // namespace

TEST_CASE("CUDA parity: ssd_scan outputs and gradients") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64})
    for (bool reverse : {false, true})
      for (int64_t L : {1, 65, 200}) {
        for (auto [P, n, chunk] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{16, 16, 64}, {12, 5, 16}}) {
          const std::string name = fmt::format("ssd_scan {} L{} P{} n{} Q{}{}", engine::dtype_name(t), L, P, n, chunk,
                                               reverse ? " reverse" : "");
          parity::check(name, scan_inputs(L, 3, P, n, 40 + L, t), [=](const Tensors& in) {
            return Tensors{layers::ssd_scan(in[0], in[1], in[2], in[3], in[4], in[5], chunk, reverse)};
          });
        }
      }
  // No D; a long sequence (many chunks through the state passing).
  parity::check("ssd_scan no D", scan_inputs(1000, 2, 16, 16, 3, DType::F32), [](const Tensors& in) {
    return Tensors{layers::ssd_scan(in[0], in[1], in[2], in[3], in[4], Tensor(), 64, false)};
  });
  parity::check("ssd_scan L5000 reverse", scan_inputs(5000, 4, 16, 16, 4, DType::F32), [](const Tensors& in) {
    return Tensors{layers::ssd_scan(in[0], in[1], in[2], in[3], in[4], in[5], 64, true)};
  }, {1e-4, 1e-4});
}

TEST_CASE("CUDA parity: ssd_scan is deterministic") {
  REQUIRE_CUDA();
  Tensors in = scan_inputs(700, 4, 16, 16, 8, DType::F32);
  std::vector<float> first;
  for (int rep = 0; rep < 2; ++rep) {
    Tensors leaves;
    for (const Tensor& t : in) leaves.push_back(t.to(Device::cuda()).requires_grad_());
    Tensor y = layers::ssd_scan(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5]);
    engine::sum(y * y).backward();
    std::vector<float> all = y.to_vector<float>();
    for (const Tensor& l : leaves)
      for (float v : l.grad().to_vector<float>()) all.push_back(v);
    if (rep == 0) first = all;
    else CHECK(all == first);
  }
}

TEST_CASE("CUDA parity: Mamba2 and Hydra modules") {
  REQUIRE_CUDA();
  engine::manual_seed(11);
  layers::Mamba2 m(64);
  parity::module_parity("Mamba2(64)", m, [&](const Tensor& u) { return m.forward(u); },
                testing::rand_f32({150, 64}, 1), 1e-4);
  layers::Hydra h(48);
  parity::module_parity("Hydra(48)", h, [&](const Tensor& u) { return h.forward(u); }, testing::rand_f32({150, 48}, 2), 1e-4);
  h.to(DType::F64);
  parity::module_parity("Hydra(48) f64", h, [&](const Tensor& u) { return h.forward(u); },
                testing::rand_f64({70, 48}, 3, -1, 1, false), 1e-10);
}
