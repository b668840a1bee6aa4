// CPU kernels of Mamba v1's selective scan (see layers/selective_scan_kernels.h). Channels are processed in fixed
// blocks of kBlock (engine::parallel_for over blocks, so results do not depend on the thread count); a block walks
// the sequence once, step by step, so x/delta/z rows and B/C rows are read contiguously; each channel's n-wide state
// lives in a small buffer and the loops over the state are vectorised (`omp simd`). dB and dC are accumulated per
// block into partial buffers and summed in block order afterwards.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/dtype_dispatch.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/selective_scan_kernels.h"
#include "layers/simd_math.h"

namespace layers::cpu {

using engine::Tensor;

namespace {

constexpr int64_t kBlock = 16;  // channels per task

template <class T>
T softplus(T v) {
  return v > T(20) ? v : std::log1p(std::exp(v));
}
template <class T>
T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

struct Dims {
  int64_t L, E, n, Q, nchunks;
};

Dims dims_of(const Tensor& x, const Tensor& A, int64_t chunk) {
  return {x.size(0), x.size(1), A.size(1), chunk, (x.size(0) + chunk - 1) / chunk};
}

template <class T>
struct Ptrs {
  const T *x, *delta, *A, *B, *C, *D, *bias, *z;
};

template <class T>
Ptrs<T> ptrs(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C, const Tensor& D,
             const Tensor& bias, const Tensor& z) {
  return {x.data<T>(), delta.data<T>(), A.data<T>(), B.data<T>(), C.data<T>(),
          D.data<T>(), bias.data<T>(),  z.defined() ? z.data<T>() : nullptr};
}

// Scans channels [e0, e1) from step t0 to t1 (exclusive), starting from the states h [(e1-e0), n] (updated in place).
// Writes the ungated y_pre when y_pre != null and, when hist != null, the states after each step into
// hist[((t - t0) * (e1 - e0) + (e - e0)) * n].
template <class T>
void scan_block(const Dims& d, const Ptrs<T>& p, int64_t e0, int64_t e1, int64_t t0, int64_t t1, T* h, T* y_pre,
                T* hist) {
  const int64_t n = d.n, E = d.E, nb = e1 - e0;
  for (int64_t t = t0; t < t1; ++t) {
    const T* Bt = p.B + t * n;
    const T* Ct = p.C + t * n;
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t i = t * E + e;
      const T dt = softplus(p.delta[i] + p.bias[e]);
      const T bx = dt * p.x[i];
      const T* Ae = p.A + e * n;
      T* he = h + (e - e0) * n;
      T acc = T(0);
#pragma omp simd reduction(+ : acc)
      for (int64_t s = 0; s < n; ++s) {
        const T v = simd_exp(dt * Ae[s]) * he[s] + bx * Bt[s];
        he[s] = v;
        acc += Ct[s] * v;
      }
      if (y_pre) y_pre[i] = acc + p.D[e] * p.x[i];
    }
    if (hist) std::copy(h, h + nb * n, hist + (t - t0) * nb * n);
  }
}

template <class T>
void forward_typed(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                   const Tensor& D, const Tensor& bias, const Tensor& z, int64_t chunk, const Tensor& out,
                   const Tensor& y_pre, const Tensor& ckpt) {
  const Dims d = dims_of(x, A, chunk);
  const Ptrs<T> p = ptrs<T>(x, delta, A, B, C, D, bias, z);
  T* yp = y_pre.data<T>();
  T* o = out.data<T>();
  T* ck = ckpt.defined() ? ckpt.data<T>() : nullptr;
  const int64_t blocks = (d.E + kBlock - 1) / kBlock;
  engine::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> h(static_cast<size_t>(kBlock * d.n));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t e0 = b * kBlock, e1 = std::min(d.E, e0 + kBlock);
      std::fill(h.begin(), h.end(), T(0));
      for (int64_t c = 0; c < d.nchunks; ++c) {
        if (ck)
          for (int64_t e = e0; e < e1; ++e)
            std::copy(h.begin() + (e - e0) * d.n, h.begin() + (e - e0 + 1) * d.n, ck + (c * d.E + e) * d.n);
        scan_block(d, p, e0, e1, c * d.Q, std::min(d.L, (c + 1) * d.Q), h.data(), yp, static_cast<T*>(nullptr));
      }
      for (int64_t t = 0; t < d.L; ++t)
        for (int64_t e = e0; e < e1; ++e) {
          const int64_t i = t * d.E + e;
          if (p.z) o[i] = yp[i] * p.z[i] * sigmoid(p.z[i]);
          else if (o != yp) o[i] = yp[i];
        }
    }
  });
}

// Reverse pass over one chunk [t0, t1) of channels [e0, e1): hist holds the states after each step (scan_block),
// h0 the states before t0, G [(e1-e0), n] the state adjoints carried in from t1 (updated to t0). Writes gx, gdelta,
// gz; accumulates gA [E, n], gD/gbias sums (acc [2 (e1-e0)]) and this block's dB, dC partials [L, n].
template <class T>
struct BackwardOut {
  T *gx, *gdelta, *gz, *gA, *pB, *pC, *acc;
};

template <class T>
void reverse_chunk(const Dims& d, const Ptrs<T>& p, const T* yp, const T* go, int64_t e0, int64_t e1, int64_t t0,
                   int64_t t1, const T* hist, const T* h0, T* G, const BackwardOut<T>& g) {
  const int64_t n = d.n, E = d.E, nb = e1 - e0;
  for (int64_t t = t1 - 1; t >= t0; --t) {
    const T* Bt = p.B + t * n;
    const T* Ct = p.C + t * n;
    T* gBt = g.pB + t * n;
    T* gCt = g.pC + t * n;
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t i = t * E + e, k = e - e0;
      T gy = go[i];
      if (p.z) {
        const T zv = p.z[i], sg = sigmoid(zv);
        g.gz[i] = gy * yp[i] * sg * (T(1) + zv * (T(1) - sg));
        gy *= zv * sg;
      }
      const T xv = p.x[i];
      const T pre = p.delta[i] + p.bias[e];
      const T dt = softplus(pre);
      const T* ht = hist + ((t - t0) * nb + k) * n;
      const T* hprev = t > t0 ? ht - nb * n : h0 + k * n;
      const T* Ae = p.A + e * n;
      T* gAe = g.gA + e * n;
      T* Ge = G + k * n;
      T gx_acc = T(0), gdt_acc = T(0);
#pragma omp simd reduction(+ : gx_acc, gdt_acc)
      for (int64_t s = 0; s < n; ++s) {
        gCt[s] += gy * ht[s];
        const T gh = Ge[s] + Ct[s] * gy;  // adjoint of h_t
        const T a = simd_exp(dt * Ae[s]);
        gBt[s] += gh * dt * xv;
        gx_acc += gh * dt * Bt[s];
        gdt_acc += gh * (Ae[s] * a * hprev[s] + Bt[s] * xv);
        gAe[s] += gh * dt * a * hprev[s];
        Ge[s] = gh * a;  // carried to t - 1
      }
      g.gx[i] = gx_acc + gy * p.D[e];
      const T gpre = gdt_acc * sigmoid(pre);
      g.gdelta[i] = gpre;
      g.acc[k] += gy * xv;    // dD
      g.acc[nb + k] += gpre;  // d delta_bias
    }
  }
}

template <class T>
void backward_typed(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                    const Tensor& D, const Tensor& bias, const Tensor& z, const Tensor& y_pre, const Tensor& ckpt,
                    const Tensor& gout, int64_t chunk, const Tensor& gx, const Tensor& gdelta, const Tensor& gA,
                    const Tensor& gB, const Tensor& gC, const Tensor& gD, const Tensor& gbias, const Tensor& gz) {
  const Dims d = dims_of(x, A, chunk);
  const int64_t n = d.n, E = d.E, L = d.L;
  const Ptrs<T> p = ptrs<T>(x, delta, A, B, C, D, bias, z);
  const T* yp = y_pre.data<T>();
  const T* go = gout.data<T>();
  const T* ck = ckpt.data<T>();
  const int64_t blocks = (E + kBlock - 1) / kBlock;
  const Tensor partial = engine::zeros({2, blocks, L, n}, x.options());  // dB, dC per channel block
  T* pB_all = partial.data<T>();
  T* pC_all = pB_all + blocks * L * n;
  T* pgA = gA.data<T>();
  std::fill(pgA, pgA + E * n, T(0));
  engine::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> h0(static_cast<size_t>(kBlock * n)), G(h0.size()), hist(static_cast<size_t>(d.Q * kBlock * n));
    std::vector<T> acc(static_cast<size_t>(2 * kBlock));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t e0 = b * kBlock, e1 = std::min(E, e0 + kBlock), nb = e1 - e0;
      const BackwardOut<T> g{gx.data<T>(), gdelta.data<T>(), gz.defined() ? gz.data<T>() : nullptr, pgA,
                             pB_all + b * L * n, pC_all + b * L * n, acc.data()};
      std::fill(G.begin(), G.end(), T(0));
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t c = d.nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * d.Q, t1 = std::min(L, t0 + d.Q);
        for (int64_t e = e0; e < e1; ++e)
          std::copy(ck + (c * E + e) * n, ck + (c * E + e + 1) * n, h0.begin() + (e - e0) * n);
        std::vector<T> h(h0);
        scan_block(d, p, e0, e1, t0, t1, h.data(), static_cast<T*>(nullptr), hist.data());
        reverse_chunk(d, p, yp, go, e0, e1, t0, t1, hist.data(), h0.data(), G.data(), g);
      }
      for (int64_t k = 0; k < nb; ++k) {
        gD.data<T>()[e0 + k] = acc[k];
        gbias.data<T>()[e0 + k] = acc[nb + k];
      }
    }
  });
  // dB, dC: block partials summed in block order
  T *pgB = gB.data<T>(), *pgC = gC.data<T>();
  engine::parallel_for(0, L, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t j = r0 * n; j < r1 * n; ++j) {
      T sb = T(0), sc = T(0);
      for (int64_t b = 0; b < blocks; ++b) sb += pB_all[b * L * n + j], sc += pC_all[b * L * n + j];
      pgB[j] = sb;
      pgC[j] = sc;
    }
  });
}

}  // namespace

void selective_scan_forward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                            const Tensor& D, const Tensor& delta_bias, const Tensor& z, int64_t chunk,
                            const Tensor& out, const Tensor& y_pre, const Tensor& ckpt) {
  engine::dispatch_float(x.dtype(), "selective_scan", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward_typed<T>(x, delta, A, B, C, D, delta_bias, z, chunk, out, y_pre, ckpt);
  });
}

void selective_scan_backward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                             const Tensor& D, const Tensor& delta_bias, const Tensor& z, const Tensor& y_pre,
                             const Tensor& ckpt, const Tensor& gout, int64_t chunk, const Tensor& gx,
                             const Tensor& gdelta, const Tensor& gA, const Tensor& gB, const Tensor& gC,
                             const Tensor& gD, const Tensor& gbias, const Tensor& gz) {
  engine::dispatch_float(x.dtype(), "selective_scan", [&](auto tag) {
    using T = typename decltype(tag)::type;
    backward_typed<T>(x, delta, A, B, C, D, delta_bias, z, y_pre, ckpt, gout, chunk, gx, gdelta, gA, gB, gC, gD,
                      gbias, gz);
  });
}

}  // namespace layers::cpu
