// PCT: the Point Transformer conv baseline of HEPT (hept.md 4.2; reference src/models/attention/pct.py on top of
// PyG's PointTransformerConv) over the event's (eta, phi) 60-NN graph: vector attention (a softmax over the
// neighbours of each target, separately per channel), built from engine gather / segment ops (edges sorted by
// target, CSR offsets; deterministic sums).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace layers {

// The message-passing graph of one event: self loops removed, then one per node added (PyG add_self_loops), edges
// sorted by (target, source). src, dst int64 [E']; offsets int64 [N + 1] (CSR over dst). On the device of the input.
struct PCTGraph {
  engine::Tensor src, dst, offsets;
  int64_t num_nodes = 0;
};
// edge_index [2, E] int64/int32 (row 0 source j, row 1 target i; read on the CPU) with entries in [0, N).
PCTGraph pct_graph(const engine::Tensor& edge_index, int64_t num_nodes);

// PyG PointTransformerConv(in, out, pos_nn = Linear(C, out), attn_nn = Linear(out, out)):
//   delta_ij = pos_nn(pos_i - pos_j),  a_ij = attn_nn(lin_dst(x)_i - lin_src(x)_j + delta_ij),
//   alpha_ij = softmax_j(a_ij) per channel (denominator + 1e-16),  out_i = sum_j alpha_ij (lin(x)_j + delta_ij).
// lin, lin_src, lin_dst: Linear(in, out, no bias). Parameters 3 in out + (C + 1) out + out^2 + out.
class PointTransformerConv : public engine::nn::Module {
 public:
  PointTransformerConv(int64_t in_channels, int64_t out_channels, int64_t pos_dim);
  // x [N, in], pos [N, C] -> [N, out].
  engine::Tensor forward(const engine::Tensor& x, const engine::Tensor& pos, const PCTGraph& g) const;

  std::shared_ptr<engine::nn::Linear> lin, lin_src, lin_dst, pos_nn, attn_nn;
};

// One PCT Transformer layer (pre-norm): x = x + Drop(conv(W_q LN1(x), coords)); x = x + Drop(FF(LN2 x)) with
// W_q: Linear(h, H h, no bias), conv: PointTransformerConv(H h -> h), FF = Lin(h, h) -> ReLU -> Lin(h, h). Holds the
// reference's unused w_rpe (Linear(Kw (C - 1), H h)) for the parameter count. Parameters (h 24, H 8, C 6): 30,288.
class PCTBlock : public engine::nn::Module {
 public:
  PCTBlock(int64_t h, int64_t heads, int64_t coords_dim = 6, double dropout = 0.1, int64_t num_w_per_dist = 10);
  // x [N, h], coords [N, C] -> [N, h].
  engine::Tensor forward(const engine::Tensor& x, const engine::Tensor& coords, const PCTGraph& g);

  std::shared_ptr<engine::nn::LayerNorm> norm1, norm2;
  std::shared_ptr<engine::nn::Linear> w_q, w_rpe;
  std::shared_ptr<engine::nn::Sequential> ff;
  std::shared_ptr<PointTransformerConv> conv;
  std::shared_ptr<engine::nn::Dropout> dropout;
};

}  // namespace layers
