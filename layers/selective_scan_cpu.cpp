// CPU kernels of Mamba v1's selective scan (see layers/selective_scan_kernels.h). Channels are processed in fixed
// blocks of kBlock (engine::parallel_for over blocks, so results do not depend on the thread count); a block walks
// the sequence once, step by step, reading x/delta/z rows and B/C rows contiguously. Inside a block the channels are
// the vector lanes: states are kept as [n][kBlock] (one AVX-512 register per state index), so every update is a
// vertical operation with no horizontal sums, and exp/softplus/sigmoid are the vectorisable versions of
// engine/simd_math.h. A partial last block is padded with inert lanes (x = 0, no gradient). dB and dC (sums over
// channels) are written per block into partial buffers and summed in block order afterwards.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/dtype_dispatch.h"
#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/selective_scan_kernels.h"
#include "engine/simd_math.h"

namespace layers::cpu {

using engine::Tensor;
using engine::simd_exp;
using engine::simd_sigmoid;
using engine::simd_softplus;

namespace {

constexpr int64_t K = 16;  // channels per block = vector lanes

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

// One block of channels [e0, e0 + nb), nb <= K: A transposed to [n][K] (padding lanes -1), the delta bias lanes
// (padding 0).
template <class T>
struct Block {
  int64_t e0, nb;
  std::vector<T> A;  // [n][K]
  T bias[K];

  Block(const Dims& d, const Ptrs<T>& p, int64_t b) : e0(b * K), nb(std::min(K, d.E - b * K)), A(d.n * K, T(-1)) {
    for (int64_t s = 0; s < d.n; ++s)
      for (int64_t k = 0; k < nb; ++k) A[s * K + k] = p.A[(e0 + k) * d.n + s];
    for (int64_t k = 0; k < K; ++k) bias[k] = k < nb ? p.bias[e0 + k] : T(0);
  }
  // Copies state [E, n] rows of this block into [n][K] (padding lanes 0), and back.
  void load_state(const T* src, int64_t n, T* dst) const {
    std::fill(dst, dst + n * K, T(0));
    for (int64_t k = 0; k < nb; ++k)
      for (int64_t s = 0; s < n; ++s) dst[s * K + k] = src[(e0 + k) * n + s];
  }
  void store_state(const T* src, int64_t n, T* dst) const {
    for (int64_t k = 0; k < nb; ++k)
      for (int64_t s = 0; s < n; ++s) dst[(e0 + k) * n + s] = src[s * K + k];
  }
};

// dst[k] = src[k] for the nb valid lanes, 0 on the padding lanes. A full block is one vector copy: filling the lanes
// one by one would stall the vector loads that read them back (store forwarding).
template <class T>
inline void load_lanes(T* dst, const T* src, int64_t nb) {
  if (nb == K) {
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) dst[k] = src[k];
  } else {
    for (int64_t k = 0; k < K; ++k) dst[k] = k < nb ? src[k] : T(0);
  }
}

// Row t of this block: x (0 on padding lanes), the pre-softplus delta + bias, and dt = softplus(pre).
template <class T>
struct StepRow {
  T x[K], pre[K], dt[K];

  StepRow(const Dims& d, const Ptrs<T>& p, const Block<T>& b, int64_t t) {
    const int64_t i0 = t * d.E + b.e0;
    load_lanes(x, p.x + i0, b.nb);
    load_lanes(pre, p.delta + i0, b.nb);
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) pre[k] += b.bias[k];
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) dt[k] = simd_softplus(pre[k]);
  }
};

// Scans the block from step t0 to t1 (exclusive), starting from the states h [n][K] (updated in place). Writes the
// ungated y_pre when y_pre != null and, when hist != null, the states after each step into hist[(t - t0) * n * K].
template <class T>
void scan_block(const Dims& d, const Ptrs<T>& p, const Block<T>& b, int64_t t0, int64_t t1, T* h, T* y_pre,
                T* hist) {
  const int64_t n = d.n;
  for (int64_t t = t0; t < t1; ++t) {
    const StepRow<T> r(d, p, b, t);
    T bx[K], acc[K];
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) bx[k] = r.dt[k] * r.x[k], acc[k] = T(0);
    for (int64_t s = 0; s < n; ++s) {
      const T Bs = p.B[t * n + s], Cs = p.C[t * n + s];
      const T* As = b.A.data() + s * K;
      T* hs = h + s * K;
#pragma omp simd
      for (int64_t k = 0; k < K; ++k) {
        const T v = simd_exp(r.dt[k] * As[k]) * hs[k] + bx[k] * Bs;
        hs[k] = v;
        acc[k] += Cs * v;
      }
    }
    if (y_pre)
      for (int64_t k = 0; k < b.nb; ++k) y_pre[t * d.E + b.e0 + k] = acc[k] + p.D[b.e0 + k] * r.x[k];
    if (hist) std::copy(h, h + n * K, hist + (t - t0) * n * K);
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
  const int64_t blocks = (d.E + K - 1) / K;
  engine::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> h(static_cast<size_t>(d.n * K));
    for (int64_t bi = b0; bi < b1; ++bi) {
      const Block<T> b(d, p, bi);
      std::fill(h.begin(), h.end(), T(0));
      for (int64_t c = 0; c < d.nchunks; ++c) {
        if (ck) b.store_state(h.data(), d.n, ck + c * d.E * d.n);
        scan_block(d, p, b, c * d.Q, std::min(d.L, (c + 1) * d.Q), h.data(), yp, static_cast<T*>(nullptr));
      }
      for (int64_t t = 0; t < d.L; ++t)
        for (int64_t e = b.e0; e < b.e0 + b.nb; ++e) {
          const int64_t i = t * d.E + e;
          if (p.z) o[i] = yp[i] * p.z[i] * simd_sigmoid(p.z[i]);
          else if (o != yp) o[i] = yp[i];
        }
    }
  });
}

// Per-block outputs of the backward: gx, gdelta, gz rows are written directly; gA [n][K], the dD and d delta_bias
// sums (acc [2][K]) and this block's dB, dC partial rows [L, n] are accumulated.
template <class T>
struct BackwardOut {
  T *gx, *gdelta, *gz, *gA, *pB, *pC, *acc;
};

// Reverse pass over one chunk [t0, t1) of a block: hist holds the states after each step (scan_block), h0 the
// states before t0 ([n][K]), G [n][K] the state adjoints carried in from t1 (updated to t0).
template <class T>
void reverse_chunk(const Dims& d, const Ptrs<T>& p, const Block<T>& b, const T* yp, const T* go, int64_t t0,
                   int64_t t1, const T* hist, const T* h0, T* G, const BackwardOut<T>& g) {
  const int64_t n = d.n, E = d.E;
  for (int64_t t = t1 - 1; t >= t0; --t) {
    const StepRow<T> r(d, p, b, t);
    T gy[K], gx[K], gdt[K];
    const int64_t i0 = t * E + b.e0;
    load_lanes(gy, go + i0, b.nb);
    for (int64_t k = 0; k < K; ++k) gx[k] = gdt[k] = T(0);
    if (p.z) {  // gate: lanes gathered into padded rows first, so the sigmoid loop vectorises
      T zv[K], ypv[K], gzv[K];
      load_lanes(zv, p.z + i0, b.nb);
      load_lanes(ypv, yp + i0, b.nb);
#pragma omp simd
      for (int64_t k = 0; k < K; ++k) {
        const T sg = simd_sigmoid(zv[k]);
        gzv[k] = gy[k] * ypv[k] * sg * (T(1) + zv[k] * (T(1) - sg));
        gy[k] *= zv[k] * sg;
      }
      for (int64_t k = 0; k < b.nb; ++k) g.gz[i0 + k] = gzv[k];
    }
    const T* ht = hist + (t - t0) * n * K;
    const T* hprev = t > t0 ? ht - n * K : h0;
    for (int64_t s = 0; s < n; ++s) {
      const T Bs = p.B[t * n + s], Cs = p.C[t * n + s];
      const T* As = b.A.data() + s * K;
      T* Gs = G + s * K;
      T* gAs = g.gA + s * K;
      T sb = T(0), sc = T(0);
#pragma omp simd reduction(+ : sb, sc)
      for (int64_t k = 0; k < K; ++k) {
        const T hp = hprev[s * K + k];
        const T gh = Gs[k] + Cs * gy[k];  // adjoint of h_t
        const T a = simd_exp(r.dt[k] * As[k]);
        sb += gh * r.dt[k] * r.x[k];
        sc += gy[k] * ht[s * K + k];
        gx[k] += gh * r.dt[k] * Bs;
        gdt[k] += gh * (As[k] * a * hp + Bs * r.x[k]);
        gAs[k] += gh * r.dt[k] * a * hp;
        Gs[k] = gh * a;  // carried to t - 1
      }
      g.pB[t * n + s] = sb;
      g.pC[t * n + s] = sc;
    }
    T gpre[K];
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) gpre[k] = gdt[k] * simd_sigmoid(r.pre[k]);
    for (int64_t k = 0; k < b.nb; ++k) {
      g.gx[i0 + k] = gx[k] + gy[k] * p.D[b.e0 + k];
      g.gdelta[i0 + k] = gpre[k];
      g.acc[k] += gy[k] * r.x[k];  // dD
      g.acc[K + k] += gpre[k];     // d delta_bias
    }
  }
}

template <class T>
void backward_typed(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                    const Tensor& D, const Tensor& bias, const Tensor& z, const Tensor& y_pre, const Tensor& ckpt,
                    const Tensor& gout, int64_t chunk, const Tensor& gx, const Tensor& gdelta, const Tensor& gA,
                    const Tensor& gB, const Tensor& gC, const Tensor& gD, const Tensor& gbias, const Tensor& gz) {
  const Dims d = dims_of(x, A, chunk);
  const int64_t n = d.n, L = d.L;
  const Ptrs<T> p = ptrs<T>(x, delta, A, B, C, D, bias, z);
  const T* yp = y_pre.data<T>();
  const T* go = gout.data<T>();
  const T* ck = ckpt.data<T>();
  const int64_t blocks = (d.E + K - 1) / K;
  const Tensor partial = engine::empty({2, blocks, L, n}, x.options());  // dB, dC per block (every row written)
  T* pB_all = partial.data<T>();
  T* pC_all = pB_all + blocks * L * n;
  engine::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> h0(static_cast<size_t>(n * K)), h(h0.size()), G(h0.size()), gAb(h0.size());
    std::vector<T> hist(static_cast<size_t>(d.Q * n * K)), acc(2 * K);
    for (int64_t bi = b0; bi < b1; ++bi) {
      const Block<T> b(d, p, bi);
      const BackwardOut<T> g{gx.data<T>(), gdelta.data<T>(), gz.defined() ? gz.data<T>() : nullptr, gAb.data(),
                             pB_all + bi * L * n, pC_all + bi * L * n, acc.data()};
      std::fill(G.begin(), G.end(), T(0));
      std::fill(gAb.begin(), gAb.end(), T(0));
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t c = d.nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * d.Q, t1 = std::min(L, t0 + d.Q);
        b.load_state(ck + c * d.E * n, n, h0.data());
        h = h0;
        scan_block(d, p, b, t0, t1, h.data(), static_cast<T*>(nullptr), hist.data());
        reverse_chunk(d, p, b, yp, go, t0, t1, hist.data(), h0.data(), G.data(), g);
      }
      b.store_state(gAb.data(), n, gA.data<T>());
      for (int64_t k = 0; k < b.nb; ++k) {
        gD.data<T>()[b.e0 + k] = acc[k];
        gbias.data<T>()[b.e0 + k] = acc[K + k];
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
