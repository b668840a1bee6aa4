// Random numbers: Philox4x32-10 against the Random123 known-answer vectors, the documented lane-to-value formulas,
// statistics of rand/randn/uniform/randint/randperm over 1e5 draws, seeding and reproducibility, and dropout
// (identities, scaling, mask reuse in backward, gradcheck with a fixed seed).
#include <algorithm>
#include <numeric>

#include "gradcheck.h"

using namespace engine;
using testing::gradcheck;

namespace {

std::pair<double, double> mean_var(const std::vector<double>& v) {
  double m = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return {m, s / static_cast<double>(v.size() - 1)};
}

std::array<uint32_t, 4> raw_block(std::array<uint32_t, 4> ctr, uint32_t k0, uint32_t k1) {
  Philox::block_words(ctr.data(), k0, k1);
  return ctr;
}

}  // namespace

TEST_CASE("Philox4x32-10 reproduces the Random123 known-answer vectors") {
  using A = std::array<uint32_t, 4>;
  CHECK(raw_block({0, 0, 0, 0}, 0, 0) == A{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(raw_block({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, 0xffffffff, 0xffffffff) ==
        A{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(raw_block({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, 0xa4093822, 0x299f31d0) ==
        A{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
  // 64-bit counter/key mapping: counter -> {lo, hi, 0, 0}, key -> {lo, hi}
  CHECK(Philox::block(0, 0) == A{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  const uint64_t c = 0x85a308d3243f6a88ull, k = 0x299f31d0a4093822ull;
  CHECK(Philox::block(c, k) == raw_block({0x243f6a88, 0x85a308d3, 0, 0}, 0xa4093822, 0x299f31d0));
}

TEST_CASE("random factories follow the documented lane formulas") {
  Generator g(77);
  g.set_state(77, 1000);
  Tensor u32 = rand({3}, DType::F32, &g);
  Tensor u64 = rand({3}, DType::F64, &g);
  Tensor n64 = randn({2}, DType::F64, &g);
  Tensor ri = randint(-5, 9, {2}, DType::I64, &g);
  CHECK(g.offset() == 1010);
  auto v32 = u32.to_vector<float>();
  auto v64 = u64.to_vector<double>();
  for (int i = 0; i < 3; ++i) {
    auto l = Philox::block(1000 + i, 77);
    CHECK(v32[i] == static_cast<float>(l[0] >> 8) / 16777216.0f);
    auto m = Philox::block(1003 + i, 77);
    CHECK(v64[i] == Philox::uniform_f64(m[0], m[1]));
  }
  for (int i = 0; i < 2; ++i) {
    auto l = Philox::block(1006 + i, 77);
    double u1 = Philox::uniform_f64(l[0], l[1]), u2 = Philox::uniform_f64(l[2], l[3]);
    CHECK(n64.to_vector<double>()[i] == std::sqrt(-2 * std::log(1 - u1)) * std::cos(2 * M_PI * u2));
    auto r = Philox::block(1008 + i, 77);
    CHECK(ri.to_vector<int64_t>()[i] == -5 + static_cast<int64_t>(Philox::bits64(r.data()) % 14));
  }
}

TEST_CASE("rand, randn, uniform, randint statistics over 1e5 draws") {
  manual_seed(2024);
  const int64_t n = 100000;
  for (DType t : {DType::F32, DType::F64}) {
    auto u = rand({n}, t).to_vector<double>();
    auto [um, uv] = mean_var(u);
    CHECK(std::abs(um - 0.5) < 0.005);         // sd of the mean: 0.29 / sqrt(1e5) = 0.0009
    CHECK(std::abs(uv - 1.0 / 12) < 0.002);
    CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
    CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
    auto z = randn({n}, t).to_vector<double>();
    auto [zm, zv] = mean_var(z);
    CHECK(std::abs(zm) < 0.015);
    CHECK(std::abs(zv - 1.0) < 0.02);
    const double frac_2sd = std::count_if(z.begin(), z.end(), [](double x) { return std::abs(x) > 2; }) / double(n);
    CHECK(std::abs(frac_2sd - 0.0455) < 0.004);
  }
  auto w = uniform({n}, -3, 5, DType::F32).to_vector<double>();
  CHECK(std::abs(mean_var(w).first - 1.0) < 0.04);
  CHECK(*std::min_element(w.begin(), w.end()) >= -3.0);
  CHECK(*std::max_element(w.begin(), w.end()) < 5.0);
  auto k = randint(-2, 5, {n}, DType::I32).to_vector<int64_t>();
  std::vector<int64_t> hist(7, 0);
  for (int64_t x : k) {
    REQUIRE((x >= -2 && x < 5));
    ++hist[x + 2];
  }
  for (int64_t h : hist) CHECK(std::abs(h - n / 7) < 700);  // sd ~ 111
  auto p = randperm(1000).to_vector<int64_t>();
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  CHECK(sorted == iota);
  CHECK(p != iota);
  CHECK(randperm(0).numel() == 0);
}

TEST_CASE("seeding: same seed reproduces, different seeds and successive draws differ") {
  manual_seed(5);
  auto a = randn({64}).to_vector<float>();
  auto a2 = randn({64}).to_vector<float>();
  manual_seed(5);
  CHECK(randn({64}).to_vector<float>() == a);
  CHECK(a != a2);
  manual_seed(6);
  CHECK(randn({64}).to_vector<float>() != a);
  Generator g1(9), g2(9);
  CHECK(rand({10}, DType::F64, &g1).to_vector<double>() == rand({10}, DType::F64, &g2).to_vector<double>());
  CHECK(randperm(50, &g1).to_vector<int64_t>() == randperm(50, &g2).to_vector<int64_t>());
  // thread count does not change the stream
  set_num_threads(1);
  g1.set_state(3, 0);
  auto one = rand({20000}, DType::F32, &g1).to_vector<float>();
  set_num_threads(2);
  g1.set_state(3, 0);
  CHECK(rand({20000}, DType::F32, &g1).to_vector<float>() == one);
}

TEST_CASE("dropout: identities, scaling, mask reuse in backward") {
  Tensor x = testing::rand_f64({50, 40}, 1, 1, 2);
  CHECK(dropout(x, 0.0, true).impl() == x.impl());
  CHECK(dropout(x, 0.7, false).impl() == x.impl());
  CHECK(dropout(x, 1.0, true).to_vector<double>() == std::vector<double>(2000, 0.0));
  Generator g(11);
  Tensor y = dropout(x, 0.3, true, &g);
  auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  int64_t kept = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] != 0) {
      ++kept;
      CHECK(yv[i] == doctest::Approx(xv[i] / 0.7).epsilon(1e-14));
    }
  }
  CHECK(std::abs(kept / 2000.0 - 0.7) < 0.05);  // sd ~ 0.01
  // the same mask for a non-contiguous input with the same counters
  Generator g2(11);
  Tensor yt = dropout(x.t().contiguous().t(), 0.3, true, &g2);
  CHECK(yt.to_vector<double>() == yv);
  // backward: g * mask / (1 - p)
  sum(y).backward();
  auto gv = x.grad().to_vector<double>();
  for (size_t i = 0; i < gv.size(); ++i) CHECK(gv[i] == (yv[i] != 0 ? 1.0 / 0.7 : 0.0));
  // the expectation is preserved over many elements
  Tensor ones_f = ones({200000});
  CHECK(std::abs(mean(dropout(ones_f, 0.25, true)).item() - 1.0) < 0.01);
  CHECK_THROWS_WITH_AS(dropout(x, 1.5, true), doctest::Contains("dropout: p must lie in [0, 1]"), EngineError);
  CHECK_THROWS_AS(randint(3, 3, {2}), EngineError);
  CHECK_THROWS_AS(rand({2}, DType::I64), EngineError);
}

TEST_CASE("gradcheck: dropout with a fixed seed, contiguous and non-contiguous") {
  Tensor x = testing::rand_f64({6, 5}, 2);
  gradcheck([](const Tensors& in) { Generator g(42); return dropout(in[0], 0.4, true, &g); }, {x});
  gradcheck([](const Tensors& in) { Generator g(43); return dropout(in[0].t(), 0.4, true, &g); }, {x});
}
