// The engine's one seeded random generator: Philox4x32-10 (counter-based), so CPU and CUDA kernels draw identical
// streams. Draw j of a request made at generator offset o uses counter (o + j) under key seed; the offset then
// advances by the number of draws. Random factories and dropout draw from the default generator unless given one.
#pragma once
#include <array>
#include <cstdint>

#include "engine/tensor.h"

namespace engine {

struct Philox {
  // One Philox4x32-10 block: 4 uint32 outputs for a 64-bit counter and a 64-bit key.
  static std::array<uint32_t, 4> block(uint64_t counter, uint64_t key);
  // Uniform in [0, 1) from a 32-bit draw (24 significant bits) / from two draws (53 bits).
  static float uniform_f32(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
  static double uniform_f64(uint32_t hi, uint32_t lo) {
    return static_cast<double>((static_cast<uint64_t>(hi) << 21) ^ (lo >> 11)) * (1.0 / 9007199254740992.0);
  }
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }
  // Reserves n consecutive counters and returns the first.
  uint64_t reserve(uint64_t n) { uint64_t o = offset_; offset_ += n; return o; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // resets the default generator's seed and offset

Tensor rand(const Shape& shape, TensorOptions opt = {}, Generator* gen = nullptr);   // U[0, 1)
Tensor randn(const Shape& shape, TensorOptions opt = {}, Generator* gen = nullptr);  // N(0, 1), Box-Muller
Tensor uniform(const Shape& shape, double lo, double hi, TensorOptions opt = {}, Generator* gen = nullptr);
Tensor randint(int64_t lo, int64_t hi, const Shape& shape, TensorOptions opt = {DType::I64}, Generator* gen = nullptr);
Tensor randperm(int64_t n, Generator* gen = nullptr);  // int64, on the CPU
// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p); identity when !training.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace engine
