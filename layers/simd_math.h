// Vectorisable elementary functions for the CPU layer kernels. glibc's vector math (libmvec) is only used under
// -ffast-math, so std::exp inside an `omp simd` loop stays a scalar call; these inline versions vectorise.
//   simd_exp(float): Cephes-style polynomial, max relative error ~2e-7; returns exactly 0 below -87 (where expf
//                    would give a denormal or 0) and clamps above 88 (overflow is not reached by the callers, whose
//                    arguments are <= 0 or small).
//   simd_exp(double): std::exp (the float64 path is for gradient checks, not speed).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace layers {

#pragma omp declare simd
inline float simd_exp(float x) {
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  const float n = std::floor(xc * 1.44269504088896341f + 0.5f);
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

}  // namespace layers
