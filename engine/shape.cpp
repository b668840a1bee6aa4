// Shape utilities: element counts, contiguous strides, broadcasting, dim wrapping.
#include "engine/shape.h"

#include "engine/error.h"

namespace engine {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Strides contiguous_strides(const Shape& s) {
  Strides st(s.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    ENGINE_CHECK(da == db || da == 1 || db == 1, op, "shapes {} and {} cannot be broadcast together", shape_str(a),
                 shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* op) {
  int64_t r = rank == 0 ? 1 : rank;
  ENGINE_CHECK(dim >= -r && dim < r, op, "dim {} out of range for a tensor of rank {}", dim, rank);
  return dim < 0 ? dim + r : dim;
}

}  // namespace engine
