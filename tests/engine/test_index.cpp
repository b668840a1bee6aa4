// Indexing ops: gather/scatter_add, index_select/index_add, segment sum/mean/max, embedding, one_hot against naive
// loops (duplicate indices, empty segments, single rows, non-contiguous views), float64 gradchecks, thread-count
// independence, and the range/offset error messages.
#include <random>

#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;
using testing::rand_f64;

namespace {

std::vector<int64_t> random_ints(size_t n, int64_t lo, int64_t hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> u(lo, hi - 1);
  std::vector<int64_t> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

Tensor ints(const std::vector<int64_t>& v, const Shape& s, DType t = DType::I64) { return from_vector(v, s, t); }

// CSR offsets of random segment lengths in [0, max_len], some empty.
std::vector<int64_t> random_offsets(int64_t S, int64_t max_len, uint64_t seed) {
  auto len = random_ints(static_cast<size_t>(S), 0, max_len + 1, seed);
  std::vector<int64_t> off{0};
  for (int64_t l : len) off.push_back(off.back() + l);
  return off;
}

// Runs f with 1 and with 2 threads and checks the results are bit-identical.
void check_thread_independent(const std::function<Tensor()>& f) {
  const int saved = get_num_threads();
  set_num_threads(1);
  auto a = f().to_vector<double>();
  set_num_threads(2);
  auto b = f().to_vector<double>();
  set_num_threads(saved);
  CHECK(a == b);
}

}  // namespace

TEST_CASE("gather matches a naive loop (dims 0 and 1, smaller index, non-contiguous x, int32)") {
  Tensor x = rand_f64({5, 4}, 1, -1, 1, false);
  auto xv = x.to_vector<double>();
  // dim 0: index [3, 4] with duplicates
  auto iv = random_ints(12, 0, 5, 2);
  Tensor out = gather(x, 0, ints(iv, {3, 4}, DType::I32));
  auto ov = out.to_vector<double>();
  REQUIRE(out.shape() == Shape{3, 4});
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) CHECK(ov[i * 4 + j] == xv[iv[i * 4 + j] * 4 + j]);
  // dim 1 with an index narrower than x in dim 0 and a transposed (non-contiguous) x: xt [4, 5]
  Tensor xt = x.t();
  auto jv = random_ints(3 * 6, 0, 5, 3);
  Tensor o2 = gather(xt, 1, ints(jv, {3, 6}));
  auto o2v = o2.to_vector<double>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 6; ++j) CHECK(o2v[i * 6 + j] == xv[jv[i * 6 + j] * 4 + i]);
}

TEST_CASE("scatter_add matches a naive loop with duplicates and is thread-count independent") {
  Tensor x = rand_f64({4, 3}, 4, -1, 1, false);
  Tensor src = rand_f64({6, 3}, 5, -1, 1, false);
  auto iv = random_ints(18, 0, 4, 6);
  Tensor index = ints(iv, {6, 3});
  auto ref = x.to_vector<double>();
  auto sv = src.to_vector<double>();
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 3; ++j) ref[iv[i * 3 + j] * 3 + j] += sv[i * 3 + j];
  CHECK_CLOSE(scatter_add(x, 0, index, src), from_vector(ref, {4, 3}), 1e-12, 1e-12);
  // dim 1 on a 1-row x
  Tensor y = zeros({1, 2}, DType::F64);
  Tensor r = scatter_add(y, 1, ints({1, 1, 0}, {1, 3}), from_vector<double>({1, 2, 4}, {1, 3}));
  CHECK(r.to_vector<double>() == std::vector<double>{4, 3});
  // large: 1-D scatter of 20000 sources into 7 bins in float32
  Tensor big = testing::rand_f32({20000}, 7);
  Tensor bi = ints(random_ints(20000, 0, 7, 8), {20000});
  check_thread_independent([&] { return scatter_add(zeros({7}), 0, bi, big); });
}

TEST_CASE("index_select and index_add match naive loops (dims 0..2, duplicates, empty index)") {
  Tensor x = rand_f64({3, 4, 5}, 9, -1, 1, false);
  auto xv = x.to_vector<double>();
  for (int64_t dim = 0; dim < 3; ++dim) {
    const int64_t n = x.size(dim), K = 7;
    auto iv = random_ints(K, 0, n, 10 + dim);
    Tensor index = ints(iv, {K}, dim == 1 ? DType::I32 : DType::I64);
    Tensor sel = index_select(x, dim, index);
    Shape s = x.shape();
    s[dim] = K;
    REQUIRE(sel.shape() == s);
    auto sv = sel.to_vector<double>();
    Tensor src = rand_f64(s, 20 + dim, -1, 1, false);
    auto srcv = src.to_vector<double>();
    std::vector<double> ref = xv;
    for (int64_t a = 0; a < s[0]; ++a)
      for (int64_t b = 0; b < s[1]; ++b)
        for (int64_t c = 0; c < s[2]; ++c) {
          int64_t co[3] = {a, b, c};
          co[dim] = iv[co[dim]];
          const int64_t xi = (co[0] * 4 + co[1]) * 5 + co[2], si = (a * s[1] + b) * s[2] + c;
          CHECK(sv[si] == xv[xi]);
          ref[xi] += srcv[si];
        }
    CHECK_CLOSE(index_add(x, dim, index, src), from_vector(ref, x.shape()), 1e-12, 1e-12);
  }
  Tensor none = index_select(x, 1, ints({}, {0}));
  CHECK(none.shape() == Shape{3, 0, 5});
  CHECK(index_add(x, 1, ints({}, {0}), none).to_vector<double>() == xv);
  Tensor srcbig = testing::rand_f32({5000, 3}, 11);
  Tensor ib = ints(random_ints(5000, 0, 40, 12), {5000});
  check_thread_independent([&] { return index_add(zeros({40, 3}), 0, ib, srcbig); });
}

TEST_CASE("segment sum/mean/max match naive loops with empty segments, single rows and trailing dims") {
  for (auto [S, max_len] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 3}, {300, 9}}) {
    auto off = random_offsets(S, max_len, 30 + S);
    const int64_t N = off.back(), F = 6;
    Tensor x = rand_f64({N, 2, 3}, 31 + S, -1, 1, false);
    Tensor offsets = ints(off, {S + 1}, S == 5 ? DType::I32 : DType::I64);
    auto xv = x.to_vector<double>();
    std::vector<double> rs(S * F, 0), rm(S * F, 0), rx(S * F, 0);
    for (int64_t s = 0; s < S; ++s)
      for (int64_t f = 0; f < F; ++f) {
        double best = -INFINITY;
        for (int64_t r = off[s]; r < off[s + 1]; ++r) {
          rs[s * F + f] += xv[r * F + f];
          best = std::max(best, xv[r * F + f]);
        }
        const int64_t cnt = off[s + 1] - off[s];
        rm[s * F + f] = cnt ? rs[s * F + f] / cnt : 0.0;
        rx[s * F + f] = cnt ? best : 0.0;
      }
    CHECK_CLOSE(segment_sum(x, offsets), from_vector(rs, {S, 2, 3}), 1e-12, 1e-12);
    CHECK_CLOSE(segment_mean(x, offsets), from_vector(rm, {S, 2, 3}), 1e-12, 1e-12);
    CHECK_CLOSE(segment_max(x, offsets), from_vector(rx, {S, 2, 3}), 0, 0);
  }
  // no rows at all
  Tensor e = segment_sum(zeros({0, 4}), ints({0, 0, 0}, {3}));
  CHECK(e.shape() == Shape{2, 4});
  CHECK(e.to_vector<float>() == std::vector<float>(8, 0.0f));
  Tensor big = testing::rand_f32({4000, 5}, 32);
  Tensor boff = ints(random_offsets(700, 11, 33), {701});
  Tensor bigx = testing::rand_f32({boff.to_vector<int64_t>().back(), 5}, 34);
  check_thread_independent([&] { return segment_sum(bigx, boff); });
}

TEST_CASE("segment_max sends the gradient to the first maximum only") {
  Tensor x = from_vector<double>({1, 5, 5, 2, 7}, {5, 1}).requires_grad_();
  Tensor off = ints({0, 3, 3, 5}, {4});
  Tensor y = segment_max(x, off);
  CHECK(y.to_vector<double>() == std::vector<double>{5, 0, 7});
  sum(mul(y, from_vector<double>({10, 20, 30}, {3, 1}))).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 10, 0, 0, 30});
}

TEST_CASE("embedding and one_hot") {
  Tensor w = rand_f64({6, 3}, 40, -1, 1, false);
  Tensor ids = ints({5, 0, 5, 2}, {2, 2});
  Tensor e = embedding(w, ids);
  REQUIRE(e.shape() == Shape{2, 2, 3});
  auto wv = w.to_vector<double>(), ev = e.to_vector<double>();
  for (int k = 0; k < 4; ++k)
    for (int d = 0; d < 3; ++d) CHECK(ev[k * 3 + d] == wv[std::vector<int>{5, 0, 5, 2}[k] * 3 + d]);
  Tensor oh = one_hot(ints({2, 0, 2}, {3}, DType::I32), 4);
  CHECK(oh.dtype() == DType::F32);
  CHECK(oh.to_vector<float>() == std::vector<float>{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0});
  CHECK(one_hot(ints({1}, {1}), 2, DType::F64).shape() == Shape{1, 2});
}

TEST_CASE("gradcheck: gather, scatter_add, index_select, index_add, embedding (incl. non-contiguous inputs)") {
  Tensor x = rand_f64({4, 5}, 50);
  Tensor gi = ints(random_ints(15, 0, 4, 51), {3, 5});
  gradcheck([&](const Tensors& in) { return gather(in[0], 0, gi); }, {x});
  Tensor gi1 = ints(random_ints(10, 0, 4, 52), {5, 2});
  gradcheck([&](const Tensors& in) { return gather(in[0].t(), 1, gi1); }, {x});  // x.t(): [5, 4]
  Tensor src = rand_f64({3, 5}, 53);
  gradcheck([&](const Tensors& in) { return scatter_add(in[0], 0, gi, in[1]); }, {x, src});
  Tensor srct = rand_f64({5, 3}, 54);
  gradcheck([&](const Tensors& in) { return scatter_add(in[0], 0, gi, in[1].t()); }, {x, srct});
  Tensor si = ints({3, 0, 3, 1, 3}, {5});
  gradcheck([&](const Tensors& in) { return index_select(in[0], 0, si); }, {x});
  gradcheck([&](const Tensors& in) { return index_select(in[0].t(), 1, si); }, {x});
  Tensor asrc = rand_f64({4, 5}, 55);  // index_add along dim 1 of x [4, 5] with 5 sources
  Tensor ai = ints({4, 4, 0, 2, 4}, {5});
  gradcheck([&](const Tensors& in) { return index_add(in[0], 1, ai, in[1]); }, {x, asrc});
  gradcheck([&](const Tensors& in) { return index_add(in[0].t(), 0, ai, in[1].t()); }, {x, asrc});
  Tensor w = rand_f64({6, 3}, 56);
  Tensor ids = ints({5, 0, 5, 2, 5, 1}, {2, 3});
  gradcheck([&](const Tensors& in) { return embedding(in[0], ids); }, {w});
}

TEST_CASE("gradcheck: segment sum/mean/max with empty segments and non-contiguous x") {
  Tensor off = ints({0, 2, 2, 5, 6}, {5});
  Tensor x = rand_f64({6, 3}, 60);
  Tensor xt = rand_f64({3, 6}, 61);
  for (auto f : {segment_sum, segment_mean, segment_max}) {
    gradcheck([&](const Tensors& in) { return f(in[0], off); }, {x});
    gradcheck([&](const Tensors& in) { return f(in[0].t(), off); }, {xt});
  }
}

TEST_CASE("index errors name the op, the argument, the offending value and the range") {
  Tensor x = zeros({4, 3});
  CHECK_THROWS_WITH_AS(index_select(x, 0, ints({1, 7}, {2})),
                       doctest::Contains("index_select: index value 7 is out of range [0, 4)"), EngineError);
  CHECK_THROWS_WITH_AS(gather(x, 1, ints({-2, 0}, {1, 2})),
                       doctest::Contains("gather: index value -2 is out of range [0, 3)"), EngineError);
  CHECK_THROWS_WITH_AS(index_add(x, 0, ints({4}, {1}), zeros({1, 3})), doctest::Contains("value 4"), EngineError);
  CHECK_THROWS_WITH_AS(scatter_add(x, 0, ints({0, 9}, {1, 2}), zeros({1, 2})), doctest::Contains("value 9"),
                       EngineError);
  CHECK_THROWS_WITH_AS(embedding(x, ints({4}, {1})), doctest::Contains("embedding: ids value 4"), EngineError);
  CHECK_THROWS_WITH_AS(one_hot(ints({3}, {1}), 3), doctest::Contains("one_hot: ids value 3"), EngineError);
  CHECK_THROWS_WITH_AS(index_select(x, 0, zeros({2})), doctest::Contains("int32 or int64"), EngineError);
  CHECK_THROWS_WITH_AS(segment_sum(x, ints({0, 2, 3}, {3})),
                       doctest::Contains("segment_sum: offsets must end at the number of rows N = 4"), EngineError);
  CHECK_THROWS_WITH_AS(segment_max(x, ints({1, 4}, {2})), doctest::Contains("offsets[0] must be 0"), EngineError);
  CHECK_THROWS_WITH_AS(segment_mean(x, ints({0, 3, 2, 4}, {4})), doctest::Contains("nondecreasing"), EngineError);
  CHECK_THROWS_WITH_AS(segment_sum(x, zeros({2})), doctest::Contains("offsets must be an int32 or int64"),
                       EngineError);
  CHECK_THROWS_AS(index_add(x, 0, ints({0}, {1}), zeros({2, 3})), EngineError);
  CHECK_THROWS_AS(scatter_add(x, 0, ints({0, 1}, {1, 2}), zeros({2, 2})), EngineError);
}
