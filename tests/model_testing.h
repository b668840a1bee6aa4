// Helpers of the catalog model tests: random detector sectors (15 hit features in [-1, 1], the 6 coordinates the
// models read: eta, phi, r, phi / pi, z, eta; optionally the dataset's kind of graph, each hit linked to its k nearest
// hits in (eta, phi) and to itself, symmetrised), the trainable-parameter count the catalog tables give, and the loss
// before and after a few Adam steps.
#pragma once
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "engine/optim/optimizer.h"
#include "gradcheck.h"
#include "models/model.h"

namespace testing {

// Elements of the parameters that require a gradient.
inline int64_t trainable(const engine::nn::Module& m) {
  int64_t n = 0;
  for (const Tensor& p : m.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

// [2, E] int64: each hit linked to its k nearest hits in (eta, phi) by brute force plus itself, both directions.
inline Tensor knn_edges(const Tensor& coords, int64_t k) {
  const int64_t N = coords.size(0);
  const std::vector<float> c = coords.to_vector<float>();  // [N, 6]
  std::set<std::pair<int64_t, int64_t>> edges;
  std::vector<int64_t> idx(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    std::iota(idx.begin(), idx.end(), 0);
    auto d2 = [&](int64_t j) {
      const double de = c[i * 6] - c[j * 6], dp = c[i * 6 + 1] - c[j * 6 + 1];
      return de * de + dp * dp;
    };
    std::partial_sort(idx.begin(), idx.begin() + std::min(k + 1, N), idx.end(),
                      [&](int64_t a, int64_t b) { return d2(a) < d2(b) || (d2(a) == d2(b) && a < b); });
    edges.insert({i, i});
    for (int64_t r = 0; r < std::min(k + 1, N); ++r) {
      edges.insert({idx[r], i});
      edges.insert({i, idx[r]});
    }
  }
  std::vector<int64_t> flat(2 * edges.size());
  size_t e = 0;
  for (const auto& [s, d] : edges) {
    flat[e] = s;
    flat[edges.size() + e] = d;
    ++e;
  }
  return engine::from_vector(flat, {2, static_cast<int64_t>(edges.size())});
}

// N random hits: x [N, 15], coords [N, 6] (eta in [-4, 4], phi in [-pi, pi], r in [0.03, 1], z in [-3, 3]),
// edge_index [2, E]: the kNN graph above for knn_k > 0, else empty, vertex_z [N, 1] in [-0.3, 0.3] and seeds [N, 5]
// in [-1, 1].
inline models::ModelInput random_sector(int64_t N, uint64_t seed, int64_t knn_k = 0) {
  using namespace engine;
  models::ModelInput in;
  in.x = rand_f32({N, 15}, seed, -1, 1);
  const Tensor eta = rand_f64({N, 1}, seed + 1, -4, 4, false), phi = rand_f64({N, 1}, seed + 2, -M_PI, M_PI, false);
  const Tensor r = rand_f64({N, 1}, seed + 3, 0.03, 1.0, false), z = rand_f64({N, 1}, seed + 4, -3, 3, false);
  in.coords = concat({eta, phi, r, phi / M_PI, z, eta}, 1).to(DType::F32);
  in.edge_index = knn_k > 0 ? knn_edges(in.coords, knn_k) : zeros({2, 0}, TensorOptions(DType::I64));
  in.vertex_z = rand_f32({N, 1}, seed + 5, -0.3, 0.3);
  in.seeds = rand_f32({N, 5}, seed + 6, -1, 1);
  return in;
}

// The mean squared error between the model's output on `in` and a fixed random target [N, out_dim], as computed
// for the first and for the last of `steps` Adam steps (lr 1e-3), the model in eval mode.
struct LossDrop {
  double first = 0, last = 0;
};
inline LossDrop adam_fit(models::TrackingModel& model, const models::ModelInput& in, int steps = 6) {
  model.eval();
  const Tensor target = rand_f32({in.x.size(0), model.out_dim()}, 9, -1, 1);  // [N, out_dim]
  engine::optim::Adam opt(model.named_parameters(), 1e-3);
  LossDrop drop;
  for (int step = 0; step < steps; ++step) {
    opt.zero_grad();
    const Tensor d = model.forward(in) - target;
    const Tensor loss = engine::mean(d * d);
    loss.backward();
    opt.step();
    (step == 0 ? drop.first : drop.last) = loss.item();
  }
  return drop;
}

}  // namespace testing
