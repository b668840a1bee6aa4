// Tracking loss and metrics against naive O(N^2) re-implementations of the reference formulas; DBSCAN against a
// naive DBSCAN; efficiencies on a hand-made event; SVG output well-formed.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "data/efficiency.h"
#include "data/svg_plot.h"
#include "data/track_building.h"
#include "engine/engine.h"
#include "gradcheck.h"
#include "models/tracking_loss.h"
#include "models/tracking_metrics.h"

using namespace engine;

namespace {

// A small sector: 6 particles of 3-5 hits, noise, one low-pT particle; all pairs as candidate pairs.
struct Toy {
  std::vector<int64_t> pid, rec;
  std::vector<double> pt;
  int64_t n() const { return static_cast<int64_t>(pid.size()); }
};
Toy toy() {
  Toy t;
  const int sizes[] = {3, 4, 5, 3, 4, 2};
  for (int p = 0; p < 6; ++p)
    for (int h = 0; h < sizes[p]; ++h) t.pid.push_back(p + 1), t.pt.push_back(p == 4 ? 0.6 : 1.0 + p), t.rec.push_back(p == 5 ? 0 : 1);
  for (int h = 0; h < 3; ++h) t.pid.push_back(0), t.pt.push_back(0), t.rec.push_back(0);
  return t;
}

// per_particle: HEPT's mean over particles of each particle's mean over its positive pairs; else the mean over pairs
double naive_infonce(const std::vector<double>& e, int64_t d, const std::vector<std::pair<int64_t, int64_t>>& pairs,
                     const Toy& t, double tau, bool per_particle = false) {
  auto s = [&](int64_t i, int64_t j) {
    double q = 0;
    for (int64_t k = 0; k < d; ++k) q += (e[i * d + k] - e[j * d + k]) * (e[i * d + k] - e[j * d + k]);
    return std::exp(-std::sqrt(q) / 1.125) / tau;
  };
  auto valid = [&](int64_t i) { return t.rec[i] != 0 && t.pt[i] > 0.9; };
  std::map<int64_t, std::pair<double, int>> per_pid;  // particle -> (sum of its pair losses, its pair count)
  for (auto [i, j] : pairs) {
    if (!(t.pid[i] == t.pid[j] && valid(i) && valid(j))) continue;
    double den = std::exp(s(i, j));
    for (auto [a, b] : pairs)
      if (a == i && !(t.pid[a] == t.pid[b] && valid(a) && valid(b))) den += std::exp(s(a, b));
    per_pid[t.pid[i]].first += -std::log(std::exp(s(i, j)) / den);
    ++per_pid[t.pid[i]].second;
  }
  double loss = 0, count = 0;
  for (const auto& [pid, lc] : per_pid) {
    loss += per_particle ? lc.first / lc.second : lc.first;
    count += per_particle ? 1 : lc.second;
  }
  return loss / count;
}

}  // namespace

TEST_CASE("InfoNCE matches the reference formula; float64 gradient check (self pairs included)") {
  const Toy t = toy();
  const int64_t n = t.n(), d = 3;
  std::vector<std::pair<int64_t, int64_t>> pairs;
  std::vector<int64_t> flat_i, flat_j;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if ((i + j) % 3 != 1 || i == j) pairs.push_back({i, j}), flat_i.push_back(i), flat_j.push_back(j);
  std::vector<int64_t> flat = flat_i;
  flat.insert(flat.end(), flat_j.begin(), flat_j.end());
  const Tensor pair_t = from_vector(flat, {2, static_cast<int64_t>(flat_i.size())});
  const Tensor pid = from_vector(t.pid, {n}), pt = from_vector(t.pt, {n}), rec = from_vector(t.rec, {n});
  Tensor emb = testing::rand_f64({n, d}, 4);
  const double got = models::infonce_loss(emb, pair_t, pid, pt, rec).item();
  CHECK(got == doctest::Approx(naive_infonce(emb.to_vector<double>(), d, pairs, t, 0.05)).epsilon(1e-10));
  testing::gradcheck([&](const Tensors& x) { return models::infonce_loss(x[0], pair_t, pid, pt, rec); }, {emb});
  // float32 value agrees, and a sample without positives gives 0
  CHECK(models::infonce_loss(emb.detach().to(DType::F32), pair_t, pid, pt, rec).item() == doctest::Approx(got).epsilon(1e-5));
  const Tensor no_pos = from_vector<int64_t>({0, 17}, {2, 1});
  CHECK(models::infonce_loss(emb, no_pos, pid, pt, rec).item() == 0.0);
}

TEST_CASE("fused InfoNCE: shuffled and repeated pairs, isolated hits, float32 gradients, any thread count") {
  const Toy t = toy();
  const int64_t n = t.n(), d = 5;
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t i = 0; i < n - 2; ++i)  // the last two hits take part in no pair
    for (int64_t j = 0; j < n - 2; ++j)
      if ((i * 7 + j * 3) % 4 != 0 || i == j) pairs.push_back({i, j});
  pairs.push_back(pairs[5]), pairs.push_back(pairs[11]), pairs.push_back(pairs[11]);  // repeated pairs count again
  std::vector<int64_t> flat(2 * pairs.size());
  for (size_t k = 0; k < pairs.size(); ++k) {
    const size_t at = (k * 37) % pairs.size();  // a fixed shuffle (37 is coprime with the pair count)
    flat[at] = pairs[k].first, flat[pairs.size() + at] = pairs[k].second;
  }
  REQUIRE(pairs.size() % 37 != 0);
  const Tensor pair_t = from_vector(flat, {2, static_cast<int64_t>(pairs.size())});
  const Tensor pid = from_vector(t.pid, {n}), pt = from_vector(t.pt, {n}), rec = from_vector(t.rec, {n});
  Tensor emb = testing::rand_f64({n, d}, 9);
  auto loss = [&](const Tensor& e) { return models::infonce_loss(e, pair_t, pid, pt, rec); };
  CHECK(loss(emb).item() == doctest::Approx(naive_infonce(emb.to_vector<double>(), d, pairs, t, 0.05)).epsilon(1e-10));
  testing::gradcheck([&](const Tensors& x) { return loss(x[0]); }, {emb});
  // HEPT's averaging: per particle, then over particles (particles have 3, 4, 5 and 3 valid hits here)
  auto per_particle = [&](const Tensor& e) {
    return models::infonce_loss(e, pair_t, pid, pt, rec, 0.05, 0.9, models::InfoNCEAverage::PerParticle);
  };
  const double hept = per_particle(emb).item();
  CHECK(hept == doctest::Approx(naive_infonce(emb.to_vector<double>(), d, pairs, t, 0.05, true)).epsilon(1e-10));
  CHECK(std::abs(hept - loss(emb).item()) > 1e-3);
  testing::gradcheck([&](const Tensors& x) { return per_particle(x[0]); }, {emb});

  // float32 gradient against float64, and the same bits with 1 and 2 threads
  auto grad_of = [&](const Tensor& e) {
    Tensor leaf = e.detach();
    leaf.requires_grad_();
    loss(leaf).backward();
    return leaf.grad();
  };
  const auto g64 = grad_of(emb).to_vector<double>();
  const auto g32 = grad_of(emb.to(DType::F32)).to(DType::F64).to_vector<double>();
  double err = 0, scale = 0;
  for (size_t k = 0; k < g64.size(); ++k) err = std::max(err, std::abs(g32[k] - g64[k])), scale = std::max(scale, std::abs(g64[k]));
  CHECK(err / scale < 1e-5);
  for (int64_t r = n - 2; r < n; ++r)
    for (int64_t f = 0; f < d; ++f) CHECK(g64[r * d + f] == 0.0);  // isolated hits get no gradient
  const int threads = get_num_threads();
  set_num_threads(1);
  const auto one = grad_of(emb).to_vector<double>();
  set_num_threads(2);
  const auto two = grad_of(emb).to_vector<double>();
  set_num_threads(threads);
  CHECK(one == two);

  CHECK_THROWS_AS(models::infonce_loss(emb, from_vector<int64_t>({0, n}, {2, 1}), pid, pt, rec), std::invalid_argument);
  CHECK_THROWS_AS(models::infonce_loss(emb.to(DType::I64), pair_t, pid, pt, rec), std::invalid_argument);
  const Tensor no_pos = from_vector<int64_t>({0, 17}, {2, 1});
  Tensor leaf = emb.detach();
  leaf.requires_grad_();
  models::infonce_loss(leaf, no_pos, pid, pt, rec).backward();
  CHECK(amax(abs(leaf.grad())).item() == 0.0);
}

TEST_CASE("tracking metrics: perfect embeddings give 1, and a naive O(N^2) evaluation agrees on random ones; so do "
          "the per-query accuracies") {
  const Toy t = toy();
  const int64_t n = t.n();
  const Tensor pid = from_vector(t.pid, {n}), pt = from_vector(t.pt, {n}), rec = from_vector(t.rec, {n});
  // perfect: one cluster point per particle (noise far apart)
  std::vector<float> perfect;
  for (int64_t i = 0; i < n; ++i) perfect.push_back(t.pid[i] ? 10.f * t.pid[i] : 1000.f + 50.f * i), perfect.push_back(0);
  const auto m = models::tracking_metrics(from_vector(perfect, {n, 2}), pid, pt, rec);
  CHECK(m.accuracy[0] == doctest::Approx(1.0));
  CHECK(m.recall[2] == doctest::Approx(1.0));
  // random embeddings vs naive
  const Tensor emb = testing::rand_f32({n, 4}, 9);
  const auto e = emb.to_vector<float>();
  const auto r = models::tracking_metrics(emb, pid, pt, rec);
  std::vector<std::pair<int64_t, double>> naive_queries_09;  // (hit, accuracy_i) above 0.9 GeV
  for (int thr = 0; thr < 3; ++thr) {
    double acc = 0, prec = 0, recall = 0;
    int q = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (t.pid[i] == 0 || !t.rec[i] || !(t.pt[i] > models::TrackingMetrics::kThresholds[thr])) continue;
      const int64_t ki = std::count(t.pid.begin(), t.pid.end(), t.pid[i]) - 1;
      if (ki == 0) continue;
      std::vector<std::pair<double, int64_t>> dist;
      for (int64_t j = 0; j < n; ++j) {
        if (j == i) continue;
        double s = 0;
        for (int k = 0; k < 4; ++k) s += double(e[i * 4 + k] - e[j * 4 + k]) * double(e[i * 4 + k] - e[j * 4 + k]);
        dist.push_back({s, j});
      }
      std::sort(dist.begin(), dist.end());
      int64_t hit = 0, hit_first = 0, k = std::min<int64_t>(19, n - 1), first = std::min(ki, k);
      for (int64_t j = 0; j < k; ++j) {
        const bool same = t.pid[dist[j].second] == t.pid[i];
        hit += same;
        if (j < first) hit_first += same;
      }
      acc += double(hit_first) / first, prec += hit / 19.0, recall += double(hit) / ki, ++q;
      if (thr == 2) naive_queries_09.push_back({i, double(hit_first) / first});
    }
    CHECK(r.accuracy[thr] == doctest::Approx(acc / q));
    CHECK(r.precision[thr] == doctest::Approx(prec / q));
    CHECK(r.recall[thr] == doctest::Approx(recall / q));
  }
  CHECK(r.as_map().count("accuracy@0.9") == 1);
  const auto& queries = r.accuracy_09_by_query;
  REQUIRE(queries.size() == naive_queries_09.size());
  for (size_t i = 0; i < queries.size(); ++i) {
    CHECK(queries[i].hit == naive_queries_09[i].first);
    CHECK(queries[i].accuracy == doctest::Approx(naive_queries_09[i].second));
  }
  const auto one_hit = models::tracking_metrics(emb.slice(0, 0, 1), pid.slice(0, 0, 1), pt.slice(0, 0, 1), rec.slice(0, 0, 1));
  CHECK(one_hit.accuracy_09_by_query.empty());
}

TEST_CASE("DBSCAN matches a naive DBSCAN; tuning finds perfect clusters") {
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0, 1);
  const int64_t n = 300, dim = 3;
  std::vector<float> pts;
  std::vector<int64_t> pid;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 30;
    pid.push_back(c + 1);
    for (int k = 0; k < dim; ++k) pts.push_back(3.f * static_cast<float>(c * (k + 2) % 31) + 0.3f * g(rng));
  }
  const double eps = 0.8;
  const auto got = data::cluster_embeddings(pts.data(), n, dim, {eps, 3});
  // naive: same labels up to renaming (cores and borders reached in hit order)
  std::vector<std::vector<int64_t>> nb(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int k = 0; k < dim; ++k) s += double(pts[i * dim + k] - pts[j * dim + k]) * double(pts[i * dim + k] - pts[j * dim + k]);
      if (s <= eps * eps) nb[i].push_back(j);
    }
  std::vector<int64_t> want(n, 0);
  int64_t next = 1;
  for (int64_t i = 0; i < n; ++i) {
    if (want[i] || nb[i].size() < 3) continue;
    std::vector<int64_t> st{i};
    want[i] = next;
    while (!st.empty()) {
      const int64_t p = st.back();
      st.pop_back();
      if (nb[p].size() < 3) continue;
      for (int64_t q : nb[p]) if (!want[q]) want[q] = next, st.push_back(q);
    }
    ++next;
  }
  for (int64_t i = 0; i < n; ++i) if (!want[i]) want[i] = next++;
  CHECK(got == want);
  const auto tuned = data::tune_clustering({{pts.data(), n, dim, pid}});
  MESSAGE("tuned eps " << tuned.eps << " min_samples " << tuned.min_samples << " score " << tuned.score);
  CHECK(tuned.score > 0.9);
  // several samples: the mean score; a repeated sample changes nothing, a sample of one hit is skipped
  const std::vector<int64_t> one_pid{7};
  const auto twice =
      data::tune_clustering({{pts.data(), n, dim, pid}, {pts.data(), n, dim, pid}, {pts.data(), 1, dim, one_pid}});
  CHECK(twice.eps == doctest::Approx(tuned.eps));
  CHECK(twice.min_samples == tuned.min_samples);
  CHECK(twice.score == doctest::Approx(tuned.score));
  // one point per particle, far apart: score 1
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = pid[i] * 10;
  CHECK(data::unweighted_trackml_score(pid, ids) == doctest::Approx(1.0));
}

TEST_CASE("efficiencies on a hand-made event") {
  // particle 1: 4 hits, found whole; particle 2: 4 hits split 2+2 (not DM, not LHC); particle 3: 4 hits, found with
  // one foreign hit (4/5 = 80%: DM and LHC); particle 4: low pT (not counted); noise track of 3 hits (fake)
  const std::vector<int64_t> pid{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 0, 0, 0, 2};
  const std::vector<float> pt{2, 2, 2, 2, 3, 3, 3, 3, 1.5, 1.5, 1.5, 1.5, 0.5, 0.5, 0.5, 0, 0, 0, 3};
  const std::vector<int64_t> trk{10, 10, 10, 10, 20, 20, 21, 21, 30, 30, 30, 30, 40, 40, 40, 50, 50, 50, 30};
  const auto e = data::track_efficiencies(pid, pt, trk, 0.9);
  CHECK(e.particles == 3);
  CHECK(e.double_majority == doctest::Approx(2.0 / 3));
  CHECK(e.lhc == doctest::Approx(2.0 / 3));
  CHECK(e.fake_rate == doctest::Approx(1.0 / 3));  // tracks 10, 30 real, 50 fake; 20/21 have < 3 hits
}

TEST_CASE("SVG line plot with log axes: ticks in value space, non-positive points left out") {
  const std::string path = (std::filesystem::temp_directory_path() / "svg_log_test.svg").string();
  data::LinePlotOptions log_log;
  log_log.log_x = log_log.log_y = true;
  log_log.markers = true;
  data::write_line_plot(path, "time", "N", "s", {{"a", {3000, 30000, 300000}, {0.01, 0.1, 1.0}}, {"b", {1000, -1}, {0.5, 2}}},
                        log_log);
  std::ifstream in(path);
  const std::string s((std::istreambuf_iterator<char>(in)), {});
  CHECK(s.find(">1000<") != std::string::npos);  // x from 1000 to 300000: ends labelled in full
  CHECK(s.find(">300000<") != std::string::npos);
  CHECK(s.find(">0.01<") != std::string::npos);
  CHECK(s.find(">1<") != std::string::npos);
  CHECK(std::count(s.begin(), s.end(), '<') == std::count(s.begin(), s.end(), '>'));
  CHECK(s.find("nan") == std::string::npos);  // the point at N = -1 is dropped, not drawn at NaN
  std::filesystem::remove(path);
}

TEST_CASE("SVG plots are well-formed and written atomically") {
  const std::string dir = (std::filesystem::temp_directory_path() / "svg_test").string();
  std::filesystem::create_directories(dir);
  data::write_line_plot(dir + "/a.svg", "loss <test>", "epoch", "loss", {{"train", {1, 2, 3}, {1.0, 0.5, NAN}}, {"valid", {1, 2}, {1.2, 0.7}}});
  data::write_event_plot(dir + "/b.svg", {1, -2, 3}, {0, 5, -1}, {10, -20, 30}, {1, 2, 1});
  for (const char* f : {"/a.svg", "/b.svg"}) {
    std::ifstream in(dir + f);
    const std::string s((std::istreambuf_iterator<char>(in)), {});
    CHECK(s.find("<svg") != std::string::npos);
    CHECK(s.find("</svg>") != std::string::npos);
    CHECK(std::count(s.begin(), s.end(), '<') == std::count(s.begin(), s.end(), '>'));
    CHECK(s.find("<test>") == std::string::npos);  // escaped
  }
  CHECK_THROWS(data::write_line_plot(dir + "/c.svg", "", "", "", {{"bad", {1, 2}, {1}}}));
  CHECK(!std::filesystem::exists(dir + "/c.svg"));
  std::filesystem::remove_all(dir);
}
