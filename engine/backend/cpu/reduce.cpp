// CPU reductions. The reduced dims are brought into one block so the input reads as [A, R, B]; rows are summed in a
// fixed order (double accumulators for float32), so results do not depend on the thread count.
#include "engine/backend/cpu/reduce.h"

#include <numeric>

#include "engine/autograd.h"
#include "engine/backend/cpu/elementwise.h"
#include "engine/backend/cpu/loops.h"

namespace engine::cpu {

namespace {

template <class T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// out[a, b] = sum_r x[a, r, b] for a dense x.
template <class T>
void sum_arb(const T* x, T* out, int64_t A, int64_t R, int64_t B) {
  if (B == 1) {
    parallel_for(0, A, std::max<int64_t>(1, 16384 / std::max<int64_t>(R, 1)), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        const T* row = x + a * R;
        Acc<T> acc[8] = {};
        int64_t r = 0;
        for (; r + 8 <= R; r += 8)
          for (int k = 0; k < 8; ++k) acc[k] += row[r + k];
        for (; r < R; ++r) acc[0] += row[r];
        Acc<T> s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        out[a] = static_cast<T>(s);
      }
    });
    return;
  }
  // Parallel over (a, b-chunk) tiles; each tile accumulates rows r in order.
  const int64_t chunk = 1024;
  const int64_t nb = (B + chunk - 1) / chunk;
  parallel_for(0, A * nb, 1, [&](int64_t t0, int64_t t1) {
    std::vector<Acc<T>> acc(chunk);
    for (int64_t t = t0; t < t1; ++t) {
      int64_t a = t / nb, b0 = (t % nb) * chunk, n = std::min(chunk, B - b0);
      std::fill(acc.begin(), acc.begin() + n, Acc<T>(0));
      for (int64_t r = 0; r < R; ++r) {
        const T* row = x + (a * R + r) * B + b0;
        for (int64_t i = 0; i < n; ++i) acc[i] += row[i];
      }
      for (int64_t i = 0; i < n; ++i) out[a * B + b0 + i] = static_cast<T>(acc[i]);
    }
  });
}

}  // namespace

void sum(const Tensor& x_in, const std::vector<int64_t>& dims, const Tensor& out) {
  const int64_t rank = x_in.dim();
  if (dims.empty() || x_in.numel() == 0) {
    if (dims.empty()) cpu::copy(x_in, out);
    else cpu::fill(out, 0.0);
    return;
  }
  Tensor x = x_in;
  bool block = dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  int64_t first = dims.front(), last = dims.back();
  if (!block) {
    // Move reduced dims to the end: [kept..., reduced...].
    std::vector<int64_t> order;
    for (int64_t i = 0; i < rank; ++i)
      if (!std::binary_search(dims.begin(), dims.end(), i)) order.push_back(i);
    first = static_cast<int64_t>(order.size());
    order.insert(order.end(), dims.begin(), dims.end());
    last = rank - 1;
    NoGradGuard ng;
    x = x.permute(order);
  }
  {
    NoGradGuard ng;
    x = x.contiguous();
  }
  const Shape& s = x.shape();
  int64_t A = 1, R = 1, B = 1;
  for (int64_t i = 0; i < rank; ++i) (i < first ? A : (i <= last ? R : B)) *= s[i];
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    sum_arb<T>(x.data<T>(), out.data<T>(), A, R, B);
  });
}

}  // namespace engine::cpu
