// CUDA random kernels (kernels/random.cu); same signatures and per-element formulas as engine/backend/cpu/random.h.
#pragma once
#include <cstdint>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace engine::cuda {

// out (contiguous): element i = philox_value(kind, seed, offset, i, a, b) in out's dtype.
void random_fill(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t offset, double a, double b);
// out (contiguous, x's shape) = keep(i) ? x * 1/(1-p) : 0 with keep = philox_keep(seed, offset, i, p), i the
// row-major element index. x: any strides, floating dtype; 0 <= p < 1.
void dropout(const Tensor& x, const Tensor& out, double p, uint64_t seed, uint64_t offset);

}  // namespace engine::cuda
