// EdgeConv and GravNet (layers/graph_conv.h) and the tiled edge-aggregation autograd node they share.
#include "layers/graph_conv.h"

#include <algorithm>
#include <utility>

#include "engine/engine.h"
#include "engine/nn/init.h"
#include "engine/profile.h"
#include "layers/common.h"
#include "layers/knn.h"

namespace layers {

using engine::Tensor;
using engine::Tensors;
namespace nn = engine::nn;

namespace {

// Turns grad mode on for the backward's local recomputation (the engine runs backward functions with it off).
class GradModeOn {
 public:
  GradModeOn() : prev_(engine::grad_enabled()) { engine::set_grad_enabled(true); }
  ~GradModeOn() { engine::set_grad_enabled(prev_); }
  GradModeOn(const GradModeOn&) = delete;
  GradModeOn& operator=(const GradModeOn&) = delete;

 private:
  bool prev_;
};

class EdgeAggregateOp : public engine::CustomOp {
 public:
  EdgeAggregateOp(size_t n_self, size_t n_nbr, size_t n_params, EdgeTileFn fn, int64_t out_dim, int64_t tile_nodes)
      : n_self_(n_self), n_nbr_(n_nbr), n_params_(n_params), fn_(std::move(fn)), out_dim_(out_dim),
        tile_nodes_(tile_nodes) {}
  const char* name() const override { return "edge_aggregate"; }

  // inputs: self..., nbr..., params..., index.
  Tensors forward(const Tensors& in) override {
    in_ = in;
    const Tensor& index = in.back();
    const int64_t N = index.size(0);
    Tensors pieces;
    for (int64_t b = 0; b < N; b += tile_nodes_) {
      const int64_t T = std::min(tile_nodes_, N - b);
      Tensors self, nbr, params;
      gather_tile(b, T, self, nbr, params);
      pieces.push_back(fn_(self, nbr, params));
    }
    if (pieces.empty()) return {engine::empty({0, out_dim_}, ref_options())};
    return {pieces.size() == 1 ? pieces[0] : engine::concat(pieces, 0)};
  }

  Tensors backward(const Tensors& grads) override {
    const Tensor& index = in_.back();
    const int64_t N = index.size(0);
    const Tensor gout = grads[0];
    // Parameter leaves shared by every tile (their .grad accumulates over tiles).
    Tensors param_leaves;
    for (size_t p = 0; p < n_params_; ++p) {
      Tensor leaf = in_[n_self_ + n_nbr_ + p].detach();
      leaf.requires_grad_();
      param_leaves.push_back(leaf);
    }
    std::vector<Tensors> self_grads(n_self_);
    std::vector<Tensor> nbr_grads(n_nbr_);
    for (size_t b = 0; b < n_nbr_; ++b) nbr_grads[b] = engine::zeros(in_[n_self_ + b].shape(), in_[n_self_ + b].options());
    for (int64_t b = 0; b < N; b += tile_nodes_) {
      const int64_t T = std::min(tile_nodes_, N - b);
      Tensors self, nbr, unused;
      gather_tile(b, T, self, nbr, unused);
      for (Tensor& t : self) t.requires_grad_();
      for (Tensor& t : nbr) t.requires_grad_();
      {
        GradModeOn on;
        Tensor out = fn_(self, nbr, param_leaves);
        out.backward(gout.narrow(0, b, T).contiguous());
      }
      for (size_t a = 0; a < n_self_; ++a) self_grads[a].push_back(self[a].grad());
      const Tensor flat = index.narrow(0, b, T).reshape({-1});
      for (size_t c = 0; c < n_nbr_; ++c) {
        const Tensor g = nbr[c].grad();
        nbr_grads[c] = engine::index_add(nbr_grads[c], 0, flat, g.reshape({flat.size(0), -1}));
      }
    }
    Tensors result;
    for (size_t a = 0; a < n_self_; ++a) {
      if (self_grads[a].empty())
        result.push_back(engine::zeros(in_[a].shape(), in_[a].options()));
      else
        result.push_back(self_grads[a].size() == 1 ? self_grads[a][0] : engine::concat(self_grads[a], 0));
    }
    for (size_t c = 0; c < n_nbr_; ++c) result.push_back(nbr_grads[c]);
    for (size_t p = 0; p < n_params_; ++p) {
      Tensor g = param_leaves[p].grad();
      result.push_back(g.defined() ? g : engine::zeros(param_leaves[p].shape(), param_leaves[p].options()));
    }
    result.push_back(Tensor());  // index
    in_.clear();
    return result;
  }

 private:
  engine::TensorOptions ref_options() const {
    for (const Tensor& t : in_)
      if (t.defined() && engine::is_floating(t.dtype())) return t.options();
    return {};
  }

  // Detached inputs of the tile [b, b + T): self rows, neighbour rows [T, k, c] and the parameters.
  void gather_tile(int64_t b, int64_t T, Tensors& self, Tensors& nbr, Tensors& params) const {
    engine::NoGradGuard ng;
    const Tensor& index = in_.back();
    const int64_t k = index.size(1);
    const Tensor flat = index.narrow(0, b, T).reshape({-1});
    for (size_t a = 0; a < n_self_; ++a) self.push_back(in_[a].detach().narrow(0, b, T).contiguous());
    for (size_t c = 0; c < n_nbr_; ++c) {
      const Tensor& x = in_[n_self_ + c];
      nbr.push_back(engine::index_select(x.detach(), 0, flat).reshape({T, k, x.size(1)}));
    }
    for (size_t p = 0; p < n_params_; ++p) params.push_back(in_[n_self_ + n_nbr_ + p].detach());
  }

  size_t n_self_, n_nbr_, n_params_;
  EdgeTileFn fn_;
  int64_t out_dim_, tile_nodes_;
  Tensors in_;
};

}  // namespace

Tensor edge_aggregate(const Tensors& self_inputs, const Tensors& nbr_inputs, const Tensors& params,
                      const Tensor& index, const EdgeTileFn& fn, int64_t out_dim, int64_t tile_edges) {
  const char* where = "edge_aggregate";
  check_shape(where, "index", index, {-1, -1});
  ENGINE_CHECK(index.dtype() == engine::DType::I64, where, "index must be int64, got {}",
               engine::dtype_name(index.dtype()));
  ENGINE_CHECK(tile_edges > 0, where, "tile_edges must be positive, got {}", tile_edges);
  const int64_t N = index.size(0), k = index.size(1);
  for (const Tensor& t : self_inputs) check_shape(where, "self input", t, {N, -1});
  for (const Tensor& t : nbr_inputs) check_shape(where, "neighbour input", t, {-1, -1});
  const int64_t tile_nodes = std::max<int64_t>(1, tile_edges / std::max<int64_t>(k, 1));
  auto op = std::make_shared<EdgeAggregateOp>(self_inputs.size(), nbr_inputs.size(), params.size(), fn, out_dim,
                                              tile_nodes);
  Tensors inputs = self_inputs;
  inputs.insert(inputs.end(), nbr_inputs.begin(), nbr_inputs.end());
  inputs.insert(inputs.end(), params.begin(), params.end());
  inputs.push_back(index);
  return engine::apply_custom_op(op, inputs)[0];
}

// ------------------------------------------------------------------------------------------------ EdgeConv
EdgeConv::EdgeConv(int64_t h_, int64_t k_, int64_t knn_dim_, EdgeAggregation aggr_)
    : h(h_), k(k_), knn_dim(knn_dim_), aggr(aggr_) {
  ENGINE_CHECK(h > 0 && k > 0 && knn_dim > 0, "EdgeConv", "h, k and knn_dim must be positive");
  auto seq = std::make_shared<nn::Sequential>();
  lin1 = std::make_shared<nn::Linear>(2 * h, h);
  ln1 = std::make_shared<nn::LayerNorm>(h);
  lin2 = std::make_shared<nn::Linear>(h, h);
  ln2 = std::make_shared<nn::LayerNorm>(h);
  seq->push_back(lin1);
  seq->push_back(ln1);
  seq->push_back(std::make_shared<nn::Activation>(nn::ActivationKind::ReLU));
  seq->push_back(lin2);
  seq->push_back(ln2);
  seq->push_back(std::make_shared<nn::Activation>(nn::ActivationKind::ReLU));
  register_module("nn", seq);
  lin_s = register_module("lin_s", std::make_shared<nn::Linear>(h, knn_dim));
}

Tensor EdgeConv::neighbours(const Tensor& x) {
  engine::NoGradGuard ng;
  return knn(lin_s->forward(x.detach()), k, /*include_self=*/true);
}

Tensor EdgeConv::forward(const Tensor& x) {
  check_shape("EdgeConv", "x", x, {-1, h});
  return forward_with_index(x, neighbours(x));
}

Tensor EdgeConv::forward_with_index(const Tensor& x, const Tensor& index) {
  check_shape("EdgeConv", "x", x, {-1, h});
  const Tensor Wa = lin1->weight.narrow(1, 0, h), Wb = lin1->weight.narrow(1, h, h);
  const Tensor A = engine::linear(x, Wa - Wb, lin1->bias);  // the x_i part (+ bias)
  const Tensor B = engine::linear(x, Wb);                   // the x_j part
  const bool use_max = aggr == EdgeAggregation::Max;
  // per edge: A_i + B_j and the aggregation (2 h); the edge MLP's Linear is a counted GEMM, its norms are not
  engine::profile::add_flops(2 * index.numel() * h);
  auto fn = [use_max](const Tensors& self, const Tensors& nbr, const Tensors& p) {
    Tensor z = self[0].unsqueeze(1) + nbr[0];  // [T, k, h]
    z = engine::relu(engine::layer_norm(z, p[0], p[1]));
    z = engine::linear(z, p[2], p[3]);
    z = engine::relu(engine::layer_norm(z, p[4], p[5]));
    return use_max ? engine::amax(z, {1}) : engine::mean(z, {1});
  };
  return edge_aggregate({A}, {B}, {ln1->weight, ln1->bias, lin2->weight, lin2->bias, ln2->weight, ln2->bias}, index,
                        fn, h, tile_edges);
}

// ------------------------------------------------------------------------------------------------ GravNet
GravNetConv::GravNetConv(int64_t h_, int64_t k_, int64_t space_dim_, int64_t prop_dim_)
    : h(h_), k(k_), space_dim(space_dim_), prop_dim(prop_dim_) {
  ENGINE_CHECK(h > 0 && k > 0 && space_dim > 0 && prop_dim > 0, "GravNetConv", "all sizes must be positive");
  lin_s = register_module("lin_s", std::make_shared<nn::Linear>(h, space_dim));
  lin_h = register_module("lin_h", std::make_shared<nn::Linear>(h, prop_dim));
  lin_out1 = register_module("lin_out1", std::make_shared<nn::Linear>(h, h, /*bias=*/false));
  lin_out2 = register_module("lin_out2", std::make_shared<nn::Linear>(2 * prop_dim, h));
  Tensor w = engine::empty({1});
  nn::init::normal_(w, 0.0, 1.0);
  edge_weight_w = register_parameter("edge_weight_w", w);
}

Tensor GravNetConv::neighbours(const Tensor& x) {
  engine::NoGradGuard ng;
  return knn(lin_s->forward(x.detach()), k, /*include_self=*/true);
}

Tensor GravNetConv::forward(const Tensor& x) {
  check_shape("GravNetConv", "x", x, {-1, h});
  return forward_with_index(x, neighbours(x));
}

Tensor GravNetConv::forward_with_index(const Tensor& x, const Tensor& index) {
  check_shape("GravNetConv", "x", x, {-1, h});
  const Tensor s = lin_s->forward(x);
  const Tensor f = lin_h->forward(x);
  // per edge: |s_j - s_i|^2 (3 S), its scaling (1), f_j * ew (P) and the mean (P); the max is not counted
  engine::profile::add_flops(index.numel() * (3 * space_dim + 2 * prop_dim + 1));
  auto fn = [](const Tensors& self, const Tensors& nbr, const Tensors& p) {
    const Tensor diff = nbr[0] - self[0].unsqueeze(1);                    // s_j - s_i  [T, k, S]
    const Tensor d2 = engine::sum(engine::square(diff), {-1});            // [T, k]
    const Tensor ew = engine::exp(-(d2 * engine::exp(p[0])));             // [T, k]
    const Tensor msg = nbr[1] * ew.unsqueeze(-1);                         // f_j * ew  [T, k, P]
    return engine::concat({engine::mean(msg, {1}), engine::amax(msg, {1})}, -1);
  };
  const Tensor agg = edge_aggregate({s}, {s, f}, {edge_weight_w}, index, fn, 2 * prop_dim, tile_edges);
  return lin_out1->forward(x) + lin_out2->forward(agg);
}

}  // namespace layers
