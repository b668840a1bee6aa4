// Standard layers: parameter registration with PyTorch's default initialisations, forwards through public ops.
#include "engine/nn/layers.h"

#include <cmath>

#include "engine/nn/init.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/linalg.h"
#include "engine/ops/norm.h"
#include "engine/rng.h"

namespace engine::nn {

namespace {

void check_positive(const char* layer, const char* what, int64_t v) {
  ENGINE_CHECK(v > 0, layer, "{} must be positive, got {}", what, v);
}

void check_last_dim(const char* layer, const Tensor& x, int64_t dim) {
  check_defined(layer, x, "x");
  ENGINE_CHECK(x.dim() >= 1 && x.size(-1) == dim, layer, "x is {} but the layer expects last dim {}",
               shape_str(x.shape()), dim);
}

}  // namespace

// ---------------------------------------------------------------- Linear
Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, TensorOptions opt) {
  check_positive("Linear", "in_features", in_features);
  check_positive("Linear", "out_features", out_features);
  weight = empty({out_features, in_features}, opt);  // [out, in]
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  weight = register_parameter("weight", weight);
  if (with_bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    bias = empty({out_features}, opt);  // [out]
    init::uniform_(bias, -bound, bound);
    bias = register_parameter("bias", bias);
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

// ---------------------------------------------------------------- norms
LayerNorm::LayerNorm(int64_t dim_, double eps_, bool elementwise_affine, TensorOptions opt) : dim(dim_), eps(eps_) {
  check_positive("LayerNorm", "dim", dim);
  if (elementwise_affine) {
    weight = register_parameter("weight", ones({dim}, opt));   // [dim]
    bias = register_parameter("bias", zeros({dim}, opt));      // [dim]
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  check_last_dim("LayerNorm", x, dim);
  return weight.defined() ? layer_norm(x, weight, bias, eps) : layer_norm(x, dim, eps);
}

RMSNorm::RMSNorm(int64_t dim, double eps_, TensorOptions opt) : eps(eps_) {
  check_positive("RMSNorm", "dim", dim);
  weight = register_parameter("weight", ones({dim}, opt));  // [dim]
}

Tensor RMSNorm::forward(const Tensor& x) {
  check_last_dim("RMSNorm", x, weight.size(0));
  return rms_norm(x, weight, eps);
}

// ---------------------------------------------------------------- Embedding, Dropout
Embedding::Embedding(int64_t num_embeddings, int64_t dim, TensorOptions opt) {
  check_positive("Embedding", "num_embeddings", num_embeddings);
  check_positive("Embedding", "dim", dim);
  weight = register_parameter("weight", randn({num_embeddings, dim}, opt));  // [num, dim]
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(weight, ids); }

Dropout::Dropout(double p_) : p(p_) {
  ENGINE_CHECK(p >= 0 && p < 1, "Dropout", "p must be in [0, 1), got {}", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training()); }

// ---------------------------------------------------------------- activations
ActivationKind parse_activation(const std::string& name) {
  static const std::pair<const char*, ActivationKind> kNames[] = {
      {"identity", ActivationKind::Identity}, {"relu", ActivationKind::ReLU},       {"gelu", ActivationKind::GELU},
      {"gelu_tanh", ActivationKind::GELUTanh}, {"silu", ActivationKind::SiLU},      {"tanh", ActivationKind::Tanh},
      {"sigmoid", ActivationKind::Sigmoid},    {"leaky_relu", ActivationKind::LeakyReLU}, {"elu", ActivationKind::ELU}};
  for (const auto& [n, k] : kNames)
    if (name == n) return k;
  ENGINE_FAIL("parse_activation", "unknown activation '{}'", name);
}

Tensor activate(ActivationKind kind, const Tensor& x) {
  switch (kind) {
    case ActivationKind::Identity: return x;
    case ActivationKind::ReLU: return relu(x);
    case ActivationKind::GELU: return gelu(x);
    case ActivationKind::GELUTanh: return gelu(x, true);
    case ActivationKind::SiLU: return silu(x);
    case ActivationKind::Tanh: return tanh(x);
    case ActivationKind::Sigmoid: return sigmoid(x);
    case ActivationKind::LeakyReLU: return leaky_relu(x);
    case ActivationKind::ELU: return elu(x);
  }
  return x;
}

// ---------------------------------------------------------------- MLP
MLP::MLP(const std::vector<int64_t>& widths, MLPOptions o) {
  ENGINE_CHECK(widths.size() >= 2, "MLP", "needs at least {{in, out}} widths, got {} entries", widths.size());
  net = register_module("net", std::make_shared<Sequential>());
  const TensorOptions& opt = o.tensor_options;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    const int64_t out = widths[i + 1];
    net->push_back(std::make_shared<Linear>(widths[i], out, o.bias, opt));
    if (i + 2 == widths.size() && !o.activate_last) break;
    if (o.norm == NormKind::LayerNorm) net->push_back(std::make_shared<LayerNorm>(out, 1e-5, true, opt));
    if (o.norm == NormKind::RMSNorm) net->push_back(std::make_shared<RMSNorm>(out, 1e-5, opt));
    net->push_back(std::make_shared<Activation>(o.activation));
    if (o.dropout > 0) net->push_back(std::make_shared<Dropout>(o.dropout));
  }
}

}  // namespace engine::nn
