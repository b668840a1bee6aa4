// Runtime dtype -> C++ type dispatch shared by the CPU kernels and the host side of the CUDA launchers:
// f(TypeTag<T>{}) is called with the type that stores the dtype (Bool is stored as uint8_t).
#pragma once
#include "engine/dtype.h"
#include "engine/error.h"

namespace engine {

template <class F>
void dispatch_all(DType t, F&& f) {
  switch (t) {
    case DType::F32: f(TypeTag<float>{}); return;
    case DType::F64: f(TypeTag<double>{}); return;
    case DType::I32: f(TypeTag<int32_t>{}); return;
    case DType::I64: f(TypeTag<int64_t>{}); return;
    case DType::U8:
    case DType::Bool: f(TypeTag<uint8_t>{}); return;
  }
}

template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32: f(TypeTag<float>{}); return;
    case DType::F64: f(TypeTag<double>{}); return;
    default: ENGINE_FAIL(op, "expected a float32 or float64 tensor, got {}", dtype_name(t));
  }
}

template <class F>
void dispatch_index(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::I32: f(TypeTag<int32_t>{}); return;
    case DType::I64: f(TypeTag<int64_t>{}); return;
    default: ENGINE_FAIL(op, "expected an int32 or int64 index tensor, got {}", dtype_name(t));
  }
}

}  // namespace engine
