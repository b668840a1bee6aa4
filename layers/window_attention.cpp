// FlatFormer window attention: the window curves (host-side integer work), the BasicLayer / PE modules and the
// 4-sub-layer Attn layer, through engine ops and the fused group attention of layers/dense_attention.h.
#include "layers/window_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/engine.h"
#include "layers/common.h"
#include "layers/e2lsh.h"

namespace layers {

using namespace engine;

namespace {

// Bins of one column: clamp(floor((c - min) / ((max - min) / bins)), 0, bins - 1).
std::vector<int64_t> discretise(const std::vector<double>& c, int64_t bins) {
  std::vector<int64_t> out(c.size(), 0);
  if (c.empty()) return out;
  const auto [lo, hi] = std::minmax_element(c.begin(), c.end());
  const double width = (*hi - *lo) / static_cast<double>(bins);
  if (!(width > 0.0)) return out;
  for (size_t i = 0; i < c.size(); ++i) {
    const double b = std::floor((c[i] - *lo) / width);
    out[i] = static_cast<int64_t>(std::clamp(b, 0.0, static_cast<double>(bins - 1)));
  }
  return out;
}

inline int64_t alt(int64_t k) { return k % 2 == 0 ? 1 : -1; }  // s(k) = (-1)^k

}  // namespace

int64_t window_curve_key(int64_t gx, int64_t gy, int64_t bins, int64_t w, bool y_order, bool shifted) {
  const int64_t nw = (bins + w - 1) / w + 1;
  if (shifted) {
    gx += w / 2;
    gy += w / 2;
  }
  const int64_t x1 = gx / w, x2 = gx % w, y1 = gy / w, y2 = gy % w, w2 = 2 * w;
  if (!y_order) return (2 * nw * y1 + alt(y1) * x1) * w2 * w2 + alt(y1) * (w2 * x2 + alt(x2) * y2);
  return (2 * nw * x1 + alt(x1) * y1) * w2 * w2 + alt(x1) * (w2 * y2 + alt(y2) * x2);
}

WindowCurves window_curves(const Tensor& eta, const Tensor& phi, int64_t bins, int64_t num_slices_per_axis,
                           int64_t group_size) {
  const char* where = "window_curves";
  check_shape(where, "eta", eta, {-1});
  check_shape(where, "phi", phi, {eta.size(0)});
  ENGINE_CHECK(bins >= 1 && num_slices_per_axis >= 1 && num_slices_per_axis <= bins, where,
               "need bins >= num_slices_per_axis >= 1, got bins {} and num_slices_per_axis {}", bins,
               num_slices_per_axis);
  ENGINE_CHECK(group_size >= 1, where, "group_size must be >= 1, got {}", group_size);
  const int64_t N = eta.size(0), w = bins / num_slices_per_axis;
  const std::vector<int64_t> gy = discretise(eta.to(DType::F64).to(Device::cpu()).to_vector<double>(), bins);
  const std::vector<int64_t> gx = discretise(phi.to(DType::F64).to(Device::cpu()).to_vector<double>(), bins);
  WindowCurves c;
  c.group = group_size;
  const bool y_order[4] = {false, false, true, true}, shifted[4] = {false, true, false, true};
  for (int k = 0; k < 4; ++k) {
    std::vector<double> key(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i)
      key[static_cast<size_t>(i)] =
          static_cast<double>(window_curve_key(gx[static_cast<size_t>(i)], gy[static_cast<size_t>(i)], bins, w,
                                               y_order[k], shifted[k]));
    c.perm[k] = from_vector(stable_argsort(key), {N}).to(eta.device());
  }
  const int64_t Np = N < group_size ? N : (N + group_size - 1) / group_size * group_size;
  std::vector<int64_t> f2w(static_cast<size_t>(Np));
  for (int64_t i = 0; i < Np; ++i) f2w[static_cast<size_t>(i)] = i < N ? i : N - group_size + (i - N);
  c.flat2win = from_vector(f2w, {Np}).to(eta.device());
  return c;
}

// ---------------------------------------------------------------- modules

WindowBasicLayer::WindowBasicLayer(int64_t h, int64_t heads) {
  attn = register_module("attn", std::make_shared<MultiHeadAttention>(h, heads, h));
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(h));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(h));
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(h, 2 * h));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(2 * h, h));
}

Tensor WindowBasicLayer::forward(const Tensor& s, const Tensor& pe, int64_t group) const {
  check_shape("WindowBasicLayer", "pe", pe, {s.size(0), s.size(1)});
  DenseAttentionOptions o;
  o.group = group;
  const Tensor qk = s + pe;  // [M, h]
  Tensor a = norm1->forward(s + attn->forward(qk, qk, s, o));
  return norm2->forward(a + fc2->forward(relu(fc1->forward(a))));
}

LearnedPE::LearnedPE(int64_t coords_dim, int64_t h) {
  lin1 = register_module("0", std::make_shared<nn::Linear>(coords_dim, h));
  norm = register_module("1", std::make_shared<nn::LayerNorm>(h));
  lin2 = register_module("3", std::make_shared<nn::Linear>(h, h));
}

Tensor LearnedPE::forward(const Tensor& coords) { return lin2->forward(relu(norm->forward(lin1->forward(coords)))); }

FlatformerAttention::FlatformerAttention(int64_t h, int64_t heads, int64_t coords_dim, int64_t num_w_per_dist) {
  pe = register_module("pe", std::make_shared<LearnedPE>(coords_dim, h));
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (int k = 0; k < 4; ++k) blocks->push_back(std::make_shared<WindowBasicLayer>(h, heads));
  w_rpe = register_module("w_rpe", std::make_shared<nn::Linear>(num_w_per_dist * (coords_dim - 1), heads * h));
}

std::array<Tensor, 4> FlatformerAttention::forward(const Tensor& x, const Tensor& coords,
                                                   const WindowCurves& curves) const {
  check_shape("FlatformerAttention", "x", x, {-1, -1});
  const int64_t N = x.size(0);
  check_shape("FlatformerAttention", "coords", coords, {N, -1});
  ENGINE_CHECK(curves.perm[0].defined() && curves.perm[0].size(0) == N, "FlatformerAttention",
               "the window curves are for a different number of hits");
  const Tensor p = pe->forward(coords);  // [N, h]
  std::array<Tensor, 4> states;
  Tensor cur = x;
  for (int k = 0; k < 4; ++k) {
    Tensor idx, inv;  // [Np] rows of x in window order; [N] the inverse permutation
    {
      NoGradGuard ng;
      idx = index_select(curves.perm[k], 0, curves.flat2win);
      inv = argsort(curves.perm[k]);
    }
    Tensor s = blocks->get<WindowBasicLayer>(k)->forward(index_select(cur, 0, idx), index_select(p, 0, idx),
                                                         curves.group);
    cur = index_select(s.narrow(0, 0, N), 0, inv);  // x[perm_k] = s[:N]
    states[static_cast<size_t>(k)] = cur;
  }
  return states;
}

}  // namespace layers
