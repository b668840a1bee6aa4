// CPU kernels of the fused softmax attention (layers/dense_attention_kernels.h). Work is split into fixed blocks of
// kRows rows of one head (engine::parallel_for over the blocks), so results do not depend on the thread count.
// For each tile of kTile rows of the other side (inside the union of the block's ranges) the tile is packed
// transposed once ([width][kTile]) and shared by the block's rows; a row's kTile scores are then one loop over the
// head width with the inner loop over the tile (vectorised), masked to the row's own range, exponentiated in one
// vectorised loop (simd_exp: a polynomial for float32, std::exp for float64).
//   forward: per query row, online softmax over the key tiles.
//   backward: pass 1 over query rows (D_i = dO_i . o_i and dq), pass 2 over key rows (dk, dv), probabilities
//             recomputed from lse.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/dense_attention_kernels.h"
#include "engine/simd_math.h"

namespace layers::cpu {

using engine::Tensor;
using engine::simd_exp;

namespace {

constexpr int64_t kRows = 32;  // rows per work block
constexpr int64_t kTile = 64;  // other-side rows per packed tile

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

// Packs rows [r0, r0 + n) of head h of x [N, H, W] transposed into out [W][kTile].
template <class T>
void pack_t(const T* x, int64_t H, int64_t W, int64_t h, int64_t r0, int64_t n, T* out) {
  for (int64_t t = 0; t < n; ++t) {
    const T* row = x + ((r0 + t) * H + h) * W;
    for (int64_t c = 0; c < W; ++c) out[c * kTile + t] = row[c];
  }
}

// out[t] = sum_c a[c] xt[c][t] for t < n (xt packed by pack_t), vectorised over t.
template <class T>
void tile_dots(const T* __restrict a, const T* __restrict xt, int64_t W, int64_t n, T* __restrict out) {
  std::fill(out, out + n, T(0));
  for (int64_t c = 0; c < W; ++c) {
    const T ac = a[c];
    const T* __restrict col = xt + c * kTile;
#pragma omp simd
    for (int64_t t = 0; t < n; ++t) out[t] += ac * col[t];
  }
}

// p[t] = exp(scale * p[t] - shift[t or 0]) inside [lo, hi) (tile offsets), 0 outside.
template <class T>
void masked_exp(T* __restrict p, int64_t n, int64_t lo, int64_t hi, T scale, const T* __restrict shift,
                T shift0) {
#pragma omp simd
  for (int64_t t = 0; t < n; ++t) {
    const T sh = shift ? shift[t] : shift0;
    p[t] = (t >= lo && t < hi) ? simd_exp(scale * p[t] - sh) : T(0);
  }
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
  const T scale = static_cast<T>(g.scale), ninf = -std::numeric_limits<T>::infinity();
  for_row_blocks(g, [&](int64_t h, int64_t r0, int64_t r1) {
    const int64_t R = r1 - r0;
    std::vector<T> kt(static_cast<size_t>(D * kTile)), s(kTile), acc(static_cast<size_t>(R * Dv), T(0));
    std::vector<T> m(static_cast<size_t>(R), ninf), l(static_cast<size_t>(R), T(0));
    std::vector<int64_t> lo(static_cast<size_t>(R)), hi(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) attn_key_range(g, r0 + r, &lo[static_cast<size_t>(r)], &hi[static_cast<size_t>(r)]);
    int64_t blo, bhi;
    attn_block_key_range(g, r0, r1, &blo, &bhi);
    for (int64_t j0 = blo; j0 < bhi; j0 += kTile) {
      const int64_t n = std::min(kTile, bhi - j0);
      pack_t(kp, H, D, h, j0, n, kt.data());
      for (int64_t r = 0; r < R; ++r) {
        const int64_t a = std::max<int64_t>(lo[static_cast<size_t>(r)] - j0, 0);
        const int64_t b = std::min<int64_t>(hi[static_cast<size_t>(r)] - j0, n);
        if (a >= b) continue;
        tile_dots(qp + ((r0 + r) * H + h) * D, kt.data(), D, n, s.data());
        T tmax = m[static_cast<size_t>(r)];
        for (int64_t t = a; t < b; ++t) tmax = std::max(tmax, scale * s[t]);
        masked_exp(s.data(), n, a, b, scale, static_cast<const T*>(nullptr), tmax);
        // m = -inf on the row's first tile: corr = 0, acc and l are 0 anyway.
        const T corr = simd_exp(m[static_cast<size_t>(r)] - tmax);
        T* ar = acc.data() + r * Dv;
        T lsum = T(0);
        for (int64_t c = 0; c < Dv; ++c) ar[c] *= corr;
        for (int64_t t = a; t < b; ++t) {
          lsum += s[t];
          axpy(s[t], vp + ((j0 + t) * H + h) * Dv, ar, Dv);
        }
        l[static_cast<size_t>(r)] = l[static_cast<size_t>(r)] * corr + lsum;
        m[static_cast<size_t>(r)] = tmax;
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const int64_t i = r0 + r;
      T* oi = op + (i * H + h) * Dv;
      const bool none = hi[static_cast<size_t>(r)] <= lo[static_cast<size_t>(r)];
      const T inv = none ? T(0) : T(1) / l[static_cast<size_t>(r)];
      for (int64_t c = 0; c < Dv; ++c) oi[c] = acc[static_cast<size_t>(r * Dv + c)] * inv;
      lp[i * H + h] = none ? ninf : m[static_cast<size_t>(r)] + std::log(l[static_cast<size_t>(r)]);
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
  // Pass 1: query rows. ds_ij = p_ij (dO_i . v_j - D_i), dq_i = scale sum_j ds_ij k_j.
  for_row_blocks(g, [&](int64_t h, int64_t r0, int64_t r1) {
    std::vector<T> kt(static_cast<size_t>(D * kTile)), vt(static_cast<size_t>(Dv * kTile)), p(kTile), dp(kTile);
    for (int64_t i = r0; i < r1; ++i) {
      Drow[static_cast<size_t>(i * H + h)] = dot(gp + (i * H + h) * Dv, op + (i * H + h) * Dv, Dv);
      std::fill(dqp + (i * H + h) * D, dqp + (i * H + h + 1) * D, T(0));
    }
    int64_t blo, bhi;
    attn_block_key_range(g, r0, r1, &blo, &bhi);
    for (int64_t j0 = blo; j0 < bhi; j0 += kTile) {
      const int64_t n = std::min(kTile, bhi - j0);
      pack_t(kp, H, D, h, j0, n, kt.data());
      pack_t(vp, H, Dv, h, j0, n, vt.data());
      for (int64_t i = r0; i < r1; ++i) {
        int64_t lo, hi;
        attn_key_range(g, i, &lo, &hi);
        const int64_t a = std::max<int64_t>(lo - j0, 0), b = std::min<int64_t>(hi - j0, n);
        if (a >= b) continue;
        const T* gi = gp + (i * H + h) * Dv;
        const T Di = Drow[static_cast<size_t>(i * H + h)];
        tile_dots(qp + (i * H + h) * D, kt.data(), D, n, p.data());
        masked_exp(p.data(), n, a, b, scale, static_cast<const T*>(nullptr), lp[i * H + h]);
        tile_dots(gi, vt.data(), Dv, n, dp.data());
        T* dqi = dqp + (i * H + h) * D;
        for (int64_t t = a; t < b; ++t) axpy(p[t] * (dp[t] - Di) * scale, kp + ((j0 + t) * H + h) * D, dqi, D);
      }
    }
  });
  // Pass 2: key rows. dv_j = sum_i p_ij dO_i, dk_j = scale sum_i ds_ij q_i.
  for_row_blocks(g, [&](int64_t h, int64_t r0, int64_t r1) {
    std::vector<T> qt(static_cast<size_t>(D * kTile)), gt(static_cast<size_t>(Dv * kTile)), p(kTile), dp(kTile);
    std::vector<T> ls(kTile), Ds(kTile);
    for (int64_t j = r0; j < r1; ++j) {
      std::fill(dkp + (j * H + h) * D, dkp + (j * H + h + 1) * D, T(0));
      std::fill(dvp + (j * H + h) * Dv, dvp + (j * H + h + 1) * Dv, T(0));
    }
    int64_t blo, bhi;
    attn_block_query_range(g, r0, r1, &blo, &bhi);
    for (int64_t i0 = blo; i0 < bhi; i0 += kTile) {
      const int64_t n = std::min(kTile, bhi - i0);
      pack_t(qp, H, D, h, i0, n, qt.data());
      pack_t(gp, H, Dv, h, i0, n, gt.data());
      for (int64_t t = 0; t < n; ++t) {
        ls[t] = lp[(i0 + t) * H + h];
        Ds[t] = Drow[static_cast<size_t>((i0 + t) * H + h)];
      }
      for (int64_t j = r0; j < r1; ++j) {
        int64_t lo, hi;
        attn_query_range(g, j, &lo, &hi);
        const int64_t a = std::max<int64_t>(lo - i0, 0), b = std::min<int64_t>(hi - i0, n);
        if (a >= b) continue;
        tile_dots(kp + (j * H + h) * D, qt.data(), D, n, p.data());
        masked_exp(p.data(), n, a, b, scale, ls.data(), T(0));
        tile_dots(vp + (j * H + h) * Dv, gt.data(), Dv, n, dp.data());
        T* dkj = dkp + (j * H + h) * D;
        T* dvj = dvp + (j * H + h) * Dv;
        for (int64_t t = a; t < b; ++t) {
          const int64_t i = i0 + t;
          axpy(p[t], gp + (i * H + h) * Dv, dvj, Dv);
          axpy(p[t] * (dp[t] - Ds[t]) * scale, qp + (i * H + h) * D, dkj, D);
        }
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
