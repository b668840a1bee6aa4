// Dynamic-graph convolutions of the GNN baselines (lampa-models.md 3.11, hept.md 4.3): DGCNN's EdgeConv and GravNet,
// both on a kNN graph (self included) rebuilt from the layer input at every call. Shapes: x [N, h] (one event-sector,
// no batch dim) -> [N, h]. float32 or float64, CPU or CUDA (the kNN runs on the tensor's device; see layers/knn.h).
//
// Memory: the per-edge work (gather, edge MLP / edge weights, aggregation) runs in tiles of whole nodes
// (`tile_edges` edges, default 65,536) inside ONE autograd node (edge_aggregate below). The forward keeps only the
// [N, c] aggregate; the backward recomputes each tile with local autograd and sends the tile's gradients back
// (self rows directly, neighbour rows with index_add). So training memory is O(N (h + k)) plus one tile, never
// O(N k h), and everything runs on engine ops (CPU and CUDA alike, no separate kernels).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "engine/autograd.h"
#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace layers {

enum class EdgeAggregation { Mean, Max };

// The per-tile edge function: self[a] = rows of self_inputs[a] for the tile's T nodes ([T, c_a]), nbr[b] = the k
// neighbour rows of nbr_inputs[b] for the same nodes ([T, k, c_b]), params as given -> [T, out_dim].
using EdgeTileFn = std::function<engine::Tensor(const engine::Tensors& self, const engine::Tensors& nbr,
                                                const engine::Tensors& params)>;

// Applies `fn` to all N nodes in tiles of ceil(tile_edges / k) nodes and concatenates the results ([N, out_dim]),
// as one differentiable node with tile-wise recomputation in backward (gradients for every floating input;
// `index` [N, k] int64 is a constant). N = 0 gives [0, out_dim].
engine::Tensor edge_aggregate(const engine::Tensors& self_inputs, const engine::Tensors& nbr_inputs,
                              const engine::Tensors& params, const engine::Tensor& index, const EdgeTileFn& fn,
                              int64_t out_dim, int64_t tile_edges = 65536);

// DGCNN EdgeConv (Lampa's CustomDynamicEdgeConv): s = lin_s(x) (h -> knn_dim); the k nearest nodes of every node in
// s (itself included; lin_s gets no gradient, as in the reference); messages nn([x_i, x_j - x_i]) with
// nn = Lin(2h, h) -> LN -> ReLU -> Lin(h, h) -> LN -> ReLU; aggregation by mean (the spec and the reference; the
// issue text says max, available as EdgeAggregation::Max). Parameter names follow PyTorch: nn.0, nn.1, nn.3, nn.4,
// lin_s. The first Linear is applied to nodes, not edges: W [x_i, x_j - x_i] + b = (Wa - Wb) x_i + Wb x_j + b.
class EdgeConv : public engine::nn::UnaryModule {
 public:
  EdgeConv(int64_t h, int64_t k = 32, int64_t knn_dim = 32, EdgeAggregation aggr = EdgeAggregation::Mean);
  engine::Tensor forward(const engine::Tensor& x) override;  // [N, h] -> [N, h]
  // The same with a given neighbour index [N, k'] (int64, rows = node i's neighbours j); used by the tests.
  engine::Tensor forward_with_index(const engine::Tensor& x, const engine::Tensor& index);
  engine::Tensor neighbours(const engine::Tensor& x);  // the kNN index forward() uses
  int64_t h, k, knn_dim;
  EdgeAggregation aggr;
  int64_t tile_edges = 65536;
  std::shared_ptr<engine::nn::Linear> lin_s, lin1, lin2;
  std::shared_ptr<engine::nn::LayerNorm> ln1, ln2;
};

// GravNet (Lampa's CustomGravNetConv): s = lin_s(x) (h -> space_dim), f = lin_h(x) (h -> prop_dim); the k nearest
// nodes in s (itself included); edge weights ew = exp(-|s_j - s_i|^2 * exp(edge_weight_w)); aggregate f_j * ew by
// mean and by max (concatenated, 2 prop_dim); out = lin_out1(x) (no bias) + lin_out2(agg). Gradients reach x through
// lin_out1, lin_h AND lin_s (the edge weights), and edge_weight_w (a learned scalar, N(0, 1) at init). The max
// gradient goes to the first maximal neighbour (PyTorch splits it between ties).
class GravNetConv : public engine::nn::UnaryModule {
 public:
  GravNetConv(int64_t h, int64_t k = 32, int64_t space_dim = 32, int64_t prop_dim = 32);
  engine::Tensor forward(const engine::Tensor& x) override;  // [N, h] -> [N, h]
  engine::Tensor forward_with_index(const engine::Tensor& x, const engine::Tensor& index);
  engine::Tensor neighbours(const engine::Tensor& x);
  int64_t h, k, space_dim, prop_dim;
  int64_t tile_edges = 65536;
  std::shared_ptr<engine::nn::Linear> lin_s, lin_h, lin_out1, lin_out2;
  engine::Tensor edge_weight_w;  // [1]
};

}  // namespace layers
