// Analytic FLOP counting for the benchmarks (apps/bench). While counting is on, ops add the floating-point
// operations of the computation they run (a multiply-add counts 2): every GEMM of matmul / linear 2*B*M*N*K, and the
// fused layer ops (scans, recurrences, attentions, causal conv, graph aggregations) their own formula, written next
// to each call of add_flops. Elementwise ops, norms, activations, exp/log, reductions, gathers, sorts and kNN
// searches are not counted. Counting is off by default; then an op pays one relaxed atomic load.
#pragma once
#include <atomic>
#include <cstdint>

namespace engine::profile {

namespace detail {
extern std::atomic<bool> g_count_flops;
extern std::atomic<int64_t> g_flops;
}  // namespace detail

inline bool counting_flops() { return detail::g_count_flops.load(std::memory_order_relaxed); }
inline void add_flops(int64_t n) {
  if (counting_flops()) detail::g_flops.fetch_add(n, std::memory_order_relaxed);
}
void set_flop_counting(bool on);
int64_t flop_count();  // total added while counting was on, since the last reset
void reset_flop_count();

// Counts the flops of a scope: turns counting on, flops() = what was added since construction; the destructor
// restores the previous on/off state.
class FlopScope {
 public:
  FlopScope();
  ~FlopScope();
  FlopScope(const FlopScope&) = delete;
  FlopScope& operator=(const FlopScope&) = delete;
  int64_t flops() const { return flop_count() - start_; }

 private:
  bool was_on_;
  int64_t start_;
};

}  // namespace engine::profile
