// CUDA parity of the fused attention: dense_attention (output and the q, k, v gradients; float32 and float64; dense,
// causal, groups with a partial last group, key padding, N = 1, N not a multiple of the 64-row block, head widths
// 30 / 24 / 100) and a MultiHeadAttention module. Skips cleanly without a GPU.
#include <doctest/doctest.h>

#include <string>
#include <tuple>
#include <vector>

#include "cuda/parity.h"
#include "engine/engine.h"
#include "layers/dense_attention.h"

using engine::DType;
using engine::Tensor;
using engine::Tensors;
using layers::DenseAttentionOptions;

namespace {

Tensors qkv(int64_t N, int64_t H, int64_t D, int64_t Dv, uint64_t seed, DType t) {
  return {testing::rand_f64({N, H, D}, seed, -1.5, 1.5, false).to(t),
          testing::rand_f64({N, H, D}, seed + 1, -1.5, 1.5, false).to(t),
          testing::rand_f64({N, H, Dv}, seed + 2, -1, 1, false).to(t)};
}

}  // namespace

TEST_CASE("CUDA parity: dense_attention outputs and gradients") {
  REQUIRE_CUDA();
  for (DType t : {DType::F32, DType::F64})
    for (auto [N, D, group, causal, n_valid] : std::vector<std::tuple<int64_t, int64_t, int64_t, bool, int64_t>>{
             {1, 30, 0, false, -1}, {65, 30, 0, true, -1}, {130, 24, 0, false, 100}, {450, 30, 200, false, -1},
             {450, 30, 200, false, 420}, {301, 100, 64, true, -1}, {1000, 16, 0, false, -1}}) {
      DenseAttentionOptions o;
      o.group = group;
      o.causal = causal;
      o.n_valid = n_valid;
      const std::string name = fmt::format("dense_attention {} N{} D{} group{} causal{} n_valid{}",
                                           engine::dtype_name(t), N, D, group, causal, n_valid);
      parity::check(name, qkv(N, 3, D, D, 7 + N, t),
                    [=](const Tensors& in) { return Tensors{layers::dense_attention(in[0], in[1], in[2], o)}; });
    }
}

TEST_CASE("CUDA parity: MultiHeadAttention module") {
  REQUIRE_CUDA();
  layers::MultiHeadAttention mha(24, 4, 24);
  Tensor x = testing::rand_f64({333, 24}, 5, -1, 1, false).to(DType::F32);
  parity::module_parity("MultiHeadAttention", mha, [&](const Tensor& in) { return mha.forward(in, in, in); }, x,
                        1e-5);
}
