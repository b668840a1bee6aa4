// CUDA backend services: device parsing and availability (any build), the errors for CUDA tensors without CUDA or
// without a GPU, and on a GPU: the caching allocator's reuse and statistics, byte copies in every direction, the
// engine stream and cuBLAS handle, the TF32 switch.
#include "parity.h"

#ifdef ENGINE_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "engine/backend/cuda/cuda_backend.h"
#endif

using namespace engine;

TEST_CASE("cuda: Device::parse, cuda_compiled, cuda_available (any build)") {
  CHECK(Device::parse("cpu") == Device::cpu());
  CHECK(Device::parse("cuda") == Device::cuda(0));
  CHECK(Device::parse("cuda:3") == Device::cuda(3));
  CHECK(Device::parse("cuda:3").str() == "cuda:3");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", ""})
    CHECK_THROWS_WITH_AS(Device::parse(bad), doctest::Contains("cannot parse device"), EngineError);
  CHECK((!cuda_available() || cuda_compiled()));
#ifdef ENGINE_WITH_CUDA
  CHECK(cuda_compiled());
  CHECK(cuda_available() == (cuda::device_count() > 0));
#else
  CHECK_FALSE(cuda_compiled());
  CHECK_FALSE(cuda_available());
#endif
}

TEST_CASE("cuda: CUDA tensors fail clearly without the backend or without a GPU (any build)") {
  if (cuda_available()) {
    CHECK(zeros({2}, TensorOptions(DType::F32, Device::cuda())).device().is_cuda());
    CHECK_THROWS_WITH_AS(zeros({2}, TensorOptions(DType::F32, Device::cuda(999))), doctest::Contains("does not exist"),
                         EngineError);
    return;
  }
  const char* expected = cuda_compiled() ? "no CUDA device available" : "built without CUDA";
  CHECK_THROWS_WITH_AS(zeros({2}, TensorOptions(DType::F32, Device::cuda())), doctest::Contains(expected), EngineError);
  CHECK_THROWS_WITH_AS(ones({3}).to(Device::cuda()), doctest::Contains(expected), EngineError);
  CHECK_THROWS_WITH_AS(from_vector<float>({1, 2}, {2}, TensorOptions(DType::F32, Device::cuda())),
                       doctest::Contains(expected), EngineError);
#ifdef ENGINE_WITH_CUDA
  CHECK(cuda::device_count() == 0);
  CHECK_NOTHROW(cuda::synchronize());
  CHECK_NOTHROW(cuda::release_device_cache());
  CHECK(cuda::device_allocator_stats().allocated_bytes == 0);
#endif
}

#ifdef ENGINE_WITH_CUDA

TEST_CASE("cuda: caching allocator reuses freed blocks without cudaMalloc") {
  REQUIRE_CUDA();
  cuda::synchronize();
  const AllocatorStats before = cuda::device_allocator_stats();
  const TensorOptions opt(DType::F32, Device::cuda());
  { Tensor a = empty({1 << 18}, opt); }  // 1 MiB: cached on free
  const AllocatorStats mid = cuda::device_allocator_stats();
  CHECK(mid.cached_bytes >= before.cached_bytes);
  for (int i = 0; i < 50; ++i) {
    Tensor a = empty({1 << 18}, opt);
    Tensor b = empty({1000}, opt);  // small class
    Tensor c = empty({0}, opt);     // empty tensors get a valid block too
    CHECK(a.raw_data() != nullptr);
    CHECK(c.raw_data() != nullptr);
  }
  const AllocatorStats after = cuda::device_allocator_stats();
  CHECK(after.cache_hits - mid.cache_hits >= 100);
  CHECK(after.cache_misses - mid.cache_misses <= 2);  // the first small and empty blocks at most
  CHECK(after.allocated_bytes == before.allocated_bytes);
  CHECK(after.peak_allocated_bytes >= (int64_t(1) << 20));
  cuda::release_device_cache();
  CHECK(cuda::device_allocator_stats().cached_bytes == 0);
  Tensor again = full({5}, 2.5, opt);  // allocation works after a release
  CHECK(again.to_vector<float>() == std::vector<float>(5, 2.5f));
}

TEST_CASE("cuda: copy_bytes host->device->device->host round trips, odd sizes") {
  REQUIRE_CUDA();
  for (size_t n : {size_t(1), size_t(3), size_t(4097), size_t(1000003)}) {
    std::vector<uint8_t> src(n), back(n, 0);
    for (size_t i = 0; i < n; ++i) src[i] = static_cast<uint8_t>(i * 131 + 7);
    Tensor d1 = empty({static_cast<int64_t>(n)}, TensorOptions(DType::U8, Device::cuda()));
    Tensor d2 = empty({static_cast<int64_t>(n)}, TensorOptions(DType::U8, Device::cuda()));
    cuda::copy_bytes(d1.raw_data(), Device::cuda(), src.data(), Device::cpu(), n);
    cuda::copy_bytes(d2.raw_data(), Device::cuda(), d1.raw_data(), Device::cuda(), n);
    cuda::copy_bytes(back.data(), Device::cpu(), d2.raw_data(), Device::cuda(), n);  // synchronous: no sync needed
    CHECK(back == src);
  }
  Tensor x = from_vector<double>({1.5, -2, 3}, {3}, TensorOptions(DType::F64, Device::cuda()));
  CHECK(x.to(Device::cpu()).to_vector<double>() == std::vector<double>{1.5, -2, 3});
  CHECK(x.to(DType::F32).to_vector<float>() == std::vector<float>{1.5f, -2, 3});
}

TEST_CASE("cuda: engine stream is non-blocking and the cuBLAS handle is bound to it") {
  REQUIRE_CUDA();
  auto s = static_cast<cudaStream_t>(cuda::stream());
  REQUIRE(s != nullptr);
  unsigned flags = 0;
  REQUIRE(cudaStreamGetFlags(s, &flags) == cudaSuccess);
  CHECK(flags == cudaStreamNonBlocking);
  cudaStream_t bound = nullptr;
  REQUIRE(cublasGetStream(static_cast<cublasHandle_t>(cuda::cublas_handle()), &bound) == CUBLAS_STATUS_SUCCESS);
  CHECK(bound == s);
  CHECK(cuda::stream() == cuda::stream());
  CHECK_NOTHROW(cuda::synchronize());
}

TEST_CASE("cuda: TF32 is off by default, and switching it changes float32 GEMM precision only") {
  REQUIRE_CUDA();
  CHECK_FALSE(cuda::tf32_enabled());
  Tensor a = testing::rand_f64({512, 512}, 1, -1, 1, false), b = testing::rand_f64({512, 512}, 2, -1, 1, false);
  Tensor ref = matmul(a, b);
  Tensor a32 = a.to(DType::F32).to(Device::cuda()), b32 = b.to(DType::F32).to(Device::cuda());
  auto rel_err = [&](const Tensor& got) { return parity::diff(got.to(DType::F64).to(Device::cpu()), ref).rel_rms; };
  const double fp32 = rel_err(matmul(a32, b32));
  cuda::set_tf32(true);
  CHECK(cuda::tf32_enabled());
  const double tf32 = rel_err(matmul(a32, b32));
  const double f64 = parity::diff(matmul(a.to(Device::cuda()), b.to(Device::cuda())).to(Device::cpu()), ref).rel_rms;
  cuda::set_tf32(false);
  CHECK_FALSE(cuda::tf32_enabled());
  MESSAGE("GEMM 512 rel. RMS error vs float64 CPU: fp32 " << fp32 << ", tf32 " << tf32 << ", fp64 " << f64);
  CHECK(fp32 < 1e-6);
  CHECK(tf32 < 1e-2);
  CHECK(tf32 > fp32);  // tensor cores engaged (10-bit mantissa inputs)
  CHECK(f64 < 1e-13);
  CHECK(rel_err(matmul(a32, b32)) == fp32);  // back to full precision, deterministic
}

#endif  // ENGINE_WITH_CUDA
