// Storage lifetime and cross-device byte copies.
#include "engine/storage.h"

#include <cstring>

#include "engine/allocator.h"
#include "engine/error.h"

#ifdef ENGINE_WITH_CUDA
#include "engine/backend/cuda/cuda_backend.h"
#endif

namespace engine {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = allocator_for(device).allocate(nbytes);
}

Storage::~Storage() { allocator_for(device_).deallocate(data_, nbytes_); }

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#ifdef ENGINE_WITH_CUDA
  cuda::copy_bytes(dst, dst_device, src, src_device, nbytes);
#else
  throw EngineError("copy: " + src_device.str() + " -> " + dst_device.str() + ": the engine was built without CUDA");
#endif
}

}  // namespace engine
