// Feature encoder, residual MLP head and row padding shared by the catalog models.
#include "models/common.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "engine/engine.h"

namespace models {

using namespace engine;

namespace {

// The per-feature values of standardization[key]: in_dim finite numbers (positive for "std").
std::vector<float> standardization_values(const nlohmann::json& standardization, const std::string& key, int64_t in_dim) {
  const std::string where = fmt::format("config key '{}'", kInputStandardization);
  if (!standardization.contains(key) || !standardization[key].is_array() ||
      standardization[key].size() != static_cast<size_t>(in_dim))
    throw std::invalid_argument(fmt::format("{}: '{}' must be an array of {} numbers (one per input feature)", where,
                                            key, in_dim));
  std::vector<float> values;
  for (const auto& v : standardization[key]) {
    if (!v.is_number() || !std::isfinite(v.get<double>()) || (key == "std" && v.get<double>() <= 0))
      throw std::invalid_argument(fmt::format("{}: bad '{}' value {}", where, key, v.dump()));
    values.push_back(v.get<float>());
  }
  return values;
}

}  // namespace

FeatureEncoder::FeatureEncoder(const nlohmann::json& model_config, int64_t in_dim, int64_t h_dim) {
  lin1_ = register_module("0", std::make_shared<nn::Linear>(in_dim, h_dim));
  lin2_ = register_module("2", std::make_shared<nn::Linear>(h_dim, h_dim));
  const nlohmann::json standardization = model_config.value(kInputStandardization, nlohmann::json());
  if (standardization.is_null()) return;
  std::vector<float> mean(static_cast<size_t>(in_dim), 0.0f), inv_std(static_cast<size_t>(in_dim), 1.0f);
  if (standardization.is_object()) {
    mean = standardization_values(standardization, "mean", in_dim);
    inv_std = standardization_values(standardization, "std", in_dim);
    for (float& s : inv_std) s = 1.0f / s;
  } else if (standardization != kStandardizeFromData) {
    throw std::invalid_argument(fmt::format("config key '{}' must be null, \"{}\" or {{\"mean\": [...], \"std\": [...]}}, not {}",
                                            kInputStandardization, kStandardizeFromData, standardization.dump()));
  }
  input_mean_ = register_buffer("input_mean", from_vector(mean, {in_dim}), false);
  input_inv_std_ = register_buffer("input_inv_std", from_vector(inv_std, {in_dim}), false);
}

Tensor FeatureEncoder::forward(const Tensor& x) {
  const Tensor in = input_mean_.defined() ? (x - input_mean_) * input_inv_std_ : x;  // [N, in]
  return lin2_->forward(relu(lin1_->forward(in)));
}

ResidualMLPHead::ResidualMLPHead(int64_t channels, int num_layers, nn::ActivationKind act, double dropout) {
  std::vector<int64_t> widths{channels};
  for (int i = 0; i + 1 < num_layers; ++i) widths.push_back(256);
  widths.push_back(channels);
  nn::MLPOptions options;
  options.activation = act;
  options.norm = nn::NormKind::LayerNorm;
  mlp_ = register_module("mlp", std::make_shared<nn::MLP>(widths, options));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(dropout));
}

Tensor ResidualMLPHead::forward(const Tensor& e) { return e + dropout_->forward(mlp_->forward(e)); }

namespace {
void check_extra_input(const Tensor& t, int64_t rows, int64_t columns, const char* key, const char* what) {
  if (!t.defined() || t.dim() != 2 || t.size(0) != rows || t.size(1) != columns)
    throw std::invalid_argument(
        fmt::format("config key '{}': the model input needs {} [{}, {}] beside x", key, what, rows, columns));
}
}  // namespace

Tensor seed_frame_coords(const Tensor& coords, const Tensor& seeds) {
  if (coords.dim() != 2 || coords.size(1) != 6)
    throw std::invalid_argument(fmt::format("config key '{}': coords must be [N, 6]", kSeedCoords));
  check_extra_input(seeds, coords.size(0), kSeedInputs, kSeedCoords, "seeds");
  const Tensor s = seeds.to(coords.dtype());
  const Tensor found = s.slice(1, 4, 5), phi0_over_pi = s.slice(1, 0, 1), eta = s.slice(1, 2, 3);  // [N, 1] each
  auto seeded = [&](int64_t column, const Tensor& seed_value) {  // the seed's value where found (0 / 1), else own
    const Tensor own = coords.slice(1, column, column + 1);
    return own + found * (seed_value - own);
  };
  return concat({seeded(0, eta), seeded(1, phi0_over_pi * M_PI), coords.slice(1, 2, 3), seeded(3, phi0_over_pi),
                 coords.slice(1, 4, 5), seeded(5, eta)},
                1);
}

Tensor encoder_input(const ModelInput& in, bool with_vertex_z, bool with_seeds) {
  if (!with_vertex_z && !with_seeds) return in.x;
  std::vector<Tensor> parts{in.x};  // [N, F], [N, 1], [N, kSeedInputs]
  if (with_vertex_z) {
    check_extra_input(in.vertex_z, in.x.size(0), 1, kVertexZInput, "vertex_z");
    parts.push_back(in.vertex_z.to(in.x.dtype()));
  }
  if (with_seeds) {
    check_extra_input(in.seeds, in.x.size(0), kSeedInputs, kSeedInput, "seeds");
    parts.push_back(in.seeds.to(in.x.dtype()));
  }
  return concat(parts, 1);
}

Tensor pad_rows(const Tensor& x, int64_t multiple, double value) {
  const int64_t n = x.size(0), padded = (n + multiple - 1) / multiple * multiple;
  if (padded == n) return x;
  std::vector<int64_t> pads(static_cast<size_t>(2 * x.dim()), 0);
  pads.back() = padded - n;  // after the first dim
  return pad(x, pads, value);
}

}  // namespace models
