// HEPT's LSH attention (hept.md 3, lampa-models.md 2.5 and 3.5) and the modules built on it.
//
//   hept_bucket_attention: the fused op. Augments q/k with s (.) coords (s = sqrt(2 w~) per head), hashes the
//     augmented vectors with the fixed E2LSH projections, sorts queries and keys per (hash, head) by
//     (region code, projection), runs the unnormalised RBF kernel attention inside blocks of block_size, unsorts and
//     merges numerators / denominators over the hash tables. One CustomOp; O(N * block_size) memory in forward and
//     backward; the sort permutations are saved for the backward (never recomputed).
//   HEPTAttention: w_q, w_k, w_v (dim -> H*head_dim, no bias), w_rpe (Kw*(C-1) -> H*head_dim; its bias is unused, as
//     in the reference), out_linear (H*head_dim -> dim), the E2LSH buffers e2lsh.alpha [H, head_dim + C, T] (and
//     e2lsh.beta [1, T], unused, Lampa/src only) and the region counts `regions` [T, 2, H] (buffers, not trainable).
//   HEPTBlock: the Transformer layer x + Drop(HEPT(LN1 x)), then x + Drop(FF(LN2 x)); parameter names as the
//     reference's `Attn` (w_q, w_k, w_v, attn.out_linear, attn.e2lsh.alpha, norm1, norm2, ff.0, ff.2, w_rpe).
//   LSHAtt: Lampa's shared LSH branch (same names as HEPTBlock).
//
// Shapes: x [Np, dim] with Np a multiple of block_size; coords [Np, coords_dim] (padded rows 0); raw_size = number
// of real rows N (rows >= N are padding: they rank last in the region partition and are masked in attention).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "layers/e2lsh.h"

namespace layers {

using engine::Tensor;

struct HEPTOptions {
  int64_t dim;
  int64_t num_heads = 8;
  int64_t head_dim = -1;  // -1: = dim
  int64_t block_size = 100;
  int64_t n_hashes = 3;
  double num_regions = 100;
  int64_t num_w_per_dist = 10;
  int64_t coords_dim = 6;
  // Extensions (not in the reference's argument list):
  bool e2lsh_beta = true;  // keep the src/Lampa E2LSH `beta` [1, T] buffer (unused; the example/checkpoint has none)
  // Float32 on the CPU: a backward accurate to float64 level (1e-5 of the float64 gradients where the fast one is off
  // by up to 1e-4 in w_q / w_k when queries lie far from their keys), for ~25-50% more training-step time and two
  // more saved [N, H, D] tensors (layers/hept_attention_cpu.cpp). Off by default: training does not need it.
  bool precise_backward = false;
};

// The fused bucketed attention. q, k, v [Np, H, D]; s [H, C] = sqrt(2 w~) (differentiable); coords [Np, C];
// alpha [H, D + C, T]; codes [T, H, Np] int64 region codes; rows >= raw_size are masked (zero q^, k^, v; sort last).
// torch_ties: on the CPU, order equal sort keys as PyTorch 1.13's CPU argsort (only used to reproduce the reference
// bit-for-bit on duplicated points); otherwise ties keep index order (stable, identical on CPU and CUDA).
// precise_backward: see HEPTOptions (float32 on the CPU; float64 needs none; an error on CUDA when gradients are
// tracked).
// Returns [Np, H, D] = (sum_t num_t) / (sum_t den_t).
Tensor hept_bucket_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                             const Tensor& coords, const Tensor& alpha, const Tensor& codes, int64_t raw_size,
                             int64_t block_size, bool torch_ties = false, bool precise_backward = false);

// s = sqrt(2 w~) [H, C] from w_rpe's weight [H*D, Kw*(C-1)]: w_{h,r} = sum_k exp(min(50, sum_d W[h D + d, r Kw + k])),
// with the first group duplicated (eta and phi share one weight).
Tensor hept_rpe_scale(const Tensor& w_rpe_weight, int64_t num_heads, int64_t head_dim, int64_t num_w_per_dist);

class E2LSH : public engine::nn::Module {
 public:
  E2LSH(int64_t num_heads, int64_t dim, int64_t n_hashes, bool with_beta, engine::Generator* gen);
  Tensor alpha, beta;  // buffers
};

class HEPTAttention : public engine::nn::Module {
 public:
  HEPTAttention(HEPTOptions o, engine::Generator* gen = nullptr);
  // own_projections = false leaves w_q, w_k, w_v and w_rpe unregistered (the owner registers them under its own
  // names, as the reference's Attn does); own_regions = false expects share_regions() before the first forward.
  HEPTAttention(HEPTOptions o, engine::Generator* gen, bool own_projections, bool own_regions);

  // Src semantics (Lampa, HEPT src): region codes from coords with rows >= raw_size ranked last as +inf.
  Tensor forward(const Tensor& x, const Tensor& coords, int64_t raw_size);
  // With precomputed region codes [T, H, Np] (e.g. the example semantics of the published checkpoint).
  Tensor attend(const Tensor& x, const Tensor& coords, const Tensor& codes, int64_t raw_size,
                bool torch_ties = false);

  void share_regions(const Tensor& regions) { regions_ = regions; }
  const Tensor& regions() const { return regions_; }
  const HEPTOptions& options() const { return o_; }

  std::shared_ptr<engine::nn::Linear> w_q, w_k, w_v, w_rpe, out_linear;
  std::shared_ptr<E2LSH> e2lsh;

 private:
  HEPTOptions o_;
  Tensor regions_;
};

// Base of HEPTBlock and LSHAtt: the reference's layer layout (w_q, w_k, w_v, attn, norm1, norm2, ff, w_rpe).
class HEPTLayerBase : public engine::nn::Module {
 public:
  HEPTLayerBase(int64_t dim, HEPTOptions o, engine::Generator* gen, bool own_regions);
  void share_regions(const Tensor& regions) { attn->share_regions(regions); }
  std::shared_ptr<HEPTAttention> attn;
  std::shared_ptr<engine::nn::LayerNorm> norm1, norm2;
  std::shared_ptr<engine::nn::Sequential> ff;
  std::shared_ptr<engine::nn::Dropout> dropout;

 protected:
  Tensor ffn(const Tensor& x);
};

class HEPTBlock : public HEPTLayerBase {
 public:
  // own_regions = false: the regions buffer lives in the owner (the HEPT model's top-level `regions`).
  explicit HEPTBlock(HEPTOptions o, engine::Generator* gen = nullptr, bool own_regions = true);
  Tensor forward(const Tensor& x, const Tensor& coords, int64_t raw_size);
  Tensor forward_codes(const Tensor& x, const Tensor& coords, const Tensor& codes, int64_t raw_size,
                       bool torch_ties = false);
};

class LSHAtt : public HEPTLayerBase {
 public:
  // head_dim = dim (Lampa); with_feed_forward: full_mamba2 / hydra's branch (a = HEPT(LN1 x); x1 = a + Drop(a);
  // out = x1 + Drop(FF(LN2 x1))); false: hmamba's (returns HEPT(LN1 x); norm2 and ff exist but are unused).
  LSHAtt(int64_t dim, HEPTOptions o, bool with_feed_forward, engine::Generator* gen = nullptr);
  Tensor forward(const Tensor& x, const Tensor& coords, int64_t raw_size);
  // The same with region codes [T, H, Np] the caller already computed (region_codes, RegionMode::Src).
  Tensor forward_codes(const Tensor& x, const Tensor& coords, const Tensor& codes, int64_t raw_size);

 private:
  bool with_ff_;
};

}  // namespace layers
