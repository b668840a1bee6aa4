// RWKV blocks as Lampa's rwkv model uses them (lampa-models.md 3.9; Lampa models/rwkv/RWKV.py): the x052 time-mix
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

class RWKVChannelMix : public engine::nn::Module {
 public:
  RWKVChannelMix(int64_t C, int64_t dim_ffn, int64_t layer_id, int64_t n_layer);
  engine::Tensor forward(const engine::Tensor& x);

  engine::Tensor time_maa_k, time_maa_r;  // [C]
  std::shared_ptr<engine::nn::Linear> key, receptance, value;
};

class RWKVBlock : public engine::nn::Module {
 public:
  RWKVBlock(int64_t C, int64_t head_size, int64_t dim_ffn, int64_t layer_id, int64_t n_layer);
  engine::Tensor forward(const engine::Tensor& x);

  std::shared_ptr<engine::nn::LayerNorm> ln0, ln1, ln2;  // ln0 only on layer 0
  std::shared_ptr<RWKVTimeMix5> att;
  std::shared_ptr<RWKVChannelMix> ffn;
};

}  // namespace layers
