// Standard layers as Modules: Linear, LayerNorm, RMSNorm, Embedding, Dropout, Activation and MLP. Parameter names
// and default initialisations follow PyTorch (Linear: weight and bias U(-1/sqrt(in), 1/sqrt(in)); Embedding: N(0, 1);
// norms: weight 1, bias 0), so state dicts line up with the reference implementations.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace engine::nn {

// y = x @ W^T + b. weight: [out, in], bias: [out].
class Linear : public UnaryModule {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;  // [..., in] -> [..., out]
  Tensor weight, bias;                       // bias undefined without bias
};

// Normalises over the last dim; affine weight [dim] (ones) and bias [dim] (zeros) unless elementwise_affine=false.
class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool elementwise_affine = true, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  int64_t dim;
  double eps;
};

// x * rsqrt(mean(x^2) + eps) * weight over the last dim; weight [dim] (ones).
class RMSNorm : public UnaryModule {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-5, TensorOptions opt = {});
  Tensor forward(const Tensor& x) override;
  Tensor weight;
  double eps;
};

// Lookup table weight [num, dim] ~ N(0, 1); forward(ids of any shape, int) -> [..., dim].
class Embedding : public UnaryModule {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, TensorOptions opt = {});
  Tensor forward(const Tensor& ids) override;
  Tensor weight;
};

// Inverted dropout with probability p while training; identity in eval mode.
class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p);
  Tensor forward(const Tensor& x) override;
  double p;
};

enum class ActivationKind { Identity, ReLU, GELU, GELUTanh, SiLU, Tanh, Sigmoid, LeakyReLU, ELU };
ActivationKind parse_activation(const std::string& name);  // "relu", "gelu", "gelu_tanh", "silu", ... (throws)
Tensor activate(ActivationKind kind, const Tensor& x);

class Activation : public UnaryModule {
 public:
  explicit Activation(ActivationKind kind) : kind(kind) {}
  Tensor forward(const Tensor& x) override { return activate(kind, x); }
  ActivationKind kind;
};

enum class NormKind { None, LayerNorm, RMSNorm };

struct MLPOptions {
  ActivationKind activation = ActivationKind::ReLU;
  double dropout = 0.0;               // after each hidden activation
  NormKind norm = NormKind::None;     // after each hidden Linear, before the activation
  bool activate_last = false;         // also apply norm/activation/dropout after the last Linear
  bool bias = true;
  TensorOptions tensor_options = {};
};

// widths = {in, hidden..., out}: Linear -> [norm] -> activation -> [dropout] per hidden layer, then a last Linear.
// Parameters are named "net.<index>.<name>" with PyTorch nn.Sequential indices (activations take an index).
class MLP : public UnaryModule {
 public:
  explicit MLP(const std::vector<int64_t>& widths, MLPOptions options = {});
  Tensor forward(const Tensor& x) override { return net->forward(x); }
  std::shared_ptr<Sequential> net;
};

}  // namespace engine::nn
