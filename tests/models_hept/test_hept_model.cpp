// hept model: parameter counts (Lampa config and the checkpoint config), forward/backward on a small random sector,
// a few Adam steps; the PyTorch checkpoint reader; the published checkpoint against the reference's golden outputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/engine.h"
#include "engine/io/safetensors.h"
#include "engine/io/torch_checkpoint.h"
#include "gradcheck.h"
#include "model_testing.h"
#include "models/catalog.h"
#include "models/hept.h"

using engine::DType;
using engine::Tensor;
using models::Config;

namespace {

Config merged(Config overrides) {
  Config c = models::hept_entry().defaults();
  c.merge_patch(overrides);
  return c;
}

int64_t fixed(const engine::nn::Module& m) {
  int64_t n = 0;
  for (auto& [name, t] : m.named_buffers()) n += t.numel();
  return n;
}

models::ModelInput sector(int64_t N, uint64_t seed) {
  models::ModelInput in;
  in.x = testing::rand_f32({N, 15}, seed, -1, 1);
  std::vector<double> co = testing::rand_f64({N, 6}, seed + 1, 0, 1, false).to_vector<double>();
  for (int64_t n = 0; n < N; ++n) {
    co[n * 6 + 0] = co[n * 6 + 0] * 8 - 4;                 // eta
    co[n * 6 + 1] = (co[n * 6 + 1] * 2 - 1) * M_PI;        // phi
    co[n * 6 + 3] = co[n * 6 + 1] / M_PI;                  // phi / pi
    co[n * 6 + 4] = co[n * 6 + 4] * 2 - 1;                 // z / 1000
  }
  in.coords = engine::from_vector(co, {N, 6}).to(DType::F32);
  return in;
}

const char* shared_data() { return std::getenv("HEP_SHARED_DATA"); }

std::string data_file(const std::string& rel) {
  const char* root = shared_data();
  if (!root) return "";
  std::string p = std::string(root) + "/" + rel;
  return std::filesystem::exists(p) ? p : "";
}

double rel_l2(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    num += (va[i] - vb[i]) * (va[i] - vb[i]);
    den += vb[i] * vb[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("hept model: parameter counts (Lampa config and checkpoint config)") {
  auto lampa = models::hept_entry().make(models::hept_entry().defaults());
  CHECK(testing::trainable(*lampa) == 404400);
  CHECK(lampa->num_parameters() == 404400);
  CHECK(fixed(*lampa) == 3708);
  CHECK(lampa->out_dim() == 16);
  auto ck = models::hept_entry().make(merged(models::hept_checkpoint_overrides()));
  CHECK(testing::trainable(*ck) == 326436);
  int64_t state = 0;
  for (auto& [n, t] : ck->state_dict()) state += t.numel();
  CHECK(state == 329364);
  CHECK(ck->out_dim() == 12);
}

TEST_CASE("hept model: forward/backward on a small sector and Adam steps reduce a loss") {
  for (const char* version : {"src", "example"}) {
    const std::string vname = version;
    CAPTURE(vname);
    auto m = models::hept_entry().make(merged(Config{{"version", version}}));
    auto in = sector(330, 3);
    Tensor out = m->forward(in);
    REQUIRE(out.shape() == engine::Shape{330, 16});
    Tensor target = testing::rand_f32({330, 16}, 9, -0.5, 0.5);
    engine::optim::Adam opt(m->named_parameters(), 1e-3);
    double first = 0, last = 0;
    m->eval();  // no dropout: the loss sequence is deterministic
    for (int step = 0; step < 6; ++step) {
      opt.zero_grad();
      Tensor loss = engine::mean(engine::square(m->forward(in) - target));
      loss.backward();
      if (step == 0) {
        first = loss.item();
        CHECK(m->named_parameters()[0].second.grad().defined());
      }
      last = loss.item();
      opt.step();
    }
    CHECK(last < first);
  }
}

TEST_CASE("torch checkpoint reader: the published HEPT checkpoint") {
  const std::string path = data_file("hept/tracking-60k-model.pt");
  if (path.empty()) {
    MESSAGE("SKIPPED: HEP_SHARED_DATA/hept/tracking-60k-model.pt not found");
    return;
  }
  auto infos = engine::io::inspect_torch_checkpoint(path);
  REQUIRE(infos.size() == 88);
  CHECK(infos[0].name == "regions");
  CHECK(infos[0].shape == engine::Shape{3, 2, 8});
  CHECK(infos[0].stride == engine::Strides{2, 1, 6});  // non-contiguous
  auto tensors = engine::io::load_torch_checkpoint(path);
  int64_t total = 0;
  for (auto& [n, t] : tensors) total += t.numel();
  CHECK(total == 329364);
  // regions[t, a, h] (hept.md 8): t0 eta 14.33 11.33 ..., t0 phi 10.33 ..., t2 phi ... 13.33.
  Tensor r = tensors[0].second;
  auto rv = r.to_vector<float>();
  CHECK(std::abs(rv[0] - 14.333333f) < 1e-4);        // [0, 0, 0]
  CHECK(std::abs(rv[1] - 11.333333f) < 1e-4);        // [0, 0, 1]
  CHECK(std::abs(rv[8] - 10.333333f) < 1e-4);        // [0, 1, 0]
  CHECK(std::abs(rv[2 * 16 + 8 + 7] - 13.333333f) < 1e-4);  // [2, 1, 7]
  CHECK(std::abs(rv[16 + 5] - 30.666666f) < 1e-4);   // [1, 0, 5]
}

TEST_CASE("hept checkpoint loader: name-by-name copy with clear errors") {
  const std::string path = data_file("hept/tracking-60k-model.pt");
  if (path.empty()) {
    MESSAGE("SKIPPED: HEP_SHARED_DATA/hept/tracking-60k-model.pt not found");
    return;
  }
  auto m = models::hept_entry().make(merged(models::hept_checkpoint_overrides()));
  CHECK(models::load_hept_torch_checkpoint(*m, path) == 329364);
  // Lampa's config (h 32, with beta) does not fit: every problem is listed.
  auto lampa = models::hept_entry().make(models::hept_entry().defaults());
  try {
    models::load_hept_torch_checkpoint(*lampa, path);
    FAIL("expected an error");
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    CHECK(msg.find("shape mismatch: feat_encoder.0.weight") != std::string::npos);
    CHECK(msg.find("missing in the file: attns.0.attn.e2lsh.beta") != std::string::npos);
  }
  // The checkpoint config with beta: the file lacks beta.
  auto with_beta = models::hept_entry().make(merged(Config{{"h_dim", 24}, {"num_regions", 150.0},
                                                           {"version", "example"}, {"e2lsh_beta", true}}));
  CHECK_THROWS_WITH_AS(models::load_hept_torch_checkpoint(*with_beta, path),
                       doctest::Contains("missing in the file: attns.3.attn.e2lsh.beta"), std::exception);
}

TEST_CASE("hept checkpoint: golden outputs of the reference (float64 to 1e-6, float32 better than the reference's)") {
  const std::string ckpt = data_file("hept/tracking-60k-model.pt");
  if (ckpt.empty()) {
    MESSAGE("SKIPPED: HEP_SHARED_DATA/hept/ data not found");
    return;
  }
  for (const char* name : {"hept/golden-777.safetensors", "hept/golden-3000.safetensors"}) {
    const std::string path = data_file(name);
    if (path.empty()) {
      MESSAGE("SKIPPED: " << name << " not found");
      continue;
    }
    const std::string gname = name;
    CAPTURE(gname);
    auto g = engine::io::load_safetensors(path);
    models::ModelInput in;
    in.x = *g.find("x");
    in.coords = *g.find("coords");
    Tensor emb64 = *g.find("emb_f64"), emb32 = *g.find("emb_f32");
    Config cfg = merged(models::hept_checkpoint_overrides());
    cfg["torch_ties"] = true;
    auto m = models::hept_entry().make(cfg);
    models::load_hept_torch_checkpoint(*m, ckpt);
    m->eval();
    engine::NoGradGuard ng;
    Tensor out32 = m->forward(in);
    m->to(DType::F64);
    models::ModelInput in64{in.x.to(DType::F64), in.coords.to(DType::F64), Tensor(), Tensor()};
    Tensor out64 = m->forward(in64);
    const double e64 = rel_l2(out64, emb64), e32 = rel_l2(out32, emb64), ref32 = rel_l2(emb32, emb64);
    MESSAGE(std::string(name) << ": float64 rel L2 " << e64 << ", float32 " << e32 << " (reference float32 " << ref32 << ")");
    CHECK(e64 < 1e-6);
    CHECK(e32 < ref32);
    if (std::string(name).find("777") != std::string::npos) {
      // Without PyTorch's tie order (stable ties): which points get duplicated into the padding changes.
      Config stable = merged(models::hept_checkpoint_overrides());
      auto ms = models::hept_entry().make(stable);
      models::load_hept_torch_checkpoint(*ms, ckpt);
      ms->eval();
      ms->to(DType::F64);
      MESSAGE(std::string(name) << ": float64 with stable tie order: rel L2 " << rel_l2(ms->forward(in64), emb64));
    }
  }
}
