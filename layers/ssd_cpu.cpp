// CPU kernels of the SSD scan (see layers/ssd_kernels.h): one head per task (engine::parallel_for over heads, so
// results do not depend on the thread count), the [P, n] state kept in a small cache-resident buffer, checkpoints at
// chunk starts, and a backward that recomputes one chunk of states at a time and runs the adjoint recurrence fused
// with every gradient. The inner loops run over the state width n (vectorised with fixed-order `omp simd`
// reductions); n = 16 (every catalog model) gets a compile-time specialisation.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/ssd_kernels.h"

namespace layers::cpu {

using engine::Tensor;

namespace {

struct SsdDims {
  int64_t L, H, P, n, Q, nchunks;
  bool reverse;
  int64_t time(int64_t k) const { return reverse ? L - 1 - k : k; }  // scan step -> sequence position
};

SsdDims dims_of(const Tensor& x, const Tensor& B, int64_t chunk, bool reverse) {
  SsdDims d;
  d.L = x.size(0);
  d.H = x.size(1);
  d.P = x.size(2);
  d.n = B.size(1);
  d.Q = chunk;
  d.nchunks = (d.L + chunk - 1) / chunk;
  d.reverse = reverse;
  return d;
}

// One head's forward scan. S: [P, n] scratch; ckpt: [nchunks, P, n] of this head or null.
template <class T, int NS>
void forward_head(const SsdDims& d, int64_t h, const T* x, const T* dt, T A, const T* B, const T* C, const T* D, T* y,
                  T* ckpt, T* S) {
  const int64_t n = NS > 0 ? NS : d.n, P = d.P, H = d.H, PN = P * n;
  std::fill(S, S + PN, T(0));
  const T Dh = D ? D[h] : T(0);
  for (int64_t k = 0; k < d.L; ++k) {
    if (ckpt && k % d.Q == 0) std::copy(S, S + PN, ckpt + (k / d.Q) * PN);
    const int64_t t = d.time(k);
    const T dtv = dt[t * H + h];
    const T a = std::exp(dtv * A);
    const T* xt = x + (t * H + h) * P;
    const T* Bt = B + t * n;
    const T* Ct = C + t * n;
    T* yt = y + (t * H + h) * P;
    for (int64_t p = 0; p < P; ++p) {
      T* s = S + p * n;
      const T bx = dtv * xt[p];
      T acc = T(0);
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < n; ++j) {
        const T v = a * s[j] + bx * Bt[j];
        s[j] = v;
        acc += v * Ct[j];
      }
      yt[p] = acc + Dh * xt[p];
    }
  }
}

// One head's backward. gBh, gCh: this head's [L, n] partial gradients of B and C (summed over heads afterwards).
template <class T, int NS>
void backward_head(const SsdDims& d, int64_t h, const T* x, const T* dt, T A, const T* B, const T* C, const T* D,
                   const T* ckpt, const T* gy, T* gx, T* gdt, T* gBh, T* gCh, double* gA, double* gD) {
  const int64_t n = NS > 0 ? NS : d.n, P = d.P, H = d.H, PN = P * n;
  std::vector<T> G(static_cast<size_t>(PN), T(0)), Sbuf(static_cast<size_t>((d.Q + 1) * PN));
  std::vector<T> gb(static_cast<size_t>(n)), gc(static_cast<size_t>(n));
  const T Dh = D ? D[h] : T(0);
  double gA_acc = 0.0, gD_acc = 0.0;
  for (int64_t c = d.nchunks - 1; c >= 0; --c) {
    const int64_t k0 = c * d.Q, len = std::min(d.Q, d.L - k0);
    // Recompute the chunk's states: Sbuf[i] is the state before scan step k0 + i.
    std::copy(ckpt + c * PN, ckpt + (c + 1) * PN, Sbuf.data());
    for (int64_t i = 0; i < len; ++i) {
      const int64_t t = d.time(k0 + i);
      const T dtv = dt[t * H + h];
      const T a = std::exp(dtv * A);
      const T* xt = x + (t * H + h) * P;
      const T* Bt = B + t * n;
      const T* s0 = Sbuf.data() + i * PN;
      T* s1 = Sbuf.data() + (i + 1) * PN;
      for (int64_t p = 0; p < P; ++p) {
        const T bx = dtv * xt[p];
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) s1[p * n + j] = a * s0[p * n + j] + bx * Bt[j];
      }
    }
    // Adjoint recurrence over the chunk in reverse scan order. On entry G holds a_{next} G_{next}.
    for (int64_t i = len - 1; i >= 0; --i) {
      const int64_t t = d.time(k0 + i);
      const T dtv = dt[t * H + h];
      const T a = std::exp(dtv * A);
      const T* xt = x + (t * H + h) * P;
      const T* gyt = gy + (t * H + h) * P;
      const T* Bt = B + t * n;
      const T* Ct = C + t * n;
      const T* Scur = Sbuf.data() + (i + 1) * PN;
      const T* Sprev = Sbuf.data() + i * PN;
      T* gxt = gx + (t * H + h) * P;
      std::fill(gb.begin(), gb.end(), T(0));
      std::fill(gc.begin(), gc.end(), T(0));
      T* gbp = gb.data();
      T* gcp = gc.data();
      T xu = T(0), gs = T(0);
      for (int64_t p = 0; p < P; ++p) {
        T* g = G.data() + p * n;
        const T* s = Scur + p * n;
        const T* sp = Sprev + p * n;
        const T gyp = gyt[p], xp = xt[p];
        T u = T(0), dd = T(0);
#pragma omp simd reduction(+ : u, dd)
        for (int64_t j = 0; j < n; ++j) {
          const T gj = g[j] + gyp * Ct[j];
          gcp[j] += gyp * s[j];
          gbp[j] += xp * gj;
          u += gj * Bt[j];
          dd += gj * sp[j];
          g[j] = a * gj;
        }
        gxt[p] = dtv * u + Dh * gyp;
        xu += xp * u;
        gs += dd;
        gD_acc += static_cast<double>(gyp) * static_cast<double>(xp);
      }
      gdt[t * H + h] = xu + A * a * gs;
      gA_acc += static_cast<double>(dtv * a * gs);
      T* gBr = gBh + t * n;
      T* gCr = gCh + t * n;
      for (int64_t j = 0; j < n; ++j) {
        gBr[j] = dtv * gbp[j];
        gCr[j] = gcp[j];
      }
    }
  }
  *gA = gA_acc;
  *gD = gD_acc;
}

template <class T>
void forward_typed(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                   const Tensor& D, int64_t chunk, bool reverse, const Tensor& y, const Tensor& ckpt) {
  const SsdDims d = dims_of(x, B, chunk, reverse);
  if (d.L == 0) return;
  const T* xp = x.data<T>();
  const T* dtp = dt.data<T>();
  const T* Ap = A.data<T>();
  const T* Bp = B.data<T>();
  const T* Cp = C.data<T>();
  const T* Dp = D.defined() ? D.data<T>() : nullptr;
  T* yp = y.data<T>();
  T* cp = ckpt.defined() ? ckpt.data<T>() : nullptr;
  const int64_t PN = d.P * d.n;
  engine::parallel_for(0, d.H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<T> S(static_cast<size_t>(PN));
    for (int64_t h = h0; h < h1; ++h) {
      T* ch = cp ? cp + h * d.nchunks * PN : nullptr;
      if (d.n == 16)
        forward_head<T, 16>(d, h, xp, dtp, Ap[h], Bp, Cp, Dp, yp, ch, S.data());
      else
        forward_head<T, 0>(d, h, xp, dtp, Ap[h], Bp, Cp, Dp, yp, ch, S.data());
    }
  });
}

template <class T>
void backward_typed(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                    const Tensor& D, const Tensor& ckpt, const Tensor& gy, int64_t chunk, bool reverse,
                    const Tensor& gx, const Tensor& gdt, const Tensor& gA, const Tensor& gB, const Tensor& gC,
                    const Tensor& gD) {
  const SsdDims d = dims_of(x, B, chunk, reverse);
  T* gAp = gA.data<T>();
  T* gDp = gD.defined() ? gD.data<T>() : nullptr;
  if (d.L == 0) {
    std::fill(gAp, gAp + d.H, T(0));
    if (gDp) std::fill(gDp, gDp + d.H, T(0));
    return;
  }
  // Per-head partial gradients of the shared B and C, summed over heads in a fixed order below.
  Tensor gBh = engine::empty({d.H, d.L, d.n}, x.options());
  Tensor gCh = engine::empty({d.H, d.L, d.n}, x.options());
  std::vector<double> gAh(static_cast<size_t>(d.H)), gDh(static_cast<size_t>(d.H));
  const T* xp = x.data<T>();
  const T* dtp = dt.data<T>();
  const T* Ap = A.data<T>();
  const T* Bp = B.data<T>();
  const T* Cp = C.data<T>();
  const T* Dp = D.defined() ? D.data<T>() : nullptr;
  const T* cp = ckpt.data<T>();
  const T* gyp = gy.data<T>();
  T* gxp = gx.data<T>();
  T* gdtp = gdt.data<T>();
  T* gBhp = gBh.data<T>();
  T* gChp = gCh.data<T>();
  const int64_t PN = d.P * d.n, Ln = d.L * d.n;
  engine::parallel_for(0, d.H, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      const T* ch = cp + h * d.nchunks * PN;
      if (d.n == 16)
        backward_head<T, 16>(d, h, xp, dtp, Ap[h], Bp, Cp, Dp, ch, gyp, gxp, gdtp, gBhp + h * Ln, gChp + h * Ln,
                             &gAh[h], &gDh[h]);
      else
        backward_head<T, 0>(d, h, xp, dtp, Ap[h], Bp, Cp, Dp, ch, gyp, gxp, gdtp, gBhp + h * Ln, gChp + h * Ln,
                            &gAh[h], &gDh[h]);
    }
  });
  T* gBp = gB.data<T>();
  T* gCp = gC.data<T>();
  engine::parallel_for(0, Ln, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T sb = T(0), sc = T(0);
      for (int64_t h = 0; h < d.H; ++h) {
        sb += gBhp[h * Ln + i];
        sc += gChp[h * Ln + i];
      }
      gBp[i] = sb;
      gCp[i] = sc;
    }
  });
  for (int64_t h = 0; h < d.H; ++h) {
    gAp[h] = static_cast<T>(gAh[h]);
    if (gDp) gDp[h] = static_cast<T>(gDh[h]);
  }
}

}  // namespace

void ssd_forward(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                 const Tensor& D, int64_t chunk, bool reverse, const Tensor& y, const Tensor& ckpt) {
  if (x.dtype() == engine::DType::F64)
    forward_typed<double>(x, dt, A, B, C, D, chunk, reverse, y, ckpt);
  else
    forward_typed<float>(x, dt, A, B, C, D, chunk, reverse, y, ckpt);
}

void ssd_backward(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                  const Tensor& D, const Tensor& ckpt, const Tensor& gy, int64_t chunk, bool reverse,
                  const Tensor& gx, const Tensor& gdt, const Tensor& gA, const Tensor& gB, const Tensor& gC,
                  const Tensor& gD) {
  if (x.dtype() == engine::DType::F64)
    backward_typed<double>(x, dt, A, B, C, D, ckpt, gy, chunk, reverse, gx, gdt, gA, gB, gC, gD);
  else
    backward_typed<float>(x, dt, A, B, C, D, ckpt, gy, chunk, reverse, gx, gdt, gA, gB, gC, gD);
}

}  // namespace layers::cpu
