// Hyper-parameters of one fused optimizer update, shared by the CPU and CUDA kernels (plain structs, no CUDA types).
#pragma once

namespace engine {

// PyTorch SGD: d = g + wd * p; with momentum: buf = first ? d : momentum * buf + (1 - dampening) * d,
// d = nesterov ? d + momentum * buf : buf; then p -= lr * d.
struct SgdArgs {
  double lr = 0.0;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool first_step = false;  // the momentum buffer is initialised to d (no dampening) on a parameter's first step
};

// PyTorch Adam/AdamW at step t: decoupled (AdamW): p *= 1 - lr * wd, else g += wd * p;
// m = lerp(m, g, 1 - beta1); v = beta2 * v + (1 - beta2) * g^2;
// p -= (lr / bias_correction1) * m / (sqrt(v) / bias_correction2_sqrt + eps),
// with bias_correction1 = 1 - beta1^t and bias_correction2_sqrt = sqrt(1 - beta2^t).
struct AdamArgs {
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
  double bias_correction1 = 1.0;
  double bias_correction2_sqrt = 1.0;
};

}  // namespace engine
