// Shapes and strides (in elements) and the small pure functions on them: numel, contiguous strides, broadcasting.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace engine {

using Shape = std::vector<int64_t>;    // sizes, outermost first
using Strides = std::vector<int64_t>;  // element strides, same rank as the shape

int64_t shape_numel(const Shape& s);
Strides contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);  // "[3, 4]"
// NumPy broadcasting of two shapes; throws naming `op` when they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Wraps a possibly negative dim into [0, rank); throws naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* op);

}  // namespace engine
