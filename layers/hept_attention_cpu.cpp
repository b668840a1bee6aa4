// CPU kernels of HEPT's bucketed RBF attention (see layers/hept_attention_kernels.h). One task per (head, block)
// of one hash table at a time (engine::parallel_for); every task writes distinct (row, head) slots, and the tables are
// accumulated in order t = 0, 1, ..., so results do not depend on the thread count. Per task the query and key tiles
// are gathered into small local buffers (keys transposed so the inner loops over keys vectorise).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/backend/dtype_dispatch.h"
#include "engine/engine.h"
#include "layers/hept_attention_kernels.h"
#include "layers/simd_math.h"

namespace layers::cpu {

using engine::Tensor;

namespace {

struct Dims {
  int64_t Np, H, D, C, T, B, nb, raw;
};

Dims dims_of(const Tensor& q, const Tensor& coords, const Tensor& perm_q, int64_t raw_size, int64_t block) {
  Dims d{};
  d.Np = q.size(0);
  d.H = q.size(1);
  d.D = q.size(2);
  d.C = coords.size(1);
  d.T = perm_q.size(0);
  d.B = block;
  d.nb = d.Np / block;
  d.raw = raw_size;
  return d;
}


// Gathers one block's tiles. Masked rows (index >= raw) are zero in every part.
template <class T>
struct Tiles {
  std::vector<T> Q, Qc, Kt, Kct, V, Vt;
  std::vector<int64_t> iq, ik;
  std::vector<char> vq, vk;
  void resize(const Dims& d) {
    Q.assign(d.B * d.D, T(0));
    Qc.assign(d.B * d.C, T(0));
    Kt.assign(d.D * d.B, T(0));
    Kct.assign(d.C * d.B, T(0));
    V.assign(d.B * d.D, T(0));
    Vt.assign(d.D * d.B, T(0));
    iq.assign(d.B, 0);
    ik.assign(d.B, 0);
    vq.assign(d.B, 0);
    vk.assign(d.B, 0);
  }
  void load(const Dims& d, const T* q, const T* k, const T* v, const T* coords, const int64_t* pq,
            const int64_t* pk, int64_t h, int64_t b) {
    const int64_t B = d.B, D = d.D, C = d.C;
    for (int64_t i = 0; i < B; ++i) {
      const int64_t n = pq[b * B + i];
      iq[i] = n;
      vq[i] = n < d.raw;
      const T* qr = q + (n * d.H + h) * D;
      const T* cr = coords + n * C;
      for (int64_t e = 0; e < D; ++e) Q[i * D + e] = vq[i] ? qr[e] : T(0);
      for (int64_t c = 0; c < C; ++c) Qc[i * C + c] = vq[i] ? cr[c] : T(0);
    }
    for (int64_t j = 0; j < B; ++j) {
      const int64_t n = pk[b * B + j];
      ik[j] = n;
      vk[j] = n < d.raw;
      const T* kr = k + (n * d.H + h) * D;
      const T* vr = v + (n * d.H + h) * D;
      const T* cr = coords + n * C;
      for (int64_t e = 0; e < D; ++e) {
        Kt[e * B + j] = vk[j] ? kr[e] : T(0);
        V[j * D + e] = vk[j] ? vr[e] : T(0);
        Vt[e * B + j] = V[j * D + e];
      }
      for (int64_t c = 0; c < C; ++c) Kct[c * B + j] = vk[j] ? cr[c] : T(0);
    }
  }
  // kappa[j] for query i: exp(-1/2 (sum_d (q_id - k_jd)^2 + sum_c (s_c (cq_ic - ck_jc))^2)).
  void kernel_row(const Dims& d, const T* s, int64_t i, T* dist, T* kappa) const {
    const int64_t B = d.B, D = d.D, C = d.C;
    for (int64_t j = 0; j < B; ++j) dist[j] = T(0);
    for (int64_t e = 0; e < D; ++e) {
      const T qe = Q[i * D + e];
      const T* __restrict kr = &Kt[e * B];
#pragma omp simd
      for (int64_t j = 0; j < B; ++j) {
        const T df = qe - kr[j];
        dist[j] += df * df;
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      const T qc = Qc[i * C + c], sc = s[c];
      const T* __restrict kr = &Kct[c * B];
#pragma omp simd
      for (int64_t j = 0; j < B; ++j) {
        const T df = sc * (qc - kr[j]);
        dist[j] += df * df;
      }
    }
#pragma omp simd
    for (int64_t j = 0; j < B; ++j) kappa[j] = simd_exp(T(-0.5) * dist[j]);
  }
};

template <class T>
void forward_impl(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& s_, const Tensor& coords_,
                  const Tensor& perm_q_, const Tensor& perm_k_, int64_t raw, int64_t block, const Tensor& out_,
                  const Tensor& den_) {
  const Dims d = dims_of(q_, coords_, perm_q_, raw, block);
  const T *q = q_.data<T>(), *k = k_.data<T>(), *v = v_.data<T>(), *s = s_.data<T>(), *coords = coords_.data<T>();
  const int64_t *pq = perm_q_.data<int64_t>(), *pk = perm_k_.data<int64_t>();
  T *out = out_.data<T>(), *den = den_.data<T>();
  std::fill(out, out + d.Np * d.H * d.D, T(0));
  std::fill(den, den + d.Np * d.H, T(0));
  for (int64_t t = 0; t < d.T; ++t) {
    engine::parallel_for(0, d.H * d.nb, 1, [&](int64_t t0, int64_t t1) {
      Tiles<T> tl;
      tl.resize(d);
      std::vector<T> dist(d.B), kappa(d.B), num(d.D);
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t h = task / d.nb, b = task % d.nb;
        const int64_t* pqh = pq + (t * d.H + h) * d.Np;
        const int64_t* pkh = pk + (t * d.H + h) * d.Np;
        tl.load(d, q, k, v, coords, pqh, pkh, h, b);
        const T* sh = s + h * d.C;
        for (int64_t i = 0; i < d.B; ++i) {
          tl.kernel_row(d, sh, i, dist.data(), kappa.data());
          T ksum = T(0);
          for (int64_t e = 0; e < d.D; ++e) num[e] = T(0);
          for (int64_t j = 0; j < d.B; ++j) {
            const T kj = kappa[j];
            ksum += kj;
            const T* vr = &tl.V[j * d.D];
#pragma omp simd
            for (int64_t e = 0; e < d.D; ++e) num[e] += kj * vr[e];
          }
          const int64_t n = tl.iq[i];
          T* o = out + (n * d.H + h) * d.D;
          for (int64_t e = 0; e < d.D; ++e) o[e] += num[e];
          den[n * d.H + h] += ksum + T(1e-20);
        }
      }
    });
  }
  engine::parallel_for(0, d.Np * d.H, 1024, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T inv = T(1) / den[r];
      for (int64_t e = 0; e < d.D; ++e) out[r * d.D + e] *= inv;
    }
  });
}

template <class T>
void backward_impl(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& s_, const Tensor& coords_,
                   const Tensor& perm_q_, const Tensor& perm_k_, int64_t raw, int64_t block, const Tensor& out_,
                   const Tensor& den_, const Tensor& gout_, const Tensor& gq_, const Tensor& gk_, const Tensor& gv_,
                   const Tensor& gs_) {
  const Dims d = dims_of(q_, coords_, perm_q_, raw, block);
  const T *q = q_.data<T>(), *k = k_.data<T>(), *v = v_.data<T>(), *s = s_.data<T>(), *coords = coords_.data<T>();
  const int64_t *pq = perm_q_.data<int64_t>(), *pk = perm_k_.data<int64_t>();
  const T *out = out_.data<T>(), *den = den_.data<T>(), *gout = gout_.data<T>();
  T *gq = gq_.data<T>(), *gk = gk_.data<T>(), *gv = gv_.data<T>(), *gs = gs_.data<T>();
  const int64_t NHD = d.Np * d.H * d.D;
  std::fill(gq, gq + NHD, T(0));
  std::fill(gk, gk + NHD, T(0));
  std::fill(gv, gv + NHD, T(0));
  // Per-row scalars: a = gout / den (vector), c = -(gout . out) / den.
  std::vector<T> crow(static_cast<size_t>(d.Np * d.H));
  engine::parallel_for(0, d.Np * d.H, 1024, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T dot = T(0);
      for (int64_t e = 0; e < d.D; ++e) dot += gout[r * d.D + e] * out[r * d.D + e];
      crow[r] = -dot / den[r];
    }
  });
  std::vector<T> gs_part(static_cast<size_t>(d.T * d.H * d.nb * d.C), T(0));
  for (int64_t t = 0; t < d.T; ++t) {
    engine::parallel_for(0, d.H * d.nb, 1, [&](int64_t t0, int64_t t1) {
      Tiles<T> tl;
      tl.resize(d);
      std::vector<T> dist(d.B), kappa(d.B), E(d.B), a(d.D), gqi(d.D), GV(d.B * d.D), GKt(d.D * d.B), cacc(d.C);
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t h = task / d.nb, b = task % d.nb;
        const int64_t* pqh = pq + (t * d.H + h) * d.Np;
        const int64_t* pkh = pk + (t * d.H + h) * d.Np;
        tl.load(d, q, k, v, coords, pqh, pkh, h, b);
        const T* sh = s + h * d.C;
        std::fill(GV.begin(), GV.end(), T(0));
        std::fill(GKt.begin(), GKt.end(), T(0));
        std::fill(cacc.begin(), cacc.end(), T(0));
        for (int64_t i = 0; i < d.B; ++i) {
          const int64_t n = tl.iq[i];
          const int64_t r = n * d.H + h;
          const T inv = T(1) / den[r];
          for (int64_t e = 0; e < d.D; ++e) a[e] = gout[r * d.D + e] * inv;
          const T ci = crow[r];
          tl.kernel_row(d, sh, i, dist.data(), kappa.data());
          // E_j = kappa_j (c_i + a . v_j)
          for (int64_t j = 0; j < d.B; ++j) E[j] = ci;
          for (int64_t e = 0; e < d.D; ++e) {
            const T ae = a[e];
            const T* __restrict vr = &tl.Vt[e * d.B];
#pragma omp simd
            for (int64_t j = 0; j < d.B; ++j) E[j] += ae * vr[j];
          }
          T esum = T(0);
          for (int64_t j = 0; j < d.B; ++j) {
            E[j] *= kappa[j];
            esum += E[j];
          }
          // gv_j += kappa_j a
          for (int64_t j = 0; j < d.B; ++j) {
            const T kj = kappa[j];
            T* __restrict g = &GV[j * d.D];
#pragma omp simd
            for (int64_t e = 0; e < d.D; ++e) g[e] += kj * a[e];
          }
          // gq_i = sum_j E_j (k_j - q_i); gk_j += E_j (q_i - k_j)
          for (int64_t e = 0; e < d.D; ++e) {
            const T qe = tl.Q[i * d.D + e];
            const T* __restrict kr = &tl.Kt[e * d.B];
            T* __restrict gkr = &GKt[e * d.B];
            T acc = T(0);
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < d.B; ++j) {
              const T w = E[j] * (kr[j] - qe);
              acc += w;
              gkr[j] -= w;
            }
            gqi[e] = acc;
          }
          // d/ds_c: -s_c sum_j E_j (cq_ic - ck_jc)^2
          for (int64_t c = 0; c < d.C; ++c) {
            const T qc = tl.Qc[i * d.C + c];
            const T* __restrict kr = &tl.Kct[c * d.B];
            T acc = T(0);
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < d.B; ++j) {
              const T df = qc - kr[j];
              acc += E[j] * df * df;
            }
            cacc[c] += acc;
          }
          (void)esum;
          if (tl.vq[i]) {
            T* g = gq + r * d.D;
            for (int64_t e = 0; e < d.D; ++e) g[e] += gqi[e];
          }
        }
        for (int64_t j = 0; j < d.B; ++j) {
          if (!tl.vk[j]) continue;
          const int64_t r = tl.ik[j] * d.H + h;
          T* gkr = gk + r * d.D;
          T* gvr = gv + r * d.D;
          for (int64_t e = 0; e < d.D; ++e) {
            gkr[e] += GKt[e * d.B + j];
            gvr[e] += GV[j * d.D + e];
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
                            const Tensor& out, const Tensor& den) {
  engine::dispatch_float(q.dtype(), "hept_attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward_impl<T>(q, k, v, s, coords, perm_q, perm_k, raw_size, block_size, out, den);
  });
}

void hept_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                             const Tensor& coords, const Tensor& perm_q, const Tensor& perm_k, int64_t raw_size,
                             int64_t block_size, const Tensor& out, const Tensor& den, const Tensor& gout,
                             const Tensor& gq, const Tensor& gk, const Tensor& gv, const Tensor& gs) {
  engine::dispatch_float(q.dtype(), "hept_attention_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    backward_impl<T>(q, k, v, s, coords, perm_q, perm_k, raw_size, block_size, out, den, gout, gq, gk, gv, gs);
  });
}

}  // namespace layers::cpu
