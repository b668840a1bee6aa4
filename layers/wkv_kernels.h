// Kernels of the WKV5 recurrence (layers/wkv.h). All tensors contiguous, one floating dtype, one device:
// r, k, v [L, H, N]; w, u [H, N]; y [L, H, N]; ckpt [ceil(L/chunk), H, N, N] (state S[j, i] at each chunk start) or
// undefined (inference). Outputs are preallocated; every element is written.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers::cpu {

void wkv5_forward(const engine::Tensor& r, const engine::Tensor& k, const engine::Tensor& v, const engine::Tensor& w,
                  const engine::Tensor& u, int64_t chunk, const engine::Tensor& y, const engine::Tensor& ckpt);
// gy [L, H, N] -> gr, gk, gv [L, H, N]; gw, gu [H, N].
void wkv5_backward(const engine::Tensor& r, const engine::Tensor& k, const engine::Tensor& v, const engine::Tensor& w,
                   const engine::Tensor& u, const engine::Tensor& ckpt, const engine::Tensor& gy, int64_t chunk,
                   const engine::Tensor& gr, const engine::Tensor& gk, const engine::Tensor& gv,
                   const engine::Tensor& gw, const engine::Tensor& gu);

void wkv7_forward(const engine::Tensor& r, const engine::Tensor& w, const engine::Tensor& k, const engine::Tensor& v,
                  const engine::Tensor& a, const engine::Tensor& b, int64_t chunk, const engine::Tensor& y,
                  const engine::Tensor& ckpt);
// gy [L, H, N] -> gr, gw, gk, gv, ga, gb [L, H, N].
void wkv7_backward(const engine::Tensor& r, const engine::Tensor& w, const engine::Tensor& k, const engine::Tensor& v,
                   const engine::Tensor& a, const engine::Tensor& b, const engine::Tensor& ckpt,
                   const engine::Tensor& gy, int64_t chunk, const engine::Tensor& gr, const engine::Tensor& gw,
                   const engine::Tensor& gk, const engine::Tensor& gv, const engine::Tensor& ga,
                   const engine::Tensor& gb);

}  // namespace layers::cpu

#ifdef ENGINE_WITH_CUDA
namespace layers::cuda {

void wkv5_forward(const engine::Tensor& r, const engine::Tensor& k, const engine::Tensor& v, const engine::Tensor& w,
                  const engine::Tensor& u, int64_t chunk, const engine::Tensor& y, const engine::Tensor& ckpt);
void wkv5_backward(const engine::Tensor& r, const engine::Tensor& k, const engine::Tensor& v, const engine::Tensor& w,
                   const engine::Tensor& u, const engine::Tensor& ckpt, const engine::Tensor& gy, int64_t chunk,
                   const engine::Tensor& gr, const engine::Tensor& gk, const engine::Tensor& gv,
                   const engine::Tensor& gw, const engine::Tensor& gu);

void wkv7_forward(const engine::Tensor& r, const engine::Tensor& w, const engine::Tensor& k, const engine::Tensor& v,
                  const engine::Tensor& a, const engine::Tensor& b, int64_t chunk, const engine::Tensor& y,
                  const engine::Tensor& ckpt);
void wkv7_backward(const engine::Tensor& r, const engine::Tensor& w, const engine::Tensor& k, const engine::Tensor& v,
                   const engine::Tensor& a, const engine::Tensor& b, const engine::Tensor& ckpt,
                   const engine::Tensor& gy, int64_t chunk, const engine::Tensor& gr, const engine::Tensor& gw,
                   const engine::Tensor& gk, const engine::Tensor& gv, const engine::Tensor& ga,
                   const engine::Tensor& gb);

}  // namespace layers::cuda
#endif
