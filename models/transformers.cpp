// The dense-attention family of the catalog on HEPT's Transformer skeleton (models/hept.h TransformerSkeleton;
// hept.md 3.9; lampa-models.md 1, 2.2, 4 item 2): feature encoder, n_layers attention layers, W(concat of the kept
// states, no bias) -> h/2, residual tanh MLP head (PyG MLP, 5 layers, LayerNorm, dropout 0.1 on the residual
// branch), with the reference's state-dict names. No padding: every model here runs on the N real hits.
//   flatformer (tracking_trans_flatformer.yaml): each layer is the 4-sub-layer FlatFormer window attention (3.6),
//     the concat holds e0 and the 4 sub-layer outputs of every layer (4L + 1 = 9 states, W 270 -> 15).
//     Intended model vs reference: the reference writes every sub-layer in place into ONE tensor, so all 9 concat
//     entries alias the final x (8.2 b); "concat": "aliased" reproduces that (W then sees the final x 9 times),
//     the default "intended" concatenates the 9 distinct states. Same parameters either way: 500,835.
//   mhaformer / casualformer (trans_mhaformer, trans_casualformer): HEPT's pre-norm Attn layer with dense softmax
//     attention over the whole event (causal with "causal": true): x += Drop(MHA(LN1 x)); x += Drop(FF(LN2 x));
//     states e0..eL. h 24, 4 heads, 2 layers: 238,548. The reference pads the event to a multiple of block_size
//     and (as far as the spec says) attends over the padded rows too; here there is no padding.
//   pct (HEPT repo baseline, hept.md 4.2): PCTBlock layers over the 60-NN (eta, phi) graph of the input
//     (edge_index; self loops removed then re-added), states e0..eL. h 24, 8 heads, 4 layers, W 120 -> 12:
//     329,412 trainable parameters, the paper's PCT-S (0.33 M, paper-results.md). Out 12 (= h/2).
// Unused-but-trainable w_rpe Linears are kept in every layer so the counts match (8.2 h).
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "layers/dense_attention.h"
#include "layers/pct.h"
#include "layers/window_attention.h"
#include "models/catalog.h"
#include "models/common.h"
#include "models/hept.h"

namespace models {

using namespace engine;

namespace {

// The hept skeleton (models/hept.h) with the layers' states to concatenate supplied by the subclass.
class ConcatTransformer : public TransformerSkeleton {
 public:
  // n_states_per_layer: states each layer adds to the concat (after e0).
  ConcatTransformer(const Config& c, const std::string& name, int64_t h_default, int64_t n_states_per_layer)
      : TransformerSkeleton(c, name, config_get<int64_t>(c, "in_dim", 15), config_get<int64_t>(c, "h_dim", h_default),
                            config_get<int64_t>(c, "n_layers", 2) * n_states_per_layer + 1,
                            config_get<double>(c, "dropout", 0.1)) {
    n_layers_ = config_get<int64_t>(c, "n_layers", 2);
    heads_ = config_get<int64_t>(c, "num_heads", 8);
    coords_dim_ = config_get<int64_t>(c, "coords_dim", 6);
    dropout_p_ = config_get<double>(c, "dropout", 0.1);
    if (n_layers_ < 1 || heads_ < 1 || coords_dim_ < 2)
      throw std::invalid_argument(name + ": need n_layers >= 1, num_heads >= 1, coords_dim >= 2");
  }

  Tensor forward(const ModelInput& in) override {
    const char* where = model_name_.c_str();
    ENGINE_CHECK(in.x.defined() && in.x.dim() == 2 && in.x.size(1) == in_dim_, where, "x must be [N, {}]", in_dim_);
    const int64_t N = in.x.size(0);
    ENGINE_CHECK(N > 0, where, "empty input");
    ENGINE_CHECK(in.coords.defined() && in.coords.dim() == 2 && in.coords.size(0) == N &&
                     in.coords.size(1) == coords_dim_,
                 where, "coords must be [{}, {}]", N, coords_dim_);
    const Tensor coords = in.coords.dtype() == in.x.dtype() ? in.coords : in.coords.to(in.x.dtype());
    const Tensor e0 = encode(in.x);
    std::vector<Tensor> all{e0};
    for (Tensor& s : layer_states(e0, coords, in)) all.push_back(s);
    return head(concat_entries(std::move(all)));
  }

 protected:
  virtual std::vector<Tensor> layer_states(const Tensor& e0, const Tensor& coords, const ModelInput& in) = 0;
  // What W reads: by default e0 and the layer states as they are.
  virtual std::vector<Tensor> concat_entries(std::vector<Tensor> all) { return all; }

  int64_t n_layers_ = 0, heads_ = 0, coords_dim_ = 6;
  double dropout_p_ = 0.1;
};

// ---------------------------------------------------------------- flatformer

class Flatformer : public ConcatTransformer {
 public:
  explicit Flatformer(const Config& c) : ConcatTransformer(c, "flatformer", 30, 4) {
    bins_ = config_get<int64_t>(c, "B", 1000);
    slices_ = config_get<int64_t>(c, "num_slices_per_axis", 30);
    group_ = config_get<int64_t>(c, "group_size", 200);
    const std::string concat_mode = config_get<std::string>(c, "concat", "intended");
    if (concat_mode != "intended" && concat_mode != "aliased")
      throw std::invalid_argument("flatformer: config key 'concat' must be \"intended\" or \"aliased\", got " +
                                  concat_mode);
    aliased_ = concat_mode == "aliased";
    const int64_t kw = config_get<int64_t>(c, "num_w_per_dist", 10);
    for (int64_t l = 0; l < n_layers_; ++l)
      attns_->push_back(std::make_shared<layers::FlatformerAttention>(h_, heads_, coords_dim_, kw));
  }

 protected:
  std::vector<Tensor> layer_states(const Tensor& e0, const Tensor& coords, const ModelInput&) override {
    layers::WindowCurves curves;
    {
      NoGradGuard ng;
      curves = layers::window_curves(coords.select(1, 0), coords.select(1, 1), bins_, slices_, group_);
    }
    std::vector<Tensor> states;
    Tensor x = e0;
    for (size_t l = 0; l < attns_->size(); ++l) {
      auto sub = attns_->get<layers::FlatformerAttention>(l)->forward(x, coords, curves);
      for (const Tensor& s : sub) states.push_back(s);
      x = sub[3];
    }
    return states;
  }

  // Aliased: every one of the 4L + 1 slots (e0 included) holds the final x, as the reference's in-place writes do.
  std::vector<Tensor> concat_entries(std::vector<Tensor> all) override {
    if (aliased_) all.assign(all.size(), all.back());
    return all;
  }

 private:
  int64_t bins_ = 1000, slices_ = 30, group_ = 200;
  bool aliased_ = false;
};

// ---------------------------------------------------------------- mhaformer

// HEPT's Attn layer with dense (or causal) softmax attention.
class DenseAttnBlock : public nn::Module {
 public:
  DenseAttnBlock(int64_t h, int64_t heads, int64_t coords_dim, int64_t kw, double p) {
    attn = std::make_shared<layers::MultiHeadAttention>(h, heads, h);
    register_module("attn", attn);
    norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(h));
    norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(h));
    ff = register_module("ff", std::make_shared<nn::Sequential>());
    ff->push_back(std::make_shared<nn::Linear>(h, h));
    ff->push_back(std::make_shared<nn::Activation>(nn::ActivationKind::ReLU));
    ff->push_back(std::make_shared<nn::Linear>(h, h));
    w_rpe = register_module("w_rpe", std::make_shared<nn::Linear>(kw * (coords_dim - 1), heads * h));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
  }
  Tensor forward(const Tensor& x, bool causal) {
    layers::DenseAttentionOptions o;
    o.causal = causal;
    const Tensor n1 = norm1->forward(x);
    Tensor y = x + dropout->forward(attn->forward(n1, n1, n1, o));
    return y + dropout->forward(ff->forward(norm2->forward(y)));
  }

  std::shared_ptr<layers::MultiHeadAttention> attn;
  std::shared_ptr<nn::LayerNorm> norm1, norm2;
  std::shared_ptr<nn::Sequential> ff;
  std::shared_ptr<nn::Linear> w_rpe;
  std::shared_ptr<nn::Dropout> dropout;
};

class Mhaformer : public ConcatTransformer {
 public:
  explicit Mhaformer(const Config& c) : ConcatTransformer(c, "mhaformer", 24, 1) {
    causal_ = config_get<bool>(c, "causal", false);
    const int64_t kw = config_get<int64_t>(c, "num_w_per_dist", 10);
    for (int64_t l = 0; l < n_layers_; ++l)
      attns_->push_back(std::make_shared<DenseAttnBlock>(h_, heads_, coords_dim_, kw, dropout_p_));
  }

 protected:
  std::vector<Tensor> layer_states(const Tensor& e0, const Tensor&, const ModelInput&) override {
    std::vector<Tensor> states;
    Tensor x = e0;
    for (size_t l = 0; l < attns_->size(); ++l) {
      x = attns_->get<DenseAttnBlock>(l)->forward(x, causal_);
      states.push_back(x);
    }
    return states;
  }

 private:
  bool causal_ = false;
};

// ---------------------------------------------------------------- pct

class Pct : public ConcatTransformer {
 public:
  explicit Pct(const Config& c) : ConcatTransformer(c, "pct", 24, 1) {
    const int64_t kw = config_get<int64_t>(c, "num_w_per_dist", 10);
    for (int64_t l = 0; l < n_layers_; ++l)
      attns_->push_back(std::make_shared<layers::PCTBlock>(h_, heads_, coords_dim_, dropout_p_, kw));
  }

 protected:
  std::vector<Tensor> layer_states(const Tensor& e0, const Tensor& coords, const ModelInput& in) override {
    ENGINE_CHECK(in.edge_index.defined(), "pct", "needs edge_index (the 60-NN (eta, phi) graph)");
    const layers::PCTGraph g = layers::pct_graph(in.edge_index, e0.size(0));
    std::vector<Tensor> states;
    Tensor x = e0;
    for (size_t l = 0; l < attns_->size(); ++l) {
      x = attns_->get<layers::PCTBlock>(l)->forward(x, coords, g);
      states.push_back(x);
    }
    return states;
  }
};

template <class M>
std::shared_ptr<TrackingModel> make_as(const Config& c, const char* name) {
  auto m = std::make_shared<M>(c);
  m->set_identity(name, c);
  return m;
}

Config flatformer_defaults() {
  return Config{{"in_dim", 15},        {"coords_dim", 6}, {"h_dim", 30},        {"num_heads", 8},
                {"n_layers", 2},       {"group_size", 200}, {"num_slices_per_axis", 30}, {"B", 1000},
                {"num_w_per_dist", 10}, {"dropout", 0.1},  {"concat", "intended"}};
}
Config mhaformer_defaults() {
  return Config{{"in_dim", 15}, {"coords_dim", 6},       {"h_dim", 24},    {"num_heads", 4},
                {"n_layers", 2}, {"num_w_per_dist", 10}, {"dropout", 0.1}, {"causal", false}};
}
Config pct_defaults() {
  return Config{{"in_dim", 15}, {"coords_dim", 6},       {"h_dim", 24},   {"num_heads", 8},
                {"n_layers", 4}, {"num_w_per_dist", 10}, {"dropout", 0.1}};
}

std::shared_ptr<TrackingModel> flatformer_make(const Config& c) { return make_as<Flatformer>(c, "flatformer"); }
std::shared_ptr<TrackingModel> mhaformer_make(const Config& c) { return make_as<Mhaformer>(c, "mhaformer"); }
std::shared_ptr<TrackingModel> pct_make(const Config& c) { return make_as<Pct>(c, "pct"); }

}  // namespace

const ModelEntry& flatformer_entry() {
  static const ModelEntry entry{"flatformer", &flatformer_defaults, &flatformer_make};
  return entry;
}

const ModelEntry& mhaformer_entry() {
  static const ModelEntry entry{"mhaformer", &mhaformer_defaults, &mhaformer_make};
  return entry;
}

const ModelEntry& pct_entry() {
  static const ModelEntry entry{"pct", &pct_defaults, &pct_make};
  return entry;
}

}  // namespace models
