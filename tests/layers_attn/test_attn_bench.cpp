// Timing of the fused attention on the CPU at a tracking-6k event size (N = 6000): dense (mhaformer: 4 heads x 24)
// and FlatFormer groups of 200 (8 heads x 30), forward and forward + backward, float32. Skipped by default (it is a
// measurement, not a check); run with: layers_attn_tests --no-skip -tc="*timing*".
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>

#include "engine/engine.h"
#include "engine/parallel.h"
#include "gradcheck.h"
#include "layers/dense_attention.h"

using engine::Tensor;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void time_case(const char* name, int64_t N, int64_t H, int64_t D, int64_t group) {
  Tensor q = testing::rand_f32({N, H, D}, 1).requires_grad_(), k = testing::rand_f32({N, H, D}, 2).requires_grad_();
  Tensor v = testing::rand_f32({N, H, D}, 3).requires_grad_();
  layers::DenseAttentionOptions o;
  o.group = group;
  double fwd = 1e30, both = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    {
      engine::NoGradGuard ng;
      layers::dense_attention(q, k, v, o);
    }
    fwd = std::min(fwd, seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    engine::sum(layers::dense_attention(q, k, v, o)).backward();
    both = std::min(both, seconds_since(t0));
  }
  std::printf("%s N=%lld H=%lld D=%lld group=%lld threads=%d: forward %.4f s, forward+backward %.4f s\n", name,
              static_cast<long long>(N), static_cast<long long>(H), static_cast<long long>(D),
              static_cast<long long>(group), engine::get_num_threads(), fwd, both);
}

}  // namespace

TEST_CASE("dense_attention CPU timing at N = 6000" * doctest::skip()) {
  time_case("dense (mhaformer)", 6000, 4, 24, 0);
  time_case("groups (flatformer)", 6000, 8, 30, 200);
}
