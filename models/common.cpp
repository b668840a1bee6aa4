// Feature encoder, residual MLP head and row padding shared by the catalog models.
#include "models/common.h"

#include "engine/engine.h"

namespace models {

using namespace engine;

FeatureEncoder::FeatureEncoder(int64_t in_dim, int64_t h_dim) {
  lin1_ = register_module("0", std::make_shared<nn::Linear>(in_dim, h_dim));
  lin2_ = register_module("2", std::make_shared<nn::Linear>(h_dim, h_dim));
}

Tensor FeatureEncoder::forward(const Tensor& x) { return lin2_->forward(relu(lin1_->forward(x))); }

ResidualMLPHead::ResidualMLPHead(int64_t channels, int num_layers, nn::ActivationKind act, double dropout) {
  std::vector<int64_t> widths{channels};
  for (int i = 0; i + 1 < num_layers; ++i) widths.push_back(256);
  widths.push_back(channels);
  nn::MLPOptions options;
  options.activation = act;
  options.norm = nn::NormKind::LayerNorm;
  mlp_ = register_module("mlp", std::make_shared<nn::MLP>(widths, options));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(dropout));
}

Tensor ResidualMLPHead::forward(const Tensor& e) { return e + dropout_->forward(mlp_->forward(e)); }

Tensor pad_rows(const Tensor& x, int64_t multiple, double value) {
  const int64_t n = x.size(0), padded = (n + multiple - 1) / multiple * multiple;
  if (padded == n) return x;
  std::vector<int64_t> pads(static_cast<size_t>(2 * x.dim()), 0);
  pads.back() = padded - n;  // after the first dim
  return pad(x, pads, value);
}

}  // namespace models
