// FlatFormer window curves (keys are a bijection of the bin grid whose consecutive cells inside a window are grid
// neighbours; the four orders are permutations; flat2win padding for N >= G and N < G), the FlatFormer layer
// (vs a step-by-step float64 reference of flatformer.py: x[perm][flat2win], naive group attention, explicit
// write-back loop; float64 gradcheck through the padded groups; parameter count), PCT's graph preparation, the
// point-transformer conv against a naive per-target loop (float64), its gradcheck and PCTBlock's parameter count
// (hept.md 4.2); float32 FlatFormer and PCT layers (every parameter gradient) against the same layers in float64.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "engine/engine.h"
#include "attn_reference.h"
#include "gradcheck.h"
#include "layers/pct.h"
#include "layers/window_attention.h"

using engine::DType;
using engine::Tensor;
using engine::Tensors;

namespace {

int64_t count_params(const engine::nn::Module& m) {
  int64_t n = 0;
  for (const Tensor& p : m.parameters()) n += p.numel();
  return n;
}

bool is_permutation_of_n(const Tensor& p, int64_t N) {
  std::vector<int64_t> v = p.to_vector<int64_t>();
  std::sort(v.begin(), v.end());
  for (int64_t i = 0; i < N; ++i)
    if (v[static_cast<size_t>(i)] != i) return false;
  return static_cast<int64_t>(v.size()) == N;
}

// A small sparse graph: every node gets edges from a few pseudo-random sources plus a duplicate self loop.
Tensor some_edges(int64_t N, uint64_t seed) {
  std::vector<int64_t> src, dst;
  uint64_t s = seed * 2654435761ULL + 1;
  for (int64_t i = 0; i < N; ++i) {
    src.push_back(i), dst.push_back(i);
    for (int e = 0; e < 3; ++e) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      src.push_back(static_cast<int64_t>(s % static_cast<uint64_t>(N))), dst.push_back(i);
    }
  }
  std::vector<int64_t> all(src);
  all.insert(all.end(), dst.begin(), dst.end());
  return engine::from_vector(all, {2, static_cast<int64_t>(src.size())});
}

}  // namespace

TEST_CASE("window curve keys: a bijection of the grid, snakes through each window") {
  const int64_t B = 12, w = 4;
  for (bool y_order : {false, true})
    for (bool shifted : {false, true}) {
      CAPTURE(y_order);
      CAPTURE(shifted);
      std::vector<std::pair<int64_t, std::pair<int64_t, int64_t>>> cells;
      for (int64_t gx = 0; gx < B; ++gx)
        for (int64_t gy = 0; gy < B; ++gy)
          cells.push_back({layers::window_curve_key(gx, gy, B, w, y_order, shifted), {gx, gy}});
      std::sort(cells.begin(), cells.end());
      for (size_t i = 1; i < cells.size(); ++i) {
        REQUIRE(cells[i].first != cells[i - 1].first);  // distinct keys
        const int64_t sh = shifted ? w / 2 : 0;
        auto [ax, ay] = cells[i - 1].second;
        auto [bx, by] = cells[i].second;
        const bool same_window = (ax + sh) / w == (bx + sh) / w && (ay + sh) / w == (by + sh) / w;
        if (same_window) CHECK(std::abs(ax - bx) + std::abs(ay - by) == 1);
      }
    }
}

TEST_CASE("window_curves: permutations and flat2win") {
  Tensor eta = testing::rand_f64({450}, 1, -4, 4, false), phi = testing::rand_f64({450}, 2, -3, 3, false);
  layers::WindowCurves c = layers::window_curves(eta, phi, 1000, 30, 200);
  for (int k = 0; k < 4; ++k) CHECK(is_permutation_of_n(c.perm[static_cast<size_t>(k)], 450));
  std::vector<int64_t> f = c.flat2win.to_vector<int64_t>();
  REQUIRE(f.size() == 600);
  for (int64_t i = 0; i < 600; ++i) CHECK(f[static_cast<size_t>(i)] == (i < 450 ? i : 250 + (i - 450)));
  layers::WindowCurves small = layers::window_curves(eta.narrow(0, 0, 50), phi.narrow(0, 0, 50), 1000, 30, 200);
  CHECK(small.flat2win.size(0) == 50);  // N < G: one short group, no padding
  layers::WindowCurves flat = layers::window_curves(engine::zeros({5}), engine::zeros({5}), 1000, 30, 200);
  CHECK(is_permutation_of_n(flat.perm[0], 5));  // constant columns: all in bin 0
  CHECK_THROWS_AS(layers::window_curves(eta, phi.narrow(0, 0, 3), 1000, 30, 200), engine::EngineError);
}

TEST_CASE("FlatformerAttention: parameter count and float64 gradcheck through padded groups") {
  layers::FlatformerAttention full(30, 8);
  CHECK(count_params(full) == 144000);  // 4 x 32,640 + PE 1,200 + w_rpe 12,240
  engine::manual_seed(5);
  layers::FlatformerAttention layer(4, 2, 6, 2);
  layer.to(DType::F64);
  for (int64_t N : {13, 4}) {  // 13: groups of 5 with a duplicated pad; 4: N < G
    CAPTURE(N);
    Tensor coords = testing::rand_f64({N, 6}, 10 + N, -2, 2, false);
    layers::WindowCurves c = layers::window_curves(coords.select(1, 0), coords.select(1, 1), 20, 4, 5);
    Tensor x = testing::rand_f64({N, 4}, 20 + N);
    testing::gradcheck([&](const Tensors& in) { return layer.forward(in[0], coords, c)[3]; }, {x});
  }
}

TEST_CASE("pct_graph: self loops removed then one added per node, sorted by target") {
  // Edges 0->1, 1->0, 1->2, 2->2, 2->2 (row 0 sources, row 1 targets).
  Tensor e = engine::from_vector(std::vector<int64_t>{0, 1, 1, 2, 2, 1, 0, 2, 2, 2}, {2, 5});
  layers::PCTGraph g = layers::pct_graph(e, 3);
  CHECK(g.src.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0, 1, 1, 2});
  CHECK(g.dst.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 1, 2, 2});
  CHECK(g.offsets.to_vector<int64_t>() == std::vector<int64_t>{0, 2, 4, 6});
  CHECK_THROWS_AS(layers::pct_graph(e, 2), engine::EngineError);
}

TEST_CASE("PointTransformerConv matches a naive per-target loop; gradcheck; PCTBlock parameter count") {
  engine::manual_seed(7);
  const int64_t N = 17, in = 6, out = 5, C = 3;
  layers::PointTransformerConv conv(in, out, C);
  conv.to(DType::F64);
  Tensor x = testing::rand_f64({N, in}, 1), pos = testing::rand_f64({N, C}, 2);
  layers::PCTGraph g = layers::pct_graph(some_edges(N, 3), N);
  Tensor y = conv.forward(x, pos, g);
  // Naive: per target i, per channel c, softmax over the neighbours j of a_ij[c].
  auto lin = [&](const engine::nn::Linear& l, const Tensor& t) { return engine::linear(t, l.weight, l.bias); };
  std::vector<double> vx = lin(*conv.lin, x).to_vector<double>(), vs = lin(*conv.lin_src, x).to_vector<double>(),
                      vd = lin(*conv.lin_dst, x).to_vector<double>();
  std::vector<int64_t> src = g.src.to_vector<int64_t>(), off = g.offsets.to_vector<int64_t>();
  std::vector<double> ref(static_cast<size_t>(N * out), 0.0);
  for (int64_t i = 0; i < N; ++i) {
    std::vector<std::vector<double>> a, m;
    for (int64_t e = off[static_cast<size_t>(i)]; e < off[static_cast<size_t>(i) + 1]; ++e) {
      const int64_t j = src[static_cast<size_t>(e)];
      Tensor dp = pos.select(0, i).unsqueeze(0) - pos.select(0, j).unsqueeze(0);
      std::vector<double> delta = lin(*conv.pos_nn, dp).to_vector<double>(), pre(static_cast<size_t>(out));
      std::vector<double> msg(static_cast<size_t>(out));
      for (int64_t c = 0; c < out; ++c) {
        pre[static_cast<size_t>(c)] = vd[static_cast<size_t>(i * out + c)] - vs[static_cast<size_t>(j * out + c)] +
                                      delta[static_cast<size_t>(c)];
        msg[static_cast<size_t>(c)] = vx[static_cast<size_t>(j * out + c)] + delta[static_cast<size_t>(c)];
      }
      a.push_back(lin(*conv.attn_nn, engine::from_vector(pre, {1, out})).to_vector<double>());
      m.push_back(msg);
    }
    for (int64_t c = 0; c < out; ++c) {
      double mx = -1e300, den = 0, num = 0;
      for (auto& r : a) mx = std::max(mx, r[static_cast<size_t>(c)]);
      for (size_t t = 0; t < a.size(); ++t) den += std::exp(a[t][static_cast<size_t>(c)] - mx);
      for (size_t t = 0; t < a.size(); ++t)
        num += std::exp(a[t][static_cast<size_t>(c)] - mx) / den * m[t][static_cast<size_t>(c)];
      ref[static_cast<size_t>(i * out + c)] = num;
    }
  }
  CHECK_CLOSE(y, engine::from_vector(ref, {N, out}), 1e-12, 1e-10);
  testing::gradcheck([&](const Tensors& t) { return conv.forward(t[0], t[1], g); }, {x, pos});
  layers::PCTBlock block(24, 8, 6);
  CHECK(count_params(block) == 30288);
}

TEST_CASE("FlatformerAttention matches a step-by-step reference of flatformer.py (float64)") {
  engine::manual_seed(11);
  const int64_t N = 23, h = 6, G = 8;
  layers::FlatformerAttention layer(h, 2, 6, 2);
  layer.to(DType::F64);
  Tensor coords = testing::rand_f64({N, 6}, 3, -2, 2, false), x = testing::rand_f64({N, h}, 4, -1, 1, false);
  layers::WindowCurves c = layers::window_curves(coords.select(1, 0), coords.select(1, 1), 40, 4, G);
  Tensor got = layer.forward(x, coords, c)[3];
  // Reference: seq = x[perm][flat2win]; BasicLayer with q = k = seq + pe, v = seq, softmax inside groups of G;
  // then x[perm[i]] = s[i] for i < N (an explicit write-back loop).
  auto lin = [](const engine::nn::Linear& l, const Tensor& t) { return engine::linear(t, l.weight, l.bias); };
  const Tensor pe = layer.pe->forward(coords);
  std::vector<double> cur = x.to_vector<double>();
  const std::vector<int64_t> f2w = c.flat2win.to_vector<int64_t>();
  for (int k = 0; k < 4; ++k) {
    const std::vector<int64_t> perm = c.perm[static_cast<size_t>(k)].to_vector<int64_t>();
    std::vector<int64_t> idx;
    for (int64_t p : f2w) idx.push_back(perm[static_cast<size_t>(p)]);
    const Tensor ix = engine::from_vector(idx, {static_cast<int64_t>(idx.size())});
    const Tensor seq = engine::index_select(engine::from_vector(cur, {N, h}), 0, ix);
    const Tensor pes = engine::index_select(pe, 0, ix);
    auto blk = layer.blocks->get<layers::WindowBasicLayer>(static_cast<size_t>(k));
    const int64_t M = seq.size(0), H = 2;
    const Tensor qk = seq + pes;
    layers::DenseAttentionOptions o;
    o.group = G;
    const Tensor a = testing::naive_attention(lin(*blk->attn->w_q, qk).reshape({M, H, h}),
                                              lin(*blk->attn->w_k, qk).reshape({M, H, h}),
                                              lin(*blk->attn->w_v, seq).reshape({M, H, h}), o);
    const Tensor s1 = blk->norm1->forward(seq + lin(*blk->attn->out_linear, a.reshape({M, H * h})));
    const Tensor s2 = blk->norm2->forward(s1 + lin(*blk->fc2, engine::relu(lin(*blk->fc1, s1))));
    const std::vector<double> sv = s2.to_vector<double>();
    for (int64_t i = 0; i < N; ++i)
      for (int64_t cc = 0; cc < h; ++cc)
        cur[static_cast<size_t>(perm[static_cast<size_t>(i)] * h + cc)] = sv[static_cast<size_t>(i * h + cc)];
  }
  CHECK_CLOSE(got, engine::from_vector(cur, {N, h}), 1e-12, 1e-10);
}

TEST_CASE("FlatformerAttention and PCTBlock float32 (output, input and every parameter gradient) vs float64") {
  // The float64 layers are references: they equal the step-by-step flatformer.py reference and the naive per-target
  // loop to 1e-12 (tests above). Catalog widths h 24, 8 heads; N = 130 with groups of 20 (a padded last group).
  engine::manual_seed(15);
  const int64_t N = 130;
  const Tensor coords = testing::rand_f64({N, 6}, 16, -2, 2, false);
  const Tensor x = testing::rand_f32({N, 24}, 17);
  layers::FlatformerAttention flat(24, 8);
  const layers::WindowCurves c = layers::window_curves(coords.select(1, 0), coords.select(1, 1), 40, 4, 20);
  auto run_flat = [&](const Tensor& u) { return flat.forward(u, coords.to(u.dtype()), c)[3]; };
  testing::check_module_f32_vs_f64(flat, x, run_flat, run_flat);
  layers::PCTBlock pct(24, 8, 6);
  pct.eval();
  const layers::PCTGraph g = layers::pct_graph(some_edges(N, 18), N);
  auto run_pct = [&](const Tensor& u) { return pct.forward(u, coords.to(u.dtype()), g); };
  // lin_dst and attn_nn's bias shift a_ij equally for every neighbour j of a target: the softmax cancels them, so
  // their exact gradients are zero (roundoff on both sides).
  testing::check_module_f32_vs_f64(pct, x, run_pct, run_pct, 1e-5, {"attn.lin_dst.weight", "attn.attn_nn.bias"});
}
