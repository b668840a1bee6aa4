// CUDA backend services (compiled only when ENGINE_WITH_CUDA): device queries, the caching device allocator, the
// engine's stream, host<->device copies, the cuBLAS handle and the TF32 switch. Plain C++ header (no CUDA types),
// so engine/*.cpp can include it; implementations live in engine/backend/cuda/*.cpp and kernels/*.cu.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/allocator.h"
#include "engine/device.h"

namespace engine::cuda {

int device_count();                               // 0 when no GPU or no driver (never throws)
Allocator& device_allocator(Device device);       // caching allocator (no cudaMalloc per op)
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);  // synchronous
void* stream();                                   // the engine's cudaStream_t for the current device
void* cublas_handle();                            // cublasHandle_t bound to stream()
void synchronize();                               // waits for all work on stream()
void set_tf32(bool enabled);                      // GEMM in TF32 (off by default)
bool tf32_enabled();
AllocatorStats device_allocator_stats();
void reset_device_peak();                         // peak_allocated_bytes = allocated_bytes (current device)
void release_device_cache();

}  // namespace engine::cuda
