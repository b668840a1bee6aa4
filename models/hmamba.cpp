// The Mamba-b models (lampa-models.md section 4 items 8 and 9), one stack of pre-norm Mamba v1 blocks with two ways
// of choosing what the scan sees:
//   hmambav2 ("LSH embedding"): pad to block_size, encode, dropout, one HEPT LSH attention layer used once as an
//            embedding (x = HEPT(LN1 x), no residual), the blocks, LN (norm_f), W0 (h -> h/2, no bias), LN, residual
//            ReLU MLP head. "scan_order": "dataset" (the reference) scans the rows as stored; "lsh_regions" (the
//            paper's "OR&AND LSH bucketing once before the Mamba blocks") scans them sorted by the LSH layer's
//            (phi region, eta region) of hash 0, head 0 and by coords[:, scan_within_column] (default 2, r) inside a
//            region, and undoes the order after norm_f.
//   hmambav1 ("E2LSH"): pad, encode, dropout, reorder the rows by LSHOrdering (layers/lsh_ordering.h), the blocks,
//            norm_f, undo the order, W0, LN, head. The reference's final nan_to_num is not applied: a NaN here is a
//            bug to surface, not to hide.
#include <cmath>

#include "engine/engine.h"
#include "layers/hept_attention.h"
#include "layers/lsh_ordering.h"
#include "layers/mamba.h"
#include "models/catalog.h"
#include "models/common.h"

namespace models {

namespace {

using namespace engine;

enum class Ordering { LSHEmbedding, E2LSHSort };

class HMamba : public TrackingModel {
 public:
  HMamba(Ordering kind, const Config& c)
      : kind_(kind), h_(config_get<int64_t>(c, "h_dim", 96)), block_size_(config_get<int64_t>(c, "block_size", 100)) {
    const int64_t n_layers = config_get<int64_t>(c, "n_layers", 6);
    const double drop_out = config_get<double>(c, "drop_out", 0.1);
    vertex_z_input_ = config_get<bool>(c, kVertexZInput, false);
    seed_input_ = config_get<bool>(c, kSeedInput, false);
    seed_coords_ = config_get<bool>(c, kSeedCoords, false);
    const int64_t in_dim =
        config_get<int64_t>(c, "x_dim", 15) + (vertex_z_input_ ? 1 : 0) + (seed_input_ ? kSeedInputs : 0);
    encoder_ = register_module("feat_encoder", std::make_shared<FeatureEncoder>(c, in_dim, h_));
    dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(drop_out));
    const int64_t coords_dim = config_get<int64_t>(c, "coords_dim", 6);
    if (kind_ == Ordering::LSHEmbedding) {
      layers::HEPTOptions attn;
      attn.dim = h_;
      attn.num_heads = config_get<int64_t>(c, "num_heads", 8);
      attn.block_size = block_size_;
      attn.n_hashes = config_get<int64_t>(c, "n_hashes", 3);
      attn.num_regions = config_get<double>(c, "num_regions", 300);
      attn.num_w_per_dist = config_get<int64_t>(c, "num_w_per_dist", 10);
      attn.coords_dim = coords_dim;
      lsh_ = register_module("lsh", std::make_shared<layers::LSHAtt>(h_, attn, /*with_feed_forward=*/false));
      const std::string scan_order = config_get<std::string>(c, "scan_order", "dataset");
      if (scan_order != "dataset" && scan_order != "lsh_regions")
        throw std::invalid_argument("hmambav2: \"scan_order\" must be \"dataset\" or \"lsh_regions\", not \"" +
                                    scan_order + "\"");
      scan_by_regions_ = scan_order == "lsh_regions";
      scan_within_column_ = config_get<int64_t>(c, "scan_within_column", 2);
      if (scan_within_column_ < 0 || scan_within_column_ >= coords_dim)
        throw std::invalid_argument("hmambav2: \"scan_within_column\" must index the coords (0.." +
                                    std::to_string(coords_dim - 1) + ")");
    } else {
      ordering_ = register_module("lsh_ordering", std::make_shared<layers::LSHOrdering>(
                                                      coords_dim, config_get<int64_t>(c, "num_heads", 8),
                                                      config_get<double>(c, "num_regions", 300)));
    }
    layers::MambaOptions mamba;
    mamba.d_state = config_get<int64_t>(c, "d_state", 16);
    mamba.d_conv = config_get<int64_t>(c, "d_conv", 4);
    mamba.expand = config_get<int64_t>(c, "expand", 2);
    mamba.dt_rank = config_get<int64_t>(c, "dt_rank", -1);
    mamba.n_layer = n_layers;
    blocks_ = register_module("layers", std::make_shared<nn::ModuleList>());
    for (int64_t i = 0; i < n_layers; ++i) blocks_->push_back(std::make_shared<layers::MambaBlock>(h_, mamba));
    norm_f_ = register_module("norm_f", std::make_shared<nn::LayerNorm>(h_));
    w0_ = register_module("W0", std::make_shared<nn::Linear>(h_, h_ / 2, /*bias=*/false));
    norm_out_ = register_module("norm_out", std::make_shared<nn::LayerNorm>(h_ / 2));
    head_ = register_module("mlp_out", std::make_shared<ResidualMLPHead>(h_ / 2, config_get<int>(c, "mlp_layers", 5),
                                                                          nn::ActivationKind::ReLU, drop_out));
  }

  Tensor forward(const ModelInput& in) override {
    const int64_t n = in.x.size(0);
    Tensor x = dropout_->forward(encoder_->forward(pad_rows(encoder_input(in, vertex_z_input_, seed_input_), block_size_)));  // [Np, h]
    const Tensor coords = pad_rows(seed_coords_ ? seed_frame_coords(in.coords, in.seeds) : in.coords, block_size_);  // [Np, C]
    Tensor order;                                                                   // [Np] scan position -> row
    if (kind_ == Ordering::LSHEmbedding) {
      Tensor codes;  // [T, H, Np] LSH region codes, shared by the attention and the scan order
      {
        NoGradGuard ng;
        codes = layers::region_codes(coords, n, lsh_->attn->regions(), layers::RegionMode::Src);
      }
      x = lsh_->forward_codes(x, coords, codes, n);
      if (scan_by_regions_) {
        order = layers::region_scan_order(codes, coords, n, scan_within_column_);
        x = index_select(x, 0, order);
      }
    } else {
      order = ordering_->order(coords);
      x = index_select(x, 0, order);
    }
    for (size_t i = 0; i < blocks_->size(); ++i) x = blocks_->get<layers::MambaBlock>(i)->forward(x);
    x = norm_f_->forward(x);
    if (order.defined()) x = index_select(x, 0, argsort(order));  // back to dataset order
    return head_->forward(norm_out_->forward(w0_->forward(x))).slice(0, 0, n);
  }

  int64_t out_dim() const override { return h_ / 2; }

 private:
  Ordering kind_;
  int64_t h_, block_size_;
  bool vertex_z_input_ = false;     // kVertexZInput: ModelInput::vertex_z as one more input feature
  bool seed_input_ = false;         // kSeedInput: ModelInput::seeds as kSeedInputs more input features
  bool seed_coords_ = false;        // kSeedCoords: hash, attend and scan in the seeds' frame (seed_frame_coords)
  bool scan_by_regions_ = false;    // hmambav2 "scan_order": "lsh_regions"
  int64_t scan_within_column_ = 2;  // coords column ordering the rows inside a region
  std::shared_ptr<FeatureEncoder> encoder_;
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<layers::LSHAtt> lsh_;
  std::shared_ptr<layers::LSHOrdering> ordering_;
  std::shared_ptr<nn::ModuleList> blocks_;
  std::shared_ptr<nn::LayerNorm> norm_f_, norm_out_;
  std::shared_ptr<nn::Linear> w0_;
  std::shared_ptr<ResidualMLPHead> head_;
};

Config hmamba_defaults() {
  return Config::parse(R"({"h_dim": 96, "n_layers": 6, "d_state": 16, "d_conv": 4, "expand": 2, "dt_rank": -1,
    "num_heads": 8, "n_hashes": 3, "num_regions": 300, "block_size": 100, "num_w_per_dist": 10,
    "drop_out": 0.1, "mlp_layers": 5, "x_dim": 15, "coords_dim": 6, "vertex_z_input": false,
    "vertex_z_estimate": "cluster_eta", "seed_input": false, "seed_coords": false})");
}

Config hmambav2_defaults() {
  Config c = hmamba_defaults();
  c["scan_order"] = "dataset";
  c["scan_within_column"] = 2;
  return c;
}

}  // namespace

const ModelEntry& hmambav2_entry() {
  static const ModelEntry entry{"hmambav2", hmambav2_defaults, [](const Config& c) -> std::shared_ptr<TrackingModel> {
                                  return std::make_shared<HMamba>(Ordering::LSHEmbedding, c);
                                }};
  return entry;
}

const ModelEntry& hmambav1_entry() {
  static const ModelEntry entry{"hmambav1", hmamba_defaults, [](const Config& c) -> std::shared_ptr<TrackingModel> {
                                  return std::make_shared<HMamba>(Ordering::E2LSHSort, c);
                                }};
  return entry;
}

}  // namespace models
