// HEPT attention: the fused bucketed-attention CustomOp and the HEPTAttention / HEPTBlock / LSHAtt modules.
#include "layers/hept_attention.h"

#include <limits>
#include <memory>

#include "engine/engine.h"
#include "engine/profile.h"
#include "layers/common.h"
#include "layers/dispatch.h"
#include "layers/hept_attention_kernels.h"

namespace layers {

using engine::Tensors;
namespace nn = engine::nn;

namespace {

class HEPTBucketAttentionOp : public engine::CustomOp {
 public:
  HEPTBucketAttentionOp(int64_t raw, int64_t block, bool torch_ties, bool keep, bool precise)
      : raw_(raw), block_(block), torch_ties_(torch_ties), keep_(keep), precise_(precise) {}
  const char* name() const override { return "hept_bucket_attention"; }

  Tensors forward(const Tensors& in) override {
    q_ = in[0].contiguous();
    k_ = in[1].contiguous();
    v_ = in[2].contiguous();
    s_ = in[3].contiguous();
    coords_ = in[4].contiguous();
    Tensor alpha = in[5].contiguous();
    Tensor codes = in[6].contiguous();
    const int64_t Np = q_.size(0), H = q_.size(1), D = q_.size(2), T = alpha.size(2);
    const auto dev = q_.device();
    // 1. E2LSH projections (float64), span per (t, h), sort key = proj + span * code (lexicographic by
    //    (code, proj)); masked rows sort last.
    Tensor pq = engine::empty({T, H, Np}, {engine::DType::F64, dev});
    Tensor pk = engine::empty({T, H, Np}, {engine::DType::F64, dev});
    LAYER_DISPATCH(dev, hept_project, q_, k_, s_, coords_, alpha, raw_, pq, pk);
    Tensor span = engine::maximum(engine::amax(pq, {-1}, true), engine::amax(pk, {-1}, true)) -
                  engine::minimum(engine::amin(pq, {-1}, true), engine::amin(pk, {-1}, true));
    Tensor shift = span * codes.to(engine::DType::F64);
    Tensor key_q = pq + shift, key_k = pk + shift;
    if (raw_ < Np) {
      Tensor masked = engine::ge(engine::arange(0, Np, {engine::DType::I64, dev}),
                                 engine::full({1}, static_cast<double>(raw_), {engine::DType::I64, dev}));
      Tensor inf = engine::full({1}, std::numeric_limits<double>::infinity(), {engine::DType::F64, dev});
      key_q = engine::where(masked, inf, key_q);
      key_k = engine::where(masked, inf, key_k);
    }
    if (torch_ties_ && !dev.is_cuda()) {
      perm_q_ = torch_sort_rows(key_q);
      perm_k_ = torch_sort_rows(key_k);
    } else {
      perm_q_ = engine::argsort(key_q, -1);
      perm_k_ = engine::argsort(key_k, -1);
    }
    // 2. Block attention, unsort and OR merge.
    Tensor out = engine::empty({Np, H, D}, q_.options());
    den_ = engine::empty({Np, H}, q_.options());
    const int64_t C = coords_.size(1);
    // E2LSH projections per (t, h, n): q and k (4 D), the shared coordinate part (3 C + 2). Block attention per
    // (t, h) and pair of a block: distance over D and C (3 D + 4 C), -1/2 (1), kernel sum (1), num += kappa v (2 D);
    // per (t, h, query): merge into out and den (D + 1 + 1); then the division out / den (Np H D).
    engine::profile::add_flops(T * H * Np * (block_ * (5 * D + 4 * C + 2) + D + 2) +
                               T * H * Np * (4 * D + 3 * C + 2) + Np * H * D);
    // The precise float32 CPU backward (layers/hept_attention_kernels.h): out_lo_ [Np, H, D], out's float32
    // residual; key_avg_ [Np, H, D], each query's kernel-weighted mean key
    const bool precise = precise_ && keep_ && !dev.is_cuda() && q_.dtype() == engine::DType::F32;
    out_lo_ = precise ? engine::empty({Np, H, D}, q_.options()) : Tensor();
    key_avg_ = precise ? engine::empty({Np, H, D}, q_.options()) : Tensor();
    LAYER_DISPATCH(dev, hept_attention_forward, q_, k_, v_, s_, coords_, perm_q_, perm_k_, raw_, block_, out, out_lo_,
                   den_, key_avg_);
    if (keep_) {
      out_ = out.detach();
    } else {
      q_ = k_ = v_ = s_ = coords_ = perm_q_ = perm_k_ = den_ = out_lo_ = key_avg_ = Tensor();
    }
    return {out};
  }

  Tensors backward(const Tensors& grads) override {
    ENGINE_CHECK(out_.defined(), "hept_bucket_attention", "backward called on a run without gradient tracking");
    Tensor gout = grads[0].contiguous();
    Tensor gq = engine::empty(q_.shape(), q_.options());
    Tensor gk = engine::empty(k_.shape(), k_.options());
    Tensor gv = engine::empty(v_.shape(), v_.options());
    Tensor gs = engine::empty(s_.shape(), s_.options());
    LAYER_DISPATCH(q_.device(), hept_attention_backward, q_, k_, v_, s_, coords_, perm_q_, perm_k_, raw_, block_,
                   out_, out_lo_, den_, key_avg_, gout, gq, gk, gv, gs);
    return {gq, gk, gv, gs, Tensor(), Tensor(), Tensor()};
  }

 private:
  static Tensor torch_sort_rows(const Tensor& keys) {
    const int64_t T = keys.size(0), H = keys.size(1), Np = keys.size(2);
    std::vector<double> all = keys.to_vector<double>();
    std::vector<int64_t> perm(all.size());
    for (int64_t r = 0; r < T * H; ++r) {
      std::vector<double> row(all.begin() + r * Np, all.begin() + (r + 1) * Np);
      std::vector<int64_t> p = torch_cpu_argsort(row);
      std::copy(p.begin(), p.end(), perm.begin() + r * Np);
    }
    return engine::from_vector(perm, {T, H, Np});
  }

  int64_t raw_, block_;
  bool torch_ties_, keep_, precise_;
  Tensor q_, k_, v_, s_, coords_, perm_q_, perm_k_, out_, out_lo_, den_, key_avg_;
};

}  // namespace

Tensor hept_bucket_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                             const Tensor& coords, const Tensor& alpha, const Tensor& codes, int64_t raw_size,
                             int64_t block_size, bool torch_ties, bool precise_backward) {
  const char* where = "hept_bucket_attention";
  check_shape(where, "q", q, {-1, -1, -1});
  const int64_t Np = q.size(0), H = q.size(1), D = q.size(2);
  check_shape(where, "k", k, {Np, H, D});
  check_shape(where, "v", v, {Np, H, D});
  check_shape(where, "coords", coords, {Np, -1});
  const int64_t C = coords.size(1);
  check_shape(where, "s", s, {H, C});
  check_shape(where, "alpha", alpha, {H, D + C, -1});
  const int64_t T = alpha.size(2);
  check_shape(where, "codes", codes, {T, H, Np});
  check_same_placement(where, q, k);
  check_same_placement(where, q, v);
  check_same_placement(where, q, s);
  check_same_placement(where, q, coords);
  check_same_placement(where, q, alpha);
  ENGINE_CHECK(codes.dtype() == engine::DType::I64 && codes.device() == q.device(), where,
               "codes must be int64 on the device of q");
  ENGINE_CHECK(block_size > 0, where, "block_size must be positive, got {}", block_size);
  ENGINE_CHECK(Np > 0 && Np % block_size == 0, where, "the row count {} must be a positive multiple of block_size {}",
               Np, block_size);
  ENGINE_CHECK(raw_size >= 0 && raw_size <= Np, where, "raw_size {} must be in [0, {}]", raw_size, Np);
  const bool keep = engine::needs_grad({q, k, v, s});
  ENGINE_CHECK(!(precise_backward && keep && q.device().is_cuda()), where,
               "precise_backward is implemented by the CPU kernels only (the CUDA backward is the fast one)");
  auto op = std::make_shared<HEPTBucketAttentionOp>(raw_size, block_size, torch_ties, keep, precise_backward);
  return engine::apply_custom_op(op, {q, k, v, s, coords, alpha, codes})[0];
}

Tensor hept_rpe_scale(const Tensor& w, int64_t H, int64_t D, int64_t Kw) {
  ENGINE_CHECK(w.dim() == 2 && w.size(0) == H * D && w.size(1) % Kw == 0, "hept_rpe_scale",
               "w_rpe weight must be [H*D, Kw*(C-1)]");
  const int64_t R = w.size(1) / Kw;
  Tensor g = engine::sum(w.reshape({H, D, R, Kw}), {1});             // [H, R, Kw]
  Tensor wr = engine::sum(engine::exp(engine::clamp_max(g, 50.0)), {-1});  // [H, R]
  Tensor w6 = engine::concat({wr.slice(1, 0, 1), wr}, 1);            // [H, R + 1]
  return engine::sqrt(w6 * 2.0);
}

E2LSH::E2LSH(int64_t num_heads, int64_t dim, int64_t n_hashes, bool with_beta, engine::Generator* gen) {
  alpha = register_buffer("alpha", e2lsh_alpha(num_heads, dim, n_hashes, gen));
  if (with_beta) beta = register_buffer("beta", engine::rand({1, n_hashes}, engine::DType::F32, gen));
}

static HEPTOptions normalised(HEPTOptions o) {
  if (o.head_dim <= 0) o.head_dim = o.dim;
  ENGINE_CHECK(o.dim > 0 && o.num_heads > 0 && o.block_size > 0 && o.n_hashes > 0 && o.coords_dim >= 2 &&
                   o.num_w_per_dist > 0 && o.num_regions > 0,
               "HEPTAttention", "invalid options (dim {}, heads {}, block {}, hashes {}, coords {})", o.dim,
               o.num_heads, o.block_size, o.n_hashes, o.coords_dim);
  return o;
}

HEPTAttention::HEPTAttention(HEPTOptions o, engine::Generator* gen) : HEPTAttention(o, gen, true, true) {}

HEPTAttention::HEPTAttention(HEPTOptions o, engine::Generator* gen, bool own_projections, bool own_regions)
    : o_(normalised(o)) {
  const int64_t inner = o_.num_heads * o_.head_dim;
  w_q = std::make_shared<nn::Linear>(o_.dim, inner, false);
  w_k = std::make_shared<nn::Linear>(o_.dim, inner, false);
  w_v = std::make_shared<nn::Linear>(o_.dim, inner, false);
  if (own_projections) {
    register_module("w_q", w_q);
    register_module("w_k", w_k);
    register_module("w_v", w_v);
  }
  out_linear = register_module("out_linear", std::make_shared<nn::Linear>(inner, o_.dim));
  e2lsh = register_module("e2lsh", std::make_shared<E2LSH>(o_.num_heads, o_.head_dim + o_.coords_dim, o_.n_hashes,
                                                            o_.e2lsh_beta, gen));
  w_rpe = std::make_shared<nn::Linear>(o_.num_w_per_dist * (o_.coords_dim - 1), inner);
  if (own_projections) register_module("w_rpe", w_rpe);
  if (own_regions)
    regions_ = register_buffer("regions", get_regions(o_.num_regions, o_.n_hashes, o_.num_heads, gen));
}

Tensor HEPTAttention::forward(const Tensor& x, const Tensor& coords, int64_t raw_size) {
  ENGINE_CHECK(regions_.defined(), "HEPTAttention", "no regions: call share_regions() first");
  Tensor codes;
  {
    engine::NoGradGuard ng;
    codes = region_codes(coords, raw_size, regions_, RegionMode::Src);
  }
  return attend(x, coords, codes, raw_size);
}

Tensor HEPTAttention::attend(const Tensor& x, const Tensor& coords, const Tensor& codes, int64_t raw_size,
                             bool torch_ties) {
  const char* where = "HEPTAttention";
  check_shape(where, "x", x, {-1, o_.dim});
  const int64_t Np = x.size(0), H = o_.num_heads, D = o_.head_dim;
  check_shape(where, "coords", coords, {Np, o_.coords_dim});
  Tensor q = w_q->forward(x).reshape({Np, H, D});
  Tensor k = w_k->forward(x).reshape({Np, H, D});
  Tensor v = w_v->forward(x).reshape({Np, H, D});
  Tensor s = hept_rpe_scale(w_rpe->weight, H, D, o_.num_w_per_dist);
  Tensor c = coords.dtype() == x.dtype() ? coords : coords.to(x.dtype());
  Tensor alpha = e2lsh->alpha.dtype() == x.dtype() ? e2lsh->alpha : e2lsh->alpha.to(x.dtype());
  Tensor o = hept_bucket_attention(q, k, v, s, c.detach(), alpha.detach(), codes, raw_size, o_.block_size,
                                   torch_ties, o_.precise_backward);
  return out_linear->forward(o.reshape({Np, H * D}));
}

HEPTLayerBase::HEPTLayerBase(int64_t dim, HEPTOptions o, engine::Generator* gen, bool own_regions) {
  o.dim = dim;
  attn = std::make_shared<HEPTAttention>(o, gen, false, own_regions);
  register_module("w_q", attn->w_q);
  register_module("w_k", attn->w_k);
  register_module("w_v", attn->w_v);
  register_module("attn", attn);
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(0.1));
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(dim, 1e-5));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(dim, 1e-5));
  ff = register_module("ff", std::make_shared<nn::Sequential>());
  ff->push_back(std::make_shared<nn::Linear>(dim, dim));
  ff->push_back(std::make_shared<nn::Activation>(nn::ActivationKind::ReLU));
  ff->push_back(std::make_shared<nn::Linear>(dim, dim));
  register_module("w_rpe", attn->w_rpe);
}

Tensor HEPTLayerBase::ffn(const Tensor& x) { return ff->forward(norm2->forward(x)); }

HEPTBlock::HEPTBlock(HEPTOptions o, engine::Generator* gen, bool own_regions)
    : HEPTLayerBase(o.dim, o, gen, own_regions) {}

Tensor HEPTBlock::forward(const Tensor& x, const Tensor& coords, int64_t raw_size) {
  Tensor h = x + dropout->forward(attn->forward(norm1->forward(x), coords, raw_size));
  return h + dropout->forward(ffn(h));
}

Tensor HEPTBlock::forward_codes(const Tensor& x, const Tensor& coords, const Tensor& codes, int64_t raw_size,
                                bool torch_ties) {
  Tensor h = x + dropout->forward(attn->attend(norm1->forward(x), coords, codes, raw_size, torch_ties));
  return h + dropout->forward(ffn(h));
}

LSHAtt::LSHAtt(int64_t dim, HEPTOptions o, bool with_feed_forward, engine::Generator* gen)
    : HEPTLayerBase(dim, [&] {
        o.head_dim = dim;
        return o;
      }(), gen, true),
      with_ff_(with_feed_forward) {}

Tensor LSHAtt::forward(const Tensor& x, const Tensor& coords, int64_t raw_size) {
  Tensor codes;
  {
    engine::NoGradGuard ng;
    codes = region_codes(coords, raw_size, attn->regions(), RegionMode::Src);
  }
  return forward_codes(x, coords, codes, raw_size);
}

Tensor LSHAtt::forward_codes(const Tensor& x, const Tensor& coords, const Tensor& codes, int64_t raw_size) {
  Tensor a = attn->attend(norm1->forward(x), coords, codes, raw_size);
  if (!with_ff_) return a;
  Tensor x1 = a + dropout->forward(a);
  return x1 + dropout->forward(ffn(x1));
}

}  // namespace layers
