// Vectorisable elementary functions for the CPU kernels (the engine's elementwise ops and the layers' fused kernels).
// glibc's vector math (libmvec) is only used under -ffast-math, so std::exp inside an `omp simd` loop stays a scalar
// call; these inline versions vectorise.
//   simd_exp(float): Cephes-style polynomial, max relative error ~2e-7; returns exactly 0 below -87 (where expf
//                    would give a denormal or 0) and clamps above 88 (overflow is not reached by the callers, whose
//                    arguments are <= 0 or small).
//   simd_exp(double): std::exp (the float64 path is for gradient checks, not speed).
//   simd_softplus(float): log(1 + e^v) as max(v, 0) + log1p(e^-|v|), the log1p by its atanh series
//                         (2 atanh(u / (2 + u)), 7 terms, relative error < 1e-8 on u in (0, 1]).
//   simd_sigmoid(float): 1 / (1 + e^-v).
//   simd_tanh(float): Cephes' odd polynomial below |x| = 0.625, 1 - 2 / (e^2|x| + 1) above (with the sign of x);
//                     relative error < 1e-6 (glibc's tanhf is a scalar call into expm1f).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace engine {

#pragma omp declare simd
inline float simd_exp(float x) {
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  // n = round(xc log2 e) by the 1.5 * 2^23 shift (|xc log2 e| < 2^22). Not std::floor: GCC 12 does not vectorise a
  // loop calling floorf without -ffast-math, which left every kernel using this function scalar.
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(float));
  return x < -87.0f ? 0.0f : y * scale;
}

#pragma omp declare simd
inline double simd_exp(double x) { return std::exp(x); }

#pragma omp declare simd
inline float simd_softplus(float v) {
  const float u = simd_exp(-std::abs(v));  // (0, 1]
  const float s = u / (2.0f + u), s2 = s * s;
  float p = 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return std::max(v, 0.0f) + 2.0f * s * p;
}

#pragma omp declare simd
inline double simd_softplus(double v) { return std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v))); }

#pragma omp declare simd
inline float simd_sigmoid(float v) { return 1.0f / (1.0f + simd_exp(-v)); }

#pragma omp declare simd
inline double simd_sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

#pragma omp declare simd
inline float simd_tanh(float x) {
  const float a = std::abs(x), z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;
  const float large = 1.0f - 2.0f / (simd_exp(std::min(2.0f * a, 88.0f)) + 1.0f);
  return a < 0.625f ? small : (x < 0.0f ? -large : large);
}

#pragma omp declare simd
inline double simd_tanh(double x) { return std::tanh(x); }

}  // namespace engine
