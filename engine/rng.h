// The engine's one seeded random generator: Philox4x32-10 (counter-based), so CPU and CUDA kernels draw identical
// streams. Draw j of a request made at generator offset o uses counter (o + j) under key seed; the offset then
// advances by the number of draws. Random factories and dropout draw from the default generator unless given one.
//
// Word mapping (Random123 philox4x32, Salmon et al. 2011): a 64-bit counter c is the 4x32 counter
// {lo32(c), hi32(c), 0, 0}; a 64-bit key k is the 2x32 key {lo32(k), hi32(k)}. Output lanes l0..l3 are the four
// words of the block. What each element of a request takes from its block (counter o + element index, the
// element index being the row-major position in the output / input shape):
//   uniform float32 (rand, uniform)  : u = (l0 >> 8) / 2^24                          (24 bits, lane 0)
//   uniform float64                  : u = ((l0 << 21) ^ (l1 >> 11)) / 2^53          (53 bits, lanes 0 and 1)
//   uniform(lo, hi) in dtype T       : fma(T(hi - lo), u, T(lo))                     (explicit fma on both devices)
//   normal (any float dtype)         : u1 = f64 uniform of (l0, l1), u2 = f64 uniform of (l2, l3),
//                                      z = sqrt(-2 log(1 - u1)) * cos(2 pi u2) in double, then rounded to T
//   randint [lo, hi)                 : lo + ((l0 << 32 | l1) mod (hi - lo))
//   dropout keep mask                : keep = float32 uniform of l0 >= float(p)
//   randperm (CPU)                   : Fisher-Yates; step i swaps i with i + ((l0 << 32 | l1) mod (n - i)), counter o+i
// The integer formulas and uniforms are bit-identical on the CPU and CUDA (the same inline code runs on both);
// normals go through log/cos, whose libm and CUDA implementations may differ in the last ulp of a double.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

#include "engine/tensor.h"

#if defined(__CUDACC__)
#define ENGINE_RNG_HD __host__ __device__ inline
#else
#define ENGINE_RNG_HD inline
#endif

namespace engine {

struct Philox {
  static constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
  static constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments
  static constexpr int kRounds = 10;

  // The raw Philox4x32-10 bijection on 4 counter words under 2 key words, in place (ctr becomes the output).
  ENGINE_RNG_HD static void block_words(uint32_t ctr[4], uint32_t k0, uint32_t k1) {
    for (int r = 0; r < kRounds; ++r) {
      if (r > 0) {
        k0 += kW0;
        k1 += kW1;
      }
      const uint64_t p0 = static_cast<uint64_t>(kM0) * ctr[0];
      const uint64_t p1 = static_cast<uint64_t>(kM1) * ctr[2];
      const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
      const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
      const uint32_t c1 = ctr[1], c3 = ctr[3];
      ctr[0] = hi1 ^ c1 ^ k0;
      ctr[1] = lo1;
      ctr[2] = hi0 ^ c3 ^ k1;
      ctr[3] = lo0;
    }
  }
  // One block for a 64-bit counter and a 64-bit key (word mapping above), into out[4].
  ENGINE_RNG_HD static void block(uint64_t counter, uint64_t key, uint32_t out[4]) {
    out[0] = static_cast<uint32_t>(counter);
    out[1] = static_cast<uint32_t>(counter >> 32);
    out[2] = 0;
    out[3] = 0;
    block_words(out, static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32));
  }
  static std::array<uint32_t, 4> block(uint64_t counter, uint64_t key) {
    std::array<uint32_t, 4> out;
    block(counter, key, out.data());
    return out;
  }
  // Uniform in [0, 1) from a 32-bit draw (24 significant bits) / from two draws (53 bits).
  ENGINE_RNG_HD static float uniform_f32(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
  ENGINE_RNG_HD static double uniform_f64(uint32_t hi, uint32_t lo) {
    return static_cast<double>((static_cast<uint64_t>(hi) << 21) ^ (lo >> 11)) * (1.0 / 9007199254740992.0);
  }
  ENGINE_RNG_HD static uint64_t bits64(const uint32_t l[4]) { return (static_cast<uint64_t>(l[0]) << 32) | l[1]; }
};

// The per-element formulas shared by the CPU and CUDA kernels (see the table at the top).
enum class RandomKind : uint8_t { Uniform, Normal, Int };

template <class T>
ENGINE_RNG_HD T philox_uniform(const uint32_t l[4], double lo, double hi) {
  if constexpr (sizeof(T) == 4)
    return ::fmaf(static_cast<float>(hi - lo), Philox::uniform_f32(l[0]), static_cast<float>(lo));
  else
    return ::fma(hi - lo, Philox::uniform_f64(l[0], l[1]), lo);
}

ENGINE_RNG_HD double philox_normal(const uint32_t l[4]) {
  const double u1 = Philox::uniform_f64(l[0], l[1]), u2 = Philox::uniform_f64(l[2], l[3]);
  return ::sqrt(-2.0 * ::log(1.0 - u1)) * ::cos(6.283185307179586 * u2);
}

// Value of element `i` of a request at offset `offset` (a, b: lo/hi for Uniform and Int; unused for Normal).
template <class T>
ENGINE_RNG_HD T philox_value(RandomKind kind, uint64_t seed, uint64_t offset, int64_t i, double a, double b) {
  uint32_t l[4];
  Philox::block(offset + static_cast<uint64_t>(i), seed, l);
  switch (kind) {
    case RandomKind::Uniform: return philox_uniform<T>(l, a, b);
    case RandomKind::Normal: return static_cast<T>(philox_normal(l));
    case RandomKind::Int: {
      const int64_t lo = static_cast<int64_t>(a);
      const uint64_t range = static_cast<uint64_t>(static_cast<int64_t>(b) - lo);
      return static_cast<T>(lo + static_cast<int64_t>(Philox::bits64(l) % range));
    }
  }
  return T(0);
}

// Dropout keep decision for element `i` of a request at `offset`.
ENGINE_RNG_HD bool philox_keep(uint64_t seed, uint64_t offset, int64_t i, float p) {
  uint32_t l[4];
  Philox::block(offset + static_cast<uint64_t>(i), seed, l);
  return Philox::uniform_f32(l[0]) >= p;
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }
  // Reserves n consecutive counters and returns the first. Not thread-safe: one generator per thread.
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
// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p); identity when !training
// or p == 0. The mask is a function of (seed, offset, element index), so the backward pass recomputes it.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace engine
