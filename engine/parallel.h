// The CPU thread pool (OpenMP underneath; the GEMM runs its output blocks on the same threads). parallel_for splits
// [begin, end) into one static contiguous range per thread; kernels that sum across ranges cut their sums by the
// shape instead, so results do not depend on the thread count (docs/engine-design.md).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <vector>

namespace engine {

void set_num_threads(int n);  // n <= 0 means hardware concurrency
int get_num_threads();

// Calls f(chunk_begin, chunk_end) over a static partition of [begin, end). Runs inline when the range is smaller
// than `grain` elements, when one thread is configured, or when already inside a parallel region.
template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, F&& f) {
  int64_t n = end - begin;
  if (n <= 0) return;
  int threads = get_num_threads();
  if (threads <= 1 || n <= grain || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = begin + n * c / chunks;
    int64_t e = begin + n * (c + 1) / chunks;
    if (b < e) f(b, e);
  }
}

// Calls f(i) for every i in [0, n), one item at a time per thread (for coarse items such as whole files). An
// exception thrown by an item does not stop the others; once all are done, that of the lowest failing index is
// rethrown, as a serial loop would have reported it.
template <class F>
void parallel_for_each(int64_t n, F&& f) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(std::max<int64_t>(n, 0)));
  parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        f(i);
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    }
  });
  for (const auto& error : errors)
    if (error) std::rethrow_exception(error);
}

}  // namespace engine
