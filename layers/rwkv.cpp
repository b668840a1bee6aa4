// RWKV time-mix x052, channel-mix x060 and block (see rwkv.h): engine ops around the fused wkv5 node.
#include "layers/rwkv.h"

#include <cmath>
#include <vector>

#include "engine/engine.h"
#include "engine/nn/init.h"
#include "layers/common.h"
#include "layers/wkv.h"

namespace layers {

using namespace engine;

namespace {

constexpr int64_t kMixLora = 16, kDecayLora = 32;

// f(i / C) for i < C as a [C] float tensor.
template <class F>
Tensor per_channel(int64_t C, F f) {
  std::vector<float> v(static_cast<size_t>(C));
  for (int64_t i = 0; i < C; ++i) v[static_cast<size_t>(i)] = static_cast<float>(f(static_cast<double>(i) / C, i));
  return from_vector(v, {C});
}

Tensor uniform_init(const Shape& shape, double bound) {
  Tensor t = empty(shape);
  nn::init::uniform_(t, -bound, bound);
  return t;
}

}  // namespace

Tensor token_shift(const Tensor& x) {
  const int64_t L = x.size(0);
  if (L == 0) return x;
  return concat({zeros({1, x.size(1)}, x.options()), x.narrow(0, 0, L - 1)}, 0);
}

RWKVTimeMix5::RWKVTimeMix5(int64_t C_, int64_t head_size_, int64_t layer_id, int64_t n_layer)
    : C(C_), head_size(head_size_) {
  ENGINE_CHECK(C > 0 && head_size > 0 && C % head_size == 0 && n_layer > 1, "RWKVTimeMix5",
               "C {} must be a multiple of head_size {} and n_layer {} > 1", C, head_size, n_layer);
  n_head = C / head_size;
  const double r01 = static_cast<double>(layer_id) / (n_layer - 1);  // 0 to 1
  const double r10 = 1.0 - static_cast<double>(layer_id) / n_layer;  // 1 to ~0
  time_mix_k = register_parameter("time_mix_k", per_channel(C, [&](double d, int64_t) { return std::pow(d, r10); }));
  time_mix_v = register_parameter("time_mix_v",
                                  per_channel(C, [&](double d, int64_t) { return std::pow(d, r10) + 0.3 * r01; }));
  time_mix_r = register_parameter("time_mix_r", per_channel(C, [&](double d, int64_t) { return std::pow(d, 0.5 * r10); }));
  time_mix_g = register_parameter("time_mix_g", per_channel(C, [&](double d, int64_t) { return std::pow(d, 0.5 * r10); }));
  time_mix_x = register_parameter("time_mix_x", per_channel(C, [&](double d, int64_t) { return 1.0 - std::pow(d, r10); }));
  time_mix_w = register_parameter("time_mix_w", per_channel(C, [&](double d, int64_t) { return 1.0 - std::pow(d, r10); }));
  time_mix_w1 = register_parameter("time_mix_w1", zeros({C, kMixLora * 5}));
  time_mix_w2 = register_parameter("time_mix_w2", uniform_init({5, kMixLora, C}, 0.01));
  time_decay = register_parameter("time_decay", per_channel(C, [&](double, int64_t n) {
                                    return -6.0 + 5.0 * std::pow(static_cast<double>(n) / (C - 1), 0.7 + 1.3 * r01);
                                  }).reshape({n_head, head_size}));
  time_decay_w1 = register_parameter("time_decay_w1", zeros({C, kDecayLora}));
  time_decay_w2 = register_parameter("time_decay_w2", uniform_init({kDecayLora, head_size}, 0.01));
  time_faaaa = register_parameter("time_faaaa", per_channel(C, [&](double, int64_t n) {
                                    const double zigzag = static_cast<double>((n + 1) % 3 - 1) * 0.1;
                                    return r01 * (1.0 - static_cast<double>(n) / (C - 1)) + zigzag;
                                  }).reshape({n_head, head_size}));
  receptance = register_module("receptance", std::make_shared<nn::Linear>(C, C, false));
  key = register_module("key", std::make_shared<nn::Linear>(C, C, false));
  value = register_module("value", std::make_shared<nn::Linear>(C, C, false));
  output = register_module("output", std::make_shared<nn::Linear>(C, C, false));
  gate = register_module("gate", std::make_shared<nn::Linear>(C, C, false));
  ln_x = register_module("ln_x", std::make_shared<nn::LayerNorm>(C));
}

Tensor RWKVTimeMix5::forward(const Tensor& x) {
  check_shape("RWKVTimeMix5", "x", x, {-1, C});
  const int64_t L = x.size(0), H = n_head, N = head_size;
  const Tensor xx = token_shift(x) - x;                                                // [L, C]
  const Tensor lora = tanh(matmul(x + xx * time_mix_x, time_mix_w1));                 // [L, 80]
  const Tensor m = matmul(lora.reshape({L, 5, kMixLora}).transpose(0, 1), time_mix_w2);  // [5, L, C]
  auto mixed = [&](const Tensor& mu, int64_t i) { return x + xx * (mu + m.select(0, i)); };
  const Tensor r = receptance->forward(mixed(time_mix_r, 3)).reshape({L, H, N});
  const Tensor k = key->forward(mixed(time_mix_k, 1)).reshape({L, H, N});
  const Tensor v = value->forward(mixed(time_mix_v, 2)).reshape({L, H, N});
  const Tensor g = silu(gate->forward(mixed(time_mix_g, 4)));                         // [L, C]
  const Tensor w = exp(neg(exp(time_decay)));                                          // [H, N] in (0, 1)
  const Tensor y = wkv5(r, k, v, w, time_faaaa);                                       // [L, H, N]
  const Tensor normed = layer_norm(y * (1.0 / 8.0), 1).reshape({L, C}) * ln_x->weight + ln_x->bias;  // GroupNorm(H)
  return output->forward(normed * g);
}

RWKVChannelMix::RWKVChannelMix(int64_t C, int64_t dim_ffn, int64_t layer_id, int64_t n_layer) {
  const double r10 = 1.0 - static_cast<double>(layer_id) / n_layer;
  time_maa_k = register_parameter("time_maa_k", per_channel(C, [&](double d, int64_t) { return 1.0 - std::pow(d, r10); }));
  time_maa_r = register_parameter("time_maa_r", per_channel(C, [&](double d, int64_t) { return 1.0 - std::pow(d, r10); }));
  key = register_module("key", std::make_shared<nn::Linear>(C, dim_ffn, false));
  receptance = register_module("receptance", std::make_shared<nn::Linear>(C, C, false));
  value = register_module("value", std::make_shared<nn::Linear>(dim_ffn, C, false));
}

Tensor RWKVChannelMix::forward(const Tensor& x) {
  const Tensor xx = token_shift(x) - x;
  const Tensor k = square(relu(key->forward(x + xx * time_maa_k)));
  return sigmoid(receptance->forward(x + xx * time_maa_r)) * value->forward(k);
}

RWKVBlock::RWKVBlock(int64_t C, int64_t head_size, int64_t dim_ffn, int64_t layer_id, int64_t n_layer) {
  ln1 = register_module("ln1", std::make_shared<nn::LayerNorm>(C));
  ln2 = register_module("ln2", std::make_shared<nn::LayerNorm>(C));
  if (layer_id == 0) ln0 = register_module("ln0", std::make_shared<nn::LayerNorm>(C));
  att = register_module("att", std::make_shared<RWKVTimeMix5>(C, head_size, layer_id, n_layer));
  ffn = register_module("ffn", std::make_shared<RWKVChannelMix>(C, dim_ffn, layer_id, n_layer));
}

Tensor RWKVBlock::forward(const Tensor& x_in) {
  Tensor x = ln0 ? ln0->forward(x_in) : x_in;
  x = x + att->forward(ln1->forward(x));
  return x + ffn->forward(ln2->forward(x));
}

}  // namespace layers
