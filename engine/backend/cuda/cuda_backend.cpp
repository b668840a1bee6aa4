// CUDA backend services: device queries, one non-blocking engine stream and one cuBLAS handle per device (created
// lazily), the caching device allocator, host<->device byte copies and the TF32 switch. Every CUDA/cuBLAS call is
// checked and reports file:line (kernels/common.cuh). Host C++ compiled by g++ against the CUDA runtime headers.
#include "engine/backend/cuda/cuda_backend.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/error.h"
#include "kernels/common.cuh"

namespace engine::cuda {
namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;  // below: 512-byte granules; above: 4 classes per power of two
constexpr size_t kGranule = 512;

size_t size_class(size_t n) {
  if (n == 0) n = 1;
  if (n < kSmallLimit) return (n + kGranule - 1) / kGranule * kGranule;
  size_t p = 1;
  while (p * 2 <= n) p *= 2;
  const size_t step = p / 4;
  return (n + step - 1) / step * step;
}

// Restores the caller's current device on scope exit.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

void check_device_index(int index) {
  const int n = device_count();
  ENGINE_CHECK(n > 0, "cuda", "no CUDA device available (the engine was built with CUDA, but cudaGetDeviceCount "
                              "found no usable GPU or driver)");
  ENGINE_CHECK(index >= 0 && index < n, "cuda", "device cuda:{} does not exist ({} CUDA device(s) present)", index, n);
}

// Caching allocator for one device. Freed blocks go to per-size-class free lists and are handed out again without
// cudaMalloc. Reuse is stream-ordered: every kernel and copy of the engine runs on the device's single engine
// stream, so work queued on a block before it was freed completes before work queued by its next owner.
class CachingDeviceAllocator final : public Allocator {
 public:
  explicit CachingDeviceAllocator(int device) : device_(device) {}

  void* allocate(size_t nbytes) override {
    const size_t cls = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    void* p = take_cached(cls);
    if (!p) {
      stats_.cache_misses++;
      p = malloc_or_flush(cls);
    }
    stats_.allocated_bytes += static_cast<int64_t>(cls);
    if (stats_.allocated_bytes > stats_.peak_allocated_bytes) stats_.peak_allocated_bytes = stats_.allocated_bytes;
    return p;
  }

  void deallocate(void* ptr, size_t nbytes) override {  // never throws: called from Storage's destructor
    if (!ptr) return;
    const size_t cls = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.allocated_bytes -= static_cast<int64_t>(cls);
    stats_.cached_bytes += static_cast<int64_t>(cls);
    free_[cls].push_back(ptr);
  }

  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    release_locked();
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
  void* take_cached(size_t cls) {
    auto it = free_.find(cls);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= static_cast<int64_t>(cls);
    stats_.cache_hits++;
    return p;
  }

  // cudaMalloc; on out-of-memory, returns every cached block to the driver and tries once more.
  void* malloc_or_flush(size_t cls) {
    DeviceGuard guard(device_);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, cls);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the sticky-free error state before retrying
      release_locked();
      err = cudaMalloc(&p, cls);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      ENGINE_FAIL("cuda allocator", "out of memory on cuda:{} allocating {} bytes ({} bytes in use, peak {})",
                  device_, cls, stats_.allocated_bytes, stats_.peak_allocated_bytes);
    }
    CUDA_CHECK(err);
    return p;
  }

  void release_locked() {
    if (stats_.cached_bytes == 0) return;
    DeviceGuard guard(device_);
    CUDA_CHECK(cudaDeviceSynchronize());  // cached blocks may still be read by queued work
    for (auto& [cls, blocks] : free_)
      for (void* p : blocks) CUDA_CHECK(cudaFree(p));
    free_.clear();
    stats_.cached_bytes = 0;
  }

  int device_;
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

std::atomic<bool> g_tf32{false};

cublasMath_t math_mode() { return g_tf32.load() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH; }

// Everything the engine keeps per device; created on first use and never destroyed (tensors may outlive statics).
struct DeviceState {
  explicit DeviceState(int device) : allocator(device) {
    DeviceGuard guard(device);
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
    CUBLAS_CHECK(cublasSetMathMode(cublas, math_mode()));
  }
  CachingDeviceAllocator allocator;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
};

std::mutex g_states_mu;

std::vector<DeviceState*>& states() {
  static auto* s = new std::vector<DeviceState*>();
  return *s;
}

DeviceState& state(int device) {
  check_device_index(device);
  std::lock_guard<std::mutex> lock(g_states_mu);
  auto& all = states();
  if (all.empty()) all.assign(static_cast<size_t>(device_count()), nullptr);
  if (!all[device]) all[device] = new DeviceState(device);
  return *all[device];
}

int current_device() {
  check_device_index(0);
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

}  // namespace

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

Allocator& device_allocator(Device device) { return state(device.index).allocator; }

void* stream() { return state(current_device()).stream; }

void* cublas_handle() { return state(current_device()).cublas; }

void synchronize() {
  if (device_count() == 0) return;
  CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream())));
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  const Device gpu = dst_device.is_cuda() ? dst_device : src_device;
  cudaStream_t s = state(gpu.index).stream;  // checks the index
  DeviceGuard guard(gpu.index);
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index) {
    CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    return;
  }
  // H2D from pageable memory is staged before cudaMemcpyAsync returns, so the host buffer may be freed at once;
  // D2H waits for the copy (and all earlier work on the stream) before returning.
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, s));
  if (dst_device.is_cpu()) CUDA_CHECK(cudaStreamSynchronize(s));
}

void set_tf32(bool enabled) {
  g_tf32.store(enabled);
  std::lock_guard<std::mutex> lock(g_states_mu);
  for (DeviceState* s : states())
    if (s) CUBLAS_CHECK(cublasSetMathMode(s->cublas, math_mode()));
}

bool tf32_enabled() { return g_tf32.load(); }

AllocatorStats device_allocator_stats() {
  if (device_count() == 0) return {};
  return state(current_device()).allocator.stats();
}

void reset_device_peak() {
  if (device_count() == 0) return;
  state(current_device()).allocator.reset_peak();
}

void release_device_cache() {
  if (device_count() == 0) return;
  std::lock_guard<std::mutex> lock(g_states_mu);
  for (DeviceState* s : states())
    if (s) s->allocator.release();
}

}  // namespace engine::cuda
