// Self-test of the parity harness on the CPU (runs in every build, GPU or not): the error measures, NaN/Inf and exact
// integer agreement, guard detection, and full CPU-vs-CPU parity runs (guarded and transposed inputs, gradients),
// so a harness bug cannot masquerade as a CUDA bug on the GPU machine.
#include "parity.h"

using namespace engine;

TEST_CASE("parity harness: error measures and NaN/Inf/exact agreement") {
  Tensor ref = from_vector<double>({1, 2, NAN, INFINITY, 4}, {5});
  Tensor same = from_vector<double>({1, 2, NAN, INFINITY, 4}, {5});
  parity::Diff d = parity::diff(same, ref);
  CHECK(d.rel_rms == 0);
  CHECK(d.nan_mismatch + d.inf_mismatch == 0);
  d = parity::diff(from_vector<double>({1, 2, 0, INFINITY, 4}, {5}), ref);
  CHECK(d.nan_mismatch == 1);
  d = parity::diff(from_vector<double>({1, 2, NAN, -INFINITY, 4}, {5}), ref);
  CHECK(d.inf_mismatch == 1);
  d = parity::diff(from_vector<double>({1, 2, NAN, INFINITY, 4.4}, {5}), ref);
  CHECK(d.rel_rms == doctest::Approx(0.4 / std::sqrt(21.0)));
  CHECK(d.max_abs == doctest::Approx(0.4));
  d = parity::diff(from_vector<int64_t>({1, 2, 3}, {3}), from_vector<int64_t>({1, 2, 4}, {3}));
  CHECK(d.exact_mismatch == 1);
}

TEST_CASE("parity harness: guards catch writes outside a view, snapshots catch input changes") {
  for (bool transposed : {false, true})
    for (DType t : {DType::F32, DType::I64, DType::Bool}) {
      parity::Guarded g = parity::guarded({3, 4}, t, Device::cpu(), transposed);
      parity::take_snapshot(g);
      g.view.fill_(1);  // inside the view: fine unless the whole buffer must be unchanged
      CHECK(parity::overwritten(g) == 0);
      CHECK(parity::overwritten(g, true) == 12);
      Tensor outside = make_view(g.buffer, {2}, {1}, g.view.offset() + 12);  // just past the view
      outside.fill_(0);
      CHECK(parity::overwritten(g) == 2);
      make_view(g.buffer, {1}, {1}, 0).fill_(0);  // first guard element
      CHECK(parity::overwritten(g) == 3);
    }
  parity::Guarded gaps = parity::guarded({6, 20}, DType::F64, Device::cpu());
  parity::take_snapshot(gaps);
  parity::Guarded every_other{gaps.buffer, gaps.view.slice(1, 0, 20, 2), gaps.snapshot};
  gaps.view.fill_(3);  // writes the gaps as well
  CHECK(parity::overwritten(every_other) == 60);
}

TEST_CASE("parity harness: CPU-vs-CPU runs pass on guarded and transposed inputs, with gradients") {
  const parity::Options cpu{0, 0, true, Device::cpu()};
  Tensor a = testing::rand_f64({5, 7}, 1, -1, 1, false), b = testing::rand_f64({7, 3}, 2, -1, 1, false);
  parity::check("self matmul", {a, b}, [](const Tensors& in) { return Tensors{matmul(in[0], in[1])}; }, cpu);
  parity::check("self softmax+sort", {a}, [](const Tensors& in) {
    auto [v, i] = sort(in[0], 1);
    return Tensors{softmax(in[0], 0), v, i};
  }, cpu);
  parity::check("self index", {a, from_vector<int64_t>({4, 0, 4}, {3})}, [](const Tensors& in) {
    return Tensors{index_select(in[0], 0, in[1]), one_hot(in[1], 5)};
  }, cpu);
}
