// In-place parameter initialisers with PyTorch's formulas (torch.nn.init), drawing from the engine RNG (Philox) so
// a fixed seed gives the same weights on every device. Fans follow PyTorch: for a [out, in, k...] tensor,
// fan_in = in * prod(k), fan_out = out * prod(k).
#pragma once
#include <string>
#include <utility>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace engine::nn::init {

enum class FanMode { FanIn, FanOut };

// (fan_in, fan_out) of a tensor of rank >= 2; throws for rank < 2.
std::pair<int64_t, int64_t> fans(const Tensor& t);
// torch.nn.init.calculate_gain for "linear", "relu", "leaky_relu" (param = negative slope), "tanh", "sigmoid".
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

Tensor& uniform_(Tensor& t, double lo, double hi, Generator* gen = nullptr);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
// U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).
// kaiming_uniform_(w, sqrt(5)) is nn.Linear's default: b = 1 / sqrt(fan_in).
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                         const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);

}  // namespace engine::nn::init
