// Bit-identity of a computation whatever the heap's alignment. `run` computes outputs and gradients (as float
// vectors) from fresh inputs; it is called several times while heap blocks of odd sizes, held between the calls,
// shift where its scratch buffers land. Vectorised reductions over a buffer aligned as the heap happens to be split
// differently from call to call, so repeated calls (and 2-thread training runs) differed in the last bits: the fused
// HEPT attention's std::vector tiles did until 2026-12-06. Every run must equal the first.
#pragma once
#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace testing {

using FloatResults = std::vector<std::vector<float>>;

// The float contents of `tensors`, in order (for a FloatResults).
inline FloatResults float_contents(const std::vector<engine::Tensor>& tensors) {
  FloatResults out;
  for (const engine::Tensor& t : tensors) out.push_back(t.to(engine::DType::F32).to_vector<float>());
  return out;
}

inline void check_heap_independent(const std::function<FloatResults()>& run, int reps = 6) {
  FloatResults first;
  std::vector<std::unique_ptr<char[]>> heap_shifts;
  for (int rep = 0; rep < reps; ++rep) {
    heap_shifts.push_back(std::make_unique<char[]>(static_cast<size_t>(24 + 40 * rep)));
    const FloatResults got = run();
    if (rep == 0) first = got;
    CAPTURE(rep);
    CHECK(got == first);
  }
}

}  // namespace testing
