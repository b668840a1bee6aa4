// CUDA sorting kernels. Each row's keys are copied into a dense buffer as order-preserving unsigned radix keys (so
// the order matches the CPU's: NaN above every number, -0.0 equal to +0.0), paired with their column index and
// sorted stably by CUB: one DeviceRadixSort for a single row, DeviceSegmentedSort (stable) for many rows. The
// values are then gathered from x through the sorted indices; topk keeps the first k columns.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include <limits>
#include <type_traits>

#include "engine/backend/cuda/sort.h"
#include "kernels/common.cuh"

namespace engine::cuda {

namespace {

// Radix key of a value: integers as they are; floats as unsigned integers of the same width whose order is the
// numeric order, with -0.0 equal to +0.0 and every NaN equal to the largest key (so NaN sorts above +inf in every CUB
// code path, segmented small-segment sorts included).
template <class T>
struct RadixKey {
  using type = T;
};
template <>
struct RadixKey<float> {
  using type = uint32_t;
};
template <>
struct RadixKey<double> {
  using type = uint64_t;
};
template <class T>
using radix_key_t = typename RadixKey<T>::type;

template <class T>
__device__ radix_key_t<T> radix_key(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    using U = radix_key_t<T>;
    constexpr U sign = U(1) << (sizeof(U) * 8 - 1);
    if (v != v) return ~U(0);
    if (v == T(0)) return sign;
    U bits;
    memcpy(&bits, &v, sizeof(U));
    return (bits & sign) ? ~bits : (bits | sign);
  } else {
    return v;
  }
}

// keys[r, j] = radix key of x[r, j]; cols[r, j] = j
template <class T>
__global__ void make_keys(const T* x, int64_t row_stride, int64_t col_stride, int64_t n, int64_t total,
                          radix_key_t<T>* keys, int64_t* cols) {
  CUDA_KERNEL_LOOP(i, total) {
    const int64_t r = i / n, j = i % n;
    keys[i] = radix_key(x[r * row_stride + j * col_stride]);
    cols[i] = j;
  }
}

__global__ void row_offsets(int64_t n, int64_t rows, int64_t* offsets) {
  CUDA_KERNEL_LOOP(r, rows + 1) offsets[r] = r * n;
}

// values[r, j] = x[r, cols[r, j]], indices[r, j] = cols[r, j] for j < k (cols is [rows, n]).
template <class T>
__global__ void take_prefix(const T* x, int64_t row_stride, int64_t col_stride, const int64_t* cols, int64_t n,
                            int64_t k, int64_t total, T* values, int64_t* indices) {
  CUDA_KERNEL_LOOP(i, total) {
    const int64_t r = i / k, j = i % k;
    const int64_t c = cols[r * n + j];
    values[i] = x[r * row_stride + c * col_stride];
    indices[i] = c;
  }
}

template <class T>
__global__ void scatter_rows(const T* grad, const int64_t* indices, int64_t k, int64_t n, int64_t total, T* out) {
  CUDA_KERNEL_LOOP(i, total) out[(i / k) * n + indices[i]] = grad[i];
}

// One CUB call: a stable (key, column) sort of `rows` segments of length n (offsets: rows + 1 segment starts, unused
// for a single row). With temp == nullptr it only sets `bytes`, as CUB does.
template <class K>
cudaError_t cub_sort(void* temp, size_t& bytes, const K* keys_in, K* keys_out, const int64_t* cols_in,
                     int64_t* cols_out, int64_t rows, int64_t n, const int64_t* offsets, bool descending) {
  const int64_t total = rows * n;
  const int bits = static_cast<int>(sizeof(K) * 8);
  cudaStream_t s = current_stream();
  if (rows == 1 && descending)
    return cub::DeviceRadixSort::SortPairsDescending(temp, bytes, keys_in, keys_out, cols_in, cols_out, total, 0,
                                                     bits, s);
  if (rows == 1)
    return cub::DeviceRadixSort::SortPairs(temp, bytes, keys_in, keys_out, cols_in, cols_out, total, 0, bits, s);
  if (descending)
    return cub::DeviceSegmentedSort::StableSortPairsDescending(temp, bytes, keys_in, keys_out, cols_in, cols_out,
                                                               total, rows, offsets, offsets + 1, s);
  return cub::DeviceSegmentedSort::StableSortPairs(temp, bytes, keys_in, keys_out, cols_in, cols_out, total, rows,
                                                   offsets, offsets + 1, s);
}

template <class T>
void sort_typed(const Tensor& x, bool descending, const Tensor& values, const Tensor& indices) {
  const int64_t rows = x.size(0), n = x.size(1), k = values.size(1), total = rows * n;
  const int64_t rs = x.strides()[0], cs = x.strides()[1];
  const Device device = x.device();
  const T* px = static_cast<const T*>(x.raw_data());
  using K = radix_key_t<T>;
  Tensor keys = empty({2, total}, x.options());            // [keys in, keys out], reinterpreted as K (same width)
  Tensor cols = empty({2, total}, {DType::I64, device});  // [columns in, sorted columns]
  Tensor offsets = empty({rows + 1}, {DType::I64, device});
  K* pk = static_cast<K*>(keys.raw_data());
  int64_t* pc = cols.data<int64_t>();
  int64_t* po = offsets.data<int64_t>();
  make_keys<<<blocks_for(total), kThreads, 0, current_stream()>>>(px, rs, cs, n, total, pk, pc);
  CUDA_LAUNCH_CHECK();
  row_offsets<<<blocks_for(rows + 1), kThreads, 0, current_stream()>>>(n, rows, po);
  CUDA_LAUNCH_CHECK();
  size_t bytes = 0;  // CUB sizes its scratch space on a first call without it
  CUDA_CHECK(cub_sort<K>(nullptr, bytes, pk, pk + total, pc, pc + total, rows, n, po, descending));
  Tensor scratch = empty({static_cast<int64_t>(bytes)}, {DType::U8, device});
  CUDA_CHECK(cub_sort<K>(scratch.raw_data(), bytes, pk, pk + total, pc, pc + total, rows, n, po, descending));
  take_prefix<<<blocks_for(rows * k), kThreads, 0, current_stream()>>>(
      px, rs, cs, pc + total, n, k, rows * k, static_cast<T*>(values.raw_data()), indices.data<int64_t>());
  CUDA_LAUNCH_CHECK();
}

template <class T>
void sort_backward_typed(const Tensor& grad, const Tensor& indices, const Tensor& grad_in) {
  const int64_t total = grad.numel(), k = grad.size(1), n = grad_in.size(1);
  scatter_rows<T><<<blocks_for(total), kThreads, 0, current_stream()>>>(grad.data<T>(), indices.data<int64_t>(), k,
                                                                       n, total, grad_in.data<T>());
  CUDA_LAUNCH_CHECK();
}

}  // namespace

void sort(const Tensor& x, bool descending, const Tensor& values, const Tensor& indices) {
  if (values.numel() == 0) return;
  switch (x.dtype()) {
    case DType::F32: return sort_typed<float>(x, descending, values, indices);
    case DType::F64: return sort_typed<double>(x, descending, values, indices);
    case DType::I32: return sort_typed<int32_t>(x, descending, values, indices);
    case DType::I64: return sort_typed<int64_t>(x, descending, values, indices);
    case DType::U8:
    case DType::Bool: return sort_typed<uint8_t>(x, descending, values, indices);
  }
}

void sort_backward(const Tensor& grad, const Tensor& indices, const Tensor& grad_in) {
  if (grad.numel() == 0) return;
  if (grad.dtype() == DType::F64) sort_backward_typed<double>(grad, indices, grad_in);
  else sort_backward_typed<float>(grad, indices, grad_in);
}

}  // namespace engine::cuda
