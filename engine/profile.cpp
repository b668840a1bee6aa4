// FLOP counter (see profile.h).
#include "engine/profile.h"

namespace engine::profile {

namespace detail {
std::atomic<bool> g_count_flops{false};
std::atomic<int64_t> g_flops{0};
}  // namespace detail

void set_flop_counting(bool on) { detail::g_count_flops.store(on, std::memory_order_relaxed); }
int64_t flop_count() { return detail::g_flops.load(std::memory_order_relaxed); }
void reset_flop_count() { detail::g_flops.store(0, std::memory_order_relaxed); }

FlopScope::FlopScope() : was_on_(counting_flops()), start_(flop_count()) { set_flop_counting(true); }
FlopScope::~FlopScope() { set_flop_counting(was_on_); }

}  // namespace engine::profile
