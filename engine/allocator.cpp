// CPU caching allocator: 64-byte aligned blocks; blocks of at least 64 KiB are rounded to a size class and kept in
// per-class free lists when freed, so steady-state training reuses warm pages instead of mapping fresh ones. A request
// takes the smallest cached block of its class or up to 1.5 times it (best fit), as sizes vary with each sample.
#include "engine/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "engine/error.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

#ifdef ENGINE_WITH_CUDA
#include "engine/backend/cuda/cuda_backend.h"
#endif

namespace engine {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kCacheMin = 64 * 1024;
constexpr size_t kHugeMin = 4 << 20;  // blocks from this size on get transparent huge pages

// Asks the kernel to back the 2 MiB-aligned interior of a fresh large block with transparent huge pages (on these
// machines THP is "madvise" only). The random row gathers and scatters of the layer kernels (LSH buckets, kNN,
// index_select) otherwise miss the TLB on nearly every row of a multi-MiB tensor, and first touch faults 512x less.
void advise_huge_pages(void* p, size_t n) {
#ifdef __linux__
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // a hint: failure is harmless
#else
  (void)p;
  (void)n;
#endif
}

// Rounds large sizes up to 4 classes per power of two (at most 25% waste); small sizes to the alignment.
size_t size_class(size_t n) {
  if (n < kCacheMin) return (n + kAlign - 1) / kAlign * kAlign;
  size_t p = 1;
  while (p * 2 <= n) p *= 2;
  size_t step = p / 4;
  return (n + step - 1) / step * step;
}

class CachingCpuAllocator final : public Allocator {
 public:
  ~CachingCpuAllocator() override { release(); }

  void* allocate(size_t nbytes) override {
    const size_t cls = size_class(nbytes == 0 ? kAlign : nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    if (cls < kCacheMin) return count_out(checked_alloc(cls), cls);
    if (void* p = caching_ ? take_cached(cls) : nullptr) return p;
    stats_.cache_misses++;
    void* p = checked_alloc(cls);
    if (cls >= kHugeMin) advise_huge_pages(p, cls);
    block_class_[p] = cls;
    return count_out(p, cls);
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (!ptr) return;
    size_t cls = size_class(nbytes == 0 ? kAlign : nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    if (cls >= kCacheMin) {  // a cached block may be of a larger class than its size asks for
      const auto it = block_class_.find(ptr);
      if (it != block_class_.end()) cls = it->second;
    }
    stats_.allocated_bytes -= static_cast<int64_t>(cls);
    if (caching_ && cls >= kCacheMin && stats_.cached_bytes + static_cast<int64_t>(cls) <= limit_) {
      free_[cls].push_back(ptr);
      stats_.cached_bytes += static_cast<int64_t>(cls);
    } else {
      block_class_.erase(ptr);
      std::free(ptr);
    }
  }

  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    release_locked();
  }
  void set_caching(bool on) {
    if (!on) release();
    std::lock_guard<std::mutex> lock(mu_);
    caching_ = on;
  }
  bool caching() {
    std::lock_guard<std::mutex> lock(mu_);
    return caching_;
  }
  void set_limit(int64_t b) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = b;
  }
  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }

 private:
  void release_locked() {
    for (auto& [cls, blocks] : free_)
      for (void* p : blocks) {
        block_class_.erase(p);
        std::free(p);
      }
    free_.clear();
    stats_.cached_bytes = 0;
  }

  void* checked_alloc(size_t cls) {
    void* p = std::aligned_alloc(kAlign, cls);
    if (!p) {
      release_locked();
      p = std::aligned_alloc(kAlign, cls);
    }
    if (!p) throw EngineError(fmt::format("cpu allocator: out of memory allocating {} bytes", cls));
    return p;
  }

  void* count_out(void* p, size_t cls) {
    stats_.allocated_bytes += static_cast<int64_t>(cls);
    if (stats_.allocated_bytes > stats_.peak_allocated_bytes) stats_.peak_allocated_bytes = stats_.allocated_bytes;
    return p;
  }

  // The cached block of the smallest class from cls up to 1.5 cls (tensor sizes vary from step to step with the
  // number of hits, so an exact class would often be empty while a slightly larger warm block waits); null if none.
  void* take_cached(size_t cls) {
    for (auto it = free_.lower_bound(cls); it != free_.end() && it->first <= cls + cls / 2; ++it) {
      if (it->second.empty()) continue;
      void* p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= static_cast<int64_t>(it->first);
      stats_.cache_hits++;
      return count_out(p, it->first);
    }
    return nullptr;
  }

  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;             // class -> cached blocks
  std::unordered_map<void*, size_t> block_class_;           // every live or cached block of >= kCacheMin: its class
  AllocatorStats stats_;
  bool caching_ = true;
  int64_t limit_ = int64_t(16) << 30;
};

CachingCpuAllocator& the_cpu_allocator() {
  static CachingCpuAllocator* a = new CachingCpuAllocator();  // never destroyed: tensors may outlive statics
  return *a;
}

}  // namespace

Allocator& cpu_allocator() { return the_cpu_allocator(); }

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
#ifdef ENGINE_WITH_CUDA
  return cuda::device_allocator(device);
#else
  throw EngineError("allocate: cannot place a tensor on " + device.str() + ": the engine was built without CUDA");
#endif
}

void set_cpu_caching(bool enabled) { the_cpu_allocator().set_caching(enabled); }
bool cpu_caching_enabled() { return the_cpu_allocator().caching(); }
void release_cpu_cache() { the_cpu_allocator().release(); }
void set_cpu_cache_limit(int64_t bytes) { the_cpu_allocator().set_limit(bytes); }
AllocatorStats cpu_allocator_stats() { return the_cpu_allocator().stats(); }
void reset_cpu_peak() { the_cpu_allocator().reset_peak(); }

}  // namespace engine
