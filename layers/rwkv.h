// RWKV blocks as Lampa's rwkv and rwkv7 models use them (lampa-models.md 3.9, 3.10; Lampa models/rwkv/RWKV.py and
// RWKV7.py): the x052 time-mix
// (token shift with data-dependent LoRA mixing, r/k/v/g projections, the fused WKV5 recurrence of layers/wkv.h with
// static decay exp(-exp(time_decay)) and bonus time_faaaa, GroupNorm(H) of y/8, gate, output), the x060 channel-mix
// (sigmoid(r) * (relu(k)^2 V)) and the pre-norm block (ln0 on layer 0, x + TM(ln1 x), x + CM(ln2 x)). Init as the
// reference's layer-ratio formulas. Shapes: x [L, C] -> [L, C] (batch size 1, sequence first).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace layers {

// shift(x)_t = x_{t-1}, shift(x)_0 = 0. [L, C] -> [L, C]
engine::Tensor token_shift(const engine::Tensor& x);

// torch.nn.init.orthogonal_ for a matrix [rows, cols] (orthonormal rows when rows <= cols, else orthonormal
// columns; Gram-Schmidt on a N(0, 1) draw from the engine RNG) times gain; a 3-D tensor is done slice by slice.
void orthogonal_init(engine::Tensor& w, double gain);

class RWKVTimeMix5 : public engine::nn::Module {
 public:
  RWKVTimeMix5(int64_t C, int64_t head_size, int64_t layer_id, int64_t n_layer);
  engine::Tensor forward(const engine::Tensor& x);

  int64_t C, head_size, n_head;
  // mixing coefficients [C] and the mixing LoRA W1 [C, 80], W2 [5, 16, C] (order w, k, v, r, g)
  engine::Tensor time_mix_k, time_mix_v, time_mix_r, time_mix_g, time_mix_x, time_mix_w, time_mix_w1, time_mix_w2;
  engine::Tensor time_decay, time_faaaa;        // [H, N]
  engine::Tensor time_decay_w1, time_decay_w2;  // [C, 32], [32, N]: held but unused, as in the reference
  std::shared_ptr<engine::nn::Linear> receptance, key, value, output, gate;
  std::shared_ptr<engine::nn::LayerNorm> ln_x;  // GroupNorm(H, C)'s weight and bias (applied per head)
};

// RWKV-7 x070 time-mix (lampa-models.md 3.10): token shift with a 4-way LoRA mix (rg, wa, k, v), data-dependent
// decay w = -softplus(-(time_decay + LoRA)) - 0.5, in-context learning rate a, key normalisation kk, the fused
// WKV7 recurrence (a = -kk, b = kk a), GroupNorm(H, eps 64e-5), the bonus sum(r k u) v, gate g (LoRA, no
// sigmoid), output.
class RWKVTimeMix7 : public engine::nn::Module {
 public:
  RWKVTimeMix7(int64_t C, int64_t head_size, int64_t layer_id, int64_t n_layer);
  engine::Tensor forward(const engine::Tensor& x);

  int64_t C, head_size, n_head;
  engine::Tensor time_maa_x, time_maa_rg, time_maa_wa, time_maa_k, time_maa_v;  // [C]
  engine::Tensor time_decay, time_faaaa, time_aaaaa;                          // [C], [H, N], [C]
  engine::Tensor time_maa_w1, time_maa_w2, time_decay_w1, time_decay_w2, time_aaa_w1, time_aaa_w2;
  engine::Tensor time_kkk_w1, time_kkk_w2, gate_w1, gate_w2, ma_w1, ma_w2, time_misc_a, mk_w1, mk_w2, time_misc_k;
  std::shared_ptr<engine::nn::Linear> receptance, key, value, output;
  std::shared_ptr<engine::nn::LayerNorm> ln_x;  // GroupNorm(H, C, eps 64e-5)'s weight and bias
};

class RWKVChannelMix : public engine::nn::Module {
 public:
  RWKVChannelMix(int64_t C, int64_t dim_ffn, int64_t layer_id, int64_t n_layer);
  engine::Tensor forward(const engine::Tensor& x);

  engine::Tensor time_maa_k, time_maa_r;  // [C]
  std::shared_ptr<engine::nn::Linear> key, receptance, value;
};

// version 5: x052 time-mix (rwkv); version 7: x070 time-mix (rwkv7). Same channel-mix.
class RWKVBlock : public engine::nn::Module {
 public:
  RWKVBlock(int64_t C, int64_t head_size, int64_t dim_ffn, int64_t layer_id, int64_t n_layer, int version = 5);
  engine::Tensor forward(const engine::Tensor& x);

  std::shared_ptr<engine::nn::LayerNorm> ln0, ln1, ln2;  // ln0 only on layer 0
  std::shared_ptr<RWKVTimeMix5> att;                     // version 5
  std::shared_ptr<RWKVTimeMix7> att7;                    // version 7 (registered under the same name "att")
  std::shared_ptr<RWKVChannelMix> ffn;
};

}  // namespace layers
