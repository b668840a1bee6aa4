// Kernels of HEPT's bucketed RBF attention (hept.md 3.2-3.6, lampa-models.md 3.5).
//
// Per (hash t, head h) the augmented vectors are q^_n = [q_n ; s_h (.) c_n] and k^_n = [k_n ; s_h (.) c_n]
// (E = D + C wide, s = sqrt(2 w~) per head and coordinate). Rows n >= raw_size are masked: q^, k^ and v are zero
// there (and get no gradient), as in the src reference. Queries are sorted by perm_q[t, h], keys and values by
// perm_k[t, h]; query block b (positions b*B .. b*B+B-1 of the sorted order) attends to key block b:
//   kappa_ij = exp(-1/2 |q^_i - k^_j|^2)      (squared distance computed as differences, never as a norm expansion)
//   num_i += sum_j kappa_ij v_j,   den_i += sum_j kappa_ij + 1e-20   (summed over the T tables: the OR merge)
//   out_i = num_i / den_i.
// Memory: O(N * B) work space per running block, never N x N. Tables are processed one after the other (each
// (n, h) is written by exactly one block per table), so results are deterministic and thread-count independent.
//
// Shapes (all contiguous, one floating dtype unless stated, one device):
//   q, k, v [Np, H, D]; s [H, C]; coords [Np, C]; alpha [H, D + C, T];
//   perm_q, perm_k [T, H, Np] int64 (Np a multiple of B);
//   proj_q, proj_k [T, H, Np] float64 (E2LSH projections q^ . alpha[h, :, t]);
//   out [Np, H, D]; den [Np, H]; gout [Np, H, D]; gq, gk, gv like q; gs [H, C].
// The precise float32 backward (HEPTOptions::precise_backward; CPU only, else both undefined; see
// hept_attention_cpu.cpp):
//   out_lo [Np, H, D]: out - float(out) of the forward's double result;
//   key_avg [Np, H, D]: each query's kernel-weighted mean key, sum_t,j kappa_ij k_j / den_i.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace layers::cpu {

void hept_project(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& s,
                  const engine::Tensor& coords, const engine::Tensor& alpha, int64_t raw_size,
                  const engine::Tensor& proj_q, const engine::Tensor& proj_k);

void hept_attention_forward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                            const engine::Tensor& s, const engine::Tensor& coords, const engine::Tensor& perm_q,
                            const engine::Tensor& perm_k, int64_t raw_size, int64_t block_size,
                            const engine::Tensor& out, const engine::Tensor& out_lo, const engine::Tensor& den,
                            const engine::Tensor& key_avg);

void hept_attention_backward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                             const engine::Tensor& s, const engine::Tensor& coords, const engine::Tensor& perm_q,
                             const engine::Tensor& perm_k, int64_t raw_size, int64_t block_size,
                             const engine::Tensor& out, const engine::Tensor& out_lo, const engine::Tensor& den,
                             const engine::Tensor& key_avg, const engine::Tensor& gout,
                             const engine::Tensor& gq, const engine::Tensor& gk, const engine::Tensor& gv,
                             const engine::Tensor& gs);

}  // namespace layers::cpu

#ifdef ENGINE_WITH_CUDA
namespace layers::cuda {

void hept_project(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& s,
                  const engine::Tensor& coords, const engine::Tensor& alpha, int64_t raw_size,
                  const engine::Tensor& proj_q, const engine::Tensor& proj_k);

void hept_attention_forward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                            const engine::Tensor& s, const engine::Tensor& coords, const engine::Tensor& perm_q,
                            const engine::Tensor& perm_k, int64_t raw_size, int64_t block_size,
                            const engine::Tensor& out, const engine::Tensor& out_lo, const engine::Tensor& den,
                            const engine::Tensor& key_avg);

void hept_attention_backward(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& v,
                             const engine::Tensor& s, const engine::Tensor& coords, const engine::Tensor& perm_q,
                             const engine::Tensor& perm_k, int64_t raw_size, int64_t block_size,
                             const engine::Tensor& out, const engine::Tensor& out_lo, const engine::Tensor& den,
                             const engine::Tensor& key_avg, const engine::Tensor& gout,
                             const engine::Tensor& gq, const engine::Tensor& gk, const engine::Tensor& gv,
                             const engine::Tensor& gs);

}  // namespace layers::cuda
#endif
