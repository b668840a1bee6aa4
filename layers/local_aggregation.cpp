// LocalAggregation: mean over incoming edges with engine index ops (autograd through index_select / index_add).
#include "layers/local_aggregation.h"

#include "engine/engine.h"
#include "engine/nn/init.h"
#include "engine/profile.h"
#include "layers/common.h"

namespace layers {

using namespace engine;

LocalAggregation::LocalAggregation(int64_t in_channels, int64_t out_channels) {
  lin_msg = register_module("lin_msg", std::make_shared<nn::Linear>(in_channels, out_channels, false));
  lin_self = register_module("lin_self", std::make_shared<nn::Linear>(in_channels, out_channels, true));
  nn::init::normal_(lin_msg->weight, 0.0, 0.02);
  nn::init::normal_(lin_self->weight, 0.0, 0.02);
  nn::init::zeros_(lin_self->bias);
}

Tensor LocalAggregation::forward(const Tensor& x, const Tensor& edge_index) {
  const char* where = "LocalAggregation";
  check_shape(where, "x", x, {-1, lin_self->weight.size(1)});
  check_shape(where, "edge_index", edge_index, {2, -1});
  ENGINE_CHECK(edge_index.dtype() == DType::I64 || edge_index.dtype() == DType::I32, where,
               "edge_index must be int64 or int32, got {}", dtype_name(edge_index.dtype()));
  ENGINE_CHECK(edge_index.device() == x.device(), where, "edge_index is on {} but x on {}",
               edge_index.device().str(), x.device().str());
  const int64_t N = x.size(0), E = edge_index.size(1);
  Tensor self_term = lin_self->forward(x);
  if (E == 0) return gelu(self_term);
  engine::profile::add_flops((E + N) * x.size(1));  // the message sum over the E edges and the division by the degree
  Tensor src = edge_index.select(0, 0).contiguous(), dst = edge_index.select(0, 1).contiguous();
  Tensor summed = index_add(zeros({N, x.size(1)}, x.options()), 0, dst, index_select(x, 0, src));  // [N, in]
  Tensor deg;
  {
    NoGradGuard ng;
    deg = index_add(zeros({N}, x.options()), 0, dst, ones({E}, x.options()));
    deg = clamp_min(deg, 1.0).unsqueeze(1);  // empty neighbourhoods: sum 0 / 1 = 0
  }
  return gelu(self_term + lin_msg->forward(summed / deg));
}

}  // namespace layers
