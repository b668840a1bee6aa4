// CUDA parity of the HEPT bucketed attention (outputs and gradients, float32 and float64, awkward sizes) and of a
// whole HEPTBlock; skips without a GPU.
#include <doctest/doctest.h>

#include <cmath>

#include "cuda/parity.h"
#include "engine/engine.h"
#include "layers/e2lsh.h"
#include "layers/hept_attention.h"

using engine::DType;
using engine::Device;
using engine::Tensor;
using engine::Tensors;

namespace {

Tensors inputs(int64_t N, int64_t Np, int64_t H, int64_t D, int64_t C, int64_t T, uint64_t seed, DType dt) {
  Tensor q = testing::rand_f64({Np, H, D}, seed + 1, -1, 1, false).to(dt);
  Tensor k = testing::rand_f64({Np, H, D}, seed + 2, -1, 1, false).to(dt);
  Tensor v = testing::rand_f64({Np, H, D}, seed + 3, -1, 1, false).to(dt);
  Tensor s = testing::rand_f64({H, C}, seed + 4, 0.5, 2.0, false).to(dt);
  std::vector<double> co = testing::rand_f64({Np, C}, seed + 5, -3, 3, false).to_vector<double>();
  for (int64_t i = N * C; i < Np * C; ++i) co[static_cast<size_t>(i)] = 0;
  Tensor coords = engine::from_vector(co, {Np, C});
  Tensor alpha = testing::rand_f64({H, D + C, T}, seed + 6, -1, 1, false).to(dt);
  Tensor codes = layers::region_codes(coords, N, layers::get_regions(9.0, T, H), layers::RegionMode::Src);
  return {q, k, v, s, coords.to(dt), alpha, codes};
}

double rel(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double n = 0, d = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    n += (va[i] - vb[i]) * (va[i] - vb[i]);
    d += vb[i] * vb[i];
  }
  return std::sqrt(n / std::max(d, 1e-300));
}

}  // namespace

TEST_CASE("CUDA parity: hept_bucket_attention") {
  REQUIRE_CUDA();
  struct C {
    int64_t N, Np, H, D, C, T, B;
  };
  for (DType dt : {DType::F32, DType::F64})
    for (C c : {C{250, 300, 2, 5, 4, 3, 100}, C{37, 100, 3, 24, 6, 2, 100}, C{1000, 1000, 8, 32, 6, 3, 100},
                C{130, 150, 2, 40, 6, 3, 50}, C{300, 300, 2, 128, 6, 3, 100}}) {
      const std::string name = fmt::format("hept_bucket_attention {} N{} Np{} H{} D{} B{}", engine::dtype_name(dt),
                                           c.N, c.Np, c.H, c.D, c.B);
      parity::check(name, inputs(c.N, c.Np, c.H, c.D, c.C, c.T, c.N + c.D, dt), [=](const Tensors& in) {
        return Tensors{layers::hept_bucket_attention(in[0], in[1], in[2], in[3], in[4].detach(), in[5].detach(),
                                                     in[6], c.N, c.B)};
      }, {dt == DType::F32 ? 1e-4 : 1e-10, dt == DType::F32 ? 1e-4 : 1e-10});
    }
}

TEST_CASE("CUDA parity: HEPTBlock forward and weight gradients") {
  REQUIRE_CUDA();
  layers::HEPTOptions o{32};
  o.head_dim = 32;
  layers::HEPTBlock cpu(o), gpu(o);
  cpu.eval();
  gpu.eval();
  gpu.load_state_dict(cpu.state_dict());
  gpu.to(Device::cuda());
  const int64_t N = 730, Np = 800;
  Tensor x = testing::rand_f64({Np, 32}, 3, -1, 1, false).to(DType::F32);
  std::vector<double> co = testing::rand_f64({Np, 6}, 4, -3, 3, false).to_vector<double>();
  for (int64_t i = N * 6; i < Np * 6; ++i) co[static_cast<size_t>(i)] = 0;
  Tensor coords = engine::from_vector(co, {Np, 6}).to(DType::F32);
  Tensor yc = cpu.forward(x, coords, N);
  Tensor yg = gpu.forward(x.to(Device::cuda()), coords.to(Device::cuda()), N);
  CHECK(rel(yg.to(Device::cpu()), yc) < 1e-4);
  engine::sum(yc * yc).backward();
  engine::sum(yg * yg).backward();
  CHECK(rel(gpu.attn->w_q->weight.grad().to(Device::cpu()), cpu.attn->w_q->weight.grad()) < 1e-3);
  CHECK(rel(gpu.attn->w_rpe->weight.grad().to(Device::cpu()), cpu.attn->w_rpe->weight.grad()) < 1e-3);
}
