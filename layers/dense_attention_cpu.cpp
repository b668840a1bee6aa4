// CPU kernels of the fused softmax attention (layers/dense_attention_kernels.h). Work is split into fixed blocks of
// kRows rows of one head (engine::parallel_for over the blocks); every row is computed on its own with a fixed loop
// order, so results do not depend on the thread count. Forward: per query row, key tiles of kTile scores, online
// softmax. Backward: pass 1 over query rows (D_i and dq), pass 2 over key rows (dk, dv), probabilities recomputed
// from lse. Inner loops run over the head width (vectorised).
#include <cmath>
#include <limits>
#include <vector>

#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/dense_attention_kernels.h"

namespace layers::cpu {

using engine::Tensor;

namespace {

constexpr int64_t kRows = 32;  // rows per work block
constexpr int64_t kTile = 64;  // keys per score tile

template <class T>
inline T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T s = T(0);
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

template <class T>
inline void axpy(T a, const T* __restrict x, T* __restrict y, int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) y[c] += a * x[c];
}

// Runs f(head, row_begin, row_end) over fixed blocks of kRows rows of each head.
template <class F>
void for_row_blocks(const AttnGeometry& g, F&& f) {
  const int64_t nb = (g.N + kRows - 1) / kRows;
  engine::parallel_for(0, nb * g.H, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t h = w % g.H, r0 = w / g.H * kRows;
      f(h, r0, std::min(g.N, r0 + kRows));
    }
  });
}

template <class T>
void forward_typed(const Tensor& q, const Tensor& k, const Tensor& v, const AttnGeometry& g, const Tensor& o,
                   const Tensor& lse) {
  const T *qp = q.data<T>(), *kp = k.data<T>(), *vp = v.data<T>();
  T *op = o.data<T>(), *lp = lse.data<T>();
  const int64_t H = g.H, D = g.D, Dv = g.Dv;
  const T scale = static_cast<T>(g.scale);
  for_row_blocks(g, [&](int64_t h, int64_t r0, int64_t r1) {
    std::vector<T> s(kTile), acc(static_cast<size_t>(Dv));
    for (int64_t i = r0; i < r1; ++i) {
      int64_t lo, hi;
      attn_key_range(g, i, &lo, &hi);
      const T* qi = qp + (i * H + h) * D;
      T* oi = op + (i * H + h) * Dv;
      std::fill(acc.begin(), acc.end(), T(0));
      T m = -std::numeric_limits<T>::infinity(), l = T(0);
      for (int64_t j0 = lo; j0 < hi; j0 += kTile) {
        const int64_t n = std::min(kTile, hi - j0);
        T tmax = m;
        for (int64_t t = 0; t < n; ++t) {
          s[t] = scale * dot(qi, kp + ((j0 + t) * H + h) * D, D);
          tmax = std::max(tmax, s[t]);
        }
        const T corr = std::exp(m - tmax);  // m = -inf on the first tile: corr = 0, acc and l are 0 anyway
        l *= corr;
        for (int64_t c = 0; c < Dv; ++c) acc[c] *= corr;
        for (int64_t t = 0; t < n; ++t) {
          const T p = std::exp(s[t] - tmax);
          l += p;
          axpy(p, vp + ((j0 + t) * H + h) * Dv, acc.data(), Dv);
        }
        m = tmax;
      }
      if (hi <= lo) {
        for (int64_t c = 0; c < Dv; ++c) oi[c] = T(0);
        lp[i * H + h] = -std::numeric_limits<T>::infinity();
        continue;
      }
      const T inv = T(1) / l;
      for (int64_t c = 0; c < Dv; ++c) oi[c] = acc[c] * inv;
      lp[i * H + h] = m + std::log(l);
    }
  });
}

template <class T>
void backward_typed(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                    const Tensor& gout, const AttnGeometry& g, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const T *qp = q.data<T>(), *kp = k.data<T>(), *vp = v.data<T>(), *op = o.data<T>(), *lp = lse.data<T>();
  const T* gp = gout.data<T>();
  T *dqp = dq.data<T>(), *dkp = dk.data<T>(), *dvp = dv.data<T>();
  const int64_t H = g.H, D = g.D, Dv = g.Dv;
  const T scale = static_cast<T>(g.scale);
  std::vector<T> Drow(static_cast<size_t>(g.N * H));  // D_i = dO_i . o_i, [N, H]
  for_row_blocks(g, [&](int64_t h, int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      int64_t lo, hi;
      attn_key_range(g, i, &lo, &hi);
      const T* qi = qp + (i * H + h) * D;
      const T* gi = gp + (i * H + h) * Dv;
      T* dqi = dqp + (i * H + h) * D;
      const T Di = dot(gi, op + (i * H + h) * Dv, Dv), li = lp[i * H + h];
      Drow[static_cast<size_t>(i * H + h)] = Di;
      for (int64_t c = 0; c < D; ++c) dqi[c] = T(0);
      for (int64_t j = lo; j < hi; ++j) {
        const T* kj = kp + (j * H + h) * D;
        const T p = std::exp(scale * dot(qi, kj, D) - li);
        const T ds = p * (dot(gi, vp + (j * H + h) * Dv, Dv) - Di);
        axpy(ds * scale, kj, dqi, D);
      }
    }
  });
  for_row_blocks(g, [&](int64_t h, int64_t r0, int64_t r1) {
    for (int64_t j = r0; j < r1; ++j) {
      int64_t lo, hi;
      attn_query_range(g, j, &lo, &hi);
      const T* kj = kp + (j * H + h) * D;
      const T* vj = vp + (j * H + h) * Dv;
      T* dkj = dkp + (j * H + h) * D;
      T* dvj = dvp + (j * H + h) * Dv;
      for (int64_t c = 0; c < D; ++c) dkj[c] = T(0);
      for (int64_t c = 0; c < Dv; ++c) dvj[c] = T(0);
      for (int64_t i = lo; i < hi; ++i) {
        const T* qi = qp + (i * H + h) * D;
        const T* gi = gp + (i * H + h) * Dv;
        const T p = std::exp(scale * dot(qi, kj, D) - lp[i * H + h]);
        axpy(p, gi, dvj, Dv);
        const T ds = p * (dot(gi, vj, Dv) - Drow[static_cast<size_t>(i * H + h)]);
        axpy(ds * scale, qi, dkj, D);
      }
    }
  });
}

}  // namespace

void dense_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttnGeometry& g,
                             const Tensor& o, const Tensor& lse) {
  if (q.dtype() == engine::DType::F64)
    forward_typed<double>(q, k, v, g, o, lse);
  else
    forward_typed<float>(q, k, v, g, o, lse);
}

void dense_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                              const Tensor& gout, const AttnGeometry& g, const Tensor& dq, const Tensor& dk,
                              const Tensor& dv) {
  if (q.dtype() == engine::DType::F64)
    backward_typed<double>(q, k, v, o, lse, gout, g, dq, dk, dv);
  else
    backward_typed<float>(q, k, v, o, lse, gout, g, dq, dk, dv);
}

}  // namespace layers::cpu
