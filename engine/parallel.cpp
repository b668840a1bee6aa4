// Thread-count control for the OpenMP loops (Eigen's products run single-threaded inside them).
#include "engine/parallel.h"

#include <thread>

namespace engine {
namespace {
int g_threads = 0;
}

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_threads = n;
  omp_set_num_threads(n);
}

int get_num_threads() {
  if (g_threads == 0) set_num_threads(0);
  return g_threads;
}

}  // namespace engine
