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

void orthogonal_init(Tensor& w, double gain) {
  NoGradGuard no_grad;
  if (w.dim() == 3) {
    for (int64_t s = 0; s < w.size(0); ++s) {
      Tensor slice = w.select(0, s).contiguous();
      orthogonal_init(slice, gain);
      w.select(0, s).copy_(slice);
    }
    return;
  }
  ENGINE_CHECK(w.dim() == 2, "orthogonal_init", "needs a 2-D or 3-D tensor");
  const bool wide = w.size(0) <= w.size(1);
  const int64_t n = wide ? w.size(0) : w.size(1), m = wide ? w.size(1) : w.size(0);  // n vectors of length m
  Tensor draw = empty({n, m}, TensorOptions(DType::F64));
  nn::init::normal_(draw, 0.0, 1.0);
  std::vector<double> a = draw.to_vector<double>();
  for (int64_t i = 0; i < n; ++i) {
    double* ri = a.data() + i * m;
    for (int64_t p = 0; p < i; ++p) {
      const double* rp = a.data() + p * m;
      double dot = 0;
      for (int64_t c = 0; c < m; ++c) dot += ri[c] * rp[c];
      for (int64_t c = 0; c < m; ++c) ri[c] -= dot * rp[c];
    }
    double norm = 0;
    for (int64_t c = 0; c < m; ++c) norm += ri[c] * ri[c];
    for (int64_t c = 0; c < m; ++c) ri[c] /= std::sqrt(norm);
  }
  for (double& e : a) e *= gain;
  const Tensor q = from_vector(a, {n, m}).to(w.dtype());
  w.copy_(wide ? q : q.t());
}

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

namespace {

// The reference's ortho_init: orthogonal with gain sqrt(rows / cols) (rows > cols) or 1, times scale.
Tensor ortho_lora(const Shape& shape, double scale) {
  Tensor t = zeros(shape);
  const int64_t rows = shape[shape.size() - 2], cols = shape.back();
  orthogonal_init(t, (rows > cols ? std::sqrt(static_cast<double>(rows) / cols) : 1.0) * scale);
  return t;
}

}  // namespace

RWKVTimeMix7::RWKVTimeMix7(int64_t C_, int64_t head_size_, int64_t layer_id, int64_t n_layer)
    : C(C_), head_size(head_size_) {
  ENGINE_CHECK(C > 0 && head_size > 0 && C % head_size == 0 && n_layer > 1, "RWKVTimeMix7",
               "C {} must be a multiple of head_size {} and n_layer {} > 1", C, head_size, n_layer);
  n_head = C / head_size;
  const double r01 = static_cast<double>(layer_id) / (n_layer - 1), r10 = 1.0 - static_cast<double>(layer_id) / n_layer;
  auto mix = [&](double power, double shift) {
    return per_channel(C, [=](double d, int64_t) { return 1.0 - (std::pow(d, power) + shift); });
  };
  time_maa_x = register_parameter("time_maa_x", mix(0.6 * std::pow(r10, 0.9), 0.0));
  time_maa_rg = register_parameter("time_maa_rg", mix(0.2 * r10, 0.0));
  time_maa_wa = register_parameter("time_maa_wa", mix(0.9 * r10, 0.0));
  time_maa_k = register_parameter("time_maa_k", mix(0.9 * r10, 0.4 * r01));
  time_maa_v = register_parameter("time_maa_v", mix(0.4 * r10, 0.6 * r01));
  time_decay = register_parameter("time_decay", per_channel(C, [&](double, int64_t n) {
                                    return -7.0 + 5.0 * std::pow(static_cast<double>(n) / (C - 1),
                                                                 0.85 + std::sqrt(r01)) + 0.5;
                                  }));
  time_faaaa = register_parameter("time_faaaa", zeros({n_head, head_size}));
  time_aaaaa = register_parameter("time_aaaaa", zeros({C}));
  time_maa_w1 = register_parameter("time_maa_w1", zeros({C, 32 * 4}));
  time_maa_w2 = register_parameter("time_maa_w2", ortho_lora({4, 32, C}, 0.1));
  time_decay_w1 = register_parameter("time_decay_w1", zeros({C, 64}));
  time_decay_w2 = register_parameter("time_decay_w2", ortho_lora({64, C}, 0.1));
  time_aaa_w1 = register_parameter("time_aaa_w1", zeros({C, 16}));
  time_aaa_w2 = register_parameter("time_aaa_w2", ortho_lora({16, C}, 0.1));
  time_kkk_w1 = register_parameter("time_kkk_w1", zeros({C, 16}));
  time_kkk_w2 = register_parameter("time_kkk_w2", ortho_lora({16, C}, 0.1));
  gate_w1 = register_parameter("gate_w1", ortho_lora({C, 128}, 0.1));
  gate_w2 = register_parameter("gate_w2", ortho_lora({128, C}, 0.1));
  ma_w1 = register_parameter("ma_w1", zeros({C, 16}));
  ma_w2 = register_parameter("ma_w2", ortho_lora({16, C}, 0.1));
  time_misc_a = register_parameter("time_misc_a", zeros({C}));
  mk_w1 = register_parameter("mk_w1", zeros({C, 16}));
  mk_w2 = register_parameter("mk_w2", ortho_lora({16, C}, 0.1));
  time_misc_k = register_parameter("time_misc_k", zeros({C}));
  receptance = register_module("receptance", std::make_shared<nn::Linear>(C, C, false));
  key = register_module("key", std::make_shared<nn::Linear>(C, C, false));
  value = register_module("value", std::make_shared<nn::Linear>(C, C, false));
  output = register_module("output", std::make_shared<nn::Linear>(C, C, false));
  ln_x = register_module("ln_x", std::make_shared<nn::LayerNorm>(C, 64e-5));
}

Tensor RWKVTimeMix7::forward(const Tensor& x) {
  check_shape("RWKVTimeMix7", "x", x, {-1, C});
  const int64_t L = x.size(0), H = n_head, N = head_size;
  auto heads = [&](const Tensor& t) { return t.reshape({L, H, N}); };
  const Tensor xx = token_shift(x) - x;                                                // [L, C]
  const Tensor lora = tanh(matmul(x + xx * time_maa_x, time_maa_w1));                 // [L, 128]
  const Tensor m = matmul(lora.reshape({L, 4, 32}).transpose(0, 1), time_maa_w2);    // [4, L, C]
  const Tensor xrg = x + xx * (time_maa_rg + m.select(0, 0)), xwa = x + xx * (time_maa_wa + m.select(0, 1));
  const Tensor xk = x + xx * (time_maa_k + m.select(0, 2)), xv = x + xx * (time_maa_v + m.select(0, 3));
  const Tensor r = receptance->forward(xrg);
  const Tensor w = neg(softplus(neg(time_decay + matmul(tanh(matmul(xwa, time_decay_w1)), time_decay_w2)))) - 0.5;
  Tensor k = key->forward(xk);
  const Tensor v = value->forward(xv);
  const Tensor g = matmul(tanh(matmul(xrg, gate_w1)), gate_w2);
  const Tensor kk_raw = heads(k + matmul(tanh(matmul(xk, time_kkk_w1)), time_kkk_w2));
  const Tensor kk = kk_raw / clamp_min(sqrt(sum(square(kk_raw), {2}, true)), 1e-12);   // [L, H, N], F.normalize
  const Tensor a = sigmoid(time_aaaaa + matmul(matmul(xwa, time_aaa_w1), time_aaa_w2));
  const Tensor ma = sigmoid(time_misc_a + matmul(matmul(xwa, ma_w1), ma_w2));
  k = k * ma + k * a * (1.0 - ma);
  const Tensor mk = sigmoid(time_misc_k + matmul(matmul(xk, mk_w1), mk_w2));
  k = k * exp(clamp_max(w * mk, 0.0));
  const Tensor y = wkv7(heads(r), heads(w), heads(k), heads(v), neg(kk), kk * heads(a));  // [L, H, N]
  const Tensor normed = layer_norm(y, 1, 64e-5).reshape({L, C}) * ln_x->weight + ln_x->bias;  // GroupNorm(H)
  const Tensor bonus = sum(heads(r) * heads(k) * time_faaaa, {2}, true) * heads(v);            // [L, H, N]
  return output->forward((normed + bonus.reshape({L, C})) * g);
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

RWKVBlock::RWKVBlock(int64_t C, int64_t head_size, int64_t dim_ffn, int64_t layer_id, int64_t n_layer, int version) {
  ENGINE_CHECK(version == 5 || version == 7, "RWKVBlock", "version must be 5 or 7, got {}", version);
  ln1 = register_module("ln1", std::make_shared<nn::LayerNorm>(C));
  ln2 = register_module("ln2", std::make_shared<nn::LayerNorm>(C));
  if (layer_id == 0) ln0 = register_module("ln0", std::make_shared<nn::LayerNorm>(C));
  if (version == 5) att = register_module("att", std::make_shared<RWKVTimeMix5>(C, head_size, layer_id, n_layer));
  else att7 = register_module("att", std::make_shared<RWKVTimeMix7>(C, head_size, layer_id, n_layer));
  ffn = register_module("ffn", std::make_shared<RWKVChannelMix>(C, dim_ffn, layer_id, n_layer));
}

Tensor RWKVBlock::forward(const Tensor& x_in) {
  Tensor x = ln0 ? ln0->forward(x_in) : x_in;
  x = x + (att ? att->forward(ln1->forward(x)) : att7->forward(ln1->forward(x)));
  return x + ffn->forward(ln2->forward(x));
}

}  // namespace layers
