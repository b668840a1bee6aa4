// The device-dispatch point of the layer kernels: LAYER_DISPATCH(device, kernel, args...) calls
// layers::cpu::kernel, or layers::cuda::kernel for a CUDA device in a CUDA build. Each kernel family declares both
// in layers/<family>_kernels.h with identical signatures (CUDA declarations under #ifdef ENGINE_WITH_CUDA).
#pragma once
#ifdef ENGINE_WITH_CUDA
#define LAYER_DISPATCH(device, kernel, ...) \
  ((device).is_cuda() ? ::layers::cuda::kernel(__VA_ARGS__) : ::layers::cpu::kernel(__VA_ARGS__))
#else
#define LAYER_DISPATCH(device, kernel, ...) (::layers::cpu::kernel(__VA_ARGS__))
#endif
