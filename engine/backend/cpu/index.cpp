// CPU indexing kernels (see index.h for the determinism scheme). Segment sums accumulate in double for float types
// (int64 for integers), in ascending row order, exactly like the CUDA kernels, so both backends agree bit for bit.
#include "engine/backend/cpu/index.h"

#include <limits>
#include <mutex>
#include <vector>

#include "engine/backend/cpu/loops.h"

namespace engine::cpu {

namespace {

template <class T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// Calls f(accessor) where accessor(i) reads element i of a 1-D int32/int64 tensor as int64.
template <class F>
void with_index_reader(const Tensor& t, const char* op, F&& f) {
  dispatch_index(t.dtype(), op, [&](auto tag) {
    using I = typename decltype(tag)::type;
    const I* p = t.data<I>();
    const int64_t st = t.dim() == 0 ? 0 : t.strides()[0];
    f([p, st](int64_t i) { return static_cast<int64_t>(p[i * st]); });
  });
}

// parallel_for grain giving each chunk about `work` elements when one task touches `per_task` elements.
int64_t grain_for(int64_t per_task, int64_t work = 16384) {
  return std::max<int64_t>(1, work / std::max<int64_t>(per_task, 1));
}

// out[a, s, b] = (accumulate ? out[a, s, b] : 0) + sum_{j in [off(s), off(s+1))} src[a, row(j), b] (ascending j),
// parallel over (a, s). src: [A, K, B] dense, out: [A, S, B] dense.
template <class T, class Off, class Row>
void sum_segments(const T* src, int64_t K, T* out, int64_t A, int64_t S, int64_t B, Off off, Row row, bool accumulate) {
  const int64_t per_task = (K / std::max<int64_t>(S, 1) + 1) * B;
  parallel_for(0, A * S, grain_for(per_task), [&](int64_t t0, int64_t t1) {
    std::vector<Acc<T>> acc(static_cast<size_t>(B));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t / S, s = t % S;
      T* o = out + (a * S + s) * B;
      for (int64_t b = 0; b < B; ++b) acc[b] = accumulate ? static_cast<Acc<T>>(o[b]) : Acc<T>(0);
      for (int64_t j = off(s), e = off(s + 1); j < e; ++j) {
        const T* r = src + (a * K + row(j)) * B;
        for (int64_t b = 0; b < B; ++b) acc[b] += r[b];
      }
      for (int64_t b = 0; b < B; ++b) o[b] = static_cast<T>(acc[b]);
    }
  });
}

}  // namespace

std::pair<int64_t, int64_t> index_range(const Tensor& index) {
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  std::mutex m;
  dispatch_index(index.dtype(), "index_range", [&](auto tag) {
    using I = typename decltype(tag)::type;
    const I* p = index.data<I>();
    for_each_strided<1>(index.shape(), {index.strides()}, [&](auto off, int64_t n, auto step) {
      int64_t l = std::numeric_limits<int64_t>::max(), h = std::numeric_limits<int64_t>::min();
      for (int64_t i = 0; i < n; ++i) {
        const int64_t v = p[off[0] + i * step[0]];
        l = std::min(l, v);
        h = std::max(h, v);
      }
      std::lock_guard<std::mutex> lock(m);  // min/max commute: the combination order does not matter
      lo = std::min(lo, l);
      hi = std::max(hi, h);
    });
  });
  return {lo, hi};
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  Strides xs = x.strides();
  const int64_t xd = xs[dim];
  xs[dim] = 0;  // the dim coordinate comes from the index value
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    dispatch_index(index.dtype(), "gather", [&](auto itag) {
      using I = typename decltype(itag)::type;
      const I* pi = index.data<I>();
      for_each_strided<3>(index.shape(), {index.strides(), out.strides(), xs}, [&](auto off, int64_t n, auto step) {
        if (step[0] == 0) {  // one index value for the whole run (index_select)
          const T* s = px + off[2] + static_cast<int64_t>(pi[off[0]]) * xd;
          T* d = po + off[1];
          for (int64_t i = 0; i < n; ++i) d[i * step[1]] = s[i * step[2]];
          return;
        }
        for (int64_t i = 0; i < n; ++i)
          po[off[1] + i * step[1]] = px[off[2] + i * step[2] + static_cast<int64_t>(pi[off[0] + i * step[0]]) * xd];
      });
    });
  });
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  Shape positions = index.shape();  // one task per position off `dim`; each owns its output elements
  const int64_t L = positions[dim];
  positions[dim] = 1;
  const int64_t is = index.strides()[dim], ss = src.strides()[dim], os = out.strides()[dim];
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* po = out.data<T>();
    const T* ps = src.data<T>();
    dispatch_index(index.dtype(), "scatter_add", [&](auto itag) {
      using I = typename decltype(itag)::type;
      const I* pi = index.data<I>();
      for_each_strided<3>(
          positions, {index.strides(), src.strides(), out.strides()},
          [&](auto off, int64_t n, auto step) {
            for (int64_t j = 0; j < L; ++j)
              for (int64_t i = 0; i < n; ++i) {
                const int64_t t = pi[off[0] + i * step[0] + j * is];
                po[off[2] + i * step[2] + t * os] += ps[off[1] + i * step[1] + j * ss];
              }
          },
          grain_for(L, 32768));
    });
  });
}

void index_add(const Tensor& out, const Tensor& index, const Tensor& src) {
  const int64_t A = out.size(0), n = out.size(1), B = out.size(2), K = index.size(0);
  // Stable counting sort of the sources by destination: rows of destination d are perm[offs[d] .. offs[d+1]).
  std::vector<int64_t> offs(static_cast<size_t>(n + 1), 0), perm(static_cast<size_t>(K));
  with_index_reader(index, "index_add", [&](auto idx) {
    for (int64_t k = 0; k < K; ++k) ++offs[idx(k) + 1];
    for (int64_t d = 0; d < n; ++d) offs[d + 1] += offs[d];
    std::vector<int64_t> pos(offs.begin(), offs.end() - 1);
    for (int64_t k = 0; k < K; ++k) perm[pos[idx(k)]++] = k;
  });
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    sum_segments<T>(src.data<T>(), K, out.data<T>(), A, n, B, [&](int64_t d) { return offs[d]; },
                    [&](int64_t j) { return perm[j]; }, /*accumulate=*/true);
  });
}

void segment_sum(const Tensor& x, const Tensor& offsets, const Tensor& out) {
  const int64_t N = x.size(0), F = x.size(1), S = out.size(0);
  with_index_reader(offsets, "segment_sum", [&](auto off) {
    dispatch_all(x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      sum_segments<T>(x.data<T>(), N, out.data<T>(), 1, S, F, off, [](int64_t j) { return j; }, false);
    });
  });
}

void segment_max(const Tensor& x, const Tensor& offsets, const Tensor& out, const Tensor& argmax) {
  const int64_t N = x.size(0), F = x.size(1), S = out.size(0);
  int64_t* pa = argmax.data<int64_t>();
  with_index_reader(offsets, "segment_max", [&](auto off) {
    dispatch_all(x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = x.data<T>();
      T* po = out.data<T>();
      parallel_for(0, S, grain_for((N / std::max<int64_t>(S, 1) + 1) * F), [&](int64_t s0, int64_t s1) {
        for (int64_t s = s0; s < s1; ++s) {
          const int64_t lo = off(s), hi = off(s + 1);
          T* o = po + s * F;
          int64_t* a = pa + s * F;
          if (lo == hi) {
            std::fill(o, o + F, T(0));
            std::fill(a, a + F, int64_t(-1));
            continue;
          }
          std::copy(px + lo * F, px + (lo + 1) * F, o);
          std::fill(a, a + F, lo);
          for (int64_t r = lo + 1; r < hi; ++r) {
            const T* row = px + r * F;
            for (int64_t f = 0; f < F; ++f) {  // branch-free so it vectorizes; strict: the first maximum wins
              const bool gt = row[f] > o[f];
              o[f] = gt ? row[f] : o[f];
              a[f] = gt ? r : a[f];
            }
          }
        }
      });
    });
  });
}

void segment_ids(const Tensor& offsets, const Tensor& out) {
  const int64_t S = offsets.size(0) - 1, N = out.size(0);
  int64_t* po = out.data<int64_t>();
  with_index_reader(offsets, "segment_ids", [&](auto off) {
    parallel_for(0, S, grain_for(N / std::max<int64_t>(S, 1) + 1), [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; ++s) std::fill(po + off(s), po + off(s + 1), s);
    });
  });
}

}  // namespace engine::cpu
