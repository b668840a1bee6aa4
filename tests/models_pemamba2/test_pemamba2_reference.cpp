// pemamba2 against a step-by-step transcription of the reference forward (full_mamba2.py:827-968) built from the
// model's own sub-modules: tensors are boxed like Python objects, so FlatMamba's in-place `x[perm] = ...` writes and
// the list of aliases it returns are reproduced literally, and every sub-pass scans the group-padded sequence
// x[perm][flat2win] (pad rows repeat the previous group; negative indices wrap as in Python) before keeping [:N].
// "aliased" must match the in-place reference; "intended" the same transcription with a fresh tensor per sub-pass.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "gradcheck.h"
#include "layers/mamba2.h"
#include "layers/window_attention.h"
#include "model_checks.h"
#include "models/catalog.h"
#include "models/common.h"

using namespace engine;

namespace {

// The sub-module at a dotted path ("backbone.layers.0.mixer.block.1").
template <class M>
std::shared_ptr<M> child(const nn::Module& root, const std::string& path) {
  const nn::Module* cur = &root;
  std::shared_ptr<nn::Module> found;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = std::min(path.find('.', start), path.size());
    const std::string name = path.substr(start, dot - start);
    found.reset();
    for (const auto& [n, m] : cur->named_children())
      if (n == name) found = m;
    REQUIRE_MESSAGE(found, path);
    cur = found.get();
    start = dot + 1;
  }
  auto m = std::dynamic_pointer_cast<M>(found);
  REQUIRE_MESSAGE(m, path);
  return m;
}

// flat2win of window_utils.py for N hits and groups of G: identity, then pad positions N-G+j (Python wraps negatives).
Tensor reference_flat2win(int64_t N, int64_t G) {
  const int64_t Np = (N + G - 1) / G * G;
  std::vector<int64_t> f(static_cast<size_t>(Np));
  for (int64_t i = 0; i < Np; ++i) {
    int64_t j = i < N ? i : N - G + (i - N);
    if (j < 0) j += N;
    REQUIRE(j >= 0);  // the reference raises an IndexError for N < G / 2
    f[static_cast<size_t>(i)] = j;
  }
  return from_vector(f, {Np});
}

Tensor reference_forward(models::TrackingModel& model, const models::ModelInput& in, bool in_place) {
  const int64_t N = in.x.size(0), n_layers = 3, G = 200;
  using Box = std::shared_ptr<Tensor>;  // a Python tensor object
  const Tensor pe = child<layers::LearnedPE>(model, "pe_func")->forward(in.coords);
  const auto curves = layers::window_curves(in.coords.select(1, 0), in.coords.select(1, 1), 1000, 20, G);
  const Tensor f2w = reference_flat2win(N, G);
  Box x = std::make_shared<Tensor>(child<models::FeatureEncoder>(model, "feature_encoder")->forward(in.x));
  std::vector<Box> all_encoded_x{x};
  for (int64_t l = 0; l < n_layers; ++l) {
    const Box layer_input = x;
    for (int k = 0; k < 4; ++k) {
      const std::string name = "backbone.layers." + std::to_string(l) + ".mixer.block." + std::to_string(k);
      const Tensor idx = curves.perm[static_cast<size_t>(k)];
      const Tensor u = index_select(index_select(*x, 0, idx), 0, f2w);
      const Tensor p = index_select(index_select(pe, 0, idx), 0, f2w);
      const Tensor s = child<layers::Mamba2>(model, name)->forward(u, p).narrow(0, 0, N);  // [:N] (win2flat)
      Tensor next = x->clone();
      std::vector<float> rows = next.to_vector<float>(), sv = s.to_vector<float>();
      const std::vector<int64_t> iv = idx.to_vector<int64_t>();
      const int64_t h = s.size(1);
      for (int64_t r = 0; r < N; ++r)  // x[idx] = s
        for (int64_t c = 0; c < h; ++c) rows[static_cast<size_t>(iv[r] * h + c)] = sv[static_cast<size_t>(r * h + c)];
      next = from_vector(rows, {N, h});
      if (in_place) {
        *x = next;
      } else {
        x = std::make_shared<Tensor>(next);
      }
      all_encoded_x.push_back(x);
    }
    const Box y = x;                                      // encoded
    x = std::make_shared<Tensor>(*layer_input + *y);      // x = x + y
  }
  std::vector<Tensor> values;
  for (const Box& b : all_encoded_x) values.push_back(*b);
  const Tensor z = child<nn::Linear>(model, "W")->forward(concat(values, 1));
  const Tensor e = child<nn::RMSNorm>(model, "backbone.norm_f")->forward(z);
  return child<models::ResidualMLPHead>(model, "mlp_out")->forward(e);
}

}  // namespace

TEST_CASE("pemamba2 matches the transcribed reference forward (aliased in place, and intended)") {
  for (const char* mode : {"aliased", "intended"}) {
    models::Config cfg = models::pemamba2_entry().defaults();
    cfg["concat"] = mode;
    manual_seed(5);
    auto model = models::pemamba2_entry().make(cfg);
    model->eval();
    NoGradGuard ng;
    for (int64_t N : {450, 150, 200}) {  // 3 groups (last partial); one short group (pad wraps); exactly one group
      CAPTURE(mode);
      CAPTURE(N);
      const models::ModelInput in = model_checks::random_sector(N, 21);
      const Tensor got = model->forward(in), want = reference_forward(*model, in, std::string(mode) == "aliased");
      CHECK(testing::closeness(got, want, 1e-5, 1e-5) <= 1.0);
    }
  }
}
