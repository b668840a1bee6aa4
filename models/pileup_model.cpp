// Pile-up classifier around a catalog backbone (see pileup_model.h).
#include "models/pileup_model.h"

#include "engine/engine.h"
#include "models/common.h"
#include "models/registry.h"

namespace models {

using namespace engine;

constexpr int64_t kClasses = 7, kClassDim = 10;

PileupModel::PileupModel(const std::string& name, int64_t in_features, const Config& overrides)
    : name_(name) {
  Config c = overrides;
  // --size S means the paper's pile-up S model where it has one (registry "pileup-S"), else the tracking preset
  const std::string size = config_get<std::string>(c, "size", "");
  if (!size.empty() && has_size_preset(name, "pileup-" + size)) c["size"] = "pileup-" + size;
  c[default_config(name).contains("in_dim") ? "in_dim" : "x_dim"] = in_features - 1 + kClassDim;
  c["coords_dim"] = 4;
  // the tracking presets' input standardisation is computed from tracking data; pile-up uses raw features unless the
  // config gives fixed statistics (null here removes the preset's value)
  if (!c.contains(kInputStandardization)) c[kInputStandardization] = nullptr;
  class_embedding_ = register_module("pid_embedding", std::make_shared<nn::Embedding>(kClasses, kClassDim));
  backbone_ = register_module("backbone", build_tracking_model(name, c));
  out_proj_ = register_module("out_proj", std::make_shared<nn::Linear>(backbone_->out_dim(), 1));
}

Tensor PileupModel::forward(const ModelInput& in) {
  const int64_t f = in.x.size(1);
  const Tensor cls = in.x.narrow(1, f - 1, 1).squeeze(1).to(DType::I64);           // [N]
  const Tensor x = concat({in.x.narrow(1, 0, f - 1), class_embedding_->forward(cls)}, 1);  // [N, f - 1 + 10]
  return out_proj_->forward(backbone_->forward({x, in.coords, in.edge_index, in.vertex_z, in.seeds})).squeeze(1);  // [N]
}

}  // namespace models
