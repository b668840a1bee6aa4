// Shape and placement checks shared by every layer.
#include "layers/common.h"

#include <fmt/format.h>

#include <vector>

#include "engine/error.h"

namespace layers {

void check_shape(const std::string& where, const std::string& what, const engine::Tensor& t,
                 std::initializer_list<int64_t> dims) {
  const std::vector<int64_t> want(dims);
  auto want_str = [&] {
    std::string s = "[";
    for (size_t i = 0; i < want.size(); ++i) s += (i ? ", " : "") + (want[i] < 0 ? std::string("*") : std::to_string(want[i]));
    return s + "]";
  };
  if (!t.defined()) throw engine::EngineError(fmt::format("{}: {} must be {} but is undefined", where, what, want_str()));
  bool ok = t.dim() == static_cast<int64_t>(want.size());
  for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] < 0 || t.size(static_cast<int64_t>(i)) == want[i];
  if (!ok)
    throw engine::EngineError(
        fmt::format("{}: {} must be {} but is {}", where, what, want_str(), engine::shape_str(t.shape())));
}

void check_same_placement(const std::string& where, const engine::Tensor& a, const engine::Tensor& b) {
  if (a.device() != b.device() || a.dtype() != b.dtype())
    throw engine::EngineError(fmt::format("{}: tensors on {} {} and {} {} cannot be mixed", where, a.device().str(),
                                          engine::dtype_name(a.dtype()), b.device().str(),
                                          engine::dtype_name(b.dtype())));
}

}  // namespace layers
