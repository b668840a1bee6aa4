// Where a tensor's storage lives: the CPU or one CUDA device.
#pragma once
#include <cstdint>
#include <string>

namespace engine {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  static Device parse(const std::string& s);  // "cpu", "cuda", "cuda:1"; throws on anything else
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

// True when the engine was compiled with the CUDA backend and a CUDA device is present.
bool cuda_available();
// True when the engine was compiled with the CUDA backend (a GPU may still be absent).
bool cuda_compiled();

}  // namespace engine
