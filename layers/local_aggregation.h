// Lampa's LocalAggregation (modeling_gated_deltaproduct.py:310-323; lampa-models.md 3.8), a PyG MessagePassing layer
// with mean aggregation used by gdlocal1's blocks:
//   out_i = gelu(W_self x_i + b + mean_{j in N(i)} W_msg x_j)        (exact, erf-based gelu)
// N(i) = sources j of the edges (j -> i) in edge_index (row 0 = source, row 1 = target, PyG's source_to_target
// flow). A node without incoming edges gets a zero mean. Built from engine index ops: index_select of the source
// rows, a deterministic index_add into the targets, division by the in-degree; W_msg is applied AFTER the mean
// (mean_j W x_j = W mean_j x_j, fewer flops when E >> N). Parameters: lin_msg [d, d] (no bias), lin_self [d, d] + [d].
// Init as GatedDelta._init_weights leaves it: both weights N(0, 0.02), bias 0.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace layers {

class LocalAggregation : public engine::nn::Module {
 public:
  LocalAggregation(int64_t in_channels, int64_t out_channels);
  explicit LocalAggregation(int64_t d) : LocalAggregation(d, d) {}
  // x [N, in], edge_index [2, E] int64 (or int32) with entries in [0, N) -> [N, out].
  engine::Tensor forward(const engine::Tensor& x, const engine::Tensor& edge_index);

  std::shared_ptr<engine::nn::Linear> lin_msg, lin_self;
};

}  // namespace layers
