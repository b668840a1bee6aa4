// E2LSH projections, region counts and region codes (see layers/e2lsh.h).
#include "layers/e2lsh.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/engine.h"

namespace layers {

using engine::Tensor;

Tensor get_regions(double num_regions, int64_t n_hashes, int64_t num_heads, engine::Generator* gen) {
  ENGINE_CHECK(num_regions > 0 && n_hashes > 0 && num_heads > 0, "get_regions",
               "num_regions, n_hashes and num_heads must be positive");
  const float lb = 2.0f, ub = static_cast<float>(2.0 * std::sqrt(num_regions) - 2.0);
  // One (a1, a2) pair per draw index i = h * n_hashes + t, in that order.
  std::vector<float> u = engine::rand({n_hashes * num_heads, 2}, engine::DType::F32, gen).to_vector<float>();
  std::vector<float> out(static_cast<size_t>(n_hashes * 2 * num_heads));
  for (int64_t h = 0; h < num_heads; ++h)
    for (int64_t t = 0; t < n_hashes; ++t) {
      const int64_t i = h * n_hashes + t;
      float a1 = u[2 * i] * (ub - lb) + lb, a2 = u[2 * i + 1] * (ub - lb) + lb;
      const float scale = std::sqrt(static_cast<float>(num_regions) / (a1 * a2));
      a1 = std::nearbyint(a1 * scale * 3.0f) / 3.0f;
      a2 = std::nearbyint(a2 * scale * 3.0f) / 3.0f;
      out[static_cast<size_t>((t * 2 + 0) * num_heads + h)] = a1;
      out[static_cast<size_t>((t * 2 + 1) * num_heads + h)] = a2;
    }
  return engine::from_vector(out, {n_hashes, 2, num_heads});
}

Tensor e2lsh_alpha(int64_t num_heads, int64_t dim, int64_t n_hashes, engine::Generator* gen) {
  return engine::randn({num_heads, dim, n_hashes}, engine::DType::F32, gen);
}

namespace {

template <class K>
struct TorchLess {
  bool operator()(const std::pair<K, int64_t>& a, const std::pair<K, int64_t>& b) const {
    if constexpr (std::is_floating_point_v<K>) {
      return (!std::isnan(a.first) && std::isnan(b.first)) || (a.first < b.first);
    } else {
      return a.first < b.first;
    }
  }
};

template <class K>
std::vector<int64_t> torch_argsort_impl(const std::vector<K>& keys) {
  std::vector<std::pair<K, int64_t>> kv(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) kv[i] = {keys[i], static_cast<int64_t>(i)};
  std::sort(kv.begin(), kv.end(), TorchLess<K>());
  std::vector<int64_t> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) out[i] = kv[i].second;
  return out;
}

}  // namespace

std::vector<int64_t> torch_cpu_argsort(const std::vector<double>& keys) { return torch_argsort_impl(keys); }
std::vector<int64_t> torch_cpu_argsort(const std::vector<int64_t>& keys) { return torch_argsort_impl(keys); }

std::vector<int64_t> stable_argsort(const std::vector<double>& keys) {
  std::vector<int64_t> idx(keys.size());
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    const double x = keys[static_cast<size_t>(a)], y = keys[static_cast<size_t>(b)];
    return (!std::isnan(x) && std::isnan(y)) || x < y;
  });
  return idx;
}

std::vector<int64_t> quantile_partition(const std::vector<int64_t>& order, double R, bool r_is_float32) {
  const int64_t M = static_cast<int64_t>(order.size());
  double region_size;
  if (r_is_float32) {
    region_size = std::ceil(static_cast<double>(static_cast<float>(M) / static_cast<float>(R)));
  } else {
    region_size = std::ceil(static_cast<double>(M) / R);
  }
  std::vector<int64_t> region(order.size());
  for (int64_t r = 0; r < M; ++r)
    region[static_cast<size_t>(order[static_cast<size_t>(r)])] =
        static_cast<int64_t>(std::floor(static_cast<double>(r) / region_size)) + 1;
  return region;
}

Tensor region_codes(const Tensor& coords, int64_t raw_size, const Tensor& regions, RegionMode mode,
                    bool torch_ties) {
  const char* where = "region_codes";
  ENGINE_CHECK(coords.defined() && coords.dim() == 2 && coords.size(1) >= 2, where,
               "coords must be [N, C>=2]");
  ENGINE_CHECK(regions.defined() && regions.dim() == 3 && regions.size(1) == 2, where,
               "regions must be [T, 2, H]");
  const int64_t M = coords.size(0), T = regions.size(0), H = regions.size(2);
  const int64_t n_real = mode == RegionMode::Src ? std::min<int64_t>(std::max<int64_t>(raw_size, 0), M) : M;
  const bool r32 = regions.dtype() == engine::DType::F32;
  std::vector<double> reg = regions.to_vector<double>();  // [T, 2, H]
  Tensor c2 = coords.slice(1, 0, 2).to(engine::Device::cpu());
  std::vector<double> cv = c2.to_vector<double>();  // [M, 2]
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<int64_t>> order(2);
  for (int a = 0; a < 2; ++a) {
    std::vector<double> key(static_cast<size_t>(M));
    for (int64_t n = 0; n < M; ++n) key[static_cast<size_t>(n)] = n < n_real ? cv[static_cast<size_t>(2 * n + a)] : inf;
    order[static_cast<size_t>(a)] = torch_ties ? torch_cpu_argsort(key) : stable_argsort(key);
  }
  std::vector<int64_t> codes(static_cast<size_t>(T * H * M));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const double r_eta = reg[static_cast<size_t>((t * 2 + 0) * H + h)];
      const double r_phi = reg[static_cast<size_t>((t * 2 + 1) * H + h)];
      std::vector<int64_t> eta = quantile_partition(order[0], r_eta, r32);
      std::vector<int64_t> phi = quantile_partition(order[1], r_phi, r32);
      int64_t* out = codes.data() + (t * H + h) * M;
      if (mode == RegionMode::Src) {
        // hept.py get_geo_shift: eta + phi * (ceil(R_eta) + 1); ceil in the regions' precision.
        const double ce = r32 ? std::ceil(static_cast<double>(static_cast<float>(r_eta))) : std::ceil(r_eta);
        const int64_t mult = static_cast<int64_t>(ce) + 1;
        for (int64_t n = 0; n < M; ++n) out[n] = eta[static_cast<size_t>(n)] + phi[static_cast<size_t>(n)] * mult;
      } else {
        // example/transformer.py bit_shift: (phi << ceil(log2(max eta + 1))) | eta (batch id 0 adds nothing).
        int64_t max_eta = 0;
        for (int64_t v : eta) max_eta = std::max(max_eta, v);
        const int64_t bits = static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(max_eta + 1))));
        for (int64_t n = 0; n < M; ++n) out[n] = (phi[static_cast<size_t>(n)] << bits) | eta[static_cast<size_t>(n)];
      }
    }
  return engine::from_vector(codes, {T, H, M}).to(coords.device());
}

}  // namespace layers
