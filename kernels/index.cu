// CUDA indexing kernels (see engine/backend/cuda/index.h). gather and the segment reductions use one thread per
// output element; scatter_add and index_add first sort (destination key, source position) pairs with CUB's stable
// radix sort, turn the sorted keys into CSR bounds by binary search, and then sum each destination's sources in
// ascending source order in one thread (no float atomics). Accumulators match the CPU kernels: T for scatter_add,
// double (float inputs) / int64 for index_add and segment sums.
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "engine/backend/cuda/index.h"
#include "engine/backend/dtype_dispatch.h"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

template <class T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

int64_t stride0(const Tensor& t) { return t.dim() == 0 ? 0 : t.strides()[0]; }

// ---------------------------------------------------------------- kernels
template <class I>
__global__ void range_kernel(const I* index, StridedIndexer<1> ix, int64_t n, long long* lo_hi) {
  long long lo = std::numeric_limits<long long>::max(), hi = std::numeric_limits<long long>::min();
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[1];
    ix.offsets(i, off);
    const long long v = index[off[0]];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  atomicMin(lo_hi, lo);  // integer min/max: order-independent
  atomicMax(lo_hi + 1, hi);
}

template <class T, class I>
__global__ void gather_kernel(const T* x, int64_t xd, const I* index, T* out, StridedIndexer<3> ix, int64_t n) {
  CUDA_KERNEL_LOOP(i, n) {
    int64_t off[3];  // index, out, x (x's dim stride zeroed)
    ix.offsets(i, off);
    out[off[1]] = x[off[2] + static_cast<int64_t>(index[off[0]]) * xd];
  }
}

// Scatter keys: element m of the index (row-major over its shape [outer, L, inner]) goes to the row-major position
// of (outer, index value, inner) in the index shape with dim resized to `size`.
template <class I>
__global__ void scatter_keys(const I* index, StridedIndexer<1> ix, int64_t L, int64_t inner, int64_t size, int64_t n,
                             uint64_t* keys, int64_t* pos) {
  CUDA_KERNEL_LOOP(m, n) {
    int64_t off[1];
    ix.offsets(m, off);
    const int64_t outer = m / (L * inner), in = m % inner;
    keys[m] = static_cast<uint64_t>((outer * size + static_cast<int64_t>(index[off[0]])) * inner + in);
    pos[m] = m;
  }
}

template <class I>
__global__ void index_keys(const I* index, int64_t stride, int64_t n, uint64_t* keys, int64_t* pos) {
  CUDA_KERNEL_LOOP(k, n) {
    keys[k] = static_cast<uint64_t>(index[k * stride]);
    pos[k] = k;
  }
}

// bounds[q] = first position of sorted keys >= q, for q in [0, nq].
__global__ void csr_bounds(const uint64_t* sorted, int64_t n, int64_t nq, int64_t* bounds) {
  CUDA_KERNEL_LOOP(q, nq + 1) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (sorted[mid] < static_cast<uint64_t>(q)) lo = mid + 1;
      else hi = mid;
    }
    bounds[q] = lo;
  }
}

// Thread q owns output element q of the resized index shape (out_ix) and adds its sorted sources in order.
template <class T>
__global__ void scatter_sum(T* out, StridedIndexer<1> out_ix, const T* src, StridedIndexer<1> src_ix,
                            const int64_t* bounds, const int64_t* perm, int64_t nq) {
  CUDA_KERNEL_LOOP(q, nq) {
    const int64_t b = bounds[q], e = bounds[q + 1];
    if (b == e) continue;
    int64_t o[1];
    out_ix.offsets(q, o);
    T acc = out[o[0]];
    for (int64_t j = b; j < e; ++j) {
      int64_t s[1];
      src_ix.offsets(perm[j], s);
      acc += src[s[0]];
    }
    out[o[0]] = acc;
  }
}

// out[a, s, b] = (accumulate ? out : 0) + sum_{j in [off[s], off[s+1])} src[a, row(j), b], row(j) = perm ? perm[j] : j.
template <class T, class O>
__global__ void segment_sum_kernel(const T* src, int64_t K, T* out, int64_t S, int64_t B, const O* off,
                                   int64_t off_stride, const int64_t* perm, bool accumulate, int64_t n) {
  CUDA_KERNEL_LOOP(t, n) {
    const int64_t a = t / (S * B), s = (t / B) % S, b = t % B;
    Acc<T> acc = accumulate ? static_cast<Acc<T>>(out[t]) : Acc<T>(0);
    const int64_t e = off[(s + 1) * off_stride];
    for (int64_t j = off[s * off_stride]; j < e; ++j) acc += src[(a * K + (perm ? perm[j] : j)) * B + b];
    out[t] = static_cast<T>(acc);
  }
}

template <class T, class O>
__global__ void segment_max_kernel(const T* x, int64_t F, const O* off, int64_t off_stride, T* out, int64_t* arg,
                                   int64_t n) {
  CUDA_KERNEL_LOOP(t, n) {
    const int64_t s = t / F, f = t % F;
    const int64_t lo = off[s * off_stride], hi = off[(s + 1) * off_stride];
    if (lo == hi) {
      out[t] = T(0);
      arg[t] = -1;
      continue;
    }
    T best = x[lo * F + f];
    int64_t best_r = lo;
    for (int64_t r = lo + 1; r < hi; ++r) {
      const T v = x[r * F + f];
      if (v > best) {  // strict: the first maximum wins
        best = v;
        best_r = r;
      }
    }
    out[t] = best;
    arg[t] = best_r;
  }
}

// ids[r] = the last segment s with off[s] <= r (skips empty segments).
template <class O>
__global__ void segment_ids_kernel(const O* off, int64_t off_stride, int64_t S, int64_t* ids, int64_t n) {
  CUDA_KERNEL_LOOP(r, n) {
    int64_t lo = 0, hi = S;  // invariant: off[lo] <= r < off[hi]
    while (hi - lo > 1) {
      const int64_t mid = (lo + hi) / 2;
      if (static_cast<int64_t>(off[mid * off_stride]) <= r) lo = mid;
      else hi = mid;
    }
    ids[r] = lo;
  }
}

// ---------------------------------------------------------------- host helpers
// Sorts keys[0, n) (values: source positions) stably; returns [sorted keys; perm] storage and pointers.
struct SortedPairs {
  Tensor keys, pos;  // [2, n] each: input row, sorted row
  const uint64_t* sorted() const { return reinterpret_cast<const uint64_t*>(keys.data<int64_t>()) + keys.size(1); }
  const int64_t* perm() const { return pos.data<int64_t>() + pos.size(1); }
};

SortedPairs alloc_pairs(int64_t n, Device device) {
  return {empty({2, n}, {DType::I64, device}), empty({2, n}, {DType::I64, device})};
}

void sort_pairs(SortedPairs& p, int64_t max_key) {
  const int64_t n = p.keys.size(1);
  uint64_t* k = reinterpret_cast<uint64_t*>(p.keys.data<int64_t>());
  int64_t* v = p.pos.data<int64_t>();
  int end_bit = 1;
  while (end_bit < 64 && (uint64_t(1) << end_bit) <= static_cast<uint64_t>(max_key)) ++end_bit;
  size_t bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, k, k + n, v, v + n, n, 0, end_bit, current_stream()));
  Tensor temp = empty({static_cast<int64_t>(bytes)}, {DType::U8, p.keys.device()});
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.raw_data(), bytes, k, k + n, v, v + n, n, 0, end_bit,
                                             current_stream()));
}

// [nq + 1] int64 CSR bounds of the sorted keys.
Tensor bounds_of(const SortedPairs& p, int64_t nq) {
  Tensor bounds = empty({nq + 1}, {DType::I64, p.keys.device()});
  csr_bounds<<<blocks_for(nq + 1), kThreads, 0, current_stream()>>>(p.sorted(), p.keys.size(1), nq,
                                                                     bounds.data<int64_t>());
  CUDA_LAUNCH_CHECK();
  return bounds;
}

}  // namespace

std::pair<int64_t, int64_t> index_range(const Tensor& index) {
  Tensor lo_hi = from_vector<int64_t>({std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()},
                                      {2}, {DType::I64, index.device()});
  const int64_t n = index.numel();
  dispatch_index(index.dtype(), "index", [&](auto tag) {
    using I = typename decltype(tag)::type;
    range_kernel<<<std::min(blocks_for(n), 1024u), kThreads, 0, current_stream()>>>(
        index.data<I>(), make_indexer<1>(index.shape(), {index.strides()}), n,
        reinterpret_cast<long long*>(lo_hi.data<int64_t>()));
    CUDA_LAUNCH_CHECK();
  });
  auto v = lo_hi.to_vector<int64_t>();
  return {v[0], v[1]};
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  const int64_t n = index.numel();
  if (n == 0) return;
  Strides xs = x.strides();
  const int64_t xd = xs[dim];
  xs[dim] = 0;
  auto ix = make_indexer<3>(index.shape(), {index.strides(), out.strides(), xs});
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(index.dtype(), "index", [&](auto itag) {
      using I = typename decltype(itag)::type;
      gather_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(x.data<T>(), xd, index.data<I>(),
                                                                      out.data<T>(), ix, n);
      CUDA_LAUNCH_CHECK();
    });
  });
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t n = index.numel();
  if (n == 0) return;
  const Shape& s = index.shape();
  const int64_t L = s[dim], size = out.size(dim);
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(dim) + 1; d < s.size(); ++d) inner *= s[d];
  Shape q_shape = s;  // destinations: the index shape with dim resized to out's
  q_shape[dim] = size;
  const int64_t nq = shape_numel(q_shape);
  SortedPairs p = alloc_pairs(n, out.device());
  dispatch_index(index.dtype(), "index", [&](auto itag) {
    using I = typename decltype(itag)::type;
    scatter_keys<<<blocks_for(n), kThreads, 0, current_stream()>>>(
        index.data<I>(), make_indexer<1>(s, {index.strides()}), L, inner, size, n,
        reinterpret_cast<uint64_t*>(p.keys.data<int64_t>()), p.pos.data<int64_t>());
    CUDA_LAUNCH_CHECK();
  });
  sort_pairs(p, nq - 1);
  Tensor bounds = bounds_of(p, nq);
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    scatter_sum<<<blocks_for(nq), kThreads, 0, current_stream()>>>(
        out.data<T>(), make_indexer<1>(q_shape, {out.strides()}), src.data<T>(), make_indexer<1>(s, {src.strides()}),
        bounds.data<int64_t>(), p.perm(), nq);
    CUDA_LAUNCH_CHECK();
  });
}

void index_add(const Tensor& out, const Tensor& index, const Tensor& src) {
  const int64_t A = out.size(0), n = out.size(1), B = out.size(2), K = index.size(0);
  if (K == 0 || out.numel() == 0) return;
  SortedPairs p = alloc_pairs(K, out.device());
  dispatch_index(index.dtype(), "index", [&](auto itag) {
    using I = typename decltype(itag)::type;
    index_keys<<<blocks_for(K), kThreads, 0, current_stream()>>>(
        index.data<I>(), stride0(index), K, reinterpret_cast<uint64_t*>(p.keys.data<int64_t>()),
        p.pos.data<int64_t>());
    CUDA_LAUNCH_CHECK();
  });
  sort_pairs(p, n - 1);
  Tensor bounds = bounds_of(p, n);
  const int64_t total = A * n * B;
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    segment_sum_kernel<<<blocks_for(total), kThreads, 0, current_stream()>>>(
        src.data<T>(), K, out.data<T>(), n, B, bounds.data<int64_t>(), int64_t(1), p.perm(), true, total);
    CUDA_LAUNCH_CHECK();
  });
}

void segment_sum(const Tensor& x, const Tensor& offsets, const Tensor& out) {
  const int64_t N = x.size(0), F = x.size(1), S = out.size(0), total = S * F;
  if (total == 0) return;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(offsets.dtype(), "index", [&](auto otag) {
      using O = typename decltype(otag)::type;
      segment_sum_kernel<<<blocks_for(total), kThreads, 0, current_stream()>>>(
          x.data<T>(), N, out.data<T>(), S, F, offsets.data<O>(), stride0(offsets), nullptr, false, total);
      CUDA_LAUNCH_CHECK();
    });
  });
}

void segment_max(const Tensor& x, const Tensor& offsets, const Tensor& out, const Tensor& argmax) {
  const int64_t F = x.size(1), S = out.size(0), total = S * F;
  if (total == 0) return;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(offsets.dtype(), "index", [&](auto otag) {
      using O = typename decltype(otag)::type;
      segment_max_kernel<<<blocks_for(total), kThreads, 0, current_stream()>>>(
          x.data<T>(), F, offsets.data<O>(), stride0(offsets), out.data<T>(), argmax.data<int64_t>(), total);
      CUDA_LAUNCH_CHECK();
    });
  });
}

void segment_ids(const Tensor& offsets, const Tensor& out) {
  const int64_t S = offsets.size(0) - 1, N = out.size(0);
  if (N == 0) return;
  dispatch_index(offsets.dtype(), "index", [&](auto otag) {
    using O = typename decltype(otag)::type;
    segment_ids_kernel<<<blocks_for(N), kThreads, 0, current_stream()>>>(offsets.data<O>(), stride0(offsets), S,
                                                                         out.data<int64_t>(), N);
    CUDA_LAUNCH_CHECK();
  });
}

}  // namespace engine::cuda
