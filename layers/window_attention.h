// FlatFormer window attention (lampa-models.md 3.6; reference models/attention/flatformer.py and
// model_utils/window_utils.py): the four window-curve orders of the hits, the group padding (flat2win), the post-norm
// group-attention sub-layer (BasicLayer) and one FlatFormer "Attn" layer (4 sub-layers in sequence, learned PE).
// The window curves are shared with pemamba2 (4.7), which uses the same mapping with a different window.
#pragma once
#include <array>
#include <cstdint>
#include <memory>

#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/tensor.h"
#include "layers/dense_attention.h"

namespace layers {

// The four sort orders and the group padding of one event (FlattenedWindowMapping).
struct WindowCurves {
  // perm[k]: int64 [N], the hits in curve order k = 0..3: x, x_shift, y, y_shift (window snakes through (phi, eta)
  // bins, boustrophedon inside each window; "_shift" after shifting both bin indices by w / 2).
  std::array<engine::Tensor, 4> perm;
  // flat2win: int64 [Np], Np = ceil(N / G) G: identity on the first N positions, then positions N - G .. N - G +
  // (Np - N) - 1 again (the pad copies hits of the previous group). When N < G there is no padding (Np = N, one short
  // group): the reference's indices would be negative there.
  engine::Tensor flat2win;
  int64_t group = 0;
};

// Discretises eta and phi ([N] each, any float dtype, CPU or CUDA; read on the CPU) into `bins` bins by min-max
// scaling (bin = clamp(floor((c - min) / ((max - min) / bins)), 0, bins - 1); a constant column gives bin 0), with
// the window w = bins / num_slices_per_axis, and builds the curves (stable argsort of the curve keys) and flat2win
// for groups of `group_size`. Index tensors on the device of eta.
WindowCurves window_curves(const engine::Tensor& eta, const engine::Tensor& phi, int64_t bins,
                           int64_t num_slices_per_axis, int64_t group_size);

// The curve keys of 3.6 for bin indices (gx = phi bin, gy = eta bin): vx (x order) or vy (y order). Exposed for tests.
int64_t window_curve_key(int64_t gx, int64_t gy, int64_t bins, int64_t window, bool y_order, bool shifted);

// BasicLayer (post-norm): s = LN1(s + GA(s)); s = LN2(s + fc2(relu(fc1 s))), fc1: h -> 2h. GA = MultiHeadAttention
// (heads x head_dim = h, with q = k = s + pe, v = s) inside groups of `group` consecutive rows.
// Parameters 3 h H h + H h h + h + 4h + (2h^2 + 2h) + (2h^2 + h).
class WindowBasicLayer : public engine::nn::Module {
 public:
  WindowBasicLayer(int64_t h, int64_t heads);
  // s, pe [M, h] -> [M, h].
  engine::Tensor forward(const engine::Tensor& s, const engine::Tensor& pe, int64_t group) const;

  std::shared_ptr<MultiHeadAttention> attn;
  std::shared_ptr<engine::nn::LayerNorm> norm1, norm2;
  std::shared_ptr<engine::nn::Linear> fc1, fc2;
};

// Learned positional embedding (window_utils.py:23-41): Lin(C, h) -> LN -> ReLU -> Lin(h, h). [N, C] -> [N, h].
class LearnedPE : public engine::nn::UnaryModule {
 public:
  LearnedPE(int64_t coords_dim, int64_t h);
  engine::Tensor forward(const engine::Tensor& coords) override;

  std::shared_ptr<engine::nn::Linear> lin1, lin2;
  std::shared_ptr<engine::nn::LayerNorm> norm;
};

// One FlatFormer Attn layer: pe = PE(coords); for k = 0..3: seq = x[perm_k][flat2win], s = BasicLayer_k(seq,
// pe[perm_k][flat2win]), x[perm_k] = s[:N]. Also holds the reference's unused w_rpe (Linear(Kw (C - 1), H h)) so the
// trainable parameter count matches (lampa-models.md 8.2 h).
class FlatformerAttention : public engine::nn::Module {
 public:
  FlatformerAttention(int64_t h, int64_t heads, int64_t coords_dim = 6, int64_t num_w_per_dist = 10);
  // x [N, h], coords [N, C] -> the states after each of the 4 sub-layers, each [N, h] (the last one is the output).
  std::array<engine::Tensor, 4> forward(const engine::Tensor& x, const engine::Tensor& coords,
                                        const WindowCurves& curves) const;

  std::shared_ptr<LearnedPE> pe;
  std::shared_ptr<engine::nn::ModuleList> blocks;
  std::shared_ptr<engine::nn::Linear> w_rpe;
};

}  // namespace layers
