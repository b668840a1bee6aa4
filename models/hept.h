// HEPT (hept.md 3.7-3.10, lampa-models.md 1 and 4 item 1): the Transformer backbone with HEPT attention, and the
// loader of HEPT's published checkpoint (Graph-COM/HEPT example/ckpt/tracking-60k-model.pt). Also the Transformer
// skeleton hept shares with flatformer, mhaformer and pct (models/transformers.cpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "models/common.h"
#include "models/model.h"

namespace models {

// PyG MLP(c -> 256 x (L-1) -> c, num_layers L, norm layer_norm (node), act tanh, plain last): lins.i, norms.i
// (the reference's state-dict names).
class PygTanhMLP : public engine::nn::UnaryModule {
 public:
  PygTanhMLP(int64_t c, int num_layers);
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<engine::nn::Linear>> lins_;
  std::vector<std::shared_ptr<engine::nn::LayerNorm>> norms_;
};

// HEPT's Transformer wrapper (hept.md 3.9), shared by the attention-family models: feat_encoder (in -> h -> h),
// attns (a ModuleList the subclass fills with its layers), dropout, W (n_states * h -> h/2, no bias), mlp_out (PyG
// tanh MLP, 5 layers). head(states) = z + Dropout(mlp_out(z)) with z = W(concat(states)). Registration order and
// names are the reference's, so state dicts line up with its checkpoints.
class TransformerSkeleton : public TrackingModel {
 public:
  int64_t out_dim() const override { return h_ / 2; }

 protected:
  // c: the model config (read by the feature encoder); name: for error messages; n_states: how many [*, h] states head() concatenates.
  TransformerSkeleton(const Config& c, const std::string& name, int64_t in_dim, int64_t h, int64_t n_states, double dropout);
  Tensor encode(const Tensor& x) { return encoder_->forward(x); }
  Tensor head(const std::vector<Tensor>& states);

  std::string model_name_;
  int64_t in_dim_ = 15, h_ = 0;
  std::shared_ptr<FeatureEncoder> encoder_;
  std::shared_ptr<engine::nn::ModuleList> attns_;
  std::shared_ptr<engine::nn::Dropout> dropout_;
  std::shared_ptr<engine::nn::Linear> W_;
  std::shared_ptr<PygTanhMLP> mlp_out_;
};

// Overrides of hept_entry().defaults() that build the checkpoint's model (example semantics: duplicate-point
// padding, bit-packed region codes, no E2LSH beta): D = 24, R = 150; 326,436 trainable, 329,364 state elements.
Config hept_checkpoint_overrides();

// Copies the torch.save zip checkpoint at `path` into `model` name by name (every state-dict entry of the model must
// be in the file with the same shape, and the file must hold nothing else); values are converted to the model's
// dtype. Throws one error listing every missing, unexpected or mis-shaped tensor. Returns the number of values copied.
int64_t load_hept_torch_checkpoint(engine::nn::Module& model, const std::string& path);

// HEPT's published tracking checkpoint (a torch.save zip at `path`) as a ready model in eval mode.
std::shared_ptr<TrackingModel> load_published_hept(const std::string& path);

}  // namespace models
