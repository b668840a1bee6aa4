// CPU kernels of HEPT's bucketed RBF attention (see layers/hept_attention_kernels.h). One task per (head, block)
// of one hash table at a time (engine::parallel_for); every task writes distinct (row, head) slots, and the tables are
// accumulated in order t = 0, 1, ..., so results do not depend on the thread count.
// Per task the query and key tiles are gathered into small local buffers; the kernel matrix kappa [B, Bp] of the
// block is computed from coordinate differences (vectorised over keys), and every other product of the block is a
// small GEMM (Eigen): forward num = kappa V; backward P = A V^T, gv = kappa^T A, gq = E K - rowsum(E) q,
// gk = E^T Q - colsum(E) k. The q / k tiles are centred on the mean key of the block first: distances and the
// differences k_j - q_i are unchanged, and the two GEMM terms of gq and gk do not cancel large norms.
// The precise float32 backward (out_lo and key_avg given; HEPTOptions::precise_backward). When a query lies far from
// its keys, the roundoff of E_ij = kappa_ij a_i . (v_j - out_i) enters gq and gk multiplied by |q_i - k_j|, and the
// w_q / w_k gradients sum these large terms to a small result (errors up to 1e-4 of the float64 gradients). So:
//   - its forward sums num = kappa V and den in double and keeps out's float32 residual (out_lo), so out + out_lo
//     agrees with the kernel values the backward recomputes;
//   - its backward forms a_i . v_j (a double GEMM) and c_i = -a_i . out_i in double and rounds only E_ij;
//   - gq_i is taken about the query's kernel-weighted mean key kbar_i (key_avg, from the forward):
//     sum_j E_ij (k_j - q_i) = sum_j E_ij (k_j - kbar_i), as sum_j E_ij = 0 over all tables.
// The default (fast) path sums in T and takes gq about q_i.
// Bp is B rounded up to whole vector lanes; the padded key columns have kappa = 0 and zero rows in K and V.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "engine/backend/dtype_dispatch.h"
#include "engine/engine.h"
#include "layers/hept_attention_kernels.h"
#include "engine/simd_math.h"

namespace layers::cpu {

using engine::Tensor;
using engine::simd_exp;

namespace {

constexpr int64_t kLanes = 16;  // Bp is a multiple of this: whole vectors of keys on every x86 width up to AVX-512

// One vector register of T at the width -march gives (GCC vector extension; an attribute on a dependent type is
// ignored, hence the specialisations). Narrower machines split it.
#ifdef __AVX512F__
constexpr size_t kVecBytes = 64;
#else
constexpr size_t kVecBytes = 32;
#endif
template <class T>
struct NativeVec;
template <>
struct NativeVec<float> {
  typedef float type __attribute__((vector_size(kVecBytes)));
};
template <>
struct NativeVec<double> {
  typedef double type __attribute__((vector_size(kVecBytes)));
};

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatMap = Eigen::Map<RowMat<T>>;
template <class T>
using ConstMatMap = Eigen::Map<const RowMat<T>>;

struct Dims {
  int64_t Np, H, D, C, T, B, Bp, nb, raw;
};

Dims dims_of(const Tensor& q, const Tensor& coords, const Tensor& perm_q, int64_t raw_size, int64_t block) {
  Dims d{};
  d.Np = q.size(0);
  d.H = q.size(1);
  d.D = q.size(2);
  d.C = coords.size(1);
  d.T = perm_q.size(0);
  d.B = block;
  d.Bp = (block + kLanes - 1) / kLanes * kLanes;
  d.nb = d.Np / block;
  d.raw = raw_size;
  return d;
}

// One block's tiles (masked rows, index >= raw, are zero in q, k, v and the coordinates, before centring).
//   Q [B, D], Qc [B, C]: queries; K [Bp, D], Kt [D, Bp], V [Bp, D], Kct [C, Bp]: keys (padded entries zero);
//   kappa [B, Bp]: the kernel matrix (padded columns zero).
template <class T>
struct Tiles {
  // Eigen-aligned, so that the vectorised reductions over them split the same way in every call (with the heap's
  // varying alignment, float rounding depended on the process's allocation history)
  std::vector<T, Eigen::aligned_allocator<T>> Q, Qc, K, Kt, Kct, V, kappa;
  std::vector<int64_t> iq, ik;
  std::vector<char> vq, vk;
  Eigen::Matrix<T, 1, Eigen::Dynamic> key_mean;  // [D]: the mean key row the tiles are centred on
  explicit Tiles(const Dims& d)
      : Q(d.B * d.D), Qc(d.B * d.C), K(d.Bp * d.D, T(0)), Kt(d.D * d.Bp, T(0)), Kct(d.C * d.Bp, T(0)),
        V(d.Bp * d.D, T(0)), kappa(d.B * d.Bp, T(0)), iq(d.B), ik(d.B), vq(d.B), vk(d.B) {}

  void load(const Dims& d, const T* q, const T* k, const T* v, const T* coords, const int64_t* pq,
            const int64_t* pk, int64_t h, int64_t b) {
    const int64_t B = d.B, Bp = d.Bp, D = d.D, C = d.C;
    // Copies row n of an [Np, H, D] array into dst (zeros for a masked row).
    auto gather = [&](const T* __restrict src, int64_t n, bool valid, T* __restrict dst) {
      const T* __restrict row = src + (n * d.H + h) * D;
      if (valid) {
#pragma omp simd
        for (int64_t e = 0; e < D; ++e) dst[e] = row[e];
      } else {
        std::fill_n(dst, D, T(0));
      }
    };
    for (int64_t j = 0; j < B; ++j) {
      const int64_t n = pk[b * B + j];
      const bool valid = n < d.raw;
      ik[j] = n;
      vk[j] = valid;
      gather(k, n, valid, &K[j * D]);
      gather(v, n, valid, &V[j * D]);
      for (int64_t c = 0; c < C; ++c) Kct[c * Bp + j] = valid ? coords[n * C + c] : T(0);
    }
    for (int64_t i = 0; i < B; ++i) {
      const int64_t n = pq[b * B + i];
      const bool valid = n < d.raw;
      iq[i] = n;
      vq[i] = valid;
      gather(q, n, valid, &Q[i * D]);
      for (int64_t c = 0; c < C; ++c) Qc[i * C + c] = valid ? coords[n * C + c] : T(0);
    }
    // Centre q and k on the mean key row; Kt is the centred K transposed.
    auto Km = MatMap<T>(K.data(), B, D);
    key_mean = Km.colwise().mean();
    Km.rowwise() -= key_mean;
    MatMap<T>(Q.data(), B, D).rowwise() -= key_mean;
    Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>(Kt.data(), D, B, Eigen::OuterStride<>(Bp)) = Km.transpose();
  }

  // kappa_ij = exp(-1/2 (sum_e (q_ie - k_je)^2 + sum_c (s_c (cq_ic - ck_jc))^2)) for j < B, 0 for padded j. The
  // squared distances of kLanes keys accumulate in registers of the machine's own vector width (a single 16-float
  // GCC vector was split and spilled to the stack on AVX2 machines, 5x slower), kRows query rows at a time: their
  // kRows x (kLanes / width) independent sums hide the FMA latency, which one row's 1-2 sums left exposed. Every
  // (i, j) still sums over e, then c, in order. Then one vectorised exp per row.
  void kernel_matrix(const Dims& d, const T* s) {
    constexpr int64_t kRows = 4;
    int64_t i = 0;
    for (; i + kRows <= d.B; i += kRows) distance_rows<kRows>(d, s, i);
    for (; i < d.B; ++i) distance_rows<1>(d, s, i);
    for (i = 0; i < d.B; ++i) {
      T* __restrict row = &kappa[i * d.Bp];
#pragma omp simd
      for (int64_t j = 0; j < d.Bp; ++j) row[j] = simd_exp(T(-0.5) * row[j]);
      std::fill(row + d.B, row + d.Bp, T(0));
    }
  }

  // Squared distances of query rows i0 .. i0 + R - 1 to every key, into their kappa rows.
  template <int64_t R>
  void distance_rows(const Dims& d, const T* s, int64_t i0) {
    using Vec = typename NativeVec<T>::type;
    constexpr int64_t W = sizeof(Vec) / sizeof(T), NV = kLanes / W;  // lanes per vector, vectors per kLanes keys
    static_assert(NV * W == kLanes);
    const int64_t Bp = d.Bp, D = d.D, C = d.C;
    for (int64_t j0 = 0; j0 < Bp; j0 += kLanes) {
      Vec acc[R][NV] = {};
      auto accumulate = [&](const T* x, int64_t x_stride, const T* keys, T scale) {
        Vec kv[NV];
        for (int64_t v = 0; v < NV; ++v) std::memcpy(&kv[v], keys + j0 + v * W, sizeof(Vec));
        for (int64_t r = 0; r < R; ++r)
          for (int64_t v = 0; v < NV; ++v) {
            const Vec df = scale * (x[r * x_stride] - kv[v]);
            acc[r][v] += df * df;
          }
      };
      for (int64_t e = 0; e < D; ++e) accumulate(&Q[i0 * D + e], D, &Kt[e * Bp], T(1));
      for (int64_t c = 0; c < C; ++c) accumulate(&Qc[i0 * C + c], C, &Kct[c * Bp], s[c]);
      for (int64_t r = 0; r < R; ++r)
        for (int64_t v = 0; v < NV; ++v) std::memcpy(&kappa[(i0 + r) * Bp + j0 + v * W], &acc[r][v], sizeof(Vec));
    }
  }

  MatMap<T> kappa_mat(const Dims& d) { return MatMap<T>(kappa.data(), d.B, d.Bp); }
  MatMap<T> q_mat(const Dims& d) { return MatMap<T>(Q.data(), d.B, d.D); }
  MatMap<T> k_mat(const Dims& d) { return MatMap<T>(K.data(), d.Bp, d.D); }
  MatMap<T> v_mat(const Dims& d) { return MatMap<T>(V.data(), d.Bp, d.D); }
};

// A double as a pair of floats: hi = float(x), lo = float(x - hi) (~48 significant bits).
inline void split_sum(float& hi, float& lo, double x) {
  hi = static_cast<float>(x);
  lo = static_cast<float>(x - static_cast<double>(hi));
}

// Acc: the type num and den are summed in: double for the precise path (key_avg given; writes out_lo, key_avg), else T.
template <class T, class Acc>
void forward_impl(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& s_, const Tensor& coords_,
                  const Tensor& perm_q_, const Tensor& perm_k_, int64_t raw, int64_t block, const Tensor& out_,
                  const Tensor& out_lo_, const Tensor& den_, const Tensor& key_avg_) {
  constexpr bool kWiden = !std::is_same_v<T, Acc>;
  const Dims d = dims_of(q_, coords_, perm_q_, raw, block);
  const T *q = q_.data<T>(), *k = k_.data<T>(), *v = v_.data<T>(), *s = s_.data<T>(), *coords = coords_.data<T>();
  const int64_t *pq = perm_q_.data<int64_t>(), *pk = perm_k_.data<int64_t>();
  T *out = out_.data<T>(), *den = den_.data<T>();
  T* key_avg = key_avg_.defined() ? key_avg_.data<T>() : nullptr;
  T* out_lo = out_lo_.defined() ? out_lo_.data<T>() : nullptr;
  ENGINE_CHECK(!kWiden || out_lo, "hept_attention", "the widened forward needs out_lo");
  // num is summed in out (+ out_lo: a float pair holding the double sum when widening), den in den_acc
  const Tensor den_acc_ = kWiden ? engine::empty({d.Np, d.H}, {engine::dtype_of<Acc>(), out_.device()}) : den_;
  Acc* den_acc = den_acc_.data<Acc>();  // [Np, H]
  std::fill(out, out + d.Np * d.H * d.D, T(0));
  if (kWiden) std::fill(out_lo, out_lo + d.Np * d.H * d.D, T(0));
  std::fill(den_acc, den_acc + d.Np * d.H, Acc(0));
  if (key_avg) std::fill(key_avg, key_avg + d.Np * d.H * d.D, T(0));
  for (int64_t t = 0; t < d.T; ++t) {
    engine::parallel_for(0, d.H * d.nb, 1, [&](int64_t t0, int64_t t1) {
      Tiles<T> tl(d);
      RowMat<Acc> kappa_w, v_w;                        // [B, Bp], [Bp, D]: kappa and V widened (kWiden only)
      RowMat<Acc> num(d.B, d.D);                       // [B, D]: kappa V
      RowMat<T> key_num(d.B, d.D);                     // [B, D]: kappa K (K centred)
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t h = task / d.nb, b = task % d.nb;
        tl.load(d, q, k, v, coords, pq + (t * d.H + h) * d.Np, pk + (t * d.H + h) * d.Np, h, b);
        tl.kernel_matrix(d, s + h * d.C);
        if constexpr (kWiden) {
          kappa_w = tl.kappa_mat(d).template cast<Acc>();
          v_w = tl.v_mat(d).template cast<Acc>();
          num.noalias() = kappa_w * v_w;
        } else {
          num.noalias() = tl.kappa_mat(d) * tl.v_mat(d);
        }
        if (key_avg) key_num.noalias() = tl.kappa_mat(d) * tl.k_mat(d);
        for (int64_t i = 0; i < d.B; ++i) {
          const int64_t r = tl.iq[i] * d.H + h;
          const Acc kappa_sum = tl.kappa_mat(d).row(i).template cast<Acc>().sum();
          T* o = out + r * d.D;
          if constexpr (kWiden) {
            T* lo = out_lo + r * d.D;
            for (int64_t e = 0; e < d.D; ++e) split_sum(o[e], lo[e], static_cast<Acc>(o[e]) + lo[e] + num(i, e));
          } else {
            for (int64_t e = 0; e < d.D; ++e) o[e] += num(i, e);
          }
          den_acc[r] += kappa_sum + Acc(1e-20);
          if (!key_avg) continue;
          T* ka = key_avg + r * d.D;
          for (int64_t e = 0; e < d.D; ++e) ka[e] += key_num(i, e) + static_cast<T>(kappa_sum) * tl.key_mean(e);
        }
      }
    });
  }
  engine::parallel_for(0, d.Np * d.H, 1024, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const Acc inv = Acc(1) / den_acc[r];
      den[r] = static_cast<T>(den_acc[r]);
      for (int64_t e = 0; e < d.D; ++e) {
        const int64_t x = r * d.D + e;
        if constexpr (kWiden) {
          split_sum(out[x], out_lo[x], (static_cast<Acc>(out[x]) + out_lo[x]) * inv);
        } else {
          out[x] *= inv;
        }
        if (key_avg) key_avg[x] = static_cast<T>(static_cast<Acc>(key_avg[x]) * inv);
      }
    }
  });
}

// Acc: the type a_i . v_j + c_i is formed in: double for the precise path (out_lo, key_avg given), else T.
template <class T, class Acc>
void backward_impl(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& s_, const Tensor& coords_,
                   const Tensor& perm_q_, const Tensor& perm_k_, int64_t raw, int64_t block, const Tensor& out_,
                   const Tensor& out_lo_, const Tensor& den_, const Tensor& key_avg_, const Tensor& gout_,
                   const Tensor& gq_, const Tensor& gk_, const Tensor& gv_, const Tensor& gs_) {
  const Dims d = dims_of(q_, coords_, perm_q_, raw, block);
  const T *q = q_.data<T>(), *k = k_.data<T>(), *v = v_.data<T>(), *s = s_.data<T>(), *coords = coords_.data<T>();
  const int64_t *pq = perm_q_.data<int64_t>(), *pk = perm_k_.data<int64_t>();
  constexpr bool kWiden = !std::is_same_v<T, Acc>;
  const T *out = out_.data<T>(), *den = den_.data<T>(), *gout = gout_.data<T>();
  const T* out_lo = out_lo_.defined() ? out_lo_.data<T>() : nullptr;
  const T* key_avg = key_avg_.defined() ? key_avg_.data<T>() : nullptr;
  T *gq = gq_.data<T>(), *gk = gk_.data<T>(), *gv = gv_.data<T>(), *gs = gs_.data<T>();
  const int64_t NHD = d.Np * d.H * d.D;
  std::fill(gq, gq + NHD, T(0));
  std::fill(gk, gk + NHD, T(0));
  std::fill(gv, gv + NHD, T(0));
  std::vector<T> gs_part(static_cast<size_t>(d.T * d.H * d.nb * d.C), T(0));
  for (int64_t t = 0; t < d.T; ++t) {
    engine::parallel_for(0, d.H * d.nb, 1, [&](int64_t t0, int64_t t1) {
      Tiles<T> tl(d);
      RowMat<T> A(d.B, d.D), E(d.B, d.Bp), GQ(d.B, d.D), GK(d.Bp, d.D), GV(d.Bp, d.D);
      RowMat<T> key_avg_tile(d.B, d.D);                 // kbar_i, centred like the tiles (precise path)
      RowMat<Acc> a_w, v_w, av(d.B, d.Bp);                // A [B, D], V [Bp, D] widened (kWiden only); av = A V^T
      Eigen::Matrix<T, Eigen::Dynamic, 1> row_sum(d.B), col_sum(d.Bp);
      std::vector<T> cacc(d.C);
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t h = task / d.nb, b = task % d.nb;
        tl.load(d, q, k, v, coords, pq + (t * d.H + h) * d.Np, pk + (t * d.H + h) * d.Np, h, b);
        const T* sh = s + h * d.C;
        tl.kernel_matrix(d, sh);
        const auto kappa = tl.kappa_mat(d);
        // A_i = gout_i / den_i; dL/dkappa_ij = a_i . v_j + c_i with c_i = -a_i . out_i; E_ij = kappa_ij dL/dkappa_ij.
        for (int64_t i = 0; i < d.B; ++i) {
          const int64_t r = tl.iq[i] * d.H + h;
          const T inv = T(1) / den[r];
          for (int64_t e = 0; e < d.D; ++e) A(i, e) = gout[r * d.D + e] * inv;
        }
        if constexpr (kWiden) {
          a_w = A.template cast<Acc>();
          v_w = tl.v_mat(d).template cast<Acc>();
          av.noalias() = a_w * v_w.transpose();
        } else {
          av.noalias() = A * tl.v_mat(d).transpose();
        }
        for (int64_t i = 0; i < d.B; ++i) {
          const int64_t r = tl.iq[i] * d.H + h;
          Acc ci = 0;
          for (int64_t e = 0; e < d.D; ++e) {
            const Acc lo = out_lo ? static_cast<Acc>(out_lo[r * d.D + e]) : Acc(0);
            ci -= static_cast<Acc>(A(i, e)) * (static_cast<Acc>(out[r * d.D + e]) + lo);
          }
          E.row(i) = ((av.row(i).array() + ci) * kappa.row(i).array().template cast<Acc>()).template cast<T>();
          if (!key_avg) continue;
          const T* ka = key_avg + r * d.D;
          for (int64_t e = 0; e < d.D; ++e) key_avg_tile(i, e) = ka[e] - tl.key_mean(e);
        }
        GV.noalias() = kappa.transpose() * A;
        // gq_i = sum_j E_ij (k_j - q_i) (precise path: about kbar_i, the same as sum_j E_ij = 0 over all tables);
        // gk_j = sum_i E_ij (q_i - k_j)
        row_sum = E.rowwise().sum();
        col_sum = E.colwise().sum().transpose();
        GQ.noalias() = E * tl.k_mat(d);
        if (key_avg)
          GQ -= row_sum.asDiagonal() * key_avg_tile;
        else
          GQ -= row_sum.asDiagonal() * tl.q_mat(d);
        GK.noalias() = E.transpose() * tl.q_mat(d);
        GK -= col_sum.asDiagonal() * tl.k_mat(d);
        // d/ds_c: -s_c sum_ij E_ij (cq_ic - ck_jc)^2
        std::fill(cacc.begin(), cacc.end(), T(0));
        for (int64_t i = 0; i < d.B; ++i) {
          const T* __restrict er = &E(i, 0);
          for (int64_t c = 0; c < d.C; ++c) {
            const T qc = tl.Qc[i * d.C + c];
            const T* __restrict kr = &tl.Kct[c * d.Bp];
            T acc = T(0);
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < d.Bp; ++j) {
              const T df = qc - kr[j];
              acc += er[j] * df * df;
            }
            cacc[c] += acc;
          }
        }
        for (int64_t i = 0; i < d.B; ++i) {
          if (!tl.vq[i]) continue;
          T* g = gq + (tl.iq[i] * d.H + h) * d.D;
          for (int64_t e = 0; e < d.D; ++e) g[e] += GQ(i, e);
        }
        for (int64_t j = 0; j < d.B; ++j) {
          if (!tl.vk[j]) continue;
          const int64_t r = tl.ik[j] * d.H + h;
          T* gkr = gk + r * d.D;
          T* gvr = gv + r * d.D;
          for (int64_t e = 0; e < d.D; ++e) {
            gkr[e] += GK(j, e);
            gvr[e] += GV(j, e);
          }
        }
        T* part = &gs_part[static_cast<size_t>(((t * d.H + h) * d.nb + b) * d.C)];
        for (int64_t c = 0; c < d.C; ++c) part[c] = -sh[c] * cacc[c];
      }
    });
  }
  for (int64_t h = 0; h < d.H; ++h)
    for (int64_t c = 0; c < d.C; ++c) {
      T acc = T(0);
      for (int64_t t = 0; t < d.T; ++t)
        for (int64_t b = 0; b < d.nb; ++b) acc += gs_part[static_cast<size_t>(((t * d.H + h) * d.nb + b) * d.C + c)];
      gs[h * d.C + c] = acc;
    }
}

template <class T>
void project_impl(const Tensor& q_, const Tensor& k_, const Tensor& s_, const Tensor& coords_, const Tensor& alpha_,
                  int64_t raw, const Tensor& pq_, const Tensor& pk_) {
  const int64_t Np = q_.size(0), H = q_.size(1), D = q_.size(2), C = coords_.size(1), T_ = alpha_.size(2);
  const int64_t E = D + C;
  const T *q = q_.data<T>(), *k = k_.data<T>(), *s = s_.data<T>(), *coords = coords_.data<T>();
  const T* alpha = alpha_.data<T>();
  double *pq = pq_.data<double>(), *pk = pk_.data<double>();
  engine::parallel_for(0, Np, 256, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const bool valid = n < raw;
      for (int64_t h = 0; h < H; ++h) {
        const T* qr = q + (n * H + h) * D;
        const T* kr = k + (n * H + h) * D;
        for (int64_t t = 0; t < T_; ++t) {
          double aq = 0, ak = 0;
          if (valid) {
            const T* al = alpha + h * E * T_ + t;
            for (int64_t e = 0; e < D; ++e) {
              aq += static_cast<double>(qr[e]) * static_cast<double>(al[e * T_]);
              ak += static_cast<double>(kr[e]) * static_cast<double>(al[e * T_]);
            }
            double ac = 0;
            for (int64_t c = 0; c < C; ++c)
              ac += static_cast<double>(s[h * C + c] * coords[n * C + c]) * static_cast<double>(al[(D + c) * T_]);
            aq += ac;
            ak += ac;
          }
          pq[(t * H + h) * Np + n] = aq;
          pk[(t * H + h) * Np + n] = ak;
        }
      }
    }
  });
}

}  // namespace

void hept_project(const Tensor& q, const Tensor& k, const Tensor& s, const Tensor& coords, const Tensor& alpha,
                  int64_t raw_size, const Tensor& proj_q, const Tensor& proj_k) {
  engine::dispatch_float(q.dtype(), "hept_project", [&](auto tag) {
    using T = typename decltype(tag)::type;
    project_impl<T>(q, k, s, coords, alpha, raw_size, proj_q, proj_k);
  });
}

void hept_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s, const Tensor& coords,
                            const Tensor& perm_q, const Tensor& perm_k, int64_t raw_size, int64_t block_size,
                            const Tensor& out, const Tensor& out_lo, const Tensor& den, const Tensor& key_avg) {
  engine::dispatch_float(q.dtype(), "hept_attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (key_avg.defined())
      forward_impl<T, double>(q, k, v, s, coords, perm_q, perm_k, raw_size, block_size, out, out_lo, den, key_avg);
    else
      forward_impl<T, T>(q, k, v, s, coords, perm_q, perm_k, raw_size, block_size, out, out_lo, den, key_avg);
  });
}

void hept_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                             const Tensor& coords, const Tensor& perm_q, const Tensor& perm_k, int64_t raw_size,
                             int64_t block_size, const Tensor& out, const Tensor& out_lo, const Tensor& den,
                             const Tensor& key_avg, const Tensor& gout, const Tensor& gq, const Tensor& gk,
                             const Tensor& gv, const Tensor& gs) {
  engine::dispatch_float(q.dtype(), "hept_attention_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (key_avg.defined())
      backward_impl<T, double>(q, k, v, s, coords, perm_q, perm_k, raw_size, block_size, out, out_lo, den, key_avg,
                               gout, gq, gk, gv, gs);
    else
      backward_impl<T, T>(q, k, v, s, coords, perm_q, perm_k, raw_size, block_size, out, out_lo, den, key_avg, gout,
                          gq, gk, gv, gs);
  });
}

}  // namespace layers::cpu
