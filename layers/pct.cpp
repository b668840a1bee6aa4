// PCT: graph preparation (host-side counting sort by target) and the PointTransformerConv / PCTBlock modules.
#include "layers/pct.h"

#include <algorithm>
#include <vector>

#include "engine/engine.h"
#include "layers/common.h"

namespace layers {

using namespace engine;

PCTGraph pct_graph(const Tensor& edge_index, int64_t N) {
  check_shape("pct_graph", "edge_index", edge_index, {2, -1});
  const std::vector<int64_t> e = edge_index.to(DType::I64).to(Device::cpu()).contiguous().to_vector<int64_t>();
  const int64_t E = edge_index.size(1);
  std::vector<std::vector<int64_t>> in(static_cast<size_t>(N));  // sources of each target
  for (int64_t t = 0; t < E; ++t) {
    const int64_t j = e[static_cast<size_t>(t)], i = e[static_cast<size_t>(E + t)];
    ENGINE_CHECK(i >= 0 && i < N && j >= 0 && j < N, "pct_graph", "edge {} ({} -> {}) is outside [0, {})", t, j, i,
                 N);
    if (i != j) in[static_cast<size_t>(i)].push_back(j);
  }
  std::vector<int64_t> src, dst, off{0};
  for (int64_t i = 0; i < N; ++i) {
    auto& s = in[static_cast<size_t>(i)];
    s.push_back(i);
    std::sort(s.begin(), s.end());
    for (int64_t j : s) src.push_back(j), dst.push_back(i);
    off.push_back(static_cast<int64_t>(src.size()));
  }
  PCTGraph g;
  const int64_t M = static_cast<int64_t>(src.size());
  g.src = from_vector(src, {M}).to(edge_index.device());
  g.dst = from_vector(dst, {M}).to(edge_index.device());
  g.offsets = from_vector(off, {N + 1}).to(edge_index.device());
  g.num_nodes = N;
  return g;
}

PointTransformerConv::PointTransformerConv(int64_t in, int64_t out, int64_t pos_dim) {
  lin = register_module("lin", std::make_shared<nn::Linear>(in, out, false));
  lin_src = register_module("lin_src", std::make_shared<nn::Linear>(in, out, false));
  lin_dst = register_module("lin_dst", std::make_shared<nn::Linear>(in, out, false));
  pos_nn = register_module("pos_nn", std::make_shared<nn::Linear>(pos_dim, out));
  attn_nn = register_module("attn_nn", std::make_shared<nn::Linear>(out, out));
}

Tensor PointTransformerConv::forward(const Tensor& x, const Tensor& pos, const PCTGraph& g) const {
  check_shape("PointTransformerConv", "x", x, {g.num_nodes, lin->weight.size(1)});
  check_shape("PointTransformerConv", "pos", pos, {g.num_nodes, pos_nn->weight.size(1)});
  const Tensor delta = pos_nn->forward(index_select(pos, 0, g.dst) - index_select(pos, 0, g.src));  // [E, out]
  const Tensor a = attn_nn->forward(index_select(lin_dst->forward(x), 0, g.dst) -
                                    index_select(lin_src->forward(x), 0, g.src) + delta);       // [E, out]
  Tensor mx;                                                                                     // [N, out]
  {
    NoGradGuard ng;
    mx = segment_max(a.detach(), g.offsets);
  }
  const Tensor ex = exp(a - index_select(mx, 0, g.dst));                          // [E, out]
  const Tensor den = index_select(segment_sum(ex, g.offsets), 0, g.dst) + 1e-16;  // [E, out]
  const Tensor msg = index_select(lin->forward(x), 0, g.src) + delta;             // [E, out]
  return segment_sum(ex / den * msg, g.offsets);
}

PCTBlock::PCTBlock(int64_t h, int64_t heads, int64_t coords_dim, double p, int64_t num_w_per_dist) {
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(h));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(h));
  w_q = register_module("w_q", std::make_shared<nn::Linear>(h, heads * h, false));
  conv = register_module("attn", std::make_shared<PointTransformerConv>(heads * h, h, coords_dim));
  ff = register_module("ff", std::make_shared<nn::Sequential>());
  ff->push_back(std::make_shared<nn::Linear>(h, h));
  ff->push_back(std::make_shared<nn::Activation>(nn::ActivationKind::ReLU));
  ff->push_back(std::make_shared<nn::Linear>(h, h));
  w_rpe = register_module("w_rpe", std::make_shared<nn::Linear>(num_w_per_dist * (coords_dim - 1), heads * h));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
}

Tensor PCTBlock::forward(const Tensor& x, const Tensor& coords, const PCTGraph& g) {
  Tensor y = x + dropout->forward(conv->forward(w_q->forward(norm1->forward(x)), coords, g));
  return y + dropout->forward(ff->forward(norm2->forward(y)));
}

}  // namespace layers
