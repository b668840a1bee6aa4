// The one device-dispatch point: ENGINE_DISPATCH(device, kernel, args...) calls engine::cpu::kernel or, in a CUDA
// build and for a CUDA device, engine::cuda::kernel. Public ops call kernels only through this macro, so adding a
// backend changes no call site. Kernel signatures are identical across backends (see backend/cpu/*.h).
#pragma once
#include "engine/backend/cpu/kernels.h"
#ifdef ENGINE_WITH_CUDA
#include "engine/backend/cuda/kernels.h"
#define ENGINE_DISPATCH(device, kernel, ...) \
  ((device).is_cuda() ? ::engine::cuda::kernel(__VA_ARGS__) : ::engine::cpu::kernel(__VA_ARGS__))
#else
#define ENGINE_DISPATCH(device, kernel, ...) (::engine::cpu::kernel(__VA_ARGS__))
#endif
