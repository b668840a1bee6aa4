// Device parsing and CUDA availability queries (the CUDA backend answers them when compiled in).
#include "engine/device.h"

#include "engine/error.h"

#ifdef ENGINE_WITH_CUDA
#include "engine/backend/cuda/cuda_backend.h"
#endif

namespace engine {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    std::string idx = s.substr(5);
    bool digits = !idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos;
    ENGINE_CHECK(digits, "device", "cannot parse device '{}' (expected cpu, cuda or cuda:N)", s);
    return cuda(std::stoi(idx));
  }
  ENGINE_FAIL("device", "cannot parse device '{}' (expected cpu, cuda or cuda:N)", s);
}

#ifdef ENGINE_WITH_CUDA
bool cuda_compiled() { return true; }
bool cuda_available() { return cuda::device_count() > 0; }
#else
bool cuda_compiled() { return false; }
bool cuda_available() { return false; }
#endif

}  // namespace engine
