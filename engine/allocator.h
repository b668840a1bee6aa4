// Memory allocators. The CPU one caches large blocks: on these machines the first touch of freshly mapped pages
// costs ~100x a warm copy, so buffers of the same size class are handed back out instead of being unmapped.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/device.h"

namespace engine {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
};

struct AllocatorStats {
  int64_t allocated_bytes = 0;       // bytes currently handed out
  int64_t peak_allocated_bytes = 0;  // high-water mark of allocated_bytes since the last reset
  int64_t cached_bytes = 0;          // bytes held in free lists for reuse
  int64_t cache_hits = 0;
  int64_t cache_misses = 0;
};

Allocator& cpu_allocator();
// The allocator for a device; throws "built without CUDA" for CUDA devices in a build without the CUDA backend.
Allocator& allocator_for(Device device);

// CPU caching control (the benchmark compares both). Disabling also releases every cached block.
void set_cpu_caching(bool enabled);
bool cpu_caching_enabled();
void release_cpu_cache();
// Largest number of free bytes kept cached; beyond it freed blocks go back to the OS.
void set_cpu_cache_limit(int64_t bytes);
AllocatorStats cpu_allocator_stats();
void reset_cpu_peak();

}  // namespace engine
