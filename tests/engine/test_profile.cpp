// The analytic FLOP counter (engine/profile.h): GEMMs count 2*B*M*N*K on every matmul path (2-D, folded batch,
// broadcast batch, 1-D operands, linear), causal_conv1d 2*B*C*L*K; nothing is counted while counting is off, and
// FlopScope restores the previous state.
#include <doctest/doctest.h>

#include "engine/engine.h"
#include "engine/profile.h"

using namespace engine;

namespace {

// Flops counted while running f.
template <class F>
int64_t flops_of(F&& f) {
  profile::FlopScope scope;
  f();
  return scope.flops();
}

}  // namespace

TEST_CASE("FLOP counter: matmul and linear count 2*M*N*K per batch") {
  const Tensor a = randn({3, 4}), b = randn({4, 5});
  CHECK(flops_of([&] { matmul(a, b); }) == 2 * 3 * 4 * 5);
  CHECK(flops_of([&] { matmul(randn({2, 3, 4}), b); }) == 2 * 2 * 3 * 4 * 5);               // batch folded into rows
  CHECK(flops_of([&] { matmul(randn({2, 3, 4}), randn({2, 4, 5})); }) == 2 * 2 * 3 * 4 * 5);  // batched
  CHECK(flops_of([&] { matmul(randn({1, 3, 4}), randn({2, 4, 5})); }) == 2 * 2 * 3 * 4 * 5);  // broadcast batch
  CHECK(flops_of([&] { matmul(randn({4}), b); }) == 2 * 4 * 5);                              // vector @ matrix
  CHECK(flops_of([&] { linear(randn({6, 4}), randn({5, 4}), randn({5})); }) == 2 * 6 * 5 * 4);  // bias not counted
  CHECK(flops_of([&] { causal_conv1d(randn({2, 3, 7}), randn({3, 4})); }) == 2 * 2 * 3 * 7 * 4);
}

TEST_CASE("FLOP counter: off by default, off counts nothing, FlopScope restores the previous state") {
  CHECK_FALSE(profile::counting_flops());
  const int64_t before = profile::flop_count();
  matmul(randn({8, 8}), randn({8, 8}));
  CHECK(profile::flop_count() == before);
  {
    profile::FlopScope outer;
    CHECK(profile::counting_flops());
    {
      profile::FlopScope inner;
      matmul(randn({2, 2}), randn({2, 2}));
      CHECK(inner.flops() == 16);
    }
    CHECK(profile::counting_flops());  // the inner scope restored "on"
    matmul(randn({2, 2}), randn({2, 2}));
    CHECK(outer.flops() == 32);
  }
  CHECK_FALSE(profile::counting_flops());
  profile::reset_flop_count();
  CHECK(profile::flop_count() == 0);
}
